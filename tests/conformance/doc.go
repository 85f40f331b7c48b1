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
//
// KEDA's scalers judge each ScaledObject trigger's metadata in a second binary, ./scalers,
// built from a few of upstream's pkg/scalers files through an -overlay that
// tests/test_keda_scalers.py writes (see scalers/scalers_test.go), so this one stays small.
//
// Every sync is compared both ways Argo CD can: its default (three-way) diff and its
// server-side diff, whose dry-run apply is played by apimachinery's field manager over the
// OpenAPI of Kubernetes and of $FNOPS_SCHEMA_DIR/crds, then the webhooks (serverside_test.go).
//
// A second version set judges the oldest Knative the README supports:
//
//	go test -c -modfile=go.knative-1.17.mod -tags knative_oldest -o conformance-oldest.test .
//	GOFLAGS=-modfile=go.knative-1.17.mod ./conformance-oldest.test …
//
// (the binary asks `go list -m` for the pinned modules' ConfigMaps, so GOFLAGS names the set).
package conformance
