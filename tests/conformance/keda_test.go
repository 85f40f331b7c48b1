package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"

	"github.com/go-logr/logr"
	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
)

var scaledObjectGVK = kedav1alpha1.SchemeGroupVersion.WithKind("ScaledObject")

// The path controller-runtime's builder registers KEDA's validator under.
const kedaValidatePath = "/validate-keda-sh-v1alpha1-scaledobject"

// kedaManager is just enough of a controller-runtime Manager for KEDA's own
// SetupWebhookWithManager: it keeps the field indexes KEDA registers, hands out a client
// whose contents the harness swaps per request, and serves the registered webhook.
// Methods it does not define panic (nil embedded interface), so a KEDA release that needs
// more of the manager fails loudly here.
type kedaManager struct {
	manager.Manager
	scheme  *runtime.Scheme
	mapper  meta.RESTMapper
	client  *swapClient
	indexes []kedaIndex
	server  webhook.Server
}

type kedaIndex struct {
	obj   client.Object
	field string
	fn    client.IndexerFunc
}

type swapClient struct{ client.Client }

func (m *kedaManager) GetFieldIndexer() client.FieldIndexer { return m }
func (m *kedaManager) IndexField(_ context.Context, obj client.Object, field string, fn client.IndexerFunc) error {
	m.indexes = append(m.indexes, kedaIndex{obj, field, fn})
	return nil
}
func (m *kedaManager) GetClient() client.Client                     { return m.client }
func (m *kedaManager) GetRESTMapper() meta.RESTMapper               { return m.mapper }
func (m *kedaManager) GetScheme() *runtime.Scheme                   { return m.scheme }
func (m *kedaManager) GetConfig() *rest.Config                      { return &rest.Config{} }
func (m *kedaManager) GetWebhookServer() webhook.Server             { return m.server }
func (m *kedaManager) GetLogger() logr.Logger                       { return logr.Discard() }
func (m *kedaManager) GetEventRecorder(string) events.EventRecorder { return &events.FakeRecorder{} }

var (
	kedaOnce sync.Once
	kedaMgr  *kedaManager
	kedaErr  error
)

func kedaWebhook() (*kedaManager, error) {
	kedaOnce.Do(func() {
		s := runtime.NewScheme()
		if err := clientgoscheme.AddToScheme(s); err != nil {
			kedaErr = err
			return
		}
		if err := kedav1alpha1.AddToScheme(s); err != nil {
			kedaErr = err
			return
		}
		mapper := meta.NewDefaultRESTMapper([]schema.GroupVersion{appsv1.SchemeGroupVersion})
		mapper.Add(appsv1.SchemeGroupVersion.WithKind("Deployment"), meta.RESTScopeNamespace)
		mapper.Add(appsv1.SchemeGroupVersion.WithKind("StatefulSet"), meta.RESTScopeNamespace)
		m := &kedaManager{scheme: s, mapper: mapper, client: &swapClient{}, server: webhook.NewServer(webhook.Options{})}
		kedaErr = (&kedav1alpha1.ScaledObject{}).SetupWebhookWithManager(m, false)
		kedaMgr = m
	})
	return kedaMgr, kedaErr
}

// kedaAdmit sends the ScaledObject to KEDA's validating webhook as an AdmissionReview, with
// the namespace's stored workloads and ScaledObjects behind the webhook's client.
func kedaAdmit(c *cluster, incoming, live *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	m, err := kedaWebhook()
	if err != nil {
		return nil, fmt.Errorf("KEDA webhook setup: %w", err)
	}
	b := fake.NewClientBuilder().WithScheme(m.scheme)
	for _, ix := range m.indexes {
		b = b.WithIndex(ix.obj, ix.field, ix.fn)
	}
	var objs []client.Object
	for _, kind := range []struct{ group, kind string }{{"apps", "Deployment"}, {"apps", "StatefulSet"}, {"keda.sh", "ScaledObject"}} {
		for _, u := range c.objectsOfKind(kind.group, kind.kind) {
			typed, err := m.scheme.New(u.GroupVersionKind())
			if err != nil {
				return nil, err
			}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, typed); err != nil {
				return nil, err
			}
			objs = append(objs, typed.(client.Object))
		}
	}
	m.client.Client = b.WithObjects(objs...).Build()

	newRaw, err := json.Marshal(incoming.Object)
	if err != nil {
		return nil, err
	}
	dryRun := false
	req := &admissionv1.AdmissionRequest{
		UID:       types.UID("conformance"),
		Kind:      metav1.GroupVersionKind{Group: "keda.sh", Version: "v1alpha1", Kind: "ScaledObject"},
		Resource:  metav1.GroupVersionResource{Group: "keda.sh", Version: "v1alpha1", Resource: "scaledobjects"},
		Name:      incoming.GetName(),
		Namespace: incoming.GetNamespace(),
		Operation: admissionv1.Create,
		UserInfo:  authenticationv1.UserInfo{Username: argoCDUser},
		Object:    runtime.RawExtension{Raw: newRaw},
		DryRun:    &dryRun,
	}
	if live != nil {
		oldRaw, err := json.Marshal(live.Object)
		if err != nil {
			return nil, err
		}
		req.Operation = admissionv1.Update
		req.OldObject = runtime.RawExtension{Raw: oldRaw}
	}
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request:  req,
	}
	body, err := json.Marshal(review)
	if err != nil {
		return nil, err
	}
	rec := httptest.NewRecorder()
	hr := httptest.NewRequest(http.MethodPost, kedaValidatePath, bytes.NewReader(body))
	hr.Header.Set("Content-Type", "application/json")
	m.server.WebhookMux().ServeHTTP(rec, hr)
	if rec.Code != http.StatusOK {
		return nil, fmt.Errorf("KEDA webhook answered HTTP %d: %s", rec.Code, rec.Body.String())
	}
	var resp admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		return nil, err
	}
	if resp.Response == nil {
		return nil, fmt.Errorf("KEDA webhook sent no response: %s", rec.Body.String())
	}
	if !resp.Response.Allowed {
		msg := ""
		if resp.Response.Result != nil {
			msg = resp.Response.Result.Message
		}
		return nil, fmt.Errorf("admission webhook %q denied the request: %s", "vscaledobject.kb.io", msg)
	}
	return incoming.DeepCopy(), nil
}
