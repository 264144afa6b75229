package kube

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// fullSlice is a slice with every field the endpointslice controller and
// the API server fill in.
func fullSlice() *discoveryv1.EndpointSlice {
	proto := corev1.ProtocolUDP
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name:              "web-abcde",
			Namespace:         "ns",
			ResourceVersion:   "42",
			UID:               "0b9e4b5c-6f0e-4d1f-9b64-1f1c1d7e0a11",
			Generation:        3,
			CreationTimestamp: metav1.Date(2026, 11, 25, 4, 0, 0, 0, time.UTC),
			GenerateName:      "web-",
			Labels: map[string]string{
				labelServiceName:             "web",
				labelHeadless:                "",
				discoveryv1.LabelManagedBy:   "endpointslice-controller.k8s.io",
				"app.kubernetes.io/name":     "web",
				"app.kubernetes.io/instance": "prod",
			},
			Annotations: map[string]string{
				annotationTriggerTime:   "2026-11-25T04:56:40.123456789Z",
				"example.com/unrelated": "x",
			},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: "web", UID: "u"}},
			ManagedFields: []metav1.ManagedFieldsEntry{{
				Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate,
				FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(`{"f:endpoints":{}}`),
			}},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports: []discoveryv1.EndpointPort{{
			Name: ptr("dns"), Protocol: &proto, Port: ptr[int32](53), AppProtocol: ptr("dns"),
		}},
		Endpoints: []discoveryv1.Endpoint{
			{
				Addresses:  []string{"10.0.0.1"},
				Hostname:   ptr("web-0"),
				Conditions: discoveryv1.EndpointConditions{Ready: ptr(true), Serving: ptr(true), Terminating: ptr(false)},
				TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: "ns", Name: "web-0", UID: "p"},
				NodeName:   ptr("node-1"),
				Zone:       ptr("zone-a"),
				Hints: &discoveryv1.EndpointHints{
					ForZones: []discoveryv1.ForZone{{Name: "zone-a"}},
					ForNodes: []discoveryv1.ForNode{{Name: "node-1"}},
				},
				DeprecatedTopology: map[string]string{"kubernetes.io/hostname": "node-1"},
			},
			{Addresses: nil, Hostname: ptr("web-1")}, // no address: useless to DNS
			{
				Addresses:  []string{"10.0.0.3"},
				Conditions: discoveryv1.EndpointConditions{Serving: ptr(false), Terminating: ptr(true)},
			},
		},
	}
}

func TestLeanSliceStripsWhatDNSDoesNotUse(t *testing.T) {
	proto := corev1.ProtocolUDP
	want := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name:            "web-abcde",
			Namespace:       "ns",
			ResourceVersion: "42",
			Labels:          map[string]string{labelServiceName: "web"},
			Annotations:     map[string]string{annotationTriggerTime: "2026-11-25T04:56:40.123456789Z"},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("dns"), Protocol: &proto, Port: ptr[int32](53)}},
		Endpoints: []discoveryv1.Endpoint{
			{
				Addresses:  []string{"10.0.0.1"},
				Hostname:   ptr("web-0"),
				Conditions: discoveryv1.EndpointConditions{Ready: ptr(true), Terminating: ptr(false)},
			},
			{
				Addresses:  []string{"10.0.0.3"},
				Conditions: discoveryv1.EndpointConditions{Terminating: ptr(true)},
			},
		},
	}
	in := fullSlice()
	got, err := leanSlice(in)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("leanSlice (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(fullSlice(), in); diff != "" {
		t.Errorf("leanSlice changed its input (-before +after):\n%s", diff)
	}

	again, err := leanSlice(got)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, again); diff != "" {
		t.Errorf("leanSlice is not idempotent (-once +twice):\n%s", diff)
	}
}

func TestLeanSliceFQDNKeepsNoEndpoints(t *testing.T) {
	in := fullSlice()
	in.AddressType = discoveryv1.AddressTypeFQDN
	in.Endpoints = []discoveryv1.Endpoint{{Addresses: []string{"db.example.com"}}}
	got, err := leanSlice(in)
	if err != nil {
		t.Fatal(err)
	}
	if eps := got.(*discoveryv1.EndpointSlice).Endpoints; eps != nil {
		t.Errorf("FQDN slice kept endpoints %v", eps)
	}
}

func TestLeanSlicePassesOtherObjectsThrough(t *testing.T) {
	tomb := cache.DeletedFinalStateUnknown{Key: "ns/web-abcde", Obj: fullSlice()}
	got, err := leanSlice(tomb)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got.(cache.DeletedFinalStateUnknown); !ok {
		t.Errorf("leanSlice(tombstone) = %T, want the tombstone", got)
	}
}

func TestServiceOf(t *testing.T) {
	labelled := sliceSpec{namespace: "ns", name: "web-abcde", service: "web"}.build()
	unlabelled := sliceSpec{namespace: "ns", name: "orphan"}.build()
	tests := []struct {
		name   string
		obj    any
		want   serviceKey
		wantOK bool
	}{
		{name: "slice", obj: labelled, want: serviceKey{"ns", "web"}, wantOK: true},
		{name: "tombstone of a slice", obj: cache.DeletedFinalStateUnknown{Key: "ns/web-abcde", Obj: labelled}, want: serviceKey{"ns", "web"}, wantOK: true},
		{name: "slice without service-name label", obj: unlabelled},
		{name: "tombstone of something else", obj: cache.DeletedFinalStateUnknown{Key: "ns/x", Obj: "?"}},
		{name: "not a slice", obj: &corev1.Service{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := serviceOf(tt.obj)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("serviceOf = %v, %v; want %v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
