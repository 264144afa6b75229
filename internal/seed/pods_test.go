package seed

import "testing"

func TestOrdinalLess(t *testing.T) {
	if !OrdinalLess("web-2", "web-10") || OrdinalLess("web-10", "web-2") || !OrdinalLess("web-0", "web-1") {
		t.Error("OrdinalLess does not order web-2 before web-10 and web-0 before web-1")
	}
}
