package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/argoproj/gitops-engine/pkg/diff"
	openapi_v2 "github.com/google/gnostic-models/openapiv2"
	"github.com/google/go-cmp/cmp"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/controller/openapi/builder"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/kube-openapi/pkg/spec3"
	"k8s.io/kube-openapi/pkg/util/proto"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// Argo CD's server-side diff (compare option ServerSideDiff=true): for every object that
// exists, the controller asks the API server for a server-side apply in dry-run mode
// (kubectl apply --server-side --force-conflicts --dry-run=server, field manager
// argocd-controller) and gitops-engine's diff.Diff compares that predicted object with
// live. The API server's part is played here by the same libraries the API server uses:
// apimachinery's field manager (sigs.k8s.io/structured-merge-diff) over the OpenAPI the
// API server publishes — Kubernetes' own (its api/openapi-spec from the pinned
// k8s.io/kubernetes module) merged with each CRD's schema as apiextensions-apiserver
// builds it — then the same admission webhooks as a real apply, then nothing is stored.

// argoCDManager is the field manager Argo CD applies and dry-runs with (common.ArgoCDSSAManager).
const argoCDManager = "argocd-controller"

// compareOptions are the argocd.argoproj.io/compare-options of the shipped ApplicationSet.
type compareOptions struct {
	serverSideDiff         bool
	includeMutationWebhook bool
}

func parseCompareOptions(opts []string) (compareOptions, error) {
	var c compareOptions
	for _, o := range opts {
		switch strings.TrimSpace(o) {
		case "ServerSideDiff=true":
			c.serverSideDiff = true
		case "ServerSideDiff=false":
			c.serverSideDiff = false
		case "IncludeMutationWebhook=true":
			c.includeMutationWebhook = true
		default:
			return c, fmt.Errorf("compare option %q is not modelled by tests/conformance", o)
		}
	}
	return c, nil
}

// apiModels is what the API server knows about types: the type converter its field
// manager merges with, and the GVK parser Argo CD builds from the published OpenAPI v2.
type apiModels struct {
	static   map[string]*spec.Schema
	crds     map[schema.GroupVersionKind]*apiextensionsv1.CustomResourceDefinition
	parser   *managedfields.GvkParser
	mu       sync.Mutex
	managers map[schema.GroupVersionKind]*managedfields.FieldManager
}

var (
	modelsOnce sync.Once
	models     *apiModels
	modelsErr  error
)

func loadModels() (*apiModels, error) {
	modelsOnce.Do(func() { models, modelsErr = buildModels() })
	return models, modelsErr
}

func buildModels() (*apiModels, error) {
	dir, err := moduleDir("k8s.io/kubernetes")
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(filepath.Join(dir, "api", "openapi-spec", "swagger.json"))
	if err != nil {
		return nil, err
	}
	static := &spec.Swagger{}
	if err := json.Unmarshal(raw, static); err != nil {
		return nil, fmt.Errorf("kubernetes swagger.json: %w", err)
	}
	crds, err := schemaCRDs()
	if err != nil {
		return nil, err
	}
	// The API server's apply models (apiextensions-apiserver customresource_handler.go
	// buildOpenAPIModelsForApply): the static definitions plus each served version's V3 schema.
	schemas := map[string]*spec.Schema{}
	for name, s := range static.Definitions {
		s := s
		schemas[name] = &s
	}
	byGVK := map[schema.GroupVersionKind]*apiextensionsv1.CustomResourceDefinition{}
	var v2 []*spec.Swagger
	for _, crd := range crds {
		for _, v := range crd.Spec.Versions {
			if !v.Served {
				continue
			}
			byGVK[schema.GroupVersionKind{Group: crd.Spec.Group, Version: v.Name, Kind: crd.Spec.Names.Kind}] = crd
			// What /openapi/v2 publishes, which Argo CD's GVK parser reads.
			s2, err := builder.BuildOpenAPIV2(crd, v.Name, builder.Options{V2: true, StripValueValidation: true, StripNullable: true})
			if err != nil {
				return nil, fmt.Errorf("CRD %s %s: %w", crd.Name, v.Name, err)
			}
			// Kubernetes' own types the CRD's spec repeats (Scale, Status, …) are the static
			// spec's: the merge would rename a copy that differs in a description, and
			// the parser refuses two definitions of one GVK.
			for name := range s2.Definitions {
				if _, ok := static.Definitions[name]; ok {
					delete(s2.Definitions, name)
				}
			}
			v2 = append(v2, s2)
		}
	}
	merged2, err := builder.MergeSpecs(static, v2...)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(merged2)
	if err != nil {
		return nil, err
	}
	doc, err := openapi_v2.ParseDocument(b)
	if err != nil {
		return nil, fmt.Errorf("openapi v2: %w", err)
	}
	pm, err := proto.NewOpenAPIData(doc)
	if err != nil {
		return nil, err
	}
	parser, err := managedfields.NewGVKParser(pm, false)
	if err != nil {
		return nil, fmt.Errorf("GVK parser: %w", err)
	}
	return &apiModels{static: schemas, crds: byGVK, parser: parser, managers: map[schema.GroupVersionKind]*managedfields.FieldManager{}}, nil
}

