package conformance

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"time"

	gescheme "github.com/argoproj/gitops-engine/pkg/utils/kube/scheme"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/jsonmergepatch"
	"k8s.io/apimachinery/pkg/util/mergepatch"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
)

const (
	lastApplied = "kubectl.kubernetes.io/last-applied-configuration"
	trackingID  = "argocd.argoproj.io/tracking-id"
	// Argo CD's application controller applies as its service account; Knative records it
	// in <group>/creator and /lastModifier.
	argoCDUser = "system:serviceaccount:argocd:argocd-application-controller"
)

// clusterScoped: kinds Argo CD's API discovery reports cluster-scoped (filled by the files
// that judge them); they never get the destination namespace.
var clusterScoped = map[schema.GroupKind]bool{}

// asArgoCDSends adds what Argo CD adds before it diffs and applies: the destination
// namespace when the manifest has none, and its tracking annotation (the v3 default method).
func asArgoCDSends(u *unstructured.Unstructured, app, ns string) {
	if u.GetNamespace() == "" && !clusterScoped[u.GroupVersionKind().GroupKind()] {
		u.SetNamespace(ns)
	}
	ann := u.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	gvk := u.GroupVersionKind()
	ann[trackingID] = fmt.Sprintf("%s:%s/%s:%s/%s", app, gvk.Group, gvk.Kind, u.GetNamespace(), u.GetName())
	u.SetAnnotations(ann)
}

// cluster is the API server's storage for one namespace, filled only through admission.
type cluster struct {
	ns   string
	live map[string]*unstructured.Unstructured
	seq  int
	// How Argo CD compares (serverside_test.go), and the platform a dry run is admitted by.
	compare  compareOptions
	platform *platform
}

func newCluster(ns string) *cluster {
	return &cluster{ns: ns, live: map[string]*unstructured.Unstructured{}}
}

func (c *cluster) get(u *unstructured.Unstructured) *unstructured.Unstructured {
	return c.live[ref(u)]
}

// outOfSync is Argo CD's comparison for the whole app: anything missing, extra or modified.
func (c *cluster) outOfSync(objs []*unstructured.Unstructured) bool {
	want := map[string]bool{}
	for _, o := range objs {
		want[ref(o)] = true
		live := c.live[ref(o)]
		if live == nil || c.synced(o, live) != nil {
			return true
		}
	}
	for k := range c.live {
		if !want[k] {
			return true
		}
	}
	return false
}

// prune deletes what the render no longer holds (the ApplicationSet syncs with prune).
func (c *cluster) prune(objs []*unstructured.Unstructured) {
	want := map[string]bool{}
	for _, o := range objs {
		want[ref(o)] = true
	}
	for k := range c.live {
		if !want[k] {
			delete(c.live, k)
		}
	}
}

func (c *cluster) objectsOfKind(group, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, u := range c.live {
		if gvk := u.GroupVersionKind(); gvk.Group == group && gvk.Kind == kind {
			out = append(out, u)
		}
	}
	return out
}

// apply is `kubectl apply` (client side, which Argo CD runs unless ServerSideApply=true),
// then the API server: admission, then storage. judged says whether upstream admission
// code looked at the object (kinds without a webhook in the harness are only stored).
func (c *cluster) apply(p *platform, config *unstructured.Unstructured) (judged bool, err error) {
	modified, err := withLastApplied(config)
	if err != nil {
		return false, err
	}
	live := c.live[ref(config)]
	incoming := modified
	if live != nil {
		if incoming, err = kubectlPatch(live, modified); err != nil {
			return false, err
		}
	}
	if incoming, err = trackManagedFields(incoming, live); err != nil {
		return false, err
	}
	stored, judged, err := admit(c, p, incoming, live)
	if err != nil {
		return judged, err
	}
	c.persist(stored, live)
	return judged, nil
}

// withLastApplied is kubectl's "modified" configuration: the object carrying its own JSON
// (without the annotation) in last-applied-configuration.
func withLastApplied(config *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	plain := config.DeepCopy()
	ann := plain.GetAnnotations()
	delete(ann, lastApplied)
	plain.SetAnnotations(ann)
	b, err := json.Marshal(plain.Object)
	if err != nil {
		return nil, err
	}
	out := plain.DeepCopy()
	ann = out.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[lastApplied] = string(b) + "\n"
	out.SetAnnotations(ann)
	return out, nil
}

