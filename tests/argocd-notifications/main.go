// Command argocd-notifications runs fnops' notifications config (notifications/
// argocd-notifications-cm.yaml) through Argo CD's own notification code, so the tests judge
// the triggers and templates a real Argo CD would run, not a re-implementation of them.
//
// What comes from upstream, unchanged: notifications-engine parses the ConfigMap and the
// Secret (pkg/api.ParseConfig), compiles and runs the triggers with expr-lang
// (pkg/triggers), renders the webhook templates with text/template + sprig (pkg/templates),
// resolves the subscriptions from the Application's annotations (pkg/subscriptions),
// keeps the notified state in the Application's annotation and decides what to send again
// (pkg/controller), and sends with its webhook service and its retries (pkg/services). The
// expression helpers `time` and `strings` are argo-cd's own packages
// (util/notification/expression/...), at the versions go.mod pins.
//
// What this program supplies, as Argo CD's notification controller does: the variables a
// trigger and a template see (argo-cd util/notification/settings.initGetVars: app, context,
// secrets, appProject, plus expression.Spawn's helpers), and the controller's skip rule for
// an operation the app controller has not yet reconciled (argo-cd
// notification_controller/controller.isAppSyncStatusRefreshed). Not supplied: the `repo`
// helpers, which call Argo CD's repo-server; fnops' config must not use them (a trigger or
// template that does fails here, visibly).
//
// Modes:
//
//	eval        one JSON line in per Application state ({"id", "app", "now"}), one line out:
//	            which subscribed triggers fire and the webhook each would send (nothing is sent)
//	controller  the engine's controller over a fake Kubernetes API: each {"op":"apply","app"}
//	            line updates the Application (its status, as Argo CD's controller patches it;
//	            the notified annotation stays), sends go to --url, one line per processing
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	gotime "time"

	argostrings "github.com/argoproj/argo-cd/v3/util/notification/expression/strings"
	argotime "github.com/argoproj/argo-cd/v3/util/notification/expression/time"
	"github.com/argoproj/notifications-engine/pkg/api"
	"github.com/argoproj/notifications-engine/pkg/controller"
	"github.com/argoproj/notifications-engine/pkg/services"
	"github.com/argoproj/notifications-engine/pkg/subscriptions"
	log "github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/yaml"
)

const service = "fnops-bridge"

var appGVR = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "applications"}

func main() {
	if len(os.Args) < 2 {
		fail("usage: argocd-notifications eval|controller [flags]")
	}
	mode, args := os.Args[1], os.Args[2:]
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	cmPath := fs.String("config", "", "the argocd-notifications-cm ConfigMap (YAML)")
	token := fs.String("token", "test-token", "argocd-notifications-secret's fnops-bridge-token")
	url := fs.String("url", "", "controller: where the fnops-bridge webhook service points (replaces its url)")
	resync := fs.Duration("resync", 60*gotime.Second, "controller: the informer's resync period (Argo CD: 60s)")
	retryWait := fs.Duration("retry-wait", 0, "controller: the webhook service's wait between its own tries (default 1-5s)")
	verbose := fs.Bool("v", false, "engine logs on stderr")
	_ = fs.Parse(args)
	log.SetOutput(os.Stderr)
	log.SetLevel(log.WarnLevel)
	if *verbose {
		log.SetLevel(log.InfoLevel)
	}
	cm, secret := loadConfig(*cmPath, *token, *url, *retryWait)
	switch mode {
	case "eval":
		eval(cm, secret, os.Stdin, os.Stdout)
	case "controller":
		runController(cm, secret, *resync, os.Stdin, os.Stdout)
	default:
		fail("unknown mode " + mode)
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "argocd-notifications: "+msg)
	os.Exit(2)
}

