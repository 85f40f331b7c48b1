package conformance

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"knative.dev/pkg/apis"
	"knative.dev/pkg/configmap"

	eventingconfig "knative.dev/eventing/pkg/apis/config"
	"knative.dev/eventing/pkg/apis/feature"
	channelconfig "knative.dev/eventing/pkg/apis/messaging/config"
	pingconfig "knative.dev/eventing/pkg/apis/sources/config"
	servingconfig "knative.dev/serving/pkg/apis/config"
)

// platform is one cluster's Knative configuration, held in the same config stores the
// webhooks fill from their ConfigMaps; its context functions are the ones each webhook's
// main() passes to the admission controllers.
type platform struct {
	name     string
	serving  *servingconfig.Store
	defaults *eventingconfig.Store
	channel  *channelconfig.Store
	ping     *pingconfig.Store
	features *feature.Store
}

// serving/cmd/webhook: store.ToContext, for defaulting and validation alike.
func (p *platform) servingCtx(ctx context.Context) context.Context {
	return p.serving.ToContext(ctx)
}

// eventing/cmd/webhook NewDefaultingAdmissionController.
func (p *platform) eventingDefaultingCtx(ctx context.Context) context.Context {
	return p.features.ToContext(p.channel.ToContext(p.defaults.ToContext(ctx)))
}

// eventing/cmd/webhook NewValidationAdmissionController (its sinks.Config only serves JobSink).
func (p *platform) eventingValidationCtx(ctx context.Context) context.Context {
	return p.features.ToContext(p.channel.ToContext(p.ping.ToContext(p.defaults.ToContext(ctx))))
}

// eventing-kafka-broker/control-plane/cmd/webhook-kafka: no config store for defaulting,
// eventing's feature flags for validation.
func (p *platform) kafkaDefaultingCtx(ctx context.Context) context.Context {
	return apis.AllowDifferentNamespace(ctx)
}

func (p *platform) kafkaValidationCtx(ctx context.Context) context.Context {
	return apis.AllowDifferentNamespace(p.features.ToContext(ctx))
}

// The ConfigMaps a fresh install creates, read from the pinned modules themselves.
var shippedConfigMaps = map[string][]string{
	"knative.dev/serving":  {"config/core/configmaps/defaults.yaml", "config/core/configmaps/autoscaler.yaml", "config/core/configmaps/features.yaml"},
	"knative.dev/eventing": {"config/core/configmaps/features.yaml", "config/core/configmaps/default-broker.yaml", "config/core/configmaps/default-channel.yaml", "config/core/configmaps/default-pingsource.yaml"},
}

var (
	platformsMu sync.Mutex
	platforms   = map[string]*platform{}
)

// platformNamed loads "default" (upstream's shipped ConfigMaps) or testdata/platforms/NAME.yaml
// merged over them.
func platformNamed(name string) (*platform, error) {
	platformsMu.Lock()
	defer platformsMu.Unlock()
	if p, ok := platforms[name]; ok {
		return p, nil
	}
	cms, err := shipped()
	if err != nil {
		return nil, err
	}
	if name != "default" {
		overlay, err := readManifests(filepath.Join("testdata", "platforms", name+".yaml"))
		if err != nil {
			return nil, fmt.Errorf("platform %q: %w", name, err)
		}
		for _, u := range overlay {
			key := u.GetNamespace() + "/" + u.GetName()
			cm, ok := cms[key]
			if !ok {
				return nil, fmt.Errorf("platform %q sets %s, which no upstream install ships", name, key)
			}
			data, _, err := unstructuredStringMap(u.Object, "data")
			if err != nil {
				return nil, fmt.Errorf("platform %q, %s: %w", name, key, err)
			}
			for k, v := range data {
				cm.Data[k] = v
			}
		}
	}
	p, err := newPlatform(name, cms)
	if err != nil {
		return nil, err
	}
	platforms[name] = p
	return p, nil
}

