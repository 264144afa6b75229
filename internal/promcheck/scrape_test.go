package promcheck_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/peerdns/peerdns/internal/promcheck"
)

// What a real registry exposes is read back by series as the text format
// writes it, labels sorted by name.
func TestScrape(t *testing.T) {
	reg := prometheus.NewRegistry()
	members := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "peeragent_members", Help: "h"}, []string{"state"})
	members.WithLabelValues("alive").Set(2)
	members.WithLabelValues("dead").Set(1)
	queries := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "queries_total", Help: "h"}, []string{"zone", "rcode"})
	queries.WithLabelValues(`a"b`, "NOERROR").Add(3)
	latency := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "latency_seconds", Help: "h", Buckets: []float64{0.5}})
	latency.Observe(0.25)
	reg.MustRegister(members, queries, latency)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()

	got, err := promcheck.Scrape(t.Context(), srv.Client(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	want := promcheck.Samples{
		`peeragent_members{state="alive"}`:           2,
		`peeragent_members{state="dead"}`:            1,
		`queries_total{rcode="NOERROR",zone="a\"b"}`: 3,
		`latency_seconds_sum`:                        0.25,
		`latency_seconds_count`:                      1,
		`latency_seconds_bucket{le="0.5"}`:           1,
		`latency_seconds_bucket{le="+Inf"}`:          1,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("samples (-want +got):\n%s", diff)
	}
	if _, err := got.Get("peeragent_has_quorum"); !errors.Is(err, promcheck.ErrNoSample) {
		t.Errorf("Get of a missing series: %v, want ErrNoSample", err)
	}
}

func TestScrapeErrors(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		code       int
	}{
		{name: "not the text format", body: "peeragent_members{state=alive} 1\n", code: http.StatusOK},
		{name: "an HTTP error", body: "unauthorized\n", code: http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tc.code)
				_, _ = strings.NewReader(tc.body).WriteTo(w)
			}))
			defer srv.Close()
			if s, err := promcheck.Scrape(t.Context(), srv.Client(), srv.URL); err == nil {
				t.Errorf("Scrape = %v, want an error", s)
			}
		})
	}
}