// kubectlPatch computes what kubectl's apply patcher sends and what the API server makes of
// it: a three-way strategic merge patch for built-in types, a three-way JSON merge patch
// (lists replaced whole) for custom resources.
func kubectlPatch(live, modified *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	original := []byte(live.GetAnnotations()[lastApplied])
	current, err := json.Marshal(live.Object)
	if err != nil {
		return nil, err
	}
	mod, err := json.Marshal(modified.Object)
	if err != nil {
		return nil, err
	}
	var patched []byte
	if versioned, err := gescheme.Scheme.New(live.GroupVersionKind()); err == nil {
		meta, err := strategicpatch.NewPatchMetaFromStruct(versioned)
		if err != nil {
			return nil, err
		}
		patch, err := strategicpatch.CreateThreeWayMergePatch(original, mod, current, meta, true)
		if err != nil {
			return nil, fmt.Errorf("kubectl apply: %w", err)
		}
		if patched, err = strategicpatch.StrategicMergePatch(current, patch, versioned); err != nil {
			return nil, fmt.Errorf("API server, strategic merge patch: %w", err)
		}
	} else {
		pre := []mergepatch.PreconditionFunc{mergepatch.RequireKeyUnchanged("apiVersion"),
			mergepatch.RequireKeyUnchanged("kind"), mergepatch.RequireMetadataKeyUnchanged("name")}
		patch, err := jsonmergepatch.CreateThreeWayJSONMergePatch(original, mod, current, pre...)
		if err != nil {
			return nil, fmt.Errorf("kubectl apply: %w", err)
		}
		if patched, err = jsonpatch.MergePatch(current, patch); err != nil {
			return nil, fmt.Errorf("API server, merge patch: %w", err)
		}
	}
	out := &unstructured.Unstructured{}
	if err := out.UnmarshalJSON(patched); err != nil {
		return nil, err
	}
	return out, nil
}

// persist is the registry's part: server-owned metadata, generation bumped on spec
// changes, and status left to the controllers (the main endpoint never writes it).
func (c *cluster) persist(stored, live *unstructured.Unstructured) {
	stored = stored.DeepCopy()
	unstructured.RemoveNestedField(stored.Object, "status")
	c.seq++
	stored.SetResourceVersion(strconv.Itoa(c.seq))
	if live == nil {
		stored.SetUID(types.UID(fmt.Sprintf("00000000-0000-0000-0000-%012d", c.seq)))
		stored.SetCreationTimestamp(metav1.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
		stored.SetGeneration(1)
	} else {
		stored.SetUID(live.GetUID())
		stored.SetCreationTimestamp(live.GetCreationTimestamp())
		gen := live.GetGeneration()
		if !reflect.DeepEqual(withoutMeta(live), withoutMeta(stored)) {
			gen++
		}
		stored.SetGeneration(gen)
	}
	c.live[ref(stored)] = stored
}

func withoutMeta(u *unstructured.Unstructured) map[string]interface{} {
	m := runtime.DeepCopyJSON(u.Object)
	delete(m, "metadata")
	delete(m, "status")
	return m
}

// admit routes an object to the webhooks that judge its kind on a real cluster.
func admit(c *cluster, p *platform, incoming, live *unstructured.Unstructured) (*unstructured.Unstructured, bool, error) {
	gvk := incoming.GroupVersionKind()
	if k, ok := knativeKinds[gvk]; ok {
		out, err := k.admit(p, incoming, live)
		return out, true, err
	}
	if gvk == scaledObjectGVK {
		out, err := kedaAdmit(c, incoming, live)
		return out, true, err
	}
	if _, err := gescheme.Scheme.New(gvk); err == nil {
		out, err := builtinDefaults(incoming)
		return out, false, err
	}
	// No webhook here: HTTPScaledObject and InterceptorRoute (the HTTP add-on has none),
	// PrometheusRule (prometheus-operator's rule webhook is not built here). The API server
	// still checks the CRD's schema and CEL rules (crdvalidation_test.go).
	judged, err := crdAdmit(incoming, live)
	if err != nil {
		return nil, judged, err
	}
	return incoming.DeepCopy(), judged, nil
}

// builtinDefaults is the API server's defaulting of a built-in kind (the scheme gitops-engine
// uses holds Kubernetes' own defaulting functions).
func builtinDefaults(incoming *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	obj, err := gescheme.Scheme.New(incoming.GroupVersionKind())
	if err != nil {
		return nil, err
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(incoming.Object, obj); err != nil {
		return nil, fmt.Errorf("API server, decode %s: %w", incoming.GroupVersionKind().Kind, err)
	}
	gescheme.Scheme.Default(obj)
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	out := &unstructured.Unstructured{Object: m}
	out.SetGroupVersionKind(incoming.GroupVersionKind())
	return out, nil
}
