//go:build !knative_oldest

package conformance

import (
	kafkasourcesv1beta1 "knative.dev/eventing-kafka-broker/control-plane/pkg/apis/sources/v1beta1"
)

// eventing-kafka-broker judges KafkaSources in the current set only: the Go module proxy
// serves it from v0.50 (Knative 1.23) on, and v0.50 needs eventing v0.50, so the oldest set
// (go.knative-1.17.mod, tag knative_oldest) cannot hold it.
const judgesKafkaSource = true

func init() {
	knativeKinds[kafkasourcesv1beta1.SchemeGroupVersion.WithKind("KafkaSource")] = knativeKind{
		newObj:           func() knativeObject { return &kafkasourcesv1beta1.KafkaSource{} },
		defaulting:       "defaulting.webhook.kafka.eventing.knative.dev",
		validation:       "validation.webhook.kafka.eventing.knative.dev",
		strictValidation: true,
		defaultingCtx:    (*platform).kafkaDefaultingCtx,
		validationCtx:    (*platform).kafkaValidationCtx,
	}
}
