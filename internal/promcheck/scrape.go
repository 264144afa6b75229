package promcheck

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// maxScrape bounds what Scrape reads of one response.
const maxScrape = 4 << 20

// Samples are the samples of one scrape by series, each series written as
// in the text format: `name` or `name{a="x",b="y"}`, labels sorted by
// name. A histogram or summary contributes its _sum, _count and
// _bucket{le=…} or {quantile=…} series.
type Samples map[string]float64

// Get returns the value of series, or an error saying it is missing.
func (s Samples) Get(series string) (float64, error) {
	v, ok := s[series]
	if !ok {
		return 0, fmt.Errorf("%w %s", ErrNoSample, series)
	}
	return v, nil
}

// ErrNoSample is the error of Get for a series the scrape did not have.
var ErrNoSample = errors.New("no sample")

// Scrape GETs url (a /metrics endpoint) with client and parses it with
// the Prometheus text parser; at most 4 MiB of the body are read.
func Scrape(ctx context.Context, client *http.Client, url string) (Samples, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	s, err := Parse(io.LimitReader(resp.Body, maxScrape))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	return s, nil
}

// Parse reads the Prometheus text format.
func Parse(r io.Reader) (Samples, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	s := Samples{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			labels := m.GetLabel()
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				s[series(name, labels)] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				s[series(name, labels)] = m.GetGauge().GetValue()
			case dto.MetricType_UNTYPED:
				s[series(name, labels)] = m.GetUntyped().GetValue()
			case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
				h := m.GetHistogram()
				s[series(name+"_sum", labels)] = h.GetSampleSum()
				s[series(name+"_count", labels)] = float64(h.GetSampleCount())
				for _, b := range h.GetBucket() {
					le := strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64)
					s[series(name+"_bucket", labels, "le", le)] = float64(b.GetCumulativeCount())
				}
			case dto.MetricType_SUMMARY:
				sm := m.GetSummary()
				s[series(name+"_sum", labels)] = sm.GetSampleSum()
				s[series(name+"_count", labels)] = float64(sm.GetSampleCount())
				for _, q := range sm.GetQuantile() {
					s[series(name, labels, "quantile", strconv.FormatFloat(q.GetQuantile(), 'g', -1, 64))] = q.GetValue()
				}
			}
		}
	}
	return s, nil
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// series writes name{labels…}, labels sorted by name, with extra (a name
// and a value) among them.
func series(name string, labels []*dto.LabelPair, extra ...string) string {
	pairs := make([]string, 0, len(labels)+1)
	for _, l := range labels {
		pairs = append(pairs, l.GetName()+`="`+labelEscaper.Replace(l.GetValue())+`"`)
	}
	if len(extra) == 2 {
		pairs = append(pairs, extra[0]+`="`+extra[1]+`"`)
	}
	if len(pairs) == 0 {
		return name
	}
	slices.Sort(pairs)
	return name + "{" + strings.Join(pairs, ",") + "}"
}
