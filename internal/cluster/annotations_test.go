package cluster

import (
	"strings"
	"testing"
	"time"

	// Zones as the pgsync binary reads them, whatever the machine has.
	_ "time/tzdata"

	"github.com/google/go-cmp/cmp"
)

// withAnnotations is valid with metadata.annotations holding lines (each
// "key: value", indented by the helper); line 7 is the first of them.
func withAnnotations(lines ...string) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString("    " + l + "\n")
	}
	return strings.Replace(valid, "  namespace: prod\n", "  namespace: prod\n  annotations:\n"+b.String(), 1)
}

func TestRolloutAnnotations(t *testing.T) {
	set, errs := load(t, File{Path: "c.yaml", Data: []byte(withAnnotations(
		`pgsync.io/maintenance-window: "Sat 02:00-04:00 Europe/Rome; mon-fri 22:00-02:00 UTC"`,
		`pgsync.io/suspend: "true"`,
		`pgsync.io/wave: "2"`,
		`pgsync.io/step-timeout: 10m`,
		`pgsync.io/lease-duration: 8s`,
		`example.com/owner: team-a`,
		`x.pgsync.io/other: "another prefix, not pgsync's"`,
	))})
	if errs != nil {
		t.Fatalf("rejected:\n%v", errs)
	}
	r, err := set.Clusters[0].Rollout()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.Window.String(), "Sat 02:00-04:00 Europe/Rome; Mon-Fri 22:00-02:00 UTC"; got != want {
		t.Errorf("window = %q, want %q", got, want)
	}
	if !r.Suspend || r.Wave != 2 || r.StepTimeout != 10*time.Minute || r.LeaseDuration != 8*time.Second {
		t.Errorf("rollout = %+v, want suspended, wave 2, step timeout 10m, lease duration 8s", r)
	}

	for _, tc := range []struct {
		value, clients string
		statusFrom     string
	}{
		{`pgsync.io/clients: cluster`, "cluster", ""},
		{`pgsync.io/clients: namespace`, "namespace", ""},
		{`pgsync.io/clients: "app in (shop,admin),tier!=batch"`, "app in (shop,admin),tier!=batch", ""},
		{`pgsync.io/clients: "!batch"`, "!batch", ""},
		{`pgsync.io/status-from: "10.0.0.0/24, 2001:db8::/64,192.0.2.10/32"`, "", "10.0.0.0/24 2001:db8::/64 192.0.2.10/32"},
	} {
		set, errs := load(t, File{Path: "c.yaml", Data: []byte(withAnnotations(tc.value))})
		if errs != nil {
			t.Errorf("%s: rejected:\n%v", tc.value, errs)
			continue
		}
		r, err := set.Clusters[0].Rollout()
		if err != nil || r.Clients != tc.clients || strings.Join(r.StatusFrom, " ") != tc.statusFrom {
			t.Errorf("%s: clients %q, status from %q (%v); want %q, %q", tc.value, r.Clients, r.StatusFrom, err, tc.clients, tc.statusFrom)
		}
	}

	set, errs = load(t, File{Path: "c.yaml", Data: []byte(valid)})
	if errs != nil {
		t.Fatal(errs)
	}
	r, err = set.Clusters[0].Rollout()
	if err != nil || !r.Window.IsZero() || r.Suspend || r.Wave != 0 || r.StepTimeout != 0 || r.LeaseDuration != 0 {
		t.Errorf("no annotations: rollout = %+v, %v; want the zero Rollout", r, err)
	}
}

