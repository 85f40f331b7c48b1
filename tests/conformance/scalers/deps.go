//go:build fnops_scalers_deps

// The imports of the KEDA scaler files this directory's test compiles through an overlay
// (./upstream exists only there), named here so that `go mod tidy` keeps their modules in
// go.mod and go.sum. Never built (the tag); tests/test_keda_scalers.py checks the list
// matches the upstream files' imports.
package scalers

import (
	_ "github.com/IBM/sarama"
	_ "github.com/go-logr/logr"
	_ "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	_ "github.com/kedacore/keda/v2/pkg/eventreason"
	_ "github.com/kedacore/keda/v2/pkg/metricscollector"
	_ "github.com/kedacore/keda/v2/pkg/scalers/authentication"
	_ "github.com/kedacore/keda/v2/pkg/scalers/aws"
	_ "github.com/kedacore/keda/v2/pkg/scalers/azure"
	_ "github.com/kedacore/keda/v2/pkg/scalers/externalscaler"
	_ "github.com/kedacore/keda/v2/pkg/scalers/gcp"
	_ "github.com/kedacore/keda/v2/pkg/scalers/kafka"
	_ "github.com/kedacore/keda/v2/pkg/scalers/scalersconfig"
	_ "github.com/kedacore/keda/v2/pkg/util"
	_ "github.com/mitchellh/hashstructure/v2"
	_ "github.com/rcrowley/go-metrics"
	_ "github.com/robfig/cron/v3"
	_ "golang.org/x/oauth2"
	_ "google.golang.org/grpc"
	_ "google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/connectivity"
	_ "google.golang.org/grpc/credentials"
	_ "google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/status"
	_ "k8s.io/api/autoscaling/v2"
	_ "k8s.io/api/core/v1"
	_ "k8s.io/apimachinery/pkg/api/resource"
	_ "k8s.io/apimachinery/pkg/apis/meta/v1"
	_ "k8s.io/metrics/pkg/apis/external_metrics"
	_ "sigs.k8s.io/controller-runtime/pkg/log"
)