// loadConfig reads the shipped ConfigMap; only the webhook's url is replaced (to reach the
// bridge a test started on 127.0.0.1) and, when asked, the waits between the service's own
// tries shortened (a test's clock); everything else goes to the engine as written.
func loadConfig(path, token, url string, retryWait gotime.Duration) (*corev1.ConfigMap, *corev1.Secret) {
	raw, err := os.ReadFile(path)
	if err != nil {
		fail(err.Error())
	}
	cm := &corev1.ConfigMap{}
	if err := yaml.Unmarshal(raw, cm); err != nil {
		fail("config: " + err.Error())
	}
	if url != "" {
		key := "service.webhook." + service
		opts := map[string]any{}
		if err := yaml.Unmarshal([]byte(cm.Data[key]), &opts); err != nil {
			fail("config: " + key + ": " + err.Error())
		}
		opts["url"] = url
		if retryWait > 0 {
			opts["retryWaitMin"], opts["retryWaitMax"] = int64(retryWait), int64(retryWait)
		}
		out, _ := yaml.Marshal(opts)
		cm.Data[key] = string(out)
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "argocd-notifications-secret", Namespace: cm.Namespace},
		Data:       map[string][]byte{"fnops-bridge-token": []byte(token)},
	}
	return cm, secret
}

// getVars builds what Argo CD's notification controller gives triggers and templates. `now`
// (zero: the clock) stands in for time.Now, so a test can place an Application state at a
// chosen moment; everything else in the `time` helpers is argo-cd's.
func getVars(cm *corev1.ConfigMap, secret *corev1.Secret, now func() gotime.Time) api.GetVars {
	context := map[string]string{}
	if c, ok := cm.Data["context"]; ok {
		if err := yaml.Unmarshal([]byte(c), &context); err != nil {
			fail("config: context: " + err.Error())
		}
	}
	return func(obj map[string]any, dest services.Destination) map[string]any {
		ctx := map[string]string{"notificationType": dest.Service}
		for k, v := range context {
			ctx[k] = v
		}
		timeHelpers := argotime.NewExprs()
		if now != nil {
			timeHelpers["Now"] = now
		}
		return map[string]any{
			"app": obj, "context": ctx, "secrets": secret.Data, "appProject": map[string]any{},
			"time": timeHelpers, "strings": argostrings.NewExprs(),
			"repo": map[string]any{}, // calls Argo CD's repo-server: not available here
		}
	}
}

func newAPI(cm *corev1.ConfigMap, secret *corev1.Secret, now func() gotime.Time) (api.API, *api.Config) {
	cfg, err := api.ParseConfig(cm, secret)
	if err != nil {
		fail("config: " + err.Error())
	}
	a, err := api.NewAPI(*cfg, getVars(cm, secret, now))
	if err != nil {
		fail("config: " + err.Error())
	}
	return a, cfg
}

// capture stands in for the webhook service in eval mode: it keeps what would be sent.
type capture struct{ sent []services.Notification }

func (c *capture) Send(n services.Notification, _ services.Destination) error {
	c.sent = append(c.sent, n)
	return nil
}

type evalIn struct {
	ID  string         `json:"id"`
	App map[string]any `json:"app"`
	Now string         `json:"now"`
}

type triggerOut struct {
	Triggered bool   `json:"triggered"`
	OncePer   string `json:"oncePer"`
}

type sendOut struct {
	Trigger  string `json:"trigger"`
	Template string `json:"template"`
	Method   string `json:"method"`
	Path     string `json:"path"`
	Body     string `json:"body"`
}

type evalOut struct {
	ID       string                `json:"id"`
	Skipped  string                `json:"skipped,omitempty"`
	Triggers map[string]triggerOut `json:"triggers"`
	Sends    []sendOut             `json:"sends"`
	Errors   []string              `json:"errors"`
}

