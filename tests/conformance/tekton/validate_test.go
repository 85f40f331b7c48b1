package tekton

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"github.com/tektoncd/triggers/pkg/apis/triggers/contexts"
	triggersv1beta1 "github.com/tektoncd/triggers/pkg/apis/triggers/v1beta1"
	"knative.dev/pkg/apis"
	"sigs.k8s.io/yaml"
)

var objectsDir = flag.String("objects", "", "directory of YAML files whose Tekton objects are judged")

// judged is what both webhooks do to an object on create: default it, then validate it.
type judged interface {
	SetDefaults(context.Context)
	Validate(context.Context) *apis.FieldError
}

// decode returns the typed object for a Tekton kind, or nil for kinds Tekton does not own
// (ServiceAccount, RBAC, Secret: the schema test covers those).
func decode(doc []byte) (judged, string, error) {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(doc, &head); err != nil {
		return nil, "", err
	}
	var obj judged
	switch head.APIVersion + "/" + head.Kind {
	case "tekton.dev/v1/Task":
		obj = &pipelinev1.Task{}
	case "tekton.dev/v1/Pipeline":
		obj = &pipelinev1.Pipeline{}
	case "tekton.dev/v1/PipelineRun":
		obj = &pipelinev1.PipelineRun{}
	case "tekton.dev/v1/TaskRun":
		obj = &pipelinev1.TaskRun{}
	case "triggers.tekton.dev/v1beta1/EventListener":
		obj = &triggersv1beta1.EventListener{}
	case "triggers.tekton.dev/v1beta1/TriggerBinding":
		obj = &triggersv1beta1.TriggerBinding{}
	case "triggers.tekton.dev/v1beta1/TriggerTemplate":
		obj = &triggersv1beta1.TriggerTemplate{}
	case "triggers.tekton.dev/v1beta1/Trigger":
		obj = &triggersv1beta1.Trigger{}
	default:
		if strings.Contains(head.APIVersion, "tekton.dev") {
			return nil, "", fmt.Errorf("%s %s: a Tekton kind this harness does not judge yet", head.APIVersion, head.Kind)
		}
		return nil, "", nil
	}
	// Strict: a field Tekton's types do not have would be pruned by the API server.
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return nil, "", fmt.Errorf("%s/%s: %v", head.Kind, head.Metadata.Name, err)
	}
	return obj, head.Kind + "/" + head.Metadata.Name, nil
}

// webhookContext is the context both projects' admission webhooks hand to SetDefaults and
// Validate on a create: Knative's apis.WithinCreate, and for Triggers the
// "upgrade via defaulting" mark its webhook sets (cmd/webhook), without which a Trigger's
// binding kind is never defaulted. Feature flags are the defaults (no config-map in ctx).
func webhookContext() context.Context {
	return contexts.WithUpgradeViaDefaulting(apis.WithinCreate(context.Background()))
}

// judge runs defaulting and validation as the webhook does for a create.
func judge(obj judged) error {
	ctx := webhookContext()
	obj.SetDefaults(ctx)
	if fe := obj.Validate(ctx); fe != nil {
		return fe
	}
	return nil
}

func documents(data []byte) [][]byte {
	var out [][]byte
	for _, part := range bytes.Split(append([]byte("\n"), data...), []byte("\n---")) {
		if len(bytes.TrimSpace(part)) > 0 && !isComment(part) {
			out = append(out, part)
		}
	}
	return out
}

func isComment(part []byte) bool {
	for _, line := range strings.Split(string(part), "\n") {
		t := strings.TrimSpace(line)
		if t != "" && !strings.HasPrefix(t, "#") {
			return false
		}
	}
	return true
}

func TestObjects(t *testing.T) {
	if *objectsDir == "" {
		t.Skip("no -objects DIR")
	}
	var files []string
	err := filepath.WalkDir(*objectsDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	judgedAny := false
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(*objectsDir, f)
		for i, doc := range documents(data) {
			obj, name, err := decode(doc)
			if err != nil {
				t.Errorf("%s document %d: %v", rel, i+1, err)
				continue
			}
			if obj == nil {
				continue
			}
			judgedAny = true
			t.Run(rel+"/"+name, func(t *testing.T) {
				if err := judge(obj); err != nil {
					t.Errorf("Tekton refuses %s in %s:\n%v", name, rel, err)
				}
			})
		}
	}
	if !judgedAny {
		t.Errorf("no Tekton object under %s", *objectsDir)
	}
}
