// Package tekton lets Tekton's own code judge the objects fnops ships under tekton/: the
// webhooks' SetDefaults and Validate of tektoncd/pipeline (Task, Pipeline, PipelineRun) and
// tektoncd/triggers (EventListener, TriggerBinding, TriggerTemplate, Trigger), as a create
// would run them. The Triggers CRDs carry no real schema, so for them this is the only check.
//
// pytest (tests/test_tekton.py) builds the test binary and runs it over a directory:
//
//	go test -c -o tekton.test .
//	./tekton.test -test.run TestObjects -test.v -objects DIR
//
// Every YAML document in DIR is one t.Run named <file>/<Kind>/<name>.
package tekton
