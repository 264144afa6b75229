package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTransferFlags(t *testing.T) {
	key := filepath.Join(t.TempDir(), "xfr.key")
	// As tsig-keygen writes it.
	if err := os.WriteFile(key, []byte("key \"xfr-key\" {\n\talgorithm hmac-sha256;\n\tsecret \"bm90IGEgcmVhbCBzZWNyZXQgYnV0IGJhc2U2NA==\";\n};\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var cfg config
	if _, err := newFlags(&cfg).Parse([]string{
		"--dns.transfer.allow", "10.0.0.0/8,192.0.2.7", "--dns.transfer.allow", "fd00::/64",
		"--dns.transfer.tsig-key", key,
		"--dns.transfer.notify", "192.0.2.1", "--dns.transfer.notify", "[fd00::1]:5300,fd00::2,ns.example:5353",
	}); err != nil {
		t.Fatal(err)
	}
	tc, err := cfg.transfer.transferConfig()
	if err != nil {
		t.Fatal(err)
	}
	wantAllow := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("fd00::/64")}
	if diff := cmp.Diff(wantAllow, tc.Allow, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("allow (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"192.0.2.1:53", "[fd00::1]:5300", "[fd00::2]:53", "ns.example:5353"}, tc.Notify); diff != "" {
		t.Errorf("notify (-want +got):\n%s", diff)
	}
	if tc.Key == nil || tc.Key.Name != "xfr-key." || tc.Key.Algorithm != "hmac-sha256." {
		t.Errorf("key %+v", tc.Key)
	}
}
