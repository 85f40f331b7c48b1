package conformance

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The harness' own table, in the shape of Knative's *_validation_test.go: objects written
// by hand that upstream must refuse (or Argo CD must show OutOfSync), and their good twins
// that must pass. It proves each judge can fail, and pins the upstream wording the
// findings quote. It needs no render and runs with a plain `go test`.

const ksvc = `
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: fn, namespace: t}
spec:
  template:
    metadata: {name: fn-00000001%s}
    spec:
      containers:
      - image: registry.example.com/fn@sha256:1111111111111111111111111111111111111111111111111111111111111111
%s`

const deploymentTmpl = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: fn, namespace: t}
spec:
  selector: {matchLabels: {app: fn}}
  template:
    metadata: {labels: {app: fn}}
    spec:
      containers:
      - name: function
        image: registry.example.com/fn@sha256:1111111111111111111111111111111111111111111111111111111111111111
%s`

const scaledObject = `
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: fn, namespace: t}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: fn}
  minReplicaCount: 1
  triggers:
  - {type: cpu, metricType: Utilization, metadata: {value: "70"}}
`

func pingSource(schedule, data string) string {
	return `
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata: {name: fn-cron, namespace: t}
spec:
  schedule: '` + schedule + `'
  contentType: application/json
  data: '` + data + `'
  sink: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: fn}}
`
}

func kafkaSource(group string) string {
	return `
apiVersion: sources.knative.dev/v1beta1
kind: KafkaSource
metadata: {name: fn-kafka, namespace: t}
spec:
  bootstrapServers: [kafka:9092]
  topics: [orders]
  consumerGroup: ` + group + `
  sink: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: fn}}
