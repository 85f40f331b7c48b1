package conformance

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

var (
	casesDir    = flag.String("cases", "", "directory holding cases.json (written by tests/test_conformance.py)")
	resultsPath = flag.String("results", "", "file to write one JSON line per check to")
)

// suite is cases.json: what pytest rendered, as sequences of Argo CD syncs.
type suite struct {
	Cases []caseSpec `json:"cases"`
	// HealthOverrides are the resource.customizations.health.* scripts fnops ships, keyed
	// "group/Kind"; they win over Argo CD's built-in ones, as in argocd-cm.
	HealthOverrides map[string]string `json:"healthOverrides"`
	// ArgoCD is the sync policy of the ApplicationSet fnops ships.
	ArgoCD argoCDPolicy `json:"argocd"`
}

type argoCDPolicy struct {
	Prune       bool     `json:"prune"`
	SyncOptions []string `json:"syncOptions"`
	// CompareOptions: the argocd.argoproj.io/compare-options annotation (serverside_test.go).
	CompareOptions []string `json:"compareOptions"`
}

// applyOutOfSyncOnly: with this sync option Argo CD applies only what compares OutOfSync;
// without it a sync applies every object of the app.
func (p argoCDPolicy) applyOutOfSyncOnly() bool {
	for _, o := range p.SyncOptions {
		if o == "ApplyOutOfSyncOnly=true" {
			return true
		}
	}
	return false
}

type caseSpec struct {
	ID        string     `json:"id"`
	Namespace string     `json:"namespace"`
	App       string     `json:"app"`
	Steps     []stepSpec `json:"steps"`
	// Health runs the status samples against what the first step stored.
	Health bool `json:"health"`
}

type stepSpec struct {
	Name      string `json:"name"`
	Platform  string `json:"platform"`
	Manifests string `json:"manifests"`
	// Resync: a sync runs although this render did not change (someone pressed Sync, or
	// another object of the app changed), so Argo CD applies the unchanged objects again.
	Resync bool `json:"resync"`
}