// typeConverter is what the API server merges one kind with: a built-in's from Kubernetes'
// own definitions; a CRD's from those plus the CRD's served versions, one CRD at a time
// (apiextensions-apiserver customresource_handler.go buildOpenAPIModelsForApply).
func (m *apiModels) typeConverter(gvk schema.GroupVersionKind) (managedfields.TypeConverter, bool, error) {
	crd, ok := m.crds[gvk]
	if !ok {
		tc, err := managedfields.NewTypeConverter(m.static, false)
		return tc, false, err
	}
	specs := []*spec3.OpenAPI{{Version: "3.0.0", Components: &spec3.Components{Schemas: m.static}}}
	for _, v := range crd.Spec.Versions {
		s, err := builder.BuildOpenAPIV3(crd, v.Name, builder.Options{})
		if err != nil {
			return nil, true, fmt.Errorf("CRD %s %s: %w", crd.Name, v.Name, err)
		}
		specs = append(specs, s)
	}
	merged, err := builder.MergeSpecsV3(specs...)
	if err != nil {
		return nil, true, fmt.Errorf("CRD %s: %w", crd.Name, err)
	}
	tc, err := managedfields.NewTypeConverter(merged.Components.Schemas, crd.Spec.PreserveUnknownFields)
	return tc, true, err
}

