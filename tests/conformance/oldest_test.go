//go:build knative_oldest

package conformance

// The oldest Knative line README supports, built with `-modfile=go.knative-1.17.mod
// -tags knative_oldest`: KafkaSources are stored as sent there (kafkasource_test.go says why).
const judgesKafkaSource = false
