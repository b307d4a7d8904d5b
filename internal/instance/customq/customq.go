// Package customq reads CloudNativePG's user-defined monitoring queries
// (spec.monitoring.customQueriesConfigMap and customQueriesSecret, the
// format of its docs/src/monitoring.md, "User defined metrics") and turns
// one query's result rows into Prometheus metrics. It is pure: the
// manager reads the files, runs the SQL and serves the metrics
// (internal/instance/customqueries.go).
//
// A problem is the query's alone: Parse returns the valid queries of a
// file and an error for each other one, so one bad query never hides the
// rest (docs/metrics.md, "Custom queries").
//
// It must not import `pgsync/...`, `github.com/jackc/pgx/...` or
// `k8s.io/client-go/...`.
package customq

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"
)

// Namespace prefixes every metric of a custom query, as CloudNativePG's
// collector: cnpg_<query>_<column>.
const Namespace = "cnpg"

// Usages of a column (CloudNativePG's ColumnUsage).
const (
	Discard      = "DISCARD"
	Label        = "LABEL"
	Counter      = "COUNTER"
	Gauge        = "GAUGE"
	MappedMetric = "MAPPEDMETRIC"
	Duration     = "DURATION"
	Histogram    = "HISTOGRAM"
)

var usages = []string{Discard, Label, Counter, Gauge, MappedMetric, Duration, Histogram}

// Query is one valid custom query.
type Query struct {
	// Key is the query's key in the file; Prefix the metric name prefix
	// (cnpg_ and the query's name, or Key).
	Key, Prefix    string
	SQL, Predicate string
	// Primary: run only on the primary (primary or master).
	Primary bool
	// RunOnServer limits the PostgreSQL versions (nil: all).
	RunOnServer Constraint
	// Databases are target_databases (names, or path.Match patterns);
	// empty: the default database.
	Databases []string
	// CacheSeconds keeps the metrics of a run for this long (0: every
	// scrape runs the query).
	CacheSeconds int
	// Columns in the file's order.
	Columns []Column
}

// Column is one entry of a query's metrics.
type Column struct {
	Name, Usage, Description string
	// Metric is the full metric name ("" for DISCARD and LABEL).
	Metric string
	// Mapping is MAPPEDMETRIC's text → value.
	Mapping map[string]float64
	desc    *prometheus.Desc
}

// Error is one refused query, or a file-level problem (Query "").
type Error struct {
	Query string
	Err   string
}

func (e Error) Error() string {
	if e.Query == "" {
		return e.Err
	}
	return e.Query + ": " + e.Err
}

var (
	metricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelName  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	isPattern  = regexp.MustCompile(`[][*?]`)
)

// queryKeys and columnKeys are the keys pgsync reads; any other is
// refused, naming it (pg_version of a column, for one, is not read).
var (
	queryKeys  = []string{"query", "metrics", "name", "primary", "master", "runonserver", "target_databases", "predicate_query", "cache_seconds"}
	columnKeys = []string{"usage", "description", "metric_mapping", "name"}
)

// Parse reads one file's queries, sorted by key: the valid ones, and an
// Error for each refused query (or for the whole file, when it is not a
// YAML mapping of queries).
func Parse(content []byte) ([]Query, []Error) {
	// yaml.v3, as CloudNativePG: YAML 1.2, where on, off, y and n
	// are text (sigs.k8s.io/yaml would read them as booleans).
	var doc any
	if err := yaml.Unmarshal(content, &doc); err != nil {
		return nil, []Error{{Err: "not YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	if doc == nil {
		return nil, []Error{{Err: "holds no query"}}
	}
	js, err := json.Marshal(stringKeys(doc))
	if err != nil {
		return nil, []Error{{Err: "not YAML that pgsync reads: " + err.Error()}}
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(js, &top); err != nil {
		return nil, []Error{{Err: "not a mapping of query names to queries"}}
	}
	var qs []Query
	var errs []Error
	for _, key := range sortedKeys(top) {
		q, err := parseQuery(key, top[key])
		if err != nil {
			errs = append(errs, Error{Query: key, Err: err.Error()})
			continue
		}
		qs = append(qs, q)
	}
	return qs, errs
}

// stringKeys makes every mapping's keys text (a metric_mapping key 1
// is the text "1"), so the document encodes as JSON.
func stringKeys(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = stringKeys(e)
		}
		return x
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = stringKeys(e)
		}
		return out
	case []any:
		for i, e := range x {
			x[i] = stringKeys(e)
		}
		return x
	}
	return v
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// object decodes raw as a mapping whose keys are all in allowed.
func object(raw json.RawMessage, what string, allowed []string) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, fmt.Errorf("%s is not a mapping", what)
	}
	for _, k := range sortedKeys(m) {
		if !slices.Contains(allowed, k) {
			return nil, fmt.Errorf("%s: unknown key %q (pgsync reads %s)", what, k, strings.Join(allowed, ", "))
		}
	}
	return m, nil
}

