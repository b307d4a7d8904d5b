package customq

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// TestParse: the keys pgsync reads, and each refused query with its
// reason while the file's other queries stay.
func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		queries    []string // keys of the valid queries
		metrics    []string // of the first valid query
		errs       []string // substrings, one per refused query
	}{
		{name: "CloudNativePG's example", yaml: `
pg_replication:
  query: "SELECT 1 AS lag, false AS in_recovery"
  metrics:
    - lag:
        usage: "GAUGE"
        description: "Replication lag behind primary in seconds"
    - in_recovery:
        usage: "GAUGE"
        description: "Whether the instance is in recovery"
`, queries: []string{"pg_replication"}, metrics: []string{"cnpg_pg_replication_lag", "cnpg_pg_replication_in_recovery"}},
		{name: "every key", yaml: `
q:
  name: renamed
  query: SELECT 1
  predicate_query: SELECT true
  primary: true
  runonserver: ">=11.0.0 <=99"
  target_databases: ["app", "*"]
  cache_seconds: 30
  metrics:
    - datname: {usage: LABEL, description: db}
    - rows: {usage: COUNTER, description: rows, name: n}
    - state: {usage: MAPPEDMETRIC, description: s, metric_mapping: {on: 1, off: 0}}
    - age: {usage: DURATION, description: a}
    - lat: {usage: HISTOGRAM, description: h}
    - junk: {usage: DISCARD}
`, queries: []string{"q"}, metrics: []string{"cnpg_renamed_n", "cnpg_renamed_state", "cnpg_renamed_age_milliseconds", "cnpg_renamed_lat"}},
		{name: "one bad query among good ones", yaml: `
good: {query: SELECT 1 AS v, metrics: [{v: {usage: GAUGE}}]}
nosql: {metrics: [{v: {usage: GAUGE}}]}
badusage: {query: SELECT 1, metrics: [{v: {usage: NUMBER}}]}
unknown: {query: SELECT 1, cache_secondz: 3, metrics: [{v: {usage: GAUGE}}]}
colunknown: {query: SELECT 1, metrics: [{v: {usage: GAUGE, pg_version: ">=10"}}]}
nomap: {query: SELECT 1, metrics: [{v: {usage: MAPPEDMETRIC}}]}
strayMap: {query: SELECT 1, metrics: [{v: {usage: GAUGE, metric_mapping: {a: 1}}}]}
onlylabels: {query: SELECT 1, metrics: [{v: {usage: LABEL}}]}
badrange: {query: SELECT 1, runonserver: "~15", metrics: [{v: {usage: GAUGE}}]}
badpattern: {query: SELECT 1, target_databases: ["[a"], metrics: [{v: {usage: GAUGE}}]}
badname: {query: SELECT 1, name: "a-b", metrics: [{v: {usage: GAUGE}}]}
nometrics: {query: SELECT 1}
twice: {query: SELECT 1, metrics: [{v: {usage: GAUGE}}, {v: {usage: COUNTER}}]}
notbool: {query: SELECT 1, primary: "yes please", metrics: [{v: {usage: GAUGE}}]}
`, queries: []string{"good"}, metrics: []string{"cnpg_good_v"}, errs: []string{
			`badname: metrics[0].v: "cnpg_a-b_v" is not a Prometheus metric name`,
			`badpattern: target_databases[0]: "[a" is not a valid pattern`,
			`badrange: runonserver: "~15": pgsync reads the comparisons`,
			`badusage: metrics[0].v: usage "NUMBER" is none of DISCARD, LABEL, COUNTER`,
			`colunknown: metrics[0].v: the column: unknown key "pg_version"`,
			`nomap: metrics[0].v: metric_mapping: required with usage MAPPEDMETRIC`,
			`nometrics: metrics: required`,
			`nosql: query: required`,
			`notbool: primary is not a boolean`,
			`onlylabels: metrics: no column is a COUNTER`,
			`strayMap: metrics[0].v: metric_mapping: only with usage MAPPEDMETRIC`,
			`twice: metrics[1]: column "v" is listed twice`,
			`unknown: the query: unknown key "cache_secondz"`,
		}},
		{name: "not YAML", yaml: "a: [", errs: []string{"not YAML"}},
		{name: "a list", yaml: "- a\n- b\n", errs: []string{"not a mapping of query names"}},
		{name: "empty", yaml: "", errs: []string{"holds no query"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			qs, errs := Parse([]byte(tc.yaml))
			var keys []string
			for _, q := range qs {
				keys = append(keys, q.Key)
			}
			if strings.Join(keys, ",") != strings.Join(tc.queries, ",") {
				t.Errorf("queries %v, want %v", keys, tc.queries)
			}
			if len(qs) > 0 && strings.Join(qs[0].Metrics(), ",") != strings.Join(tc.metrics, ",") {
				t.Errorf("metrics %v, want %v", qs[0].Metrics(), tc.metrics)
			}
			if len(errs) != len(tc.errs) {
				t.Fatalf("errors %v, want %d: %v", errs, len(tc.errs), tc.errs)
			}
			for i, e := range errs {
				if !strings.Contains(e.Error(), tc.errs[i]) {
					t.Errorf("error %d: %q, want it to hold %q", i, e.Error(), tc.errs[i])
				}
			}
		})
	}
	qs, _ := Parse([]byte(`q: {query: SELECT 1, master: true, target_databases: [app, "x*"], cache_seconds: 7, metrics: [{v: {usage: GAUGE}}]}`))
	if q := qs[0]; !q.Primary || q.CacheSeconds != 7 || !Patterns(q.Databases) || Patterns([]string{"app"}) {
		t.Errorf("parsed %+v", q)
	}
}