func eval(cm *corev1.ConfigMap, secret *corev1.Secret, in io.Reader, out io.Writer) {
	var clock gotime.Time
	a, cfg := newAPI(cm, secret, func() gotime.Time { return clock })
	enc := json.NewEncoder(out)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var req evalIn
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			fail("eval: input: " + err.Error())
		}
		res := evalOut{ID: req.ID, Triggers: map[string]triggerOut{}, Sends: []sendOut{}, Errors: []string{}}
		clock = gotime.Now()
		if req.Now != "" {
			t, err := gotime.Parse(gotime.RFC3339, req.Now)
			if err != nil {
				fail("eval: now: " + err.Error())
			}
			clock = t
		}
		un := &unstructured.Unstructured{Object: req.App}
		if skip, why := skipProcessing(un); skip {
			res.Skipped = why
			if err := enc.Encode(res); err != nil {
				fail(err.Error())
			}
			continue
		}
		dests := subscriptions.NewAnnotations(un.GetAnnotations()).GetDestinations(cfg.DefaultTriggers, cfg.ServiceDefaultTriggers)
		for trigger, to := range dests {
			results, err := a.RunTrigger(trigger, un.Object)
			if err != nil {
				res.Errors = append(res.Errors, fmt.Sprintf("%s: %v", trigger, err))
				continue
			}
			for _, cr := range results {
				res.Triggers[trigger] = triggerOut{Triggered: cr.Triggered, OncePer: cr.OncePer}
				if !cr.Triggered {
					continue
				}
				for _, dest := range to {
					c := &capture{}
					a.AddNotificationService(dest.Service, c)
					if err := a.Send(un.Object, cr.Templates, dest); err != nil {
						res.Errors = append(res.Errors, fmt.Sprintf("%s: %v", trigger, err))
						continue
					}
					for _, n := range c.sent {
						w := n.Webhook[dest.Service]
						res.Sends = append(res.Sends, sendOut{Trigger: trigger, Template: fmt.Sprint(cr.Templates), Method: w.Method, Path: w.Path, Body: w.Body})
					}
				}
			}
		}
		if err := enc.Encode(res); err != nil {
			fail(err.Error())
		}
	}
	if err := sc.Err(); err != nil {
		fail("eval: input: " + err.Error())
	}
}

// skipProcessing is Argo CD's rule for when the notification controller leaves an
// Application alone (notification_controller/controller.go, isAppSyncStatusRefreshed): a
// finished operation whose finishedAt is after both reconciledAt and observedAt has not yet
// been followed by the app controller's refresh, so its sync and health are not the
// operation's outcome yet.
func skipProcessing(app *unstructured.Unstructured) (bool, string) {
	phase, ok, _ := unstructured.NestedString(app.Object, "status", "operationState", "phase")
	if !ok {
		return false, ""
	}
	switch phase {
	case "Failed", "Error", "Succeeded":
	default:
		return false, ""
	}
	raw, ok, _ := unstructured.NestedString(app.Object, "status", "operationState", "finishedAt")
	if !ok {
		return true, "sync status out of date"
	}
	finished, err := gotime.Parse(gotime.RFC3339, raw)
	if err != nil {
		return true, "sync status out of date"
	}
	var reconciled, observed gotime.Time
	if s, ok, _ := unstructured.NestedString(app.Object, "status", "reconciledAt"); ok {
		reconciled, _ = gotime.Parse(gotime.RFC3339, s)
	}
	if s, ok, _ := unstructured.NestedString(app.Object, "status", "observedAt"); ok {
		observed, _ = gotime.Parse(gotime.RFC3339, s)
	}
	if finished.After(reconciled) && finished.After(observed) {
		return true, "sync status out of date"
	}
	return false, ""
}

type factory struct{ a api.API }

func (f factory) GetAPI() (api.API, error) { return f.a, nil }
func (f factory) GetAPIsFromNamespace(string) (map[string]api.API, error) {
	return map[string]api.API{"": f.a}, nil
}

type controllerIn struct {
	Op  string         `json:"op"`
	App map[string]any `json:"app"`
}

type processedOut struct {
	Event     string   `json:"event"`
	App       string   `json:"app"`
	Delivered []string `json:"delivered"`
	Repeated  []string `json:"repeated"`
	Errors    []string `json:"errors"`
	Notified  string   `json:"notified"`
}