func field[T any](m map[string]json.RawMessage, key, kind string, out *T) error {
	raw, ok := m[key]
	if !ok || string(raw) == "null" {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s is not %s", key, kind)
	}
	return nil
}

func parseQuery(key string, raw json.RawMessage) (Query, error) {
	m, err := object(raw, "the query", queryKeys)
	if err != nil {
		return Query{}, err
	}
	var name string
	var primary, master bool
	var runOn string
	var rawColumns []map[string]json.RawMessage
	q := Query{Key: key}
	for _, f := range []error{
		field(m, "query", "a string", &q.SQL),
		field(m, "predicate_query", "a string", &q.Predicate),
		field(m, "name", "a string", &name),
		field(m, "primary", "a boolean", &primary),
		field(m, "master", "a boolean", &master),
		field(m, "runonserver", "a string", &runOn),
		field(m, "target_databases", "a list of strings", &q.Databases),
		field(m, "cache_seconds", "a whole number of seconds", &q.CacheSeconds),
		field(m, "metrics", "a list of mappings of a column name to its use", &rawColumns),
	} {
		if f != nil {
			return Query{}, f
		}
	}
	q.Primary = primary || master
	if strings.TrimSpace(q.SQL) == "" {
		return Query{}, errors.New("query: required")
	}
	if q.CacheSeconds < 0 {
		return Query{}, errors.New("cache_seconds: must be 0 or more")
	}
	if runOn != "" {
		c, err := ParseConstraint(runOn)
		if err != nil {
			return Query{}, fmt.Errorf("runonserver: %w", err)
		}
		q.RunOnServer = c
	}
	for i, d := range q.Databases {
		if d == "" {
			return Query{}, fmt.Errorf("target_databases[%d]: empty", i)
		}
		if _, err := path.Match(d, ""); err != nil {
			return Query{}, fmt.Errorf("target_databases[%d]: %q is not a valid pattern", i, d)
		}
	}
	ns := key
	if name != "" {
		ns = name
	}
	q.Prefix = Namespace + "_" + ns
	if len(rawColumns) == 0 {
		return Query{}, errors.New("metrics: required (one entry per column the query returns)")
	}
	seen := map[string]bool{}
	for i, entry := range rawColumns {
		if len(entry) == 0 {
			return Query{}, fmt.Errorf("metrics[%d]: names no column", i)
		}
		for _, col := range sortedKeys(entry) {
			c, err := parseColumn(q.Prefix, col, entry[col])
			if err != nil {
				return Query{}, fmt.Errorf("metrics[%d].%s: %w", i, col, err)
			}
			if seen[col] {
				return Query{}, fmt.Errorf("metrics[%d]: column %q is listed twice", i, col)
			}
			seen[col] = true
			q.Columns = append(q.Columns, c)
		}
	}
	var labels []string
	for _, c := range q.Columns {
		if c.Usage == Label {
			labels = append(labels, c.Name)
		}
	}
	metrics := map[string]bool{}
	for i := range q.Columns {
		c := &q.Columns[i]
		if c.Metric == "" {
			continue
		}
		if metrics[c.Metric] {
			return Query{}, fmt.Errorf("metrics: two columns make the metric %s", c.Metric)
		}
		metrics[c.Metric] = true
		c.desc = prometheus.NewDesc(c.Metric, c.Description, labels, nil)
	}
	if len(metrics) == 0 {
		return Query{}, errors.New("metrics: no column is a COUNTER, GAUGE, MAPPEDMETRIC, DURATION or HISTOGRAM")
	}
	return q, nil
}