`
}

func deploymentWith(containerExtra string) string {
	return strings.Replace(deploymentTmpl, "%s", containerExtra, 1)
}

func ksvcWith(nameSuffix, containerExtra string) string {
	return strings.Replace(strings.Replace(ksvc, "%s", nameSuffix, 1), "%s", containerExtra, 1)
}

func TestHarnessJudges(t *testing.T) {
	tests := []struct {
		name     string
		platform string
		steps    []string // applied in order, each as one sync
		check    string   // "admission" or "synced", judged on the last step
		want     string   // part of the upstream message; "" means it must pass
	}{{
		name:  "serving accepts a plain service",
		steps: []string{ksvcWith("", "")},
		check: "admission",
	}, {
		name:     "serving refuses max-scale 0 under a max-scale-limit",
		platform: "hardened",
		steps:    []string{strings.Replace(ksvcWith("", ""), "metadata: {name: fn-00000001}", "metadata: {name: fn-00000001, annotations: {autoscaling.knative.dev/max-scale: '0'}}", 1)},
		check:    "admission",
		want:     "max-scale=0 (unlimited), must be less than 100",
	}, {
		name:  "serving refuses autoscaling annotations on the service's own metadata",
		steps: []string{strings.Replace(ksvcWith("", ""), "metadata: {name: fn, namespace: t}", "metadata: {name: fn, namespace: t, annotations: {autoscaling.knative.dev/min-scale: '1'}}", 1)},
		check: "admission",
		want:  "autoscaling.knative.dev/min-scale",
	}, {
		name:  "serving refuses a template change under the same revision name",
		steps: []string{ksvcWith("", ""), ksvcWith("", "        env: [{name: A, value: b}]\n")},
		check: "admission",
		want:  "Saw the following changes without a name change",
	}, {
		name:  "serving accepts a template change under a new revision name",
		steps: []string{ksvcWith("", ""), ksvcWith("2", "        env: [{name: A, value: b}]\n")},
		check: "admission",
	}, {
		name:  "argo cd compares webhook-filled fields as synced",
		steps: []string{ksvcWith("", "")},
		check: "synced",
	}, {
		name:  "argo cd shows a non-canonical quantity out of sync",
		steps: []string{ksvcWith("", "        resources: {requests: {cpu: '0.5'}}\n")},
		check: "synced",
		want:  "OutOfSync",
	}, {
		name:  "eventing accepts a cron schedule with a json object",
		steps: []string{pingSource("0 2 * * *", `{"a":1}`)},
		check: "admission",
	}, {
		name:  "eventing refuses @every",
		steps: []string{pingSource("@every 5m", `{"a":1}`)},
		check: "admission",
		want:  "unsupported descriptor @every",
	}, {
		name:  "eventing refuses json data that is not an object",
		steps: []string{pingSource("0 2 * * *", `[1,2]`)},
		check: "admission",
		want:  "cannot unmarshal array into Go value of type map[string]interface {}",
	}, {
		name:  "kafka accepts an unchanged consumer group",
		steps: []string{kafkaSource("a"), strings.Replace(kafkaSource("a"), "[orders]", "[orders, more]", 1)},
		check: "admission",
	}, {
		name:  "kafka refuses a consumer group change",
		steps: []string{kafkaSource("a"), kafkaSource("b")},
		check: "admission",
		want:  "Immutable fields changed (-old +new)",
	}, {
		name:  "keda refuses a cpu trigger without a cpu request",
		steps: []string{deploymentWith("") + "---" + scaledObject},
		check: "admission",
		want:  "doesn't have the cpu request defined",
	}, {
		name:  "keda accepts a cpu trigger with a cpu request",
		steps: []string{deploymentWith("        resources: {requests: {cpu: 100m}}\n") + "---" + scaledObject},
		check: "admission",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if strings.HasPrefix(tc.name, "kafka ") && !judgesKafkaSource {
				t.Skip("eventing-kafka-broker is not in this Knative set (kafkasource_test.go)")
			}
			if tc.platform == "" {
				tc.platform = "default"
			}
			plat, err := platformNamed(tc.platform)
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
				last := i == len(tc.steps)-1
				for _, o := range syncOrder(objs) {
					asArgoCDSends(o, "selftest", "t")
					_, err := cl.apply(plat, o)
					if !last {
						if err != nil {
							t.Fatalf("setup step %d: %v", i, err)
						}
						continue
					}
					if tc.check == "synced" && err == nil {
						err = argoCDSynced(o, cl.get(o))
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

func TestHarnessHealth(t *testing.T) {
	objs, err := parseManifests(strings.NewReader(ksvcWith("", "")))
	if err != nil {
		t.Fatal(err)
	}
	live := objs[0]
	live.SetGeneration(1)
	samples := map[string]healthSample{}
	for _, s := range healthSamples(live) {
		samples[s.name] = s
	}
	tests := []struct {
		name      string
		sample    string
		overrides map[string]string
		want      string // part of the complaint; "" means the health is as wanted
	}{{
		name:   "argo cd's knative health reports a ready service healthy",
		sample: "ready",
	}, {
		name:   "argo cd's knative health reports a failed revision degraded",
		sample: "revision-failed",
	}, {
		name:   "argo cd's knative health ignores observedGeneration",
		sample: "new-generation-not-observed",
		want:   "Argo CD health is Healthy",
	}, {
		name:      "a shipped override wins over the built-in script",
		sample:    "new-generation-not-observed",
		overrides: map[string]string{"serving.knative.dev/Service": `return {status = "Progressing", message = "waiting"}`},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, ok := samples[tc.sample]
			if !ok {
				t.Fatalf("no sample %q", tc.sample)
			}
			err := judgeHealth(tc.overrides, s)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("want no complaint, got: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("want a complaint containing %q, got: %v", tc.want, err)
			}
		})
	}
}

// The sync policy decides whether an unchanged Knative Service is applied again; the
// ApplicationSet fnops ships is what the conformance run plays.
func TestHarnessSyncPolicy(t *testing.T) {
	resources := "        resources: {requests: {cpu: 100m, memory: 128Mi}}\n"
	tests := []struct {
		name        string
		syncOptions []string
		want        string // part of the resync's refusal; "" means it is accepted
	}{{
		name: "a full sync re-applies the template the hardened webhook filled in",
		want: "Saw the following changes without a name change",
	}, {
		name:        "ApplyOutOfSyncOnly leaves the synced service alone",
		syncOptions: []string{"ApplyOutOfSyncOnly=true"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &suite{ArgoCD: argoCDPolicy{Prune: true, SyncOptions: tc.syncOptions}}
			c := caseSpec{ID: "selftest", Namespace: "t", App: "selftest", Steps: []stepSpec{
				{Name: "render", Platform: "hardened"}, {Name: "resync", Platform: "hardened", Resync: true}}}
			rec := &recorder{quiet: true}
			runCase(t, rec, s, c, func(stepSpec) ([]*unstructured.Unstructured, error) {
				return parseManifests(strings.NewReader(ksvcWith("", resources)))
			})
			var got []string
			steps := 0
			for _, r := range rec.kept {
				if r.Check == "step" {
					steps++
				}
				// Server-side diff's refusal here is TestHarnessServerSideDiff's to show.
				if !r.OK && r.Check != "synced/server-side-diff" {
					got = append(got, r.Step+" "+r.Check+": "+r.Message)
				}
			}
			msg := strings.Join(got, "\n")
			switch {
			case steps != 2:
				t.Errorf("want both steps to finish, %d did", steps)
			case tc.want == "":
				if msg != "" {
					t.Errorf("want no complaint, got:\n%s", msg)
				}
			case !strings.Contains(msg, "1-resync admission: ") || !strings.Contains(msg, tc.want):
				t.Errorf("want the resync refused with %q, got: %q", tc.want, msg)
			}
		})
	}
}
