// Package scalers_test lets KEDA's own scaler constructors judge the trigger metadata of
// every ScaledObject fnops renders: the ScalerConfig is built the way KEDA's scale handler
// builds it (pkg/scaling/scalers_builder.go), from the rendered ScaledObject and, for the
// resolved environment, the rendered Deployment it targets.
//
// Upstream's pkg/scalers imports every cloud SDK (~3,250 packages), so this binary compiles
// only the files of it fnops needs: pytest (tests/test_keda_scalers.py) writes an -overlay
// that places them, unchanged from the module cache, in the virtual directory ./upstream,
// plus additions.go.in. It is a separate binary so the main harness does not grow:
//
//	go test -c -vet=off -overlay=overlay.json -o scalers.test ./scalers
//	./scalers.test -test.run TestScalers -cases cases.json
package scalers_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	"github.com/kedacore/keda/v2/pkg/scalers/scalersconfig"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"

	upstream "github.com/fnops/fnops/tests/conformance/scalers/upstream"
)

var casesFile = flag.String("cases", "", "JSON list of {id, scaledObject, deployment} to judge")

type scalerCase struct {
	ID           string                    `json:"id"`
	ScaledObject kedav1alpha1.ScaledObject `json:"scaledObject"`
	Deployment   *appsv1.Deployment        `json:"deployment"`
}

// The operator's default KEDA_HTTP_DEFAULT_TIMEOUT (cmd/operator/main.go).
const globalHTTPTimeout = 3000 * time.Millisecond

// judge builds the scaler for trigger i as KEDA's scale handler would and returns its error.
func judge(so *kedav1alpha1.ScaledObject, target *appsv1.Deployment, i int) error {
	wt, err := kedav1alpha1.AsDuckWithTriggers(so)
	if err != nil {
		return err
	}
	t := so.Spec.Triggers[i]
	config := &scalersconfig.ScalerConfig{
		ScalableObjectName:      wt.Name,
		ScalableObjectNamespace: wt.Namespace,
		ScalableObjectType:      wt.Kind,
		TriggerName:             t.Name,
		TriggerMetadata:         t.Metadata,
		TriggerType:             t.Type,
		TriggerUseCachedMetrics: t.UseCachedMetrics,
		ResolvedEnv:             resolvedEnv(target),
		AuthParams:              map[string]string{},
		GlobalHTTPTimeout:       globalHTTPTimeout,
		TriggerIndex:            i,
		MetricType:              t.MetricType,
		ScaledObject:            wt,
		Recorder:                &events.FakeRecorder{},
		TriggerUniqueKey:        fmt.Sprintf("%s-%s-%s-%d", wt.Kind, wt.Namespace, wt.Name, i),
	}
	// The constructors KEDA's buildScaler calls for these types (pkg/scaling/scalers_builder.go).
	switch t.Type {
	case "cron":
		// The timezone is only loaded when KEDA first asks for the metric: ask once, as the
		// first poll does (local; no clock dependence in whether it errors).
		var s upstream.Scaler
		if s, err = upstream.NewCronScaler(config); err == nil {
			spec := s.GetMetricSpecForScaling(context.Background())
			_, _, err = s.GetMetricsAndActivity(context.Background(), spec[0].External.Metric.Name)
		}
	case "cpu":
		_, err = upstream.NewCPUMemoryScaler(corev1.ResourceCPU, config)
	case "memory":
		_, err = upstream.NewCPUMemoryScaler(corev1.ResourceMemory, config)
	case "prometheus":
		_, err = upstream.NewPrometheusScaler(config)
	case "kafka":
		err = upstream.CheckKafkaMetadata(config)
	case "external-push":
		var s upstream.PushScaler
		if s, err = upstream.NewExternalPushScaler(config); err == nil {
			err = s.Close(context.Background()) // hands its gRPC connection back to the pool
		}
	default:
		return fmt.Errorf("this test does not build %q scalers: add its upstream file and a case", t.Type)
	}
	return err
}

// resolvedEnv is the target container's literal env, what KEDA's resolver reads for *FromEnv
// metadata (fnops renders none; a reference to a Secret would need the Secret).
func resolvedEnv(d *appsv1.Deployment) map[string]string {
	env := map[string]string{}
	if d == nil || len(d.Spec.Template.Spec.Containers) == 0 {
		return env
	}
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if e.ValueFrom == nil {
			env[e.Name] = e.Value
		}
	}
	return env
}