func parseColumn(prefix, col string, raw json.RawMessage) (Column, error) {
	m, err := object(raw, "the column", columnKeys)
	if err != nil {
		return Column{}, err
	}
	c := Column{Name: col}
	var name string
	for _, f := range []error{
		field(m, "usage", "a string", &c.Usage),
		field(m, "description", "a string", &c.Description),
		field(m, "metric_mapping", "a mapping of text to numbers", &c.Mapping),
		field(m, "name", "a string", &name),
	} {
		if f != nil {
			return Column{}, f
		}
	}
	if !slices.Contains(usages, c.Usage) {
		return Column{}, fmt.Errorf("usage %q is none of %s", c.Usage, strings.Join(usages, ", "))
	}
	if (c.Usage == MappedMetric) != (c.Mapping != nil) {
		if c.Mapping == nil {
			return Column{}, errors.New("metric_mapping: required with usage MAPPEDMETRIC")
		}
		return Column{}, errors.New("metric_mapping: only with usage MAPPEDMETRIC")
	}
	if c.Usage == Label && (!labelName.MatchString(col) || strings.HasPrefix(col, "__")) {
		return Column{}, fmt.Errorf("%q is not a Prometheus label name", col)
	}
	if c.Usage == Discard || c.Usage == Label {
		return c, nil
	}
	suffix := col
	if name != "" {
		suffix = name
	}
	c.Metric = prefix + "_" + suffix
	if c.Usage == Duration {
		c.Metric += "_milliseconds"
	}
	if !metricName.MatchString(c.Metric) {
		return Column{}, fmt.Errorf("%q is not a Prometheus metric name", c.Metric)
	}
	return c, nil
}

// Metrics are the metric names the query serves.
func (q Query) Metrics() []string {
	var out []string
	for _, c := range q.Columns {
		if c.Metric != "" {
			out = append(out, c.Metric)
		}
	}
	return out
}

// Patterns says whether a target database is a pattern to expand.
func Patterns(dbs []string) bool {
	return slices.ContainsFunc(dbs, isPattern.MatchString)
}

// Targets are the databases to run on: dbs (the default one when empty),
// patterns expanded over existing, each once, sorted.
func Targets(dbs []string, def string, existing []string) []string {
	if len(dbs) == 0 {
		return []string{def}
	}
	set := map[string]bool{}
	for _, d := range dbs {
		if !isPattern.MatchString(d) {
			set[d] = true
			continue
		}
		for _, e := range existing {
			if ok, _ := path.Match(d, e); ok {
				set[e] = true
			}
		}
	}
	return sortedKeys(set)
}

// Rows turns the result of a run into metrics. columns are the result's
// column names; each row holds, per column, nil, float64, bool, string,
// time.Time, time.Duration or []float64 (an array), as the manager
// decodes them. Every column must be listed in the query's metrics (a
// HISTOGRAM's NAME_bucket, NAME_sum and NAME_count aside), and every
// listed one returned.
func (q Query) Rows(columns []string, rows [][]any) ([]prometheus.Metric, error) {
	idx := map[string]int{}
	for i, c := range columns {
		idx[c] = i
	}
	extra := map[string]bool{}
	for _, c := range q.Columns {
		if _, ok := idx[c.Name]; !ok {
			return nil, fmt.Errorf("the result has no column %q (it has %s)", c.Name, strings.Join(columns, ", "))
		}
		if c.Usage == Histogram {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				if _, ok := idx[c.Name+s]; !ok {
					return nil, fmt.Errorf("HISTOGRAM %s: the result has no column %q", c.Name, c.Name+s)
				}
				extra[c.Name+s] = true
			}
		}
	}
	for _, col := range columns {
		if !extra[col] && !slices.ContainsFunc(q.Columns, func(c Column) bool { return c.Name == col }) {
			return nil, fmt.Errorf("column %q of the result is not in metrics (list it, as DISCARD to leave it out)", col)
		}
	}
	var out []prometheus.Metric
	for _, row := range rows {
		var labels []string
		for _, c := range q.Columns {
			if c.Usage == Label {
				labels = append(labels, text(row[idx[c.Name]]))
			}
		}
		for _, c := range q.Columns {
			if c.desc == nil {
				continue
			}
			m, err := c.metric(row, idx, labels)
			if err != nil {
				return nil, fmt.Errorf("column %s: %w", c.Name, err)
			}
			if m != nil {
				out = append(out, m)
			}
		}
	}
	return out, nil
}