// result is one judged check; pytest matches failures against its known-findings table.
type result struct {
	Case    string `json:"case"`
	Step    string `json:"step"`
	Object  string `json:"object"`
	Check   string `json:"check"`
	OK      bool   `json:"ok"`
	Message string `json:"message,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

type recorder struct {
	mu  sync.Mutex
	enc *json.Encoder
	f   *os.File
	// quiet keeps results in memory without failing the test: the harness' own tests
	// inspect what it would report.
	quiet bool
	kept  []result
}

func openRecorder(t *testing.T, path string) *recorder {
	t.Helper()
	r := &recorder{}
	if path == "" {
		return r
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	r.f, r.enc = f, json.NewEncoder(f)
	return r
}

// check records one judgement and fails the subtest with the upstream message, the
// object and the step, so `go test -v` alone tells the whole story.
func (r *recorder) check(t *testing.T, res result, err error, object string) {
	t.Helper()
	res.OK = err == nil
	if err != nil {
		res.Message = err.Error()
		res.Detail = object
		if !r.quiet {
			t.Errorf("step %q, %s, %s:\n%s\n--- object ---\n%s", res.Step, res.Object, res.Check, res.Message, object)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.quiet {
		r.kept = append(r.kept, res)
	}
	if r.enc != nil {
		if e := r.enc.Encode(res); e != nil {
			t.Fatal(e)
		}
	}
}

func loadSuite(t *testing.T, dir string) *suite {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s suite
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		t.Fatalf("cases.json: %v", err)
	}
	if len(s.Cases) == 0 {
		t.Fatal("cases.json holds no cases")
	}
	return &s
}

// readManifests splits a YAML stream as Argo CD reads a CMP's output.
func readManifests(path string) ([]*unstructured.Unstructured, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseManifests(f)
}

func parseManifests(r io.Reader) ([]*unstructured.Unstructured, error) {
	rd := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var out []*unstructured.Unstructured
	for {
		doc, err := rd.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(doc)) == 0 || string(bytes.TrimSpace(doc)) == "---" {
			continue
		}
		js, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, err
		}
		if string(js) == "null" {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(js); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
}

func toYAML(u *unstructured.Unstructured) string {
	if u == nil {
		return "<none>"
	}
	b, err := yaml.Marshal(u.Object)
	if err != nil {
		return fmt.Sprintf("<%v>", err)
	}
	return string(b)
}

// statusView is what a health sample adds to the stored object.
func statusView(u *unstructured.Unstructured) string {
	b, err := yaml.Marshal(map[string]interface{}{
		"metadata": map[string]interface{}{"name": u.GetName(), "generation": u.GetGeneration()},
		"status":   u.Object["status"],
	})
	if err != nil {
		return fmt.Sprintf("<%v>", err)
	}
	return string(b)
}

// ref names an object the way the results table matches it: Kind.group/name.
func ref(u *unstructured.Unstructured) string {
	gvk := u.GroupVersionKind()
	kind := gvk.Kind
	if gvk.Group != "" {
		kind += "." + gvk.Group
	}
	return kind + "/" + u.GetName()
}

func TestConformance(t *testing.T) {
	if *casesDir == "" {
		t.Skip("no -cases directory: tests/test_conformance.py renders the cases and passes one")
	}
	s := loadSuite(t, *casesDir)
	rec := openRecorder(t, *resultsPath)
	ids := map[string]bool{}
	for _, c := range s.Cases {
		if ids[c.ID] {
			t.Fatalf("case %q appears twice", c.ID)
		}
		ids[c.ID] = true
		t.Run(c.ID, func(t *testing.T) {
			runCase(t, rec, s, c, func(st stepSpec) ([]*unstructured.Unstructured, error) {
				return readManifests(filepath.Join(*casesDir, st.Manifests))
			})
		})
	}
}

// runCase plays the steps as Argo CD with automated sync would: it compares, applies
// everything when anything is out of sync, and then compares again.
func runCase(t *testing.T, rec *recorder, s *suite, c caseSpec, manifests func(stepSpec) ([]*unstructured.Unstructured, error)) {
	cl := newCluster(c.Namespace)
	compare, err := parseCompareOptions(s.ArgoCD.CompareOptions)
	if err != nil {
		t.Fatal(err)
	}
	cl.compare = compare
	created := revisionsCreated{} // traffic_test.go: the revisions the steps stamped
	for i, st := range c.Steps {
		stepName := fmt.Sprintf("%d-%s", i, st.Name)
		t.Run(stepName, func(t *testing.T) {
			plat, err := platformNamed(st.Platform)
			if err != nil {
				t.Fatal(err)
			}
			cl.platform = plat // a server-side diff's dry run meets this step's webhooks
			objs, err := manifests(st)
			if err != nil {
				t.Fatal(err)
			}
			if len(objs) == 0 {
				t.Fatal("the render holds no objects")
			}
			for _, o := range objs {
				asArgoCDSends(o, c.App, c.Namespace)
			}
			res := func(o *unstructured.Unstructured, check string) result {
				return result{Case: c.ID, Step: stepName, Object: ref(o), Check: check}
			}

			refused := map[string]bool{}
			if i == 0 || st.Resync || cl.outOfSync(objs) {
				var apply []*unstructured.Unstructured
				for _, o := range syncOrder(objs) {
					if live := cl.get(o); live != nil && s.ArgoCD.applyOutOfSyncOnly() && cl.synced(o, live) == nil {
						continue
					}
					apply = append(apply, o)
				}
				for _, o := range apply {
					judged, err := cl.apply(plat, o)
					if err != nil {
						refused[ref(o)] = true
					}
					if judged || err != nil {
						rec.check(t, res(o, "admission"), err, toYAML(o))
					}
				}
				if s.ArgoCD.Prune {
					cl.prune(objs)
				}
			} else {
				t.Log("every object compares Synced: automated sync applies nothing")
			}

			for _, o := range objs {
				if refused[ref(o)] {
					continue // the refusal is the failure; the old object stays live
				}
				if live := cl.get(o); live != nil {
					if i == 0 {
						created.seed(live)
					}
					created.add(live)
					rec.check(t, res(o, "synced"), cl.synced(o, live), toYAML(o))
					// The other diff strategy too (serverside_test.go): what an app that
					// switches it would see.
					if cl.compare.serverSideDiff {
						rec.check(t, res(o, "synced/legacy-diff"), argoCDSynced(o, live), toYAML(o))
					} else {
						rec.check(t, res(o, "synced/server-side-diff"), serverSideSynced(cl, plat, cl.compare, o, live), toYAML(o))
					}
				}
			}

			for _, o := range objs {
				if live := cl.get(o); live != nil && live.GetKind() == "Service" &&
					live.GroupVersionKind().Group == "serving.knative.dev" {
					rec.check(t, res(o, "traffic"), created.judgeTraffic(live), toYAML(live))
				}
			}

			if c.Health && i == 0 {
				for _, o := range objs {
					live := cl.get(o)
					if live == nil {
						continue
					}
					for _, sample := range healthSamples(live) {
						err := judgeHealth(s.HealthOverrides, sample)
						rec.check(t, res(o, "health/"+sample.name), err, statusView(sample.obj))
					}
				}
			}
			// The step's end marker: pytest tells a finished step from one cut short by t.Fatal.
			rec.check(t, result{Case: c.ID, Step: stepName, Object: "-", Check: "step"}, nil, "")
		})
		// Later steps run whatever this one did: a refused apply leaves the old object live,
		// and the next commit is applied over it, as on a cluster.
	}
}

// syncOrder applies workloads before what points at them (a KEDA ScaledObject is checked
// against the Deployment it scales), as Argo CD's kind ordering does.
func syncOrder(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	rank := func(u *unstructured.Unstructured) int {
		switch gk := u.GroupVersionKind().GroupKind(); {
		case gk.Group == "" || strings.HasSuffix(gk.Group, ".k8s.io"):
			return 0
		case gk.Group == "apps":
			return 1
		default:
			return 2
		}
	}
	out := append([]*unstructured.Unstructured(nil), objs...)
	sort.SliceStable(out, func(i, j int) bool { return rank(out[i]) < rank(out[j]) })
	return out
}
