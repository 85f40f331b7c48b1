// Package conformance lets upstream code judge what `fnops render` produces: Knative's
// webhooks default and validate it (knative.dev/serving, knative.dev/eventing,
// eventing-kafka-broker), KEDA's admission webhook checks the ScaledObjects against the
// rendered Deployment, and Argo CD's gitops-engine diff and health Lua decide whether the
// application would show Synced and what health it reports.
//
// Everything lives in _test.go files: the harness is a `go test` binary. pytest
// (tests/test_conformance.py) renders the cases with the real CLI, writes them to a
// directory and runs the binary over it:
//
//	go test -c -o conformance.test .
//	./conformance.test -test.run TestConformance -cases DIR -results FILE
//
// Without -cases only the harness' own table (TestHarness*) runs.
package conformance