func (c Column) metric(row []any, idx map[string]int, labels []string) (prometheus.Metric, error) {
	v := row[idx[c.Name]]
	switch c.Usage {
	case Counter, Gauge:
		f, err := number(v)
		if err != nil {
			return nil, err
		}
		t := prometheus.GaugeValue
		if c.Usage == Counter {
			t = prometheus.CounterValue
		}
		return prometheus.NewConstMetric(c.desc, t, f, labels...)
	case MappedMetric:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("MAPPEDMETRIC needs text, got %s", kind(v))
		}
		f, ok := c.Mapping[s]
		if !ok {
			return nil, fmt.Errorf("%q is not in metric_mapping", s)
		}
		return prometheus.NewConstMetric(c.desc, prometheus.GaugeValue, f, labels...)
	case Duration:
		var ms float64
		switch d := v.(type) {
		case nil:
			return nil, nil
		case time.Duration:
			ms = float64(d) / float64(time.Millisecond)
		case string:
			if d == "-1" {
				return nil, nil // CloudNativePG's "no value"
			}
			p, err := time.ParseDuration(d)
			if err != nil {
				return nil, fmt.Errorf("%q is not a duration such as 1.5s or 300ms", d)
			}
			ms = float64(p) / float64(time.Millisecond)
		default:
			return nil, fmt.Errorf("DURATION needs an interval or text such as 1.5s, got %s", kind(v))
		}
		return prometheus.NewConstMetric(c.desc, prometheus.GaugeValue, ms, labels...)
	case Histogram:
		bounds, ok1 := v.([]float64)
		counts, ok2 := row[idx[c.Name+"_bucket"]].([]float64)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("HISTOGRAM needs arrays of numbers in %s (the bucket bounds) and %s_bucket (their cumulative counts)", c.Name, c.Name)
		}
		if len(bounds) != len(counts) {
			return nil, fmt.Errorf("HISTOGRAM: %d bucket bounds but %d counts", len(bounds), len(counts))
		}
		sum, err := number(row[idx[c.Name+"_sum"]])
		if err != nil {
			return nil, fmt.Errorf("%s_sum: %w", c.Name, err)
		}
		count, err := number(row[idx[c.Name+"_count"]])
		if err != nil || count < 0 || math.IsNaN(count) {
			return nil, fmt.Errorf("%s_count: not a count", c.Name)
		}
		buckets := make(map[float64]uint64, len(bounds))
		for i, b := range bounds {
			buckets[b] = uint64(max(counts[i], 0))
		}
		return prometheus.NewConstHistogram(c.desc, uint64(count), sum, buckets, labels...)
	}
	return nil, nil
}

// number is a value as CloudNativePG converts it: NULL is NaN, true 1,
// a time its Unix seconds, text parsed.
func number(v any) (float64, error) {
	switch x := v.(type) {
	case nil:
		return math.NaN(), nil
	case float64:
		return x, nil
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	case time.Time:
		return float64(x.Unix()), nil
	case time.Duration:
		return x.Seconds(), nil
	case string:
		f, err := strconv.ParseFloat(x, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a number", x)
		}
		return f, nil
	}
	return 0, fmt.Errorf("%s is not a number", kind(v))
}

// text is a label's value: NULL is empty.
func text(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case time.Time:
		return strconv.FormatInt(x.Unix(), 10)
	case time.Duration:
		return x.String()
	}
	return fmt.Sprint(v)
}

func kind(v any) string {
	switch v.(type) {
	case []float64:
		return "an array"
	case bool:
		return "a boolean"
	case time.Time:
		return "a time"
	case float64:
		return "a number"
	}
	return fmt.Sprintf("%T", v)
}
