package tekton

import (
	"strings"
	"testing"
)

// The harness' own table: objects written by hand that Tekton must refuse, with the
// upstream words, beside twins it must accept. It proves each judge can fail.
var table = []struct {
	name, yaml, refusal string
}{
	{"task accepted", `
apiVersion: tekton.dev/v1
kind: Task
metadata: {name: t}
spec:
  params: [{name: env, type: string}]
  steps:
  - {name: a, image: busybox, script: 'echo $(params.env)'}
`, ""},
	{"task refuses an undeclared param", `
apiVersion: tekton.dev/v1
kind: Task
metadata: {name: t}
spec:
  steps:
  - {name: a, image: busybox, script: 'echo $(params.env)'}
`, `non-existent variable in "echo $(params.env)"`},
	{"task refuses a step without an image", `
apiVersion: tekton.dev/v1
kind: Task
metadata: {name: t}
spec:
  steps:
  - {name: a, script: 'true'}
`, "missing field(s): spec.steps[0].Image"},
	{"pipeline refuses a result from an unknown task", `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: p}
spec:
  results: [{name: commit, value: $(tasks.nothere.results.commit)}]
  tasks:
  - {name: a, taskRef: {name: t}}
`, "invalid value"},
	{"trigger binding refuses a param given twice", `
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerBinding
metadata: {name: b}
spec:
  params: [{name: rev, value: $(body.after)}, {name: rev, value: $(body.before)}]
`, "expected exactly one, got both: spec.params[1].name"},
	{"trigger accepted: the webhook defaults a binding ref's kind", `
apiVersion: triggers.tekton.dev/v1beta1
kind: Trigger
metadata: {name: tr}
spec:
  bindings: [{ref: b}]
  template: {ref: tt}
`, ""},
	{"trigger template refuses an undeclared tt.param", `
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerTemplate
metadata: {name: tt}
spec:
  resourcetemplates:
  - apiVersion: tekton.dev/v1
    kind: PipelineRun
    metadata: {generateName: r-}
    spec:
      pipelineRef: {name: p}
      params: [{name: rev, value: $(tt.params.rev)}]
`, "'$(tt.params.rev)' must be declared in spec.params"},
	{"event listener refuses a trigger without a template", `
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: el}
spec:
  serviceAccountName: sa
  triggers:
  - name: push
    bindings: [{ref: b}]
`, "expected exactly one, got neither: spec.triggers[0].template, spec.triggers[0].triggerRef"},
}

func TestJudges(t *testing.T) {
	for _, c := range table {
		t.Run(c.name, func(t *testing.T) {
			obj, _, err := decode([]byte(c.yaml))
			if err != nil || obj == nil {
				t.Fatalf("decode: %v", err)
			}
			err = judge(obj)
			switch {
			case c.refusal == "" && err != nil:
				t.Errorf("refused: %v", err)
			case c.refusal != "" && err == nil:
				t.Errorf("accepted; want a refusal containing %q", c.refusal)
			case c.refusal != "" && !strings.Contains(err.Error(), c.refusal):
				t.Errorf("refused with %q; want %q", err, c.refusal)
			}
		})
	}
}
