package conformance

// Custom domains (function.yaml http.domain): serving's webhook judges DomainMappings as it
// judges Services (serving/cmd/webhook registers v1beta1 DomainMapping with the same
// contexts). A ClusterDomainClaim has no webhook upstream — its CRD schema is all the API
// server checks (tests/schemas.py in the Python suite) — so the harness stores it as sent,
// cluster-scoped, and compares it as Argo CD does.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	servingv1beta1 "knative.dev/serving/pkg/apis/serving/v1beta1"
)

var domainClaimGK = schema.GroupKind{Group: "networking.internal.knative.dev", Kind: "ClusterDomainClaim"}

func init() {
	knativeKinds[servingv1beta1.SchemeGroupVersion.WithKind("DomainMapping")] = knativeKind{
		newObj:        func() knativeObject { return &servingv1beta1.DomainMapping{} },
		defaulting:    "webhook.serving.knative.dev",
		validation:    "validation.webhook.serving.knative.dev",
		defaultingCtx: (*platform).servingCtx,
		validationCtx: (*platform).servingCtx,
	}
	clusterScoped[domainClaimGK] = true
}

// domainMappingHealthSamples: the conditions the DomainMapping reconciler writes
// (serving pkg/reconciler/domainmapping): Ready follows DomainClaimed, ReferenceResolved,
// IngressReady and CertificateProvisioned.
func domainMappingHealthSamples(live *unstructured.Unstructured, gen int64) []healthSample {
	ready := conditions("DomainClaimed", "True", "", "ReferenceResolved", "True", "", "IngressReady", "True", "",
		"CertificateProvisioned", "True", "CertificateExternallyProvided", "Ready", "True", "")
	claimed := conditions("DomainClaimed", "False", "DomainAlreadyClaimed", "ReferenceResolved", "True", "",
		"Ready", "False", "DomainAlreadyClaimed")
	certWaiting := conditions("DomainClaimed", "True", "", "CertificateProvisioned", "Unknown", "CertificateNotReady",
		"Ready", "Unknown", "CertificateNotReady")
	return []healthSample{
		{"ready", withStatus(live, gen, observed(gen, ready)), "Healthy"},
		// Another namespace owns the name's ClusterDomainClaim: what a cluster does with two
		// folders mapping one name, which one folder's render cannot see.
		{"domain-claimed-elsewhere", withStatus(live, gen, observed(gen, claimed)), "Degraded"},
		{"certificate-not-ready", withStatus(live, gen, observed(gen, certWaiting)), "Progressing"},
		{"new-generation-not-observed", withStatus(live, gen+1, observed(gen, ready)), "Progressing"},
	}
}

func domainMapping(name, refNamespace, extraSpec string) string {
	return fmt.Sprintf(`apiVersion: serving.knative.dev/v1beta1
kind: DomainMapping
metadata: {name: %q, namespace: t}
spec:
  ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: fn, namespace: %s}
%s`, name, refNamespace, extraSpec)
}

const domainClaim = `apiVersion: networking.internal.knative.dev/v1alpha1
kind: ClusterDomainClaim
metadata: {name: api.example.com}
spec: {namespace: t}
`

func TestHarnessJudgesDomainMappings(t *testing.T) {
	tests := []struct {
		name  string
		steps []string
		check string
		want  string
	}{{
		name:  "serving accepts a domain mapping to a service",
		steps: []string{domainMapping("api.example.com", "t", "")},
		check: "admission",
	}, {
		name:  "serving accepts an update that adds a tls secret",
		steps: []string{domainMapping("api.example.com", "t", ""), domainMapping("api.example.com", "t", "  tls: {secretName: api-tls}\n")},
		check: "admission",
	}, {
		name:  "serving refuses a name under the cluster's local domain",
		steps: []string{domainMapping("fn.t.svc.cluster.local", "t", "")},
		check: "admission",
		want:  `must not be a subdomain of cluster local domain "cluster.local"`,
	}, {
		name:  "serving refuses a name with one label",
		steps: []string{domainMapping("localhost", "t", "")},
		check: "admission",
		want:  "should be a domain with at least two segments",
	}, {
		name:  "serving refuses a service in another namespace",
		steps: []string{domainMapping("api.example.com", "other", "")},
		check: "admission",
		want:  "spec.ref.namespace",
	}, {
		name:  "argo cd compares a defaulted mapping as synced",
		steps: []string{domainMapping("api.example.com", "t", "  tls: {secretName: api-tls}\n")},
		check: "synced",
	}, {
		name:  "argo cd compares a stored claim as synced",
		steps: []string{domainClaim},
		check: "synced",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plat, err := platformNamed("default")
			if err != nil {
				t.Fatal(err)
			}
			cl := newCluster("t")
			var got []string
			for i, step := range tc.steps {
				objs, err := parseManifests(strings.NewReader(step))
				if err != nil {
					t.Fatal(err)
				}
				for _, o := range objs {
					asArgoCDSends(o, "selftest", "t")
					_, err := cl.apply(plat, o)
					if i < len(tc.steps)-1 {
						if err != nil {
							t.Fatalf("setup step %d: %v", i, err)
						}
						continue
					}
					if tc.check == "synced" && err == nil {
						err = argoCDSynced(o, cl.get(o))
					}
					if err == nil && o.GroupVersionKind().GroupKind() == domainClaimGK && cl.get(o).GetNamespace() != "" {
						err = fmt.Errorf("a cluster-scoped claim was stored in namespace %q", cl.get(o).GetNamespace())
					}
					if err != nil {
						got = append(got, err.Error())
					}
				}
			}
			msg := strings.Join(got, "\n")
			t.Log(msg)
			switch {
			case tc.want == "" && msg != "":
				t.Errorf("want no complaint, got:\n%s", msg)
			case tc.want != "" && !strings.Contains(msg, tc.want):
				t.Errorf("want a complaint containing %q, got: %q", tc.want, msg)
			}
		})
	}
}

// Argo CD has no built-in health for DomainMapping: without the script fnops ships, a
// mapping whose name another namespace owns would show Healthy.
func TestHarnessDomainMappingHealth(t *testing.T) {
	objs, err := parseManifests(strings.NewReader(domainMapping("api.example.com", "t", "")))
	if err != nil {
		t.Fatal(err)
	}
	live := objs[0]
	live.SetGeneration(1)
	shipped := shippedHealthPatch(t)
	for _, s := range healthSamples(live) {
		if err := judgeHealth(shipped, s); err != nil {
			t.Errorf("%s with fnops' script: %v", s.name, err)
		}
		if s.want == "Degraded" {
			if err := judgeHealth(nil, s); err == nil {
				t.Errorf("%s: Argo CD alone reports it Degraded; fnops' script is no longer needed", s.name)
			}
		}
	}
	if len(healthSamples(live)) == 0 {
		t.Fatal("no health samples for DomainMapping")
	}
}

func shippedHealthPatch(t *testing.T) map[string]string {
	b, err := os.ReadFile(filepath.Join("..", "..", "argocd-cmp", "repo-server", "argocd-cm-health-patch.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	if err := yaml.Unmarshal(b, &cm); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for k, v := range cm.Data {
		if key, ok := strings.CutPrefix(k, "resource.customizations.health."); ok {
			i := strings.LastIndex(key, "_")
			out[key[:i]+"/"+key[i+1:]] = v
		}
	}
	return out
}
