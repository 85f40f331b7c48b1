package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/argoproj/argo-cd/v3/resource_customizations"
	"github.com/argoproj/gitops-engine/pkg/diff"
	"github.com/google/go-cmp/cmp"
	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	luajson "layeh.com/gopher-json"
)

// argoCDSynced is the application controller's comparison with its default settings:
// gitops-engine's diff.Diff, which for an object applied client-side is the three-way diff
// against kubectl.kubernetes.io/last-applied-configuration, with no ignoreDifferences.
func argoCDSynced(config, live *unstructured.Unstructured) error {
	dr, err := diff.Diff(config.DeepCopy(), live.DeepCopy(), diff.WithNormalizer(diff.GetNoopNormalizer()))
	if err != nil {
		return fmt.Errorf("gitops-engine diff.Diff: %w", err)
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
	// Only for reading: the applied-configuration copy repeats the whole object on one line.
	for _, m := range []map[string]interface{}{normalized, predicted} {
		unstructured.RemoveNestedField(m, "metadata", "annotations", lastApplied)
	}
	return fmt.Errorf("OutOfSync: gitops-engine diff.Diff reports Modified; (-live +predicted live after applying the render):\n%s",
		cmp.Diff(normalized, predicted))
}

// healthSample is a status a controller may write, and the health Argo CD must report for
// the fnops bridge to act right (it reports "deployed" on Succeeded+Healthy and rolls back
// on Degraded).
type healthSample struct {
	name string
	obj  *unstructured.Unstructured
	want string
}

// conditions builds status conditions from (type, status, reason) triples.
func conditions(triples ...string) []interface{} {
	var out []interface{}
	for i := 0; i+2 < len(triples); i += 3 {
		c := map[string]interface{}{"type": triples[i], "status": triples[i+1]}
		if triples[i+2] != "" {
			c["reason"] = triples[i+2]
			c["message"] = "sample: " + triples[i+2]
		}
		out = append(out, c)
	}
	return out
}

func withStatus(live *unstructured.Unstructured, generation int64, status map[string]interface{}) *unstructured.Unstructured {
	u := live.DeepCopy()
	u.SetGeneration(generation)
	u.Object["status"] = status
	return u
}

func observed(generation int64, conds []interface{}) map[string]interface{} {
	return map[string]interface{}{"observedGeneration": generation, "conditions": conds}
}

func healthSamples(live *unstructured.Unstructured) []healthSample {
	gen := live.GetGeneration()
	switch gk := live.GroupVersionKind().GroupKind(); gk {
	case schema.GroupKind{Group: "serving.knative.dev", Kind: "Service"}:
		ready := conditions("ConfigurationsReady", "True", "", "Ready", "True", "", "RoutesReady", "True", "")
		return []healthSample{
			{"ready", withStatus(live, gen, observed(gen, ready)), "Healthy"},
			// Right after a sync: the previous generation's Ready=True is all there is.
			{"new-generation-not-observed", withStatus(live, gen+1, observed(gen, ready)), "Progressing"},
			{"revision-failed", withStatus(live, gen, observed(gen, conditions(
				"ConfigurationsReady", "False", "RevisionFailed", "Ready", "False", "RevisionFailed", "RoutesReady", "True", ""))), "Degraded"},
		}
	case schema.GroupKind{Group: "keda.sh", Kind: "ScaledObject"}:
		return []healthSample{
			{"ready", withStatus(live, gen, observed(gen, conditions("Ready", "True", "ScaledObjectReady", "Active", "True", "ScalerActive"))), "Healthy"},
			{"scaler-failing", withStatus(live, gen, observed(gen, conditions("Ready", "False", "ScaledObjectCheckFailed", "Active", "False", ""))), "Degraded"},
			// KEDA's fallback (a scaler failing past its threshold while the object stays Ready):
			// Argo CD itself says Degraded. fnops keeps it that way on screen; the bridge does not
			// roll a release back for it (not the release's workload).
			{"fallback", withStatus(live, gen, observed(gen, conditions("Ready", "True", "ScaledObjectReady", "Active", "True", "ScalerActive", "Fallback", "True", "FallbackExists"))), "Degraded"},
			{"paused", withStatus(live, gen, observed(gen, conditions("Ready", "True", "ScaledObjectReady", "Paused", "True", "ScaledObjectPaused"))), "Suspended"},
		}
	case schema.GroupKind{Group: "sources.knative.dev", Kind: "KafkaSource"},
		schema.GroupKind{Group: "sources.knative.dev", Kind: "PingSource"},
		schema.GroupKind{Group: "eventing.knative.dev", Kind: "Trigger"}:
		// A source or trigger that stops delivering must reach the bridge as Degraded, and
		// one its controller has not yet seen since the sync is not Healthy yet.
		return []healthSample{
			{"not-ready", withStatus(live, gen, observed(gen, conditions("Ready", "False", "SinkNotFound"))), "Degraded"},
			{"ready", withStatus(live, gen, observed(gen, conditions("Ready", "True", ""))), "Healthy"},
			{"new-generation-not-observed", withStatus(live, gen+1, observed(gen, conditions("Ready", "True", ""))), "Progressing"},
		}
	case schema.GroupKind{Group: "http.keda.sh", Kind: "HTTPScaledObject"},
		schema.GroupKind{Group: "http.keda.sh", Kind: "InterceptorRoute"}:
		// metav1.Conditions, each with its own observedGeneration; the status has none.
		cond := func(g int64, status, reason string) map[string]interface{} {
			return map[string]interface{}{"conditions": []interface{}{map[string]interface{}{
				"type": "Ready", "status": status, "reason": reason, "message": "sample: " + reason, "observedGeneration": g}}}
		}
		return []healthSample{
			{"ready", withStatus(live, gen, cond(gen, "True", "Reconciled")), "Healthy"},
			{"create-error", withStatus(live, gen, cond(gen, "False", "CreateError")), "Degraded"},
			{"new-generation-not-observed", withStatus(live, gen+1, cond(gen, "True", "Reconciled")), "Progressing"},
		}
	case schema.GroupKind{Group: "serving.knative.dev", Kind: "DomainMapping"}:
		return domainMappingHealthSamples(live, gen) // domainmapping_test.go
	}
	return nil
}

// healthScript finds the script Argo CD would run: an argocd-cm override (here: those fnops
// ships) first, then the built-in resource_customizations/<group>/<Kind>/health.lua,
// where group and kind may be wildcards.
func healthScript(overrides map[string]string, gk schema.GroupKind) (script, origin string, err error) {
	key := gk.Group + "/" + gk.Kind
	if s, ok := overrides[key]; ok {
		return s, "fnops' resource.customizations.health." + strings.ReplaceAll(key, "/", "_"), nil
	}
	exact := key + "/health.lua"
	if b, err := fs.ReadFile(resource_customizations.Embedded, exact); err == nil {
		return string(b), "argo-cd resource_customizations/" + exact, nil
	}
	matches, err := fs.Glob(resource_customizations.Embedded, "*/*/health.lua")
	if err != nil {
		return "", "", err
	}
	for _, m := range matches {
		dir := path.Dir(m)
		g, k := path.Dir(dir), path.Base(dir)
		if !strings.Contains(g+k, "_") {
			continue
		}
		gp, kp := strings.ReplaceAll(g, "_", "*"), strings.ReplaceAll(k, "_", "*")
		if okG, _ := path.Match(gp, gk.Group); okG {
			if okK, _ := path.Match(kp, gk.Kind); okK {
				b, err := fs.ReadFile(resource_customizations.Embedded, m)
				return string(b), "argo-cd resource_customizations/" + m, err
			}
		}
	}
	return "", "", nil
}

// judgeHealth runs what Argo CD runs for a custom resource: the health override for its
// kind (a shipped argocd-cm script, else the built-in Lua). gitops-engine's GetResourceHealth
// adds nothing for these kinds, and its package no longer builds against Kubernetes 0.36
// (it still imports autoscaling/v2beta2), so the harness calls the Lua directly.
func judgeHealth(overrides map[string]string, s healthSample) error {
	gk := s.obj.GroupVersionKind().GroupKind()
	script, origin, err := healthScript(overrides, gk)
	if err != nil {
		return err
	}
	if script == "" {
		return fmt.Errorf("no health assessment: Argo CD has no health check for %s (no built-in health.lua, none shipped by fnops), so it never reports it %s", gk, s.want)
	}
	status, message, err := runHealthLua(script, s.obj.Object)
	if err != nil {
		return fmt.Errorf("%s: %w", origin, err)
	}
	if status != s.want {
		return fmt.Errorf("Argo CD health is %s (%q) by %s, want %s", status, strings.TrimSpace(message), origin, s.want)
	}
	return nil
}

// runHealthLua runs a health script the way Argo CD's util/lua VM does: gopher-lua without
// the standard libraries except package, base and table, `obj` as a global table, a
// one-second deadline, and the returned table read as {status, message}. (Argo CD also
// preloads a reduced `os`; no script judged here uses it.)
func runHealthLua(script string, obj map[string]interface{}) (string, string, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		fn   lua.LGFunction
	}{{lua.LoadLibName, lua.OpenPackage}, {lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.fn), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return "", "", err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, obj))
	if err := l.DoString(script); err != nil {
		return "", "", err
	}
	ret := l.Get(-1)
	if ret.Type() == lua.LTNil {
		return "", "", nil
	}
	if ret.Type() != lua.LTTable {
		return "", "", fmt.Errorf("expect table output from Lua script, not %s", ret.Type())
	}
	b, err := luajson.Encode(ret)
	if err != nil {
		return "", "", err
	}
	var hs struct {
		Status  string `json:"status"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(b, &hs); err != nil {
		return "", "", err
	}
	return hs.Status, hs.Message, nil
}

func toLua(l *lua.LState, v interface{}) lua.LValue {
	switch x := v.(type) {
	case bool:
		return lua.LBool(x)
	case string:
		return lua.LString(x)
	case int64:
		return lua.LNumber(x)
	case int:
		return lua.LNumber(x)
	case float64:
		return lua.LNumber(x)
	case []interface{}:
		t := l.CreateTable(len(x), 0)
		for _, item := range x {
			t.Append(toLua(l, item))
		}
		return t
	case map[string]interface{}:
		t := l.CreateTable(0, len(x))
		for k, item := range x {
			t.RawSetH(lua.LString(k), toLua(l, item))
		}
		return t
	}
	return lua.LNil
}
