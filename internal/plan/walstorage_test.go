package plan

import (
	"strings"
	"testing"
)

func withWAL(c, wal string) string { return c + "  walStorage:\n" + wal }

// TestWALVolumePlans: the WAL volume grows like storage (each kept
// instance's claim, offline when resizeInUseVolumes is false); the
// StatefulSet is re-created for its claim templates.
func TestWALVolumePlans(t *testing.T) {
	for _, tt := range []struct {
		name, base, head string
		want             []string
	}{
		{
			name: "WAL grows",
			base: withWAL(website(img131, 3), "    size: 1Gi\n"), head: withWAL(website(img131, 3), "    size: 2Gi\n"),
			want: []string{
				"update-objects",
				"resize-wal-volume website-0 primary 1Gi→2Gi",
				"resize-wal-volume website-1 standby 1Gi→2Gi",
				"resize-wal-volume website-2 standby 1Gi→2Gi",
			},
		},
		{
			name: "both grow, scaling down: removed instances are not resized",
			base: withWAL(website(img131, 3), "    size: 1Gi\n"),
			head: withWAL(strings.Replace(website(img131, 2), "10Gi", "20Gi", 1), "    size: 2Gi\n"),
			want: []string{
				"update-objects",
				"resize-volume website-0 primary 10Gi→20Gi",
				"resize-volume website-1 standby 10Gi→20Gi",
				"resize-wal-volume website-0 primary 1Gi→2Gi",
				"resize-wal-volume website-1 standby 1Gi→2Gi",
				"remove-instance website-2 standby",
			},
		},
		{
			name: "WAL unchanged: no-op",
			base: withWAL(website(img131, 2), "    size: 1Gi\n"), head: withWAL(website(img131, 2), "    size: 1Gi\n"),
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Make(mustLoad(t, tt.head), Converged(mustLoad(t, tt.base)), Options{})
			if err != nil {
				t.Fatal(err)
			}
			got := steps(p.Clusters[0])
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("steps:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if len(tt.want) > 0 && !strings.Contains(p.Clusters[0].Steps[0].Reason, "re-created") {
				t.Errorf("update-objects does not say the StatefulSet is re-created: %s", p.Clusters[0].Steps[0].Reason)
			}
		})
	}
}

func TestWALOfflineResizeOfThePrimaryIsDowntime(t *testing.T) {
	wal := func(size string) string {
		return withWAL(website(img131, 2), "    size: "+size+"\n    resizeInUseVolumes: false\n")
	}
	p, err := Make(mustLoad(t, wal("2Gi")), Converged(mustLoad(t, wal("1Gi"))), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for _, s := range p.Clusters[0].Steps {
		if s.Action != StepResizeWALVolume {
			continue
		}
		n++
		if want := s.Role == RolePrimary; s.Downtime != want {
			t.Errorf("%s (%s): downtime %v, want %v", s.Instance, s.Role, s.Downtime, want)
		}
		if !s.Restarts(mustLoad(t, wal("2Gi"))[0]) {
			t.Errorf("%s: an offline WAL resize restarts the instance (maintenance windows gate it)", s.Instance)
		}
	}
	if n != 2 {
		t.Errorf("%d WAL resize steps, want 2", n)
	}
}

func TestWALRefusals(t *testing.T) {
	for _, tt := range []struct {
		name, base, head, want string
	}{
		{"added to a running cluster", website(img131, 3), withWAL(website(img131, 3), "    size: 1Gi\n"),
			"c0.yaml:14:5: spec.walStorage: refused: a WAL volume cannot be added to a running cluster"},
		{"removed", withWAL(website(img131, 3), "    size: 1Gi\n"), website(img131, 3),
			"spec.walStorage: refused: the WAL volume cannot be removed from a running cluster"},
		{"shrinks", withWAL(website(img131, 3), "    size: 2Gi\n"), withWAL(website(img131, 3), "    size: 1Gi\n"),
			"c0.yaml:14:11: spec.walStorage.size: refused: WAL storage cannot shrink (2Gi → 1Gi)"},
		{"class changes", withWAL(website(img131, 3), "    size: 1Gi\n"), withWAL(website(img131, 3), "    size: 1Gi\n    storageClass: fast\n"),
			"c0.yaml:15:19: spec.walStorage.storageClass: refused: the storage class of existing WAL volumes cannot change ((cluster default) → fast)"},
		{"pvcTemplate changes", website(img131, 3), strings.Replace(website(img131, 3), "    size: 10Gi\n", "    size: 10Gi\n    pvcTemplate:\n      selector: {matchLabels: {tier: fast}}\n", 1),
			"c0.yaml:14:7: spec.storage.pvcTemplate: refused: a PersistentVolumeClaim's spec cannot change once it exists"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Make(mustLoad(t, tt.head), Converged(mustLoad(t, tt.base)), Options{})
			if err == nil {
				t.Fatalf("planned %+v, want a refusal", p)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to contain %q", err, tt.want)
			}
		})
	}
	// A pvcTemplate whose storage request grows is a resize, not a change.
	tmpl := func(size string) string {
		return strings.Replace(website(img131, 2), "    size: 10Gi\n", "    pvcTemplate:\n      resources: {requests: {storage: "+size+"}}\n", 1)
	}
	p, err := Make(mustLoad(t, tmpl("20Gi")), Converged(mustLoad(t, tmpl("10Gi"))), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(steps(p.Clusters[0]), ", "); !strings.Contains(got, "resize-volume website-0 primary 10Gi→20Gi") {
		t.Errorf("pvcTemplate storage grow: %s", got)
	}
}

func TestIdentityRefusals(t *testing.T) {
	base := website(img131, 2, "  podSecurityContext:\n    runAsUser: 26\n")
	for _, tt := range []struct{ name, head, want string }{
		{"runAsUser changes", website(img131, 2, "  podSecurityContext:\n    runAsUser: 1001\n"),
			"c0.yaml:14:16: spec.podSecurityContext.runAsUser: refused: the data directory belongs to the identity that created it (26 → 1001)"},
		{"fsGroup set later", website(img131, 2, "  podSecurityContext:\n    runAsUser: 26\n    fsGroup: 2000\n"),
			"spec.podSecurityContext.fsGroup: refused: the data directory belongs to the identity that created it (unset → 2000)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Make(mustLoad(t, tt.head), Converged(mustLoad(t, base)), Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	if _, err := Make(mustLoad(t, base), Converged(mustLoad(t, base)), Options{}); err != nil {
		t.Errorf("unchanged identity refused: %v", err)
	}
}
