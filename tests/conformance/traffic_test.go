package conformance

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"
	"knative.dev/pkg/apis"
	"knative.dev/serving/pkg/apis/serving"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	listers "knative.dev/serving/pkg/client/listers/serving/v1"
	"knative.dev/serving/pkg/reconciler/route/traffic"
	"knative.dev/serving/pkg/reconciler/service/resources/names"
)

// revisionsCreated is what a case's cluster has stamped so far: a Knative Configuration
// creates one Revision per template name it is given, and keeps it. Keyed by Service name.
type revisionsCreated map[string]map[string]bool

// add records the revision the live Service's template names (after an accepted apply).
func (r revisionsCreated) add(live *unstructured.Unstructured) {
	if live.GroupVersionKind().Group != "serving.knative.dev" || live.GetKind() != "Service" {
		return
	}
	name, _, _ := unstructured.NestedString(live.Object, "spec", "template", "metadata", "name")
	if name == "" {
		return
	}
	if r[live.GetName()] == nil {
		r[live.GetName()] = map[string]bool{}
	}
	r[live.GetName()][name] = true
}

// seed records the revisions a case's first step routes to by name: the case starts on a
// cluster whose history it does not show, where they ran before.
func (r revisionsCreated) seed(live *unstructured.Unstructured) {
	targets, _, _ := unstructured.NestedSlice(live.Object, "spec", "traffic")
	for _, t := range targets {
		if m, ok := t.(map[string]interface{}); ok {
			if name, ok := m["revisionName"].(string); ok && name != "" {
				if r[live.GetName()] == nil {
					r[live.GetName()] = map[string]bool{}
				}
				r[live.GetName()][name] = true
			}
		}
	}
}

// judgeTraffic runs Knative's route reconciler's traffic resolution (BuildTrafficConfiguration,
// over the Route the service reconciler makes from the Service) against the revisions the
// case's steps created, every one Ready: a revisionName no step created is "referenced in
// traffic not found", the Route is not Ready and Argo CD reports the app Degraded (review F5).
func (r revisionsCreated) judgeTraffic(live *unstructured.Unstructured) error {
	svc := &servingv1.Service{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(live.Object, svc); err != nil {
		return err
	}
	newIndexer := func() cache.Indexer {
		return cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	}
	configs, revs := newIndexer(), newIndexer()
	cfg := &servingv1.Configuration{ObjectMeta: metav1.ObjectMeta{Name: names.Configuration(svc), Namespace: svc.Namespace}}
	cfg.Status.LatestCreatedRevisionName = svc.Spec.Template.Name
	cfg.Status.LatestReadyRevisionName = svc.Spec.Template.Name
	if err := configs.Add(cfg); err != nil {
		return err
	}
	created := make([]string, 0, len(r[svc.Name]))
	for name := range r[svc.Name] {
		created = append(created, name)
	}
	sort.Strings(created)
	for _, name := range created {
		rev := &servingv1.Revision{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: svc.Namespace,
			Labels: map[string]string{serving.ServiceLabelKey: svc.Name, serving.ConfigurationLabelKey: cfg.Name}}}
		rev.Status.Conditions = []apis.Condition{{Type: servingv1.RevisionConditionReady, Status: corev1.ConditionTrue}}
		if err := revs.Add(rev); err != nil {
			return err
		}
	}
	_, err := traffic.BuildTrafficConfiguration(listers.NewConfigurationLister(configs), listers.NewRevisionLister(revs),
		routeFor(svc))
	if err != nil {
		return fmt.Errorf("Knative's route reconciler: %v (revisions created by this case's steps: %v)", err, created)
	}
	return nil
}

// routeFor is the part of the service reconciler's Route (resources.MakeRoute) that traffic
// resolution reads: the Service's traffic, latestRevision targets bound to its Configuration.
// Not MakeRoute itself: its package links an injection reconciler whose init() adds Knative's
// types to client-go's scheme.Scheme, and gitops-engine's diff would then treat a Knative
// Service as a built-in type (strategic merge), which a real Argo CD never does.
func routeFor(svc *servingv1.Service) *servingv1.Route {
	route := &servingv1.Route{ObjectMeta: metav1.ObjectMeta{Name: names.Route(svc), Namespace: svc.Namespace},
		Spec: *svc.Spec.RouteSpec.DeepCopy()}
	for i := range route.Spec.Traffic {
		if route.Spec.Traffic[i].RevisionName == "" {
			route.Spec.Traffic[i].ConfigurationName = names.Configuration(svc)
		}
	}
	return route
}

// The traffic judge itself: a stable side that no step created is refused as Knative refuses
// it; one a step created, or one the first step routes to (history before the case), passes.
func TestHarnessJudgesTraffic(t *testing.T) {
	svc := func(template, stable string) *unstructured.Unstructured {
		objs, err := parseManifests(strings.NewReader(fmt.Sprintf(`apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: fn, namespace: t}
spec:
  template:
    metadata: {name: %s}
    spec: {containers: [{image: example.com/fn@sha256:%s}]}
  traffic:
  - {revisionName: %s, percent: 90, tag: stable}
  - {revisionName: %s, percent: 10, tag: candidate}
`, template, strings.Repeat("a", 64), stable, template)))
		if err != nil {
			t.Fatal(err)
		}
		return objs[0]
	}
	created := revisionsCreated{}
	first := svc("fn-00000002", "fn-00000001")
	created.seed(first)
	created.add(first)
	if err := created.judgeTraffic(first); err != nil {
		t.Errorf("the first step's stable revision ran before the case: %v", err)
	}
	next := svc("fn-00000003", "fn-00000002")
	created.add(next)
	if err := created.judgeTraffic(next); err != nil {
		t.Errorf("a revision an earlier step created: %v", err)
	}
	never := svc("fn-00000004", "fn-0badc0de")
	created.add(never)
	err := created.judgeTraffic(never)
	if err == nil || !strings.Contains(err.Error(), `Revision "fn-0badc0de" referenced in traffic not found`) {
		t.Errorf("want the missing stable revision refused, got %v", err)
	}
}
