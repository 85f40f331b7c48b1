package tekton

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	triggersv1beta1 "github.com/tektoncd/triggers/pkg/apis/triggers/v1beta1"
	"github.com/tektoncd/triggers/pkg/interceptors"
	"github.com/tektoncd/triggers/pkg/interceptors/github"
	"github.com/tektoncd/triggers/pkg/interceptors/gitlab"
	"github.com/tektoncd/triggers/pkg/template"
)

var (
	requestFile  = flag.String("request", "", "JSON file: the webhook request an EventListener receives (see delivery)")
	responseFile = flag.String("response", "", "where TestDelivery writes what the EventListener made of it")
)

// delivery is one webhook request as the EventListener's sink sees it, and the Secrets
// its interceptors may read ("namespace/name" -> key -> value).
type delivery struct {
	Trigger   string                       `json:"trigger"`
	Namespace string                       `json:"namespace"`
	EventID   string                       `json:"eventID"`
	Header    map[string][]string          `json:"header"`
	Body      string                       `json:"body"`
	Secrets   map[string]map[string]string `json:"secrets"`
}

// outcome: whether the interceptors let the event through (and what they said), and the
// resources the TriggerTemplate produced from the bindings' params.
type outcome struct {
	Continue  bool              `json:"continue"`
	Status    string            `json:"status,omitempty"`
	Params    map[string]string `json:"params,omitempty"`
	Resources []json.RawMessage `json:"resources,omitempty"`
}

type secrets map[string]map[string]string

// Get is the SecretGetter the interceptors use: the Secret in the Trigger's namespace.
func (s secrets) Get(_ context.Context, ns string, ref *triggersv1beta1.SecretRef) ([]byte, error) {
	if v, ok := s[ns+"/"+ref.SecretName][ref.SecretKey]; ok {
		return []byte(v), nil
	}
	return nil, fmt.Errorf("secret %s/%s has no key %q", ns, ref.SecretName, ref.SecretKey)
}

// objects reads every Tekton Triggers object under dir by kind and name.
func objects(t *testing.T, dir string) (map[string]*triggersv1beta1.Trigger, map[string]*triggersv1beta1.TriggerBinding, map[string]*triggersv1beta1.TriggerTemplate) {
	trs := map[string]*triggersv1beta1.Trigger{}
	tbs := map[string]*triggersv1beta1.TriggerBinding{}
	tts := map[string]*triggersv1beta1.TriggerTemplate{}
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range documents(data) {
			obj, _, err := decode(doc)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			// Stored objects are defaulted ones: the listener reads them from the API server.
			if obj != nil {
				obj.SetDefaults(webhookContext())
			}
			switch o := obj.(type) {
			case *triggersv1beta1.Trigger:
				trs[o.Name] = o
			case *triggersv1beta1.TriggerBinding:
				tbs[o.Name] = o
			case *triggersv1beta1.TriggerTemplate:
				tts[o.Name] = o
			}
		}
	}
	return trs, tbs, tts
}

// TestDelivery plays the EventListener sink (pkg/sink) for one Trigger: its interceptors in
// order (Tekton's own github / gitlab ClusterInterceptor code), then the bindings'
// $(body…)/$(header…) params and the template's $(tt.params…) (pkg/template).
func TestDelivery(t *testing.T) {
	if *requestFile == "" {
		t.Skip("no -request FILE")
	}
	var d delivery
	data, err := os.ReadFile(*requestFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	trs, tbs, tts := objects(t, *objectsDir)
	tr, ok := trs[d.Trigger]
	if !ok {
		t.Fatalf("no Trigger %q under %s", d.Trigger, *objectsDir)
	}
	out := outcome{Continue: true}
	body, header := []byte(d.Body), interceptors.Canonical(d.Header)
	extensions := map[string]interface{}{}
	for _, ic := range tr.Spec.Interceptors {
		if ic.Ref.Kind != triggersv1beta1.ClusterInterceptorKind {
			t.Fatalf("interceptor %q: only ClusterInterceptors are played here", ic.Ref.Name)
		}
		var impl triggersv1beta1.InterceptorInterface
		switch ic.Ref.Name {
		case "github":
			impl = github.NewInterceptor(secrets(d.Secrets))
		case "gitlab":
			impl = gitlab.NewInterceptor(secrets(d.Secrets))
		default:
			t.Fatalf("interceptor %q is not played here", ic.Ref.Name)
		}
		resp := impl.Process(context.Background(), &triggersv1beta1.InterceptorRequest{
			Body:              string(body),
			Header:            header.Clone(),
			Extensions:        extensions,
			InterceptorParams: interceptors.GetInterceptorParams(ic),
			Context: &triggersv1beta1.TriggerContext{
				EventURL:  "http://el-listener." + d.Namespace + ".svc:8080",
				EventID:   d.EventID,
				TriggerID: fmt.Sprintf("namespaces/%s/triggers/%s", d.Namespace, tr.Name),
			},
		})
		for k, v := range resp.Extensions {
			extensions[k] = v
		}
		if !resp.Continue {
			out.Continue = false
			if resp.Status.Message != "" {
				out.Status = resp.Status.Message
			}
			write(t, out)
			return
		}
	}
	rt, err := template.ResolveTrigger(*tr,
		func(n string) (*triggersv1beta1.TriggerBinding, error) {
			if b, ok := tbs[n]; ok {
				return b, nil
			}
			return nil, fmt.Errorf("no TriggerBinding %q", n)
		},
		func(n string) (*triggersv1beta1.ClusterTriggerBinding, error) {
			return nil, fmt.Errorf("no ClusterTriggerBinding %q", n)
		},
		func(n string) (*triggersv1beta1.TriggerTemplate, error) {
			if tt, ok := tts[n]; ok {
				return tt, nil
			}
			return nil, fmt.Errorf("no TriggerTemplate %q", n)
		})
	if err != nil {
		t.Fatal(err)
	}
	params, err := template.ResolveParams(rt, body, header, extensions, template.NewTriggerContext(d.EventID))
	if err != nil {
		t.Fatalf("resolving the bindings' params: %v", err)
	}
	out.Params = map[string]string{}
	for _, p := range params {
		out.Params[p.Name] = p.Value
	}
	out.Resources = template.ResolveResources(rt.TriggerTemplate, params)
	write(t, out)
}

func write(t *testing.T, out outcome) {
	data, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if *responseFile == "" {
		t.Log(strings.TrimSpace(string(data)))
		return
	}
	if err := os.WriteFile(*responseFile, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