// runController runs notifications-engine's controller as Argo CD's notification controller
// wires it (an informer over the Applications with a resync period, the skip rule above),
// against an in-memory Kubernetes API the test feeds one Application state at a time.
func runController(cm *corev1.ConfigMap, secret *corev1.Secret, resync gotime.Duration, in io.Reader, out io.Writer) {
	// client-go's streaming list waits for a bookmark the in-memory API never sends; a plain
	// list then watch gives the informer the same objects and events.
	_ = os.Setenv("KUBE_FEATURE_WatchListClient", "false")
	a, _ := newAPI(cm, secret, nil)
	scheme := runtime.NewScheme()
	client := fake.NewSimpleDynamicClientWithCustomListKinds(scheme, map[schema.GroupVersionResource]string{appGVR: "ApplicationList"})
	apps := client.Resource(appGVR)
	informer := cache.NewSharedIndexInformer(&cache.ListWatch{
		ListFunc: func(o metav1.ListOptions) (runtime.Object, error) {
			return apps.Namespace(metav1.NamespaceAll).List(context.Background(), o)
		},
		WatchFunc: func(o metav1.ListOptions) (watch.Interface, error) {
			return apps.Namespace(metav1.NamespaceAll).Watch(context.Background(), o)
		},
	}, &unstructured.Unstructured{}, resync, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})

	var mu sync.Mutex
	enc := json.NewEncoder(out)
	emit := func(v any) {
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(v)
	}
	ctrl := controller.NewController(apps, informer, factory{a},
		controller.WithSkipProcessing(func(obj metav1.Object) (bool, string) {
			un, ok := obj.(*unstructured.Unstructured)
			if !ok {
				return false, ""
			}
			return skipProcessing(un)
		}),
		controller.WithEventCallback(func(s controller.NotificationEventSequence) {
			p := processedOut{Event: "processed", App: s.Key, Delivered: []string{}, Repeated: []string{}, Errors: []string{}}
			for _, d := range s.Delivered {
				if d.AlreadyNotified {
					p.Repeated = append(p.Repeated, d.Trigger)
				} else {
					p.Delivered = append(p.Delivered, d.Trigger)
				}
			}
			for _, e := range s.Errors {
				p.Errors = append(p.Errors, e.Error())
			}
			if s.Resource != nil {
				if cur, err := apps.Namespace(s.Resource.GetNamespace()).Get(context.Background(), s.Resource.GetName(), metav1.GetOptions{}); err == nil {
					p.Notified = cur.GetAnnotations()[subscriptions.NotifiedAnnotationKey()]
				}
			}
			emit(p)
		}))

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go informer.Run(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		fail("controller: informer did not sync")
	}
	go ctrl.Run(1, ctx.Done())
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	lines := make(chan []byte)
	go func() {
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			lines <- append([]byte(nil), sc.Bytes()...)
		}
		close(lines)
	}()
	emit(map[string]string{"event": "ready"})
	for {
		select {
		case <-signals:
			return
		case line, ok := <-lines:
			if !ok {
				return
			}
			if len(strings.TrimSpace(string(line))) == 0 {
				continue
			}
			var req controllerIn
			if err := json.Unmarshal(line, &req); err != nil {
				fail("controller: input: " + err.Error())
			}
			if req.Op != "apply" {
				fail("controller: unknown op " + req.Op)
			}
			if err := apply(apps, &unstructured.Unstructured{Object: req.App}); err != nil {
				fail("controller: apply: " + err.Error())
			}
			emit(map[string]string{"event": "applied", "app": req.App["metadata"].(map[string]any)["name"].(string)})
		}
	}
}

// apply writes the Application as Argo CD's app controller would: its spec and status as
// given, the annotations the notification controller wrote (the notified state) kept.
func apply(apps dynamic.NamespaceableResourceInterface, app *unstructured.Unstructured) error {
	ns := apps.Namespace(app.GetNamespace())
	cur, err := ns.Get(context.Background(), app.GetName(), metav1.GetOptions{})
	if err != nil {
		_, err = ns.Create(context.Background(), app, metav1.CreateOptions{})
		return err
	}
	annotations := app.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	key := subscriptions.NotifiedAnnotationKey()
	if v, ok := cur.GetAnnotations()[key]; ok {
		annotations[key] = v
	}
	app.SetAnnotations(annotations)
	app.SetResourceVersion(cur.GetResourceVersion())
	_, err = ns.Update(context.Background(), app, metav1.UpdateOptions{})
	return err
}