// schemaCRDs reads the CRDs the renders use from $FNOPS_SCHEMA_DIR/crds (never copied here).
func schemaCRDs() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	dir := os.Getenv("FNOPS_SCHEMA_DIR")
	if dir == "" {
		return nil, fmt.Errorf("FNOPS_SCHEMA_DIR is not set: server-side diff needs the CRDs in $FNOPS_SCHEMA_DIR/crds")
	}
	files, err := filepath.Glob(filepath.Join(dir, "crds", "*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []*apiextensionsv1.CustomResourceDefinition
	for _, f := range files {
		base := filepath.Base(f)
		// Only the kinds fnops renders; Argo CD's and Tekton's own CRDs are not its output.
		if !strings.HasPrefix(base, "knative-") && !strings.HasPrefix(base, "keda-") && !strings.HasPrefix(base, "prometheus-") {
			continue
		}
		objs, err := readManifests(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		for _, u := range objs {
			crd := &apiextensionsv1.CustomResourceDefinition{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, crd); err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			out = append(out, crd)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no CRDs under %s/crds", dir)
	}
	return out, nil
}

// fieldManager is the API server's field manager for one kind. Every object here is
// unstructured and has one version, so the conversions are identities (as for a CRD
// with one version); CRD structural defaults are left out: the kinds fnops renders take
// their defaults from webhooks.
func (m *apiModels) fieldManager(gvk schema.GroupVersionKind) (*managedfields.FieldManager, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if fm, ok := m.managers[gvk]; ok {
		return fm, nil
	}
	tc, isCRD, err := m.typeConverter(gvk)
	if err != nil {
		return nil, fmt.Errorf("API server models for %s: %w", gvk, err)
	}
	newManager := managedfields.NewDefaultFieldManager
	if isCRD {
		newManager = managedfields.NewDefaultCRDFieldManager
	}
	fm, err := newManager(tc, sameVersion{}, noDefaults{}, unstructuredCreater{}, gvk, gvk.GroupVersion(), "", nil)
	if err != nil {
		return nil, err
	}
	m.managers[gvk] = fm
	return fm, nil
}

type sameVersion struct{}

func (sameVersion) Convert(in, out, _ interface{}) error {
	u, ok := out.(*unstructured.Unstructured)
	src, ok2 := in.(*unstructured.Unstructured)
	if !ok || !ok2 {
		return fmt.Errorf("only unstructured objects convert here")
	}
	u.Object = runtime.DeepCopyJSON(src.Object)
	return nil
}
func (sameVersion) ConvertToVersion(in runtime.Object, _ runtime.GroupVersioner) (runtime.Object, error) {
	return in, nil
}
func (sameVersion) ConvertFieldLabel(_ schema.GroupVersionKind, label, value string) (string, string, error) {
	return label, value, nil
}

type noDefaults struct{}

func (noDefaults) Default(runtime.Object) {}

type unstructuredCreater struct{}

func (unstructuredCreater) New(gvk schema.GroupVersionKind) (runtime.Object, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	return u, nil
}

// trackManagedFields is the API server recording a write (kubectl's client-side apply is a
// PATCH, an Update operation) in metadata.managedFields, before admission: fields a webhook
// adds afterwards belong to no manager.
func trackManagedFields(incoming, live *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	m, err := loadModels()
	if err != nil {
		return nil, err
	}
	fm, err := m.fieldManager(incoming.GroupVersionKind())
	if err != nil {
		return nil, err
	}
	var before runtime.Object = live
	if live == nil {
		before, _ = unstructuredCreater{}.New(incoming.GroupVersionKind())
	}
	out, err := fm.Update(before.DeepCopyObject(), incoming.DeepCopy(), argoCDManager)
	if err != nil {
		return nil, fmt.Errorf("API server, managed fields: %w", err)
	}
	return out.(*unstructured.Unstructured), nil
}

// dryRunApply is the API server's answer to Argo CD's server-side apply dry run: the
// render applied (forced) over the live object by argocd-controller, then admission as
// for a real update; the registry's bookkeeping, and nothing stored.
func (c *cluster) dryRunApply(p *platform, config *unstructured.Unstructured) (string, error) {
	live := c.live[ref(config)]
	if live == nil {
		return "", fmt.Errorf("dry run of %s: nothing live (Argo CD diffs a new object without the API server)", ref(config))
	}
	m, err := loadModels()
	if err != nil {
		return "", err
	}
	fm, err := m.fieldManager(config.GroupVersionKind())
	if err != nil {
		return "", err
	}
	applied, err := fm.Apply(live.DeepCopy(), config.DeepCopy(), argoCDManager, true)
	if err != nil {
		return "", fmt.Errorf("API server, server-side apply: %w", err)
	}
	stored, _, err := admit(c, p, applied.(*unstructured.Unstructured), live)
	if err != nil {
		return "", err
	}
	stored = stored.DeepCopy()
	// The main endpoint keeps the stored status (the status subresource owns it).
	unstructured.RemoveNestedField(stored.Object, "status")
	if st, ok := live.Object["status"]; ok {
		stored.Object["status"] = st
	}
	stored.SetResourceVersion(live.GetResourceVersion())
	stored.SetUID(live.GetUID())
	stored.SetCreationTimestamp(live.GetCreationTimestamp())
	gen := live.GetGeneration()
	if !equalJSON(withoutMeta(live), withoutMeta(stored)) {
		gen++
	}
	stored.SetGeneration(gen)
	b, err := json.Marshal(stored.Object)
	return string(b), err
}

func equalJSON(a, b map[string]interface{}) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

type dryRunner struct {
	c *cluster
	p *platform
}

func (d dryRunner) Run(_ context.Context, obj *unstructured.Unstructured, _ string) (string, error) {
	return d.c.dryRunApply(d.p, obj)
}

// serverSideSynced is the application controller's comparison with ServerSideDiff=true:
// gitops-engine's diff.Diff with the server-side options Argo CD's controller sets
// (controller/state.go: manager argocd-controller, its GVK parser, webhook mutations left
// out unless IncludeMutationWebhook=true).
func serverSideSynced(c *cluster, p *platform, opts compareOptions, config, live *unstructured.Unstructured) error {
	m, err := loadModels()
	if err != nil {
		return err
	}
	dr, err := diff.Diff(config.DeepCopy(), live.DeepCopy(),
		diff.WithNormalizer(diff.GetNoopNormalizer()),
		diff.WithGVKParser(m.parser),
		diff.WithManager(argoCDManager),
		diff.WithServerSideDiff(true),
		diff.WithServerSideDryRunner(dryRunner{c, p}),
		diff.WithIgnoreMutationWebhook(!opts.includeMutationWebhook))
	if err != nil {
		return fmt.Errorf("gitops-engine diff.Diff (server-side): %w", err)
	}
	if !dr.Modified {
		return nil
	}
	var predicted, normalized map[string]interface{}
	if err := json.Unmarshal(dr.PredictedLive, &predicted); err != nil {
		return err
	}
	if err := json.Unmarshal(dr.NormalizedLive, &normalized); err != nil {
		return err
	}
	return fmt.Errorf("OutOfSync: gitops-engine server-side diff reports Modified; (-live +predicted live from the dry run):\n%s",
		cmp.Diff(normalized, predicted))
}

// synced is Argo CD's comparison as the app is configured: server-side diff when its
// compare options turn it on, else the default (legacy three-way) diff.
func (c *cluster) synced(config, live *unstructured.Unstructured) error {
	if !c.compare.serverSideDiff {
		return argoCDSynced(config, live)
	}
	return serverSideSynced(c, c.platform, c.compare, config, live)
}

// asStored is a Knative Service whose container carries what serving's webhook defaults in
// it (as fnops renders it): a server-side apply replaces the containers list whole (the CRD
// leaves it atomic), and the webhook does not default a template whose name did not change.
func asStored(nameSuffix, containerExtra string) string {
	return ksvcWith(nameSuffix, "        name: user-container\n        readinessProbe: {tcpSocket: {port: 0}, successThreshold: 1}\n"+
		"        resources: {}\n"+containerExtra)
}

// TestHarnessServerSideDiff: the dry run and gitops-engine's server-side diff tell a change
// from a webhook's canonical form, and a dry run the webhook refuses is reported.
func TestHarnessServerSideDiff(t *testing.T) {
	withEnv := "        env: [{name: A, value: b}]\n"
	tests := []struct {
		name     string
		platform string
		options  []string
		applied  string // what the last sync applied
		compared string // what the next comparison sends; "" = the same
		want     string // part of the complaint; "" means Synced
	}{{
		name:    "an unchanged render as the webhook stores it compares synced",
		applied: asStored("", ""),
	}, {
		name:    "IncludeMutationWebhook=true compares the webhook's defaults as live has them",
		options: []string{"ServerSideDiff=true", "IncludeMutationWebhook=true"},
		applied: asStored("", ""),
	}, {
		name:    "a container without resources: {} compares synced (the webhook's round trip writes it back)",
		applied: ksvcWith("", "        name: user-container\n        readinessProbe: {tcpSocket: {port: 0}, successThreshold: 1}\n"),
	}, {
		name:     "a changed template under a new revision name is out of sync",
		applied:  asStored("", ""),
		compared: asStored("2", withEnv),
		want:     "OutOfSync",
	}, {
		name:     "a dropped env var is out of sync",
		applied:  asStored("", withEnv),
		compared: asStored("2", ""),
		want:     "OutOfSync",
	}, {
		name:     "the dry run of a template change under the same name meets the webhook's refusal",
		applied:  asStored("", ""),
		compared: asStored("", withEnv),
		want:     "Saw the following changes without a name change",
	}, {
		name:    "a container without the webhook's defaults: the dry run drops them and is refused",
		applied: ksvcWith("", ""),
		want:    "Saw the following changes without a name change",
	}, {
		name:     "defaults a hardened platform filled in at creation: the dry run drops them and is refused",
		platform: "hardened",
		applied:  asStored("", ""),
		want:     "Saw the following changes without a name change",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.platform == "" {
				tc.platform = "default"
			}
			if tc.options == nil {
				tc.options = []string{"ServerSideDiff=true"}
			}
			if tc.compared == "" {
				tc.compared = tc.applied
			}
			plat, err := platformNamed(tc.platform)
			if err != nil {
				t.Fatal(err)
			}
			cl := newCluster("t")
			if cl.compare, err = parseCompareOptions(tc.options); err != nil {
				t.Fatal(err)
			}
			cl.platform = plat
			objs, err := parseManifests(strings.NewReader(tc.applied))
			if err != nil {
				t.Fatal(err)
			}
			asArgoCDSends(objs[0], "selftest", "t")
			if _, err := cl.apply(plat, objs[0]); err != nil {
				t.Fatalf("apply: %v", err)
			}
			next, err := parseManifests(strings.NewReader(tc.compared))
			if err != nil {
				t.Fatal(err)
			}
			asArgoCDSends(next[0], "selftest", "t")
			got := cl.synced(next[0], cl.get(next[0]))
			t.Log(got)
			switch {
			case tc.want == "" && got != nil:
				t.Errorf("want Synced, got:\n%v", got)
			case tc.want != "" && (got == nil || !strings.Contains(got.Error(), tc.want)):
				t.Errorf("want a complaint containing %q, got: %v", tc.want, got)
			}
		})
	}
}
