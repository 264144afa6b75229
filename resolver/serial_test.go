package resolver

import (
	"testing"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// zoneSerials returns each zone's serial as its SOA answer and its
// peerdns_zone_serial series say, failing when they disagree.
func zoneSerials(t *testing.T, h *Handler, reg *prometheus.Registry) map[string]uint32 {
	t.Helper()
	fromMetric := map[string]uint32{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "peerdns_zone_serial" {
			continue
		}
		for _, m := range mf.GetMetric() {
			fromMetric[m.GetLabel()[0].GetValue()] = uint32(m.GetGauge().GetValue())
		}
	}
	out := map[string]uint32{}
	for _, z := range h.zones {
		m := new(dns.Msg).SetQuestion(z.name, dns.TypeSOA)
		r := exchange(t, h, m, UDP)
		if len(r.Answer) != 1 {
			t.Fatalf("SOA %s: %v", z.name, r)
		}
		out[z.name] = r.Answer[0].(*dns.SOA).Serial
		if fromMetric[z.name] != out[z.name] {
			t.Errorf("zone %s: SOA serial %d, peerdns_zone_serial %d", z.name, out[z.name], fromMetric[z.name])
		}
	}
	return out
}

func TestSerialMovesOnlyWithItsZone(t *testing.T) {
	st := NewStore()
	st.SetSynced()
	reg := prometheus.NewRegistry()
	cfg := DefaultConfig()
	cfg.Zones = []string{"cluster.local.", "example.", "2.10.in-addr.arpa.", "1.10.in-addr.arpa.", "0.0.d.f.ip6.arpa."}
	cfg.Registerer = reg
	h, err := NewHandler(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	web := Service{Namespace: "default", Name: "web", Ports: []Port{{Name: "http", Protocol: "tcp", Port: 80}},
		Endpoints: []Endpoint{{Hostname: "web-0", Addrs: addrs("10.2.0.1"), Ready: true}}}
	withUnready := web
	withUnready.Endpoints = append(web.Endpoints[:1:1], Endpoint{Hostname: "web-1", Addrs: addrs("10.1.0.9"), Ready: false})
	inInner := web
	inInner.Endpoints = append(web.Endpoints[:1:1], Endpoint{Hostname: "web-1", Addrs: addrs("10.1.0.9"), Ready: true})
	portChange := inInner
	portChange.Ports = []Port{{Name: "http", Protocol: "tcp", Port: 8080}}

	forward := []string{"cluster.local.", "example."}
	steps := []struct {
		name  string
		apply func()
		moved []string
	}{
		{"new service", func() { st.Upsert(web) }, append(forward, "2.10.in-addr.arpa.")},
		{"the same service again", func() { st.Upsert(web) }, nil},
		{"an unready endpoint: peers tree only", func() { st.Upsert(withUnready) }, forward},
		{"it becomes ready, in the other reverse zone", func() { st.Upsert(inInner) }, append(forward, "1.10.in-addr.arpa.")},
		{"a port number: no PTR changes", func() { st.Upsert(portChange) }, forward},
		{"deleting another service", func() { st.Delete("default", "other") }, nil},
		{"delete", func() { st.Delete("default", "web") }, append(forward, "2.10.in-addr.arpa.", "1.10.in-addr.arpa.")},
	}
	before := zoneSerials(t, h, reg)
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			step.apply()
			after := zoneSerials(t, h, reg)
			for z, was := range before {
				moved := false
				for _, m := range step.moved {
					moved = moved || m == z
				}
				switch is := after[z]; {
				case moved && is <= was:
					t.Errorf("zone %s: serial %d, was %d: should have moved", z, is, was)
				case !moved && is != was:
					t.Errorf("zone %s: serial %d, was %d: should not have moved", z, is, was)
				}
			}
			before = after
		})
	}
}

// A restart seeds serials from the clock, which is past every serial the
// previous process published unless it changed more than once a second.
func TestSerialNotBackwardsAcrossRestart(t *testing.T) {
	now := uint32(1_800_000_000)
	start := func() *Handler {
		st := NewStore()
		st.clock = func() uint32 { return now }
		h, err := NewHandler(st, DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		st.SetSynced()
		return h
	}
	first := start()
	for i := range 5 {
		first.store.Upsert(numbered("churn", i+1))
		now++
	}
	was := first.store.snapshot().serialOf(0)
	if was != now {
		t.Fatalf("after 5 changes in 5 seconds the serial is %d, the clock %d", was, now)
	}
	first.store.Upsert(numbered("churn", 1)) // a second change in the same second
	was = first.store.snapshot().serialOf(0)
	now += 2 // a restart takes longer than the serial is ahead
	second := start()
	if is := second.store.snapshot().serialOf(0); is <= was {
		t.Errorf("serial after a restart %d, before %d", is, was)
	}
}
