package instance

import (
	"reflect"
	"testing"

	pc "github.com/pgsync/pgsync/internal/podcontract"
)

func TestSyncStandbyNames(t *testing.T) {
	three := []string{"foo-0", "foo-1", "foo-2"}
	five := []string{"bar-0", "bar-1", "bar-2", "bar-3", "bar-4"}
	intp := func(i int) *int { return &i }
	set := func(names ...string) map[string]bool {
		m := map[string]bool{}
		for _, n := range names {
			m[n] = true
		}
		return m
	}
	for _, tc := range []struct {
		name      string
		instances []string
		sync      *pc.Synchronous
		self      string
		streaming map[string]bool
		want      string
	}{
		{"off", three, nil, "foo-0", set("foo-1"), ""},
		{"required, all streaming", three, &pc.Synchronous{Method: "any", Number: 1, DataDurability: "required"},
			"foo-0", set("foo-1", "foo-2"), `ANY 1 ("foo-1","foo-2","foo-0")`},
		{"required, one away goes last", three, &pc.Synchronous{Method: "any", Number: 1, DataDurability: "required"},
			"foo-0", set("foo-2"), `ANY 1 ("foo-2","foo-1","foo-0")`},
		{"required, none streaming still lists all (writes wait)", three, &pc.Synchronous{Method: "any", Number: 1, DataDurability: "required"},
			"foo-0", nil, `ANY 1 ("foo-1","foo-2","foo-0")`},
		{"empty durability is required", three, &pc.Synchronous{Method: "first", Number: 2},
			"foo-1", set("foo-0", "foo-2"), `FIRST 2 ("foo-0","foo-2","foo-1")`},
		{"preferred, all streaming", five, &pc.Synchronous{Method: "any", Number: 2, DataDurability: "preferred"},
			"bar-0", set("bar-1", "bar-2", "bar-3", "bar-4"), `ANY 2 ("bar-1","bar-2","bar-3","bar-4")`},
		{"preferred, two away", five, &pc.Synchronous{Method: "any", Number: 2, DataDurability: "preferred"},
			"bar-0", set("bar-3", "bar-4"), `ANY 2 ("bar-3","bar-4")`},
		{"preferred, number lowered", five, &pc.Synchronous{Method: "any", Number: 2, DataDurability: "preferred"},
			"bar-0", set("bar-4"), `ANY 1 ("bar-4")`},
		{"preferred, none streaming: asynchronous", five, &pc.Synchronous{Method: "any", Number: 2, DataDurability: "preferred"},
			"bar-0", nil, ""},
		{"max names from cluster and pre", three, &pc.Synchronous{Method: "any", Number: 1, MaxStandbyNamesFromCluster: intp(1), StandbyNamesPre: []string{"angus"}},
			"foo-0", set("foo-1", "foo-2"), `ANY 1 ("angus","foo-1")`},
		{"max zero: only the given names", three, &pc.Synchronous{Method: "any", Number: 1, MaxStandbyNamesFromCluster: intp(0), StandbyNamesPre: []string{"angus", "malcolm"}},
			"foo-0", set("foo-1", "foo-2"), `ANY 1 ("angus","malcolm")`},
		{"first with pre and post", three, &pc.Synchronous{Method: "first", Number: 2, MaxStandbyNamesFromCluster: intp(1), StandbyNamesPre: []string{"angus"}, StandbyNamesPost: []string{"malcolm"}},
			"foo-0", set("foo-1", "foo-2"), `FIRST 2 ("angus","foo-1","malcolm")`},
		{"a quote in a name is doubled", []string{"a"}, &pc.Synchronous{Method: "any", Number: 1, MaxStandbyNamesFromCluster: intp(0), StandbyNamesPre: []string{`x"y`}},
			"a", nil, `ANY 1 ("x""y")`},
		{"legacy, max streaming", three, &pc.Synchronous{Legacy: true, Number: 2, Min: 1},
			"foo-0", set("foo-1", "foo-2"), `ANY 2 ("foo-1","foo-2")`},
		{"legacy, fewer than max: min", three, &pc.Synchronous{Legacy: true, Number: 2, Min: 1},
			"foo-0", set("foo-2"), `ANY 1 ("foo-2")`},
		{"legacy, fewer than min: what streams", five, &pc.Synchronous{Legacy: true, Number: 3, Min: 2},
			"bar-0", set("bar-2"), `ANY 1 ("bar-2")`},
		{"legacy, none streaming", three, &pc.Synchronous{Legacy: true, Number: 2, Min: 1},
			"foo-0", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := syncStandbyNames(pc.Replication{Instances: tc.instances, Synchronous: tc.sync}, tc.self, tc.streaming)
			if got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// TestSyncSetOfNames: what the manager publishes for an election is the
// rendered list read back, the primary left out; a reordering is the same
// set, another number or member is not.
func TestSyncSetOfNames(t *testing.T) {
	for _, tc := range []struct {
		names string
		want  pc.SyncSet
	}{
		{`ANY 1 ("db-1","db-2","db-0")`, pc.SyncSet{Method: "any", Number: 1, Standbys: []string{"db-1", "db-2"}}},
		{`FIRST 2 ("angus","db-2","we""ird")`, pc.SyncSet{Method: "first", Number: 2, Standbys: []string{"angus", "db-2", `we"ird`}}},
		{"", pc.SyncSet{}},
		{"garbage", pc.SyncSet{}},
	} {
		if got := setOfNames(tc.names, "db-0"); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("setOfNames(%q) = %+v, want %+v", tc.names, got, tc.want)
		}
	}
	rep := pc.Replication{Instances: []string{"db-0", "db-1", "db-2"}, Synchronous: &pc.Synchronous{Method: "any", Number: 1, DataDurability: "required"}}
	streaming := map[string]bool{"db-2": true}
	if got, want := setOfNames(syncStandbyNames(rep, "db-0", streaming), "db-0"), syncSet(rep, "db-0", streaming); !reflect.DeepEqual(got, want) {
		t.Errorf("rendered and read back %+v, computed %+v", got, want)
	}
	a := pc.SyncSet{Method: "any", Number: 1, Standbys: []string{"db-1", "db-2"}}
	for _, tc := range []struct {
		b    pc.SyncSet
		same bool
	}{
		{pc.SyncSet{Method: "any", Number: 1, Standbys: []string{"db-2", "db-1"}, Settled: true}, true},
		{pc.SyncSet{Method: "any", Number: 2, Standbys: []string{"db-1", "db-2"}}, false},
		{pc.SyncSet{Method: "any", Number: 1, Standbys: []string{"db-1"}}, false},
		{pc.SyncSet{Method: "first", Number: 1, Standbys: []string{"db-1", "db-2"}}, false},
		{pc.SyncSet{}, false},
	} {
		if got := sameSet(a, tc.b); got != tc.same {
			t.Errorf("sameSet(%+v, %+v) = %v", a, tc.b, got)
		}
	}
	if !sameSet(pc.SyncSet{}, pc.SyncSet{Method: "any"}) {
		t.Error("two asynchronous sets differ")
	}
}