func TestConstraint(t *testing.T) {
	for _, tc := range []struct {
		rng  string
		v    [3]int
		want bool
	}{
		{">=11.0.0", [3]int{15, 4, 0}, true},
		{">=16", [3]int{15, 4, 0}, false},
		{">=12.0.0 <=15.0.0", [3]int{15, 4, 0}, false},
		{">=12.0.0 <=15.0.0", [3]int{14, 9, 0}, true},
		{">=12.0.0, <16", [3]int{15, 4, 0}, true},
		{"<10 || >=15", [3]int{15, 0, 0}, true},
		{"<10 || >=16", [3]int{15, 0, 0}, false},
		{"15.4", [3]int{15, 4, 0}, true},
		{"!=15.4", [3]int{15, 4, 0}, false},
		{">9.6.20", ServerVersion(90624), true},
	} {
		c, err := ParseConstraint(tc.rng)
		if err != nil {
			t.Fatalf("%s: %v", tc.rng, err)
		}
		if got := c.Matches(tc.v); got != tc.want {
			t.Errorf("%s matches %v: %v, want %v", tc.rng, tc.v, got, tc.want)
		}
	}
	for _, bad := range []string{"", "^15", "~15", "15.x", "10 - 12", ">=a", "1.2.3.4", "||"} {
		if _, err := ParseConstraint(bad); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
	if v := ServerVersion(150004); v != [3]int{15, 4, 0} {
		t.Errorf("ServerVersion(150004) = %v", v)
	}
}

func TestTargets(t *testing.T) {
	existing := []string{"app", "postgres", "shop_eu", "shop_us"}
	for _, tc := range []struct {
		dbs  []string
		want string
	}{
		{nil, "app"},
		{[]string{"postgres"}, "postgres"},
		{[]string{"shop_*", "template1"}, "shop_eu,shop_us,template1"},
		{[]string{"*", "app"}, "app,postgres,shop_eu,shop_us"},
		{[]string{"none?"}, ""},
	} {
		if got := strings.Join(Targets(tc.dbs, "app", existing), ","); got != tc.want {
			t.Errorf("Targets(%v) = %s, want %s", tc.dbs, got, tc.want)
		}
	}
}

// TestRows: each usage's conversion, labels by name, and the refusals of
// a result that does not match the query's metrics.
func TestRows(t *testing.T) {
	qs, errs := Parse([]byte(`
q:
  query: SELECT ...
  metrics:
    - n: {usage: COUNTER, description: count}
    - db: {usage: LABEL}
    - g: {usage: GAUGE}
    - state: {usage: MAPPEDMETRIC, metric_mapping: {up: 1, down: 0}}
    - d: {usage: DURATION}
    - junk: {usage: DISCARD}
    - h: {usage: HISTOGRAM}
`))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	q := qs[0]
	cols := []string{"db", "n", "g", "state", "d", "junk", "h", "h_bucket", "h_sum", "h_count"}
	row := func(g any, state any, d any) []any {
		return []any{"app", float64(3), g, state, d, "x", []float64{1, 5}, []float64{2, 4}, float64(9), float64(4)}
	}
	ms, err := q.Rows(cols, [][]any{row(true, "up", "1.5s"), {nil, float64(1), nil, "down", 2 * time.Second, nil, []float64{1}, []float64{1}, nil, float64(1)}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, m := range ms {
		var pb dto.Metric
		if err := m.Write(&pb); err != nil {
			t.Fatal(err)
		}
		name := m.Desc().String()
		name = name[strings.Index(name, `"`)+1:]
		name = name[:strings.Index(name, `"`)]
		key := name + "{db=" + pb.GetLabel()[0].GetValue() + "}"
		switch {
		case pb.Counter != nil:
			got[key] = ftoa(pb.Counter.GetValue())
		case pb.Gauge != nil:
			got[key] = ftoa(pb.Gauge.GetValue())
		case pb.Histogram != nil:
			h := pb.Histogram
			got[key] = ftoa(h.GetSampleSum()) + "/" + ftoa(float64(h.GetSampleCount())) + "/" + ftoa(float64(h.Bucket[len(h.Bucket)-1].GetCumulativeCount()))
		}
	}
	want := map[string]string{
		"cnpg_q_n{db=app}": "3", "cnpg_q_g{db=app}": "1", "cnpg_q_state{db=app}": "1", "cnpg_q_d_milliseconds{db=app}": "1500", "cnpg_q_h{db=app}": "9/4/4",
		"cnpg_q_n{db=}": "1", "cnpg_q_g{db=}": "NaN", "cnpg_q_state{db=}": "0", "cnpg_q_d_milliseconds{db=}": "2000", "cnpg_q_h{db=}": "NaN/1/1",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %v", got)
	}
	for _, tc := range []struct {
		cols []string
		row  []any
		want string
	}{
		{cols[:9], row(1.0, "up", "1s")[:9], `HISTOGRAM h: the result has no column "h_count"`},
		{append([]string{"extra"}, cols...), append([]any{1.0}, row(1.0, "up", "1s")...), `column "extra" of the result is not in metrics`},
		{cols[1:], row(1.0, "up", "1s")[1:], `the result has no column "db"`},
		{cols, row("many", "up", "1s"), `column g: "many" is not a number`},
		{cols, row(1.0, "sideways", "1s"), `column state: "sideways" is not in metric_mapping`},
		{cols, row(1.0, "up", "soon"), `column d: "soon" is not a duration`},
	} {
		if _, err := q.Rows(tc.cols, [][]any{tc.row}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Rows: %v, want %q", err, tc.want)
		}
	}
}

func ftoa(f float64) string {
	if math.IsNaN(f) {
		return "NaN"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}
