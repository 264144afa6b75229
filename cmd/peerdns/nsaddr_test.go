package main

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNSAddresses(t *testing.T) {
	for _, tc := range []struct {
		name    string
		flagged []string
		podIP   string
		listen  string
		want    []string
		wantErr bool
	}{
		{name: "flags win", flagged: []string{"10.0.0.53", "fd00::53"}, podIP: "10.1.1.1", listen: ":53", want: []string{"10.0.0.53", "fd00::53"}},
		{name: "pod IP", podIP: "10.1.1.1", listen: ":53", want: []string{"10.1.1.1"}},
		{name: "pod IPv6", podIP: "fd00::1", listen: ":53", want: []string{"fd00::1"}},
		{name: "listen address", listen: "127.0.0.1:5353", want: []string{"127.0.0.1"}},
		{name: "nothing known", listen: ":53"},
		{name: "unspecified listen address", listen: "0.0.0.0:53"},
		{name: "bad flag", flagged: []string{"ns1.example."}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := nsAddresses(tc.flagged, tc.podIP, tc.listen)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			var want []netip.Addr
			for _, s := range tc.want {
				want = append(want, netip.MustParseAddr(s))
			}
			if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