func TestScalers(t *testing.T) {
	if *casesFile == "" {
		t.Skip("no -cases: only the own table (TestScalersJudge) runs")
	}
	raw, err := os.ReadFile(*casesFile)
	if err != nil {
		t.Fatal(err)
	}
	var cases []scalerCase
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatal("no ScaledObjects to judge")
	}
	for _, c := range cases {
		for i, trig := range c.ScaledObject.Spec.Triggers {
			t.Run(fmt.Sprintf("%s/%d-%s", c.ID, i, trig.Type), func(t *testing.T) {
				if err := judge(&c.ScaledObject, c.Deployment, i); err != nil {
					t.Errorf("KEDA's %s scaler refuses trigger %d of ScaledObject %s/%s: %v\n  metadata: %v",
						trig.Type, i, c.ScaledObject.Namespace, c.ScaledObject.Name, err, trig.Metadata)
				}
			})
		}
	}
}

// TestScalersJudge is the table that shows each judge can fail: a refused twin next to an
// accepted one, each refusal in KEDA's own words.
func TestScalersJudge(t *testing.T) {
	cron := map[string]string{"timezone": "Europe/Berlin", "start": "0 8 * * 1-5", "end": "0 18 * * 1-5", "desiredReplicas": "2"}
	kafka := map[string]string{"bootstrapServers": "k:9092", "consumerGroup": "fn", "topic": "a", "lagThreshold": "10"}
	prom := map[string]string{"serverAddress": "http://prometheus.monitoring:9090", "query": "sum(rate(jobs_total[1m]))", "threshold": "5"}
	push := map[string]string{"scalerAddress": "keda-add-ons-http-external-scaler.keda:9090", "httpScaledObject": "fn"}
	with := func(m map[string]string, k, v string) map[string]string {
		out := map[string]string{}
		for a, b := range m {
			out[a] = b
		}
		if v == "" {
			delete(out, k)
		} else {
			out[k] = v
		}
		return out
	}
	rows := []struct {
		name, typ, metricType string
		metadata              map[string]string
		says                  string // "" is accepted
	}{
		{"cron accepts a weekday window", "cron", "", cron, ""},
		{"cron refuses start equal to end", "cron", "", with(cron, "end", cron["start"]), "start and end can not have exactly same time input"},
		{"cron refuses a macro schedule", "cron", "", with(cron, "start", "@daily"), "error parsing start schedule"},
		{"cron refuses an unknown timezone at its first poll", "cron", "", with(cron, "timezone", "Europe/Atlantis"), "unable to load timezone"},
		{"cron refuses zero desired replicas", "cron", "", with(cron, "desiredReplicas", "0"), "no desiredReplicas specified"},
		{"kafka accepts a lag threshold", "kafka", "", kafka, ""},
		{"kafka refuses lagThreshold 0", "kafka", "", with(kafka, "lagThreshold", "0"), `"lagThreshold" must be positive number`},
		{"kafka refuses a negative lagThreshold", "kafka", "", with(kafka, "lagThreshold", "-3"), `"lagThreshold" must be positive number`},
		{"prometheus accepts address, query and threshold", "prometheus", "", prom, ""},
		{"prometheus refuses a missing serverAddress", "prometheus", "", with(prom, "serverAddress", ""), "serverAddress"},
		{"cpu accepts a utilization", "cpu", "Utilization", map[string]string{"value": "70"}, ""},
		{"cpu refuses a value that is no number", "cpu", "Utilization", map[string]string{"value": "70%"}, "error parsing cpu metadata"},
		{"memory accepts an average value", "memory", "AverageValue", map[string]string{"value": "200Mi"}, ""},
		{"memory refuses a missing value", "memory", "AverageValue", map[string]string{}, "error parsing memory metadata"},
		{"external-push accepts the add-on's scaler", "external-push", "", push, ""},
		{"external-push refuses a missing scalerAddress", "external-push", "", with(push, "scalerAddress", ""), "scalerAddress"},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			so := &kedav1alpha1.ScaledObject{
				TypeMeta:   metav1.TypeMeta{APIVersion: "keda.sh/v1alpha1", Kind: "ScaledObject"},
				ObjectMeta: metav1.ObjectMeta{Name: "fn", Namespace: "functions-dev"},
				Spec: kedav1alpha1.ScaledObjectSpec{
					ScaleTargetRef: &kedav1alpha1.ScaleTarget{Name: "fn"},
					Triggers:       []kedav1alpha1.ScaleTriggers{{Type: r.typ, MetricType: autoscalingv2.MetricTargetType(r.metricType), Metadata: r.metadata}},
				},
			}
			err := judge(so, nil, 0)
			switch {
			case r.says == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case r.says != "" && err == nil:
				t.Fatalf("accepted; want a refusal saying %q", r.says)
			case r.says != "" && !strings.Contains(err.Error(), r.says):
				t.Fatalf("refused with %q; want %q", err, r.says)
			case err != nil:
				t.Logf("KEDA: %v", err)
			}
		})
	}
}
