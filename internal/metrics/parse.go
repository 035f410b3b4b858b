package metrics

import (
	"fmt"
	"io"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Samples are the values of one scrape by series: the full metric name
// (with _total, _count, _sum, _bucket) and its labels in name order, as
// `name{a="x",b="y"}`, or the bare name without labels.
type Samples map[string]float64

// Series is the key of the series name with labels given as name, value
// pairs (in any order).
func Series(name string, labelPairs ...string) string {
	if len(labelPairs) == 0 {
		return name
	}
	var kv []string
	for i := 0; i+1 < len(labelPairs); i += 2 {
		kv = append(kv, fmt.Sprintf("%s=%q", labelPairs[i], labelPairs[i+1]))
	}
	slices.Sort(kv)
	return name + "{" + strings.Join(kv, ",") + "}"
}

// FullName is the exposed name of one of the Name* constants.
func FullName(name string) string { return Namespace + "_" + name }

// Parse reads the Prometheus text format (what Handler serves) into
// Samples; for tests and tools that read a scrape.
func Parse(r io.Reader) (Samples, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, err
	}
	out := Samples{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			var pairs []string
			for _, l := range m.GetLabel() {
				pairs = append(pairs, l.GetName(), l.GetValue())
			}
			add := func(suffix string, v float64, extra ...string) {
				out[Series(name+suffix, append(slices.Clone(pairs), extra...)...)] = v
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				add("", m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				add("", m.GetGauge().GetValue())
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				add("_count", float64(h.GetSampleCount()))
				add("_sum", h.GetSampleSum())
				for _, b := range h.GetBucket() {
					add("_bucket", float64(b.GetCumulativeCount()), "le", fmt.Sprint(b.GetUpperBound()))
				}
			default:
				add("", m.GetUntyped().GetValue())
			}
		}
	}
	return out, nil
}