func TestRolloutAnnotationErrors(t *testing.T) {
	const allowed = "(allowed in a Cluster file: pgsync.io/adopt-secrets, pgsync.io/clients, pgsync.io/lease-duration, pgsync.io/maintenance-window, pgsync.io/status-from, pgsync.io/step-timeout, pgsync.io/suspend, pgsync.io/wave; see docs/annotations.md)"
	for _, tc := range []struct {
		name          string
		lines         []string
		zeroInstances bool
		want          []string
	}{
		{
			name:  "window with a misspelt zone",
			lines: []string{`pgsync.io/maintenance-window: "Sat 02:00-04:00 Europe/Roma"`},
			want:  []string{`c.yaml:7:35: metadata.annotations[pgsync.io/maintenance-window]: window "Sat 02:00-04:00 Europe/Roma": unknown time zone "Europe/Roma" (allowed: a name of the IANA time zone database, such as UTC, Europe/Rome or America/New_York)`},
		},
		{
			name:  "empty window",
			lines: []string{`pgsync.io/maintenance-window: ""`},
			want:  []string{`c.yaml:7:35: metadata.annotations[pgsync.io/maintenance-window]: no window given: want DAYS HH:MM-HH:MM ZONE (e.g. "Sat 02:00-04:00 Europe/Rome" or "Mon-Fri 22:00-02:00 UTC")`},
		},
		{
			name:  "lease duration too short",
			lines: []string{`pgsync.io/lease-duration: 2s`},
			want:  []string{`c.yaml:7:31: metadata.annotations[pgsync.io/lease-duration]: invalid value "2s": want whole seconds from 3s to 5m0s, such as 8s or 30s (the primary Lease's duration; 15s when not set)`},
		},
		{
			name:  "lease duration in fractions of a second",
			lines: []string{`pgsync.io/lease-duration: 7500ms`},
			want:  []string{`c.yaml:7:31: metadata.annotations[pgsync.io/lease-duration]: invalid value "7500ms": want whole seconds from 3s to 5m0s, such as 8s or 30s (the primary Lease's duration; 15s when not set)`},
		},
		{
			name:  "clients: a typo of a keyword is not a selector",
			lines: []string{`pgsync.io/clients: namspace`},
			want:  []string{`c.yaml:7:24: metadata.annotations[pgsync.io/clients]: invalid value "namspace": "namspace" alone selects every pod that has the label: write namspace=VALUE (allowed: "namespace", the default: every pod of the namespace; "cluster": only the cluster's own pods; or a label selector of the namespace's pods such as app=shop or app in (shop,admin))`},
		},
		{
			name:  "clients: not a label selector",
			lines: []string{`pgsync.io/clients: "app in (shop"`},
			want:  []string{`c.yaml:7:24: metadata.annotations[pgsync.io/clients]: invalid value "app in (shop": unable to parse requirement: found '', expected: ',' or ')' (allowed: "namespace", the default: every pod of the namespace; "cluster": only the cluster's own pods; or a label selector of the namespace's pods such as app=shop or app in (shop,admin))`},
		},
		{
			name:  "clients: empty",
			lines: []string{`pgsync.io/clients: ""`},
			want:  []string{`c.yaml:7:24: metadata.annotations[pgsync.io/clients]: invalid value "": empty (allowed: "namespace", the default: every pod of the namespace; "cluster": only the cluster's own pods; or a label selector of the namespace's pods such as app=shop or app in (shop,admin))`},
		},
		{
			name:  "clients: gt has no NetworkPolicy form",
			lines: []string{`pgsync.io/clients: "tier>2"`},
			want:  []string{`c.yaml:7:24: metadata.annotations[pgsync.io/clients]: invalid value "tier>2": "tier": a NetworkPolicy cannot compare label values with gt (allowed: "namespace", the default: every pod of the namespace; "cluster": only the cluster's own pods; or a label selector of the namespace's pods such as app=shop or app in (shop,admin))`},
		},
		{
			name:  "status-from: not a CIDR",
			lines: []string{`pgsync.io/status-from: "10.0.0.0/8, 192.0.2.1"`},
			want:  []string{`c.yaml:7:28: metadata.annotations[pgsync.io/status-from]: invalid value "10.0.0.0/8, 192.0.2.1": "192.0.2.1" is not a CIDR (allowed: comma-separated CIDRs such as 10.0.0.0/24 or 192.0.2.10/32)`},
		},
		{
			name:  "status-from: host bits",
			lines: []string{`pgsync.io/status-from: 10.1.2.3/8`},
			want:  []string{`c.yaml:7:28: metadata.annotations[pgsync.io/status-from]: invalid value "10.1.2.3/8": "10.1.2.3/8" has host bits set (the prefix starts at 10.0.0.0/8) (allowed: comma-separated CIDRs such as 10.0.0.0/24 or 192.0.2.10/32)`},
		},
		{
			name:  "suspend is true or false",
			lines: []string{`pgsync.io/suspend: "yes"`},
			want:  []string{`c.yaml:7:24: metadata.annotations[pgsync.io/suspend]: invalid value "yes" (allowed: "true", "false")`},
		},
		{
			name:  "an unquoted boolean is not a string",
			lines: []string{`pgsync.io/suspend: true`},
			want:  []string{`c.yaml:7:24: metadata.annotations.pgsync.io/suspend: expected a string, got the boolean true (quote it to make it a string)`},
		},
		{
			name:  "negative wave",
			lines: []string{`pgsync.io/wave: "-1"`},
			want:  []string{`c.yaml:7:21: metadata.annotations[pgsync.io/wave]: invalid value "-1": want a non-negative integer such as 0, 1 or 2 (the rollout order: lower waves roll first; 0 when not set)`},
		},
		{
			name:  "wave with a sign",
			lines: []string{`pgsync.io/wave: "+1"`},
			want:  []string{`c.yaml:7:21: metadata.annotations[pgsync.io/wave]: invalid value "+1": want a non-negative integer such as 0, 1 or 2 (the rollout order: lower waves roll first; 0 when not set)`},
		},
		{
			name:  "wave out of range",
			lines: []string{`pgsync.io/wave: "99999999999"`},
			want:  []string{`c.yaml:7:21: metadata.annotations[pgsync.io/wave]: invalid value "99999999999": want a non-negative integer such as 0, 1 or 2 (the rollout order: lower waves roll first; 0 when not set)`},
		},
		{
			name:  "step timeout without a unit",
			lines: []string{`pgsync.io/step-timeout: "600"`},
			want:  []string{`c.yaml:7:29: metadata.annotations[pgsync.io/step-timeout]: invalid value "600": want a duration greater than zero, such as 10m or 1h30m`},
		},
		{
			name:  "step timeout of zero",
			lines: []string{`pgsync.io/step-timeout: 0s`},
			want:  []string{`c.yaml:7:29: metadata.annotations[pgsync.io/step-timeout]: invalid value "0s": want a duration greater than zero, such as 10m or 1h30m`},
		},
		{
			name:  "a typo is not ignored",
			lines: []string{`pgsync.io/maintenance-windows: "Sat 02:00-04:00 UTC"`},
			want:  []string{`c.yaml:7:36: metadata.annotations[pgsync.io/maintenance-windows]: unknown pgsync annotation ` + allowed},
		},
		{
			name:  "nor a name in another case",
			lines: []string{`PgSync.io/Suspend: "true"`},
			want:  []string{`c.yaml:7:24: metadata.annotations[PgSync.io/Suspend]: unknown pgsync annotation ` + allowed},
		},
		{
			name:  "nor an annotation pgsync writes on the objects it renders",
			lines: []string{`pgsync.io/halted: "by hand"`},
			want:  []string{`c.yaml:7:23: metadata.annotations[pgsync.io/halted]: unknown pgsync annotation ` + allowed},
		},
		{
			name: "every problem in one pass, with the other checks",
			lines: []string{
				`pgsync.io/wave: "first"`,
				`pgsync.io/suspend: "TRUE"`,
				`pgsync.io/maintenance-window: "Sat 02:00-04:00 UTC; Sun 3:00-05:00 UTC"`,
			},
			zeroInstances: true,
			want: []string{
				`c.yaml:9:35: metadata.annotations[pgsync.io/maintenance-window]: window "Sun 3:00-05:00 UTC": start "3:00" is not a time HH:MM from 00:00 to 23:59`,
				`c.yaml:8:24: metadata.annotations[pgsync.io/suspend]: invalid value "TRUE" (allowed: "true", "false")`,
				`c.yaml:7:21: metadata.annotations[pgsync.io/wave]: invalid value "first": want a non-negative integer such as 0, 1 or 2 (the rollout order: lower waves roll first; 0 when not set)`,
				"c.yaml:12:14: spec.instances: must be at least 1 (got 0)",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := withAnnotations(tc.lines...)
			if tc.zeroInstances {
				doc = strings.Replace(doc, "instances: 3", "instances: 0", 1)
			}
			_, errs := load(t, File{Path: "c.yaml", Data: []byte(doc)})
			var got []string
			for _, d := range errs {
				got = append(got, d.String())
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRolloutOfAChangedCluster: Rollout checks again, for a cluster whose
// annotations were set after Load (or that never went through it).
func TestRolloutOfAChangedCluster(t *testing.T) {
	c := &Cluster{Metadata: Metadata{Annotations: map[string]string{"pgsync.io/wave": "x", "pgsync.io/suspend": "true"}}}
	r, err := c.Rollout()
	want := `metadata.annotations[pgsync.io/wave]: invalid value "x": want a non-negative integer such as 0, 1 or 2 (the rollout order: lower waves roll first; 0 when not set)`
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
	if !r.Suspend {
		t.Errorf("the valid annotation was not read: %+v", r)
	}
}
