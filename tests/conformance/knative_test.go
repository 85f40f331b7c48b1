package conformance

import (
	"context"
	"encoding/json"
	"fmt"

	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"knative.dev/pkg/apis"
	kjson "knative.dev/pkg/webhook/json"

	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	sourcesv1 "knative.dev/eventing/pkg/apis/sources/v1"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
)

// knativeObject is what knative.dev/pkg's admission controllers require of a type.
type knativeObject interface {
	runtime.Object
	metav1.ObjectMetaAccessor
	apis.Defaultable
	apis.Validatable
}

// knativeKind is one type as registered with its project's webhook binary: which
// contexts its main() builds and whether it decodes strictly.
type knativeKind struct {
	newObj           func() knativeObject
	defaulting       string
	validation       string
	strictDefaulting bool
	strictValidation bool
	defaultingCtx    func(*platform, context.Context) context.Context
	validationCtx    func(*platform, context.Context) context.Context
}

var knativeKinds = map[schema.GroupVersionKind]knativeKind{
	servingv1.SchemeGroupVersion.WithKind("Service"): {
		newObj:        func() knativeObject { return &servingv1.Service{} },
		defaulting:    "webhook.serving.knative.dev",
		validation:    "validation.webhook.serving.knative.dev",
		defaultingCtx: (*platform).servingCtx,
		validationCtx: (*platform).servingCtx,
	},
	sourcesv1.SchemeGroupVersion.WithKind("PingSource"): {
		newObj:           func() knativeObject { return &sourcesv1.PingSource{} },
		defaulting:       "webhook.eventing.knative.dev",
		validation:       "validation.webhook.eventing.knative.dev",
		strictDefaulting: true,
		strictValidation: true,
		defaultingCtx:    (*platform).eventingDefaultingCtx,
		validationCtx:    (*platform).eventingValidationCtx,
	},
	eventingv1.SchemeGroupVersion.WithKind("Trigger"): {
		newObj:           func() knativeObject { return &eventingv1.Trigger{} },
		defaulting:       "webhook.eventing.knative.dev",
		validation:       "validation.webhook.eventing.knative.dev",
		strictDefaulting: true,
		strictValidation: true,
		defaultingCtx:    (*platform).eventingDefaultingCtx,
		validationCtx:    (*platform).eventingValidationCtx,
	},
	// KafkaSource: kafkasource_test.go (not in the oldest Knative set, see there).
}

func denied(webhook, format string, a ...interface{}) error {
	return fmt.Errorf("admission webhook %q denied the request: %s", webhook, fmt.Sprintf(format, a...))
}

// admit follows knative.dev/pkg/webhook/resourcesemantics: the defaulting webhook
// (decode, SetDefaults in a create or update context, user-info annotations), then the
// validation webhook (decode what defaulting produced, Validate against the stored object).
func (k knativeKind) admit(p *platform, incoming, live *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	user := &authenticationv1.UserInfo{Username: argoCDUser}
	newBytes, err := json.Marshal(incoming.Object)
	if err != nil {
		return nil, err
	}
	var liveBytes []byte
	if live != nil {
		if liveBytes, err = json.Marshal(live.Object); err != nil {
			return nil, err
		}
	}

	// Mutating webhook.
	obj := k.newObj()
	if err := kjson.Decode(newBytes, obj, k.strictDefaulting); err != nil {
		return nil, denied(k.defaulting, "cannot decode incoming new object: %v", err)
	}
	ctx := k.defaultingCtx(p, context.Background())
	if live != nil {
		old := k.newObj()
		if err := kjson.Decode(liveBytes, old, k.strictDefaulting); err != nil {
			return nil, denied(k.defaulting, "cannot decode incoming old object: %v", err)
		}
		old.SetDefaults(ctx)
		ctx = apis.WithinUpdate(ctx, old)
	} else {
		ctx = apis.WithinCreate(ctx)
	}
	ctx = apis.WithUserInfo(ctx, user)
	obj.SetDefaults(ctx)
	setUserInfo(ctx, obj, incoming.GroupVersionKind().Group)
	// The webhook's patch turns the request into exactly what the Go type marshals to
	// (its round-trip patch), plus the defaults.
	mutated, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}

	// Validating webhook.
	vobj := k.newObj()
	if err := kjson.Decode(mutated, vobj, k.strictValidation); err != nil {
		return nil, denied(k.validation, "decoding request failed: cannot decode incoming new object: %v", err)
	}
	vctx := apis.WithUserInfo(k.validationCtx(p, context.Background()), user)
	if live != nil {
		old := k.newObj()
		if err := kjson.Decode(liveBytes, old, k.strictValidation); err != nil {
			return nil, denied(k.validation, "decoding request failed: cannot decode incoming old object: %v", err)
		}
		vctx = apis.WithinUpdate(vctx, old)
	} else {
		vctx = apis.WithinCreate(vctx)
	}
	if fe := vobj.Validate(vctx); fe != nil {
		if errs := fe.Filter(apis.ErrorLevel); errs != nil {
			return nil, denied(k.validation, "validation failed: %v", errs)
		}
	}

	out := &unstructured.Unstructured{}
	if err := out.UnmarshalJSON(mutated); err != nil {
		return nil, err
	}
	return out, nil
}

// setUserInfo does what the defaulting webhook's (unexported) user-info step does: the
// creator on create, the last modifier whenever the spec changes.
// Types without GetUntypedSpec (serving's) set these in their own SetDefaults.
func setUserInfo(ctx context.Context, obj knativeObject, group string) {
	ui := apis.GetUserInfo(ctx)
	spec, ok := obj.(apis.HasSpec)
	if ui == nil || !ok {
		return
	}
	meta := obj.GetObjectMeta()
	ann := meta.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	if apis.IsInUpdate(ctx) {
		old := apis.GetBaseline(ctx).(apis.HasSpec)
		if equality.Semantic.DeepEqual(old.GetUntypedSpec(), spec.GetUntypedSpec()) {
			return
		}
	} else {
		ann[group+apis.CreatorAnnotationSuffix] = ui.Username
	}
	ann[group+apis.UpdaterAnnotationSuffix] = ui.Username
	meta.SetAnnotations(ann)
}
