package resolver

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// sample returns the value of the series of metric name with exactly the
// labels want (a counter's value, a histogram's count).
func sample(t *testing.T, reg prometheus.Gatherer, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(want) {
				continue
			}
			for _, l := range m.GetLabel() {
				if want[l.GetName()] != l.GetValue() {
					continue series
				}
			}
			return value(m)
		}
	}
	t.Fatalf("no series %s%v", name, want)
	return 0
}

func value(m *dto.Metric) float64 {
	if m.GetHistogram() != nil {
		return float64(m.GetHistogram().GetSampleCount())
	}
	return m.GetCounter().GetValue()
}

// TestMetricsHaveCoreDNSLabels: the query metrics carry CoreDNS's label
// names and values (server, zone, proto, family, type, rcode).
func TestMetricsHaveCoreDNSLabels(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := newSignalHandler(t, true, func(c *Config) { c.Registerer, c.ServerLabel = reg, "dns://:53" })
	s := startServer(t, ServerConfig{Addr: ":0", Handler: h})
	port := s.Addr().Port()
	ask := func(net, addr, name string) {
		t.Helper()
		c := &dns.Client{Net: net, Timeout: 5 * time.Second}
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		if _, _, err := c.Exchange(m, netip.AddrPortFrom(netip.MustParseAddr(addr), port).String()); err != nil {
			t.Fatal(err)
		}
	}
	ask("udp", "127.0.0.1", "web-1.nginx.default.svc.cluster.local.")
	ask("udp", "127.0.0.1", "example.com.")
	v6 := hasIPv6Loopback()
	if v6 {
		ask("tcp", "::1", "nope.default.svc.cluster.local.")
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{name: "peerdns_dns_requests_total", labels: map[string]string{"server": "dns://:53", "zone": "cluster.local.", "proto": "udp", "family": "1", "type": "A"}, want: 1},
		{name: "peerdns_dns_requests_total", labels: map[string]string{"server": "dns://:53", "zone": "dropped", "proto": "udp", "family": "1", "type": "A"}, want: 1},
		{name: "peerdns_dns_responses_total", labels: map[string]string{"server": "dns://:53", "zone": "cluster.local.", "rcode": "NOERROR"}, want: 1},
		{name: "peerdns_dns_responses_total", labels: map[string]string{"server": "dns://:53", "zone": "dropped", "rcode": "REFUSED"}, want: 1},
		{name: "peerdns_dns_request_duration_seconds", labels: map[string]string{"server": "dns://:53", "zone": "cluster.local.", "type": "A"}, want: map[bool]float64{false: 1, true: 2}[v6]},
		{name: "peerdns_dns_request_size_bytes", labels: map[string]string{"server": "dns://:53", "zone": "cluster.local.", "proto": "udp"}, want: 1},
		{name: "peerdns_dns_response_size_bytes", labels: map[string]string{"server": "dns://:53", "zone": "cluster.local.", "proto": "udp"}, want: 1},
		{name: "peerdns_dns_requests_total", labels: map[string]string{"server": "dns://:53", "zone": "cluster.local.", "proto": "tcp", "family": "2", "type": "A"}, want: map[bool]float64{true: 1}[v6]},
		{name: "peerdns_dns_responses_total", labels: map[string]string{"server": "dns://:53", "zone": "cluster.local.", "rcode": "NXDOMAIN"}, want: map[bool]float64{true: 1}[v6]},
	} {
		if got := sample(t, reg, c.name, c.labels); got != c.want {
			var l []string
			for k, v := range c.labels {
				l = append(l, k+"="+v)
			}
			t.Errorf("%s{%s} = %v, want %v", c.name, strings.Join(l, ","), got, c.want)
		}
	}
}

// TestMetricsSumEveryWorker: queries answered by different UDP workers
// and over TCP are all counted, in one series each, and the exposition
// passes Prometheus's lint.
func TestMetricsSumEveryWorker(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := newSignalHandler(t, true, func(c *Config) { c.Registerer, c.ServerLabel = reg, "dns://:53" })
	s := startServer(t, ServerConfig{Handler: h, UDPSockets: 2, UDPWorkers: 4})
	const queries = 40
	for i := range queries {
		c := &dns.Client{Net: "udp", Timeout: 5 * time.Second}
		if i%4 == 0 {
			c.Net = "tcp"
		}
		m := new(dns.Msg)
		m.SetQuestion("web-1.nginx.default.svc.cluster.local.", dns.TypeA)
		if _, _, err := c.Exchange(m, s.Addr().String()); err != nil {
			t.Fatal(err)
		}
	}
	udp := sample(t, reg, "peerdns_dns_requests_total", map[string]string{"server": "dns://:53", "zone": "cluster.local.", "proto": "udp", "family": "1", "type": "A"})
	tcp := sample(t, reg, "peerdns_dns_requests_total", map[string]string{"server": "dns://:53", "zone": "cluster.local.", "proto": "tcp", "family": "1", "type": "A"})
	if udp != queries*3/4 || tcp != queries/4 {
		t.Errorf("requests: udp %v, tcp %v; want %v, %v", udp, tcp, queries*3/4, queries/4)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
	}{
		{name: "peerdns_dns_responses_total", labels: map[string]string{"server": "dns://:53", "zone": "cluster.local.", "rcode": "NOERROR"}},
		{name: "peerdns_dns_request_duration_seconds", labels: map[string]string{"server": "dns://:53", "zone": "cluster.local.", "type": "A"}},
	} {
		if got := sample(t, reg, c.name, c.labels); got != queries {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, queries)
		}
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
}
