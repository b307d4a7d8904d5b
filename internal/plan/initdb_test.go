package plan

import (
	"os"
	"strings"
	"testing"
)

// TestInitDBChangeRefused: bootstrap settings cannot take effect on a
// running cluster, so a change is refused at the field rather than rolled
// out (or ignored); unchanged, the cluster converges.
func TestInitDBChangeRefused(t *testing.T) {
	initdb := func(db string) string {
		return "  bootstrap:\n    initdb:\n      database: " + db + "\n"
	}
	for _, tt := range []struct{ name, base, head string }{
		{"changed", website(img131, 2, initdb("shop")), website(img131, 2, initdb("store"))},
		{"added", website(img131, 2), website(img131, 2, initdb("shop"))},
		{"removed", website(img131, 2, initdb("shop")), website(img131, 2)},
		// A file of post-init SQL named later ran never; one no longer
		// named ran already.
		{"sql refs added", website(img131, 2, initdb("shop")),
			website(img131, 2, initdb("shop")+"      postInitApplicationSQLRefs:\n        configMapRefs: [{name: sql, key: a.sql}]\n")},
		{"sql refs changed", website(img131, 2, initdb("shop")+"      postInitSQLRefs:\n        secretRefs: [{name: sql, key: a.sql}]\n"),
			website(img131, 2, initdb("shop")+"      postInitSQLRefs:\n        secretRefs: [{name: sql, key: b.sql}]\n")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Make(mustLoad(t, tt.head), Converged(mustLoad(t, tt.base)), Options{})
			if err == nil || !strings.Contains(err.Error(), "spec.bootstrap.initdb: refused: bootstrap settings take effect once") {
				t.Fatalf("error = %v, want the initdb refusal", err)
			}
		})
	}
	same := website(img131, 2, initdb("shop"))
	p, err := Make(mustLoad(t, same), Converged(mustLoad(t, same)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(p.Clusters[0].Steps); n != 0 {
		t.Errorf("unchanged initdb: %d steps, want none", n)
	}
}

// TestInitDBFilesPlanOffline: the CloudNativePG-style files plan as new
// clusters (initdb on the first instance).
func TestInitDBFilesPlanOffline(t *testing.T) {
	for _, f := range []string{"initdb-app.yaml", "initdb-locale.yaml", "initdb-icu.yaml", "initdb-sql-refs.yaml"} {
		data, err := os.ReadFile("../cluster/testdata/cnpg/" + f)
		if err != nil {
			t.Fatal(err)
		}
		p, err := Make(mustLoad(t, string(data)), Observed{}, Options{})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if got := strings.Join(steps(p.Clusters[0]), ", "); !strings.Contains(got, "create-instance") {
			t.Errorf("%s: steps %s", f, got)
		}
	}
}
