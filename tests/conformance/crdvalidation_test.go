package conformance

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
)

// Custom resources no webhook judges (the HTTP add-on's HTTPScaledObject and
// InterceptorRoute, prometheus-operator's PrometheusRule and PodMonitor) are still judged by
// the API server: the CRD's OpenAPI schema and its x-kubernetes-validations (CEL), run by
// apiextensions-apiserver's own validators over $FNOPS_SCHEMA_DIR/crds. For the HTTP add-on
// these rules are all the validation upstream has: its Go module has no webhook.

type crdValidator struct {
	schema     validation.SchemaValidator
	structural *structuralschema.Structural
	cel        *cel.Validator
}

var (
	crdValidatorsMu sync.Mutex
	crdValidators   = map[schema.GroupVersionKind]*crdValidator{}
)

func validatorFor(gvk schema.GroupVersionKind) (*crdValidator, error) {
	crdValidatorsMu.Lock()
	defer crdValidatorsMu.Unlock()
	if v, ok := crdValidators[gvk]; ok {
		return v, nil
	}
	m, err := loadModels()
	if err != nil {
		return nil, err
	}
	crd, ok := m.crds[gvk]
	if !ok {
		crdValidators[gvk] = nil
		return nil, nil
	}
	var props *apiextensionsv1.JSONSchemaProps
	for _, v := range crd.Spec.Versions {
		if v.Name == gvk.Version && v.Schema != nil {
			props = v.Schema.OpenAPIV3Schema
		}
	}
	if props == nil {
		crdValidators[gvk] = nil
		return nil, nil
	}
	internal := &apiextensions.JSONSchemaProps{}
	if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(props, internal, nil); err != nil {
		return nil, err
	}
	sv, _, err := validation.NewSchemaValidator(internal)
	if err != nil {
		return nil, fmt.Errorf("CRD %s schema: %w", crd.Name, err)
	}
	st, err := structuralschema.NewStructural(internal)
	if err != nil {
		return nil, fmt.Errorf("CRD %s structural schema: %w", crd.Name, err)
	}
	v := &crdValidator{schema: sv, structural: st, cel: cel.NewValidator(st, true, celconfig.PerCallLimit)}
	crdValidators[gvk] = v
	return v, nil
}

// crdAdmit is the API server's validation of a custom resource on create or update; judged
// says whether a CRD was there to judge it.
func crdAdmit(incoming, live *unstructured.Unstructured) (judged bool, err error) {
	v, err := validatorFor(incoming.GroupVersionKind())
	if err != nil || v == nil {
		return false, err
	}
	var errs field.ErrorList
	var old interface{}
	if live == nil {
		errs = validation.ValidateCustomResource(nil, incoming.UnstructuredContent(), v.schema)
	} else {
		old = live.UnstructuredContent()
		errs = validation.ValidateCustomResourceUpdate(nil, incoming.UnstructuredContent(), old, v.schema)
	}
	if v.cel != nil {
		celErrs, _ := v.cel.Validate(context.Background(), nil, v.structural, incoming.UnstructuredContent(), old, celconfig.RuntimeCELCostBudget)
		errs = append(errs, celErrs...)
	}
	if len(errs) > 0 {
		return true, fmt.Errorf("API server: %s %q is invalid: %v", incoming.GetKind(), incoming.GetName(), errs.ToAggregate())
	}
	return true, nil
}

func interceptorRoute(target string) string {
	return `
apiVersion: http.keda.sh/v1beta1
kind: InterceptorRoute
metadata: {name: fn, namespace: t}
spec:
  target: ` + target + `
  rules: [{hosts: [fn.t]}]
  scalingMetric: {concurrency: {targetValue: 100}}
`
}

// TestHarnessJudgesCustomResources: the CRDs' own rules refuse what the API server refuses.
func TestHarnessJudgesCustomResources(t *testing.T) {
	tests := []struct {
		name, manifest, want string
	}{{
		name:     "an interceptor route to a service port is accepted",
		manifest: interceptorRoute("{service: fn-app, port: 80}"),
	}, {
		name:     "the add-on's CEL rule refuses a target with a port and a port name",
		manifest: interceptorRoute("{service: fn-app, port: 80, portName: http}"),
		want:     "exactly one of 'port' or 'portName' must be set",
	}, {
		name:     "the schema refuses a port out of range",
		manifest: interceptorRoute("{service: fn-app, port: 70000}"),
		want:     "should be less than or equal to 65535",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := parseManifests(strings.NewReader(tc.manifest))
			if err != nil {
				t.Fatal(err)
			}
			judged, err := crdAdmit(objs[0], nil)
			if !judged {
				t.Fatalf("no CRD judged %s", ref(objs[0]))
			}
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("want no complaint, got: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("want a complaint containing %q, got: %v", tc.want, err)
			}
		})
	}
}