func shipped() (map[string]*corev1.ConfigMap, error) {
	out := map[string]*corev1.ConfigMap{}
	for mod, files := range shippedConfigMaps {
		dir, err := moduleDir(mod)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			objs, err := readManifests(filepath.Join(dir, f))
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", mod, f, err)
			}
			for _, u := range objs {
				cm := &corev1.ConfigMap{}
				if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, cm); err != nil {
					return nil, fmt.Errorf("%s %s: %w", mod, f, err)
				}
				if cm.Data == nil {
					cm.Data = map[string]string{}
				}
				out[cm.Namespace+"/"+cm.Name] = cm
			}
		}
	}
	return out, nil
}

var moduleDirs sync.Map

// moduleDir finds a pinned module in the module cache (the go command knows where).
func moduleDir(mod string) (string, error) {
	if d, ok := moduleDirs.Load(mod); ok {
		return d.(string), nil
	}
	cmd := exec.Command("go", "list", "-mod=readonly", "-m", "-f", "{{.Dir}}", mod)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		// An empty Dir means the module is not in the module cache yet.
		return "", fmt.Errorf("go list -m %s found no module directory (run `go mod download` in tests/conformance): %v %s",
			mod, err, strings.TrimSpace(stderr.String()))
	}
	moduleDirs.Store(mod, dir)
	return dir, nil
}

// storeLogger turns a config constructor's complaint into an error: a webhook would not
// start (Fatalf) or would keep the old config (Errorf), neither of which is the platform asked for.
type storeLogger struct{ errs []string }

func (l *storeLogger) Debugf(string, ...interface{}) {}
func (l *storeLogger) Infof(string, ...interface{})  {}
func (l *storeLogger) Fatalf(f string, a ...interface{}) {
	l.errs = append(l.errs, fmt.Sprintf(f, a...))
}
func (l *storeLogger) Errorf(f string, a ...interface{}) {
	l.errs = append(l.errs, fmt.Sprintf(f, a...))
}

func newPlatform(name string, cms map[string]*corev1.ConfigMap) (p *platform, err error) {
	log := &storeLogger{}
	p = &platform{
		name:     name,
		serving:  servingconfig.NewStore(log),
		defaults: eventingconfig.NewStore(log),
		channel:  channelconfig.NewStore(log),
		ping:     pingconfig.NewStore(log),
		features: feature.NewStore(log),
	}
	watch := func(ns string, store interface{ WatchConfigs(configmap.Watcher) }) {
		var list []*corev1.ConfigMap
		for _, cm := range cms {
			if cm.Namespace == ns {
				list = append(list, cm)
			}
		}
		// The static watcher panics on a ConfigMap it does not hold, where the webhook would
		// wait for it forever.
		defer func() {
			if r := recover(); r != nil && err == nil {
				err = fmt.Errorf("platform %q: %v", name, r)
			}
		}()
		store.WatchConfigs(configmap.NewStaticWatcher(list...))
	}
	watch("knative-serving", p.serving)
	watch("knative-eventing", p.defaults)
	watch("knative-eventing", p.channel)
	watch("knative-eventing", p.ping)
	watch("knative-eventing", p.features)
	if err != nil {
		return nil, err
	}
	if len(log.errs) > 0 {
		return nil, fmt.Errorf("platform %q: %s", name, strings.Join(log.errs, "; "))
	}
	return p, nil
}

func unstructuredStringMap(obj map[string]interface{}, field string) (map[string]string, bool, error) {
	raw, ok := obj[field]
	if !ok || raw == nil {
		return map[string]string{}, false, nil
	}
	m, ok := raw.(map[string]interface{})
	if !ok {
		return nil, true, fmt.Errorf("%s is not a mapping", field)
	}
	out := map[string]string{}
	for k, v := range m {
		s, ok := v.(string)
		if !ok {
			return nil, true, fmt.Errorf("%s.%s is %T, not a string", field, k, v)
		}
		out[k] = s
	}
	return out, true, nil
}
