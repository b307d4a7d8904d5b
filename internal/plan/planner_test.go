package plan

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/revision"
)

// website is the seed's cluster with a placeholder for extra spec lines.
func website(image string, instances int, extra ...string) string {
	return fmt.Sprintf(`apiVersion: postgresql.k8s.enterprisedb.io/v1
kind: Cluster
metadata:
  name: website
  namespace: website
spec:
  description: "Backend database for our website application"
  imageName: %s
  instances: %d
  storage:
    storageClass: standard
    size: 10Gi
%s`, image, instances, strings.Join(extra, ""))
}

const (
	img131 = "quay.io/enterprisedb/postgresql:13.1"
	img132 = "quay.io/enterprisedb/postgresql:13.2"
)

func mustLoad(t *testing.T, docs ...string) []*cluster.Cluster {
	t.Helper()
	var files []cluster.File
	for i, d := range docs {
		files = append(files, cluster.File{Path: fmt.Sprintf("c%d.yaml", i), Data: []byte(d)})
	}
	set, err := cluster.Load(files)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return set.Clusters
}

// steps renders steps compactly: "action instance role from→to".
func steps(cp ClusterPlan) []string {
	var out []string
	for _, s := range cp.Steps {
		line := string(s.Action)
		if s.Instance != "" {
			line += " " + s.Instance + " " + string(s.Role)
		}
		if s.From != "" || s.To != "" {
			line += " " + tagOf(s.From) + "→" + tagOf(s.To)
		}
		if s.Downtime {
			line += " DOWNTIME"
		}
		out = append(out, line)
	}
	return out
}

func planOne(t *testing.T, base, head string, opts Options) ClusterPlan {
	t.Helper()
	var observed Observed
	if base != "" {
		observed = Converged(mustLoad(t, base))
	}
	var desired []*cluster.Cluster
	if head != "" {
		desired = mustLoad(t, head)
	}
	p, err := Make(desired, observed, opts)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	if len(p.Clusters) != 1 {
		t.Fatalf("got %d cluster plans, want 1", len(p.Clusters))
	}
	return p.Clusters[0]
}

func TestPlanBehaviour(t *testing.T) {
	params := func(kv ...string) string {
		s := "  postgresql:\n    parameters:\n"
		for i := 0; i+1 < len(kv); i += 2 {
			s += fmt.Sprintf("      %s: %q\n", kv[i], kv[i+1])
		}
		return s
	}
	tests := []struct {
		name       string
		base, head string
		opts       Options
		action     Action
		want       []string
		warnings   []string // substrings, one per warning
	}{
		{
			name: "create: primary first, then each standby in order",
			head: website(img131, 3), action: ActionCreate,
			want: []string{
				"update-objects",
				"create-instance website-0 primary →13.1",
				"create-instance website-1 standby →13.1",
				"create-instance website-2 standby →13.1",
			},
		},
		{
			name: "minor update: standbys one at a time, switchover, then the old primary",
			base: website(img131, 3), head: website(img132, 3), action: ActionUpdate,
			want: []string{
				"update-objects",
				"restart-instance website-2 standby 13.1→13.2",
				"restart-instance website-1 standby 13.1→13.2",
				"switchover website-0 primary website-0→website-1",
				"restart-instance website-0 standby 13.1→13.2",
			},
		},
		{
			name: "primaryUpdateMethod restart: the primary restarts last, in place",
			base: website(img131, 3, "  primaryUpdateMethod: restart\n"), head: website(img132, 3, "  primaryUpdateMethod: restart\n"), action: ActionUpdate,
			want: []string{
				"update-objects",
				"restart-instance website-2 standby 13.1→13.2",
				"restart-instance website-1 standby 13.1→13.2",
				"restart-instance website-0 primary 13.1→13.2 DOWNTIME",
			},
			warnings: []string{"primaryUpdateMethod is restart"},
		},
		{
			name: "supervised: await approval before the primary's step",
			base: website(img131, 3, "  primaryUpdateStrategy: supervised\n"), head: website(img132, 3, "  primaryUpdateStrategy: supervised\n"), action: ActionUpdate,
			want: []string{
				"update-objects",
				"restart-instance website-2 standby 13.1→13.2",
				"restart-instance website-1 standby 13.1→13.2",
				"await-approval website-0 primary",
				"switchover website-0 primary website-0→website-1",
				"restart-instance website-0 standby 13.1→13.2",
			},
		},
		{
			name: "supervised with restart method",
			base: website(img131, 2, "  primaryUpdateStrategy: supervised\n  primaryUpdateMethod: restart\n"),
			head: website(img132, 2, "  primaryUpdateStrategy: supervised\n  primaryUpdateMethod: restart\n"), action: ActionUpdate,
			want: []string{
				"update-objects",
				"restart-instance website-1 standby 13.1→13.2",
				"await-approval website-0 primary",
				"restart-instance website-0 primary 13.1→13.2 DOWNTIME",
			},
			warnings: []string{"primaryUpdateMethod is restart"},
		},
		{
			name: "single instance: restart with a warning",
			base: website(img131, 1), head: website(img132, 1), action: ActionUpdate,
			want: []string{
				"update-objects",
				"restart-instance website-0 primary 13.1→13.2 DOWNTIME",
			},
			warnings: []string{"a single instance"},
		},
		{
			name: "scale up 3 → 5",
			base: website(img131, 3), head: website(img131, 5), action: ActionUpdate,
			want: []string{
				"update-objects",
				"create-instance website-3 standby →13.1",
				"create-instance website-4 standby →13.1",
			},
		},
		{
			name: "scale down 5 → 2: highest ordinals first",
			base: website(img131, 5), head: website(img131, 2), action: ActionUpdate,
			want: []string{
				"update-objects",
				"remove-instance website-4 standby",
				"remove-instance website-3 standby",
				"remove-instance website-2 standby",
			},
		},
		{
			name: "scale down and image update: remove first, then roll what stays",
			base: website(img131, 4), head: website(img132, 2), action: ActionUpdate,
			want: []string{
				"update-objects",
				"remove-instance website-3 standby",
				"remove-instance website-2 standby",
				"restart-instance website-1 standby 13.1→13.2",
				"switchover website-0 primary website-0→website-1",
				"restart-instance website-0 standby 13.1→13.2",
			},
		},
		{
			name: "reload-only parameter reloads and restarts nothing",
			base: website(img131, 3, params("work_mem", "4MB")), head: website(img131, 3, params("work_mem", "8MB")), action: ActionUpdate,
			want: []string{"update-objects", "reload-config"},
		},
		{
			name: "restart parameter rolls like an image change",
			base: website(img131, 3), head: website(img131, 3, params("shared_buffers", "1GB")), action: ActionUpdate,
			want: []string{
				"update-objects",
				"restart-instance website-2 standby",
				"restart-instance website-1 standby",
				"switchover website-0 primary website-0→website-1",
				"restart-instance website-0 standby",
			},
		},
		{
			name: "reload and restart parameters together: reload first, then roll",
			base: website(img131, 2, params("work_mem", "4MB")), head: website(img131, 2, params("work_mem", "8MB", "max_connections", "200")), action: ActionUpdate,
			want: []string{
				"update-objects",
				"reload-config",
				"restart-instance website-1 standby",
				"switchover website-0 primary website-0→website-1",
				"restart-instance website-0 standby",
			},
		},
		{
			name: "unknown extension parameter: restart, with a note",
			base: website(img131, 2), head: website(img131, 2, params("myext.setting", "on")), action: ActionUpdate,
			want: []string{
				"update-objects",
				"restart-instance website-1 standby",
				"switchover website-0 primary website-0→website-1",
				"restart-instance website-0 standby",
			},
			warnings: []string{`"myext.setting" is an extension parameter pgsync does not know`},
		},
		{
			name: "storage grow: resize each volume, no restart",
			base: website(img131, 3), head: strings.Replace(website(img131, 3), "10Gi", "20Gi", 1), action: ActionUpdate,
			want: []string{
				"update-objects",
				"resize-volume website-0 primary 10Gi→20Gi",
				"resize-volume website-1 standby 10Gi→20Gi",
				"resize-volume website-2 standby 10Gi→20Gi",
			},
		},
		{
			name: "description only: objects, nothing restarts",
			base: website(img131, 3), head: strings.Replace(website(img131, 3), "Backend database", "The database", 1), action: ActionUpdate,
			want: []string{"update-objects"},
		},
		{
			name: "untouched: no-op",
			base: website(img131, 3), head: website(img131, 3), action: ActionNoOp,
		},
		{
			name: "defaults written out are not a change",
			base: website(img131, 3), head: website(img131, 3, "  primaryUpdateMethod: switchover\n  stopDelay: 1800\n"), action: ActionNoOp,
		},
		{
			name: "removed from Git: orphan, no steps",
			base: website(img131, 3), action: ActionOrphan,
			warnings: []string{"removed from Git"},
		},
		{
			name: "removed from Git with --prune: delete, volumes and Secrets kept",
			base: website(img131, 3), opts: Options{Prune: true}, action: ActionDelete,
			want:     []string{"delete-cluster DOWNTIME"},
			warnings: []string{"stops serving"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cp := planOne(t, tt.base, tt.head, tt.opts)
			if cp.Action != tt.action {
				t.Errorf("action = %s, want %s", cp.Action, tt.action)
			}
			if diff := cmp.Diff(tt.want, steps(cp)); diff != "" {
				t.Errorf("steps (-want +got):\n%s", diff)
			}
			if len(cp.Warnings) != len(tt.warnings) {
				t.Fatalf("warnings = %q, want %d", cp.Warnings, len(tt.warnings))
			}
			for i, w := range tt.warnings {
				if !strings.Contains(cp.Warnings[i], w) {
					t.Errorf("warning %d = %q, want it to contain %q", i, cp.Warnings[i], w)
				}
			}
		})
	}
}

func TestPlanRefusals(t *testing.T) {
	tests := []struct {
		name, base, head string
		want             string
	}{
		{
			name: "major version change",
			base: website(img131, 3), head: website("quay.io/enterprisedb/postgresql:14.1", 3),
			want: "c0.yaml:8:14: spec.imageName: refused: a major version change (PostgreSQL 13 → 14) cannot be rolled out",
		},
		{
			name: "storage shrink",
			base: website(img131, 3), head: strings.Replace(website(img131, 3), "10Gi", "5Gi", 1),
			want: "c0.yaml:12:11: spec.storage.size: refused: storage cannot shrink (10Gi → 5Gi)",
		},
		{
			name: "storage class change",
			base: website(img131, 3), head: strings.Replace(website(img131, 3), "storageClass: standard", "storageClass: fast", 1),
			want: "c0.yaml:11:19: spec.storage.storageClass: refused: the storage class of existing volumes cannot change (standard → fast)",
		},
		{
			name: "unknown parameter",
			head: website(img131, 3, "  postgresql:\n    parameters:\n      shared_bufers: 1GB\n"),
			want: `c0.yaml:15:22: spec.postgresql.parameters.shared_bufers: unknown configuration parameter: "shared_bufers" in PostgreSQL 13 (did you mean "shared_buffers"?)`,
		},
		{
			name: "parameter managed by pgsync",
			head: website(img131, 3, "  postgresql:\n    parameters:\n      port: \"5433\"\n"),
			want: `c0.yaml:15:13: spec.postgresql.parameters.port: parameter "port" is managed by pgsync`,
		},
		{
			name: "parameter of a later major",
			head: website(img131, 3, "  postgresql:\n    parameters:\n      transaction_timeout: 10s\n"),
			want: `spec.postgresql.parameters.transaction_timeout: unknown configuration parameter: "transaction_timeout" does not exist in PostgreSQL 13 (it exists in 17, 18, 19)`,
		},
		// The differences between majors that a user meets: a parameter
		// added in 17 on a 16 image, one added in 18 on a 17 image, one
		// removed in 17, a type that changed in 18 (log_connections, a
		// bool before), and bounds of 16 and 18.
		{
			name: "17-only parameter on a 16 image",
			head: website("ghcr.io/cloudnative-pg/postgresql:16.4", 3, "  postgresql:\n    parameters:\n      transaction_timeout: 10s\n"),
			want: `c0.yaml:15:28: spec.postgresql.parameters.transaction_timeout: unknown configuration parameter: "transaction_timeout" does not exist in PostgreSQL 16 (it exists in 17, 18, 19)`,
		},
		{
			name: "18-only parameter on a 17 image",
			head: website("ghcr.io/cloudnative-pg/postgresql:17.6", 3, "  postgresql:\n    parameters:\n      io_method: worker\n"),
			want: `spec.postgresql.parameters.io_method: unknown configuration parameter: "io_method" does not exist in PostgreSQL 17 (it exists in 18, 19)`,
		},
		{
			name: "parameter removed in 17",
			head: website("ghcr.io/cloudnative-pg/postgresql:17.6", 3, "  postgresql:\n    parameters:\n      old_snapshot_threshold: 1h\n"),
			want: `spec.postgresql.parameters.old_snapshot_threshold: unknown configuration parameter: "old_snapshot_threshold" does not exist in PostgreSQL 17 (it exists in 13, 14, 15, 16)`,
		},
		{
			name: "18's log_connections list on a 17 image",
			head: website("ghcr.io/cloudnative-pg/postgresql:17.6", 3, "  postgresql:\n    parameters:\n      log_connections: receipt,authentication\n"),
			want: `spec.postgresql.parameters.log_connections: invalid value for log_connections (bool)`,
		},
		{
			name: "value outside an 18 bound",
			head: website("ghcr.io/cloudnative-pg/postgresql:18.1", 3, "  postgresql:\n    parameters:\n      io_workers: \"64\"\n"),
			want: `spec.postgresql.parameters.io_workers: invalid value for io_workers (integer): "64" is outside the allowed range 1 .. 32`,
		},
		{
			name: "value outside a 16 bound",
			head: website("ghcr.io/cloudnative-pg/postgresql:16.4", 3, "  postgresql:\n    parameters:\n      maintenance_work_mem: 512kB\n"),
			want: `spec.postgresql.parameters.maintenance_work_mem: invalid value for maintenance_work_mem (integer): "512kB" is outside the allowed range 1024 (kB)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var observed Observed
			if tt.base != "" {
				observed = Converged(mustLoad(t, tt.base))
			}
			p, err := Make(mustLoad(t, tt.head), observed, Options{})
			if err == nil {
				t.Fatalf("planned %+v, want a refusal", p)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to contain %q", err, tt.want)
			}
			if p != nil {
				t.Errorf("a refused plan must not be returned")
			}
		})
	}
}

// PostgreSQL 18 images plan, with 18's parameters and values (the 17
// image's refusal of the same file is in TestPlanRefusals).
func TestPlanPostgreSQL18Parameters(t *testing.T) {
	head := website("ghcr.io/cloudnative-pg/postgresql:18.1", 3,
		"  postgresql:\n    parameters:\n      io_method: worker\n      io_workers: \"8\"\n      maintenance_work_mem: 512kB\n      log_connections: receipt,authentication\n")
	if _, err := Make(mustLoad(t, head), Observed{}, Options{}); err != nil {
		t.Fatalf("PostgreSQL 18 file refused: %v", err)
	}
}

// An observed state mid-rollout: the planner continues where it left off,
// which is what lets the daemon resume after a crash (invariant 6).
func TestPlanResumesMidRollout(t *testing.T) {
	base, head := mustLoad(t, website(img131, 3))[0], mustLoad(t, website(img132, 3))[0]
	observed := Converged([]*cluster.Cluster{base})
	// website-2 was already restarted onto 13.2; the objects were updated.
	observed.Clusters[0].Spec = head
	observed.Clusters[0].Instances[2] = updatedInstance(head, 2, true)
	p, err := Make([]*cluster.Cluster{head}, observed, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"restart-instance website-1 standby 13.1→13.2",
		"switchover website-0 primary website-0→website-1",
		"restart-instance website-0 standby 13.1→13.2",
	}
	if diff := cmp.Diff(want, steps(p.Clusters[0])); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// updatedInstance is an instance restarted onto spec c.
func updatedInstance(c *cluster.Cluster, ordinal int, ready bool) ObservedInstance {
	return ObservedInstance{Ordinal: ordinal, Image: c.Spec.ImageName, Revision: revision.Restart(c), Config: revision.Config(c),
		VolumeSize: c.Spec.Storage.Size, Ready: ready}
}

// A new pod that is not ready halts the rollout: nothing further is
// touched, the primary included (invariant 5).
func TestPlanHaltsOnUnreadyUpdatedInstance(t *testing.T) {
	base, head := mustLoad(t, website(img131, 3))[0], mustLoad(t, website(img132, 3))[0]
	observed := Converged([]*cluster.Cluster{base})
	observed.Clusters[0].Spec = head
	observed.Clusters[0].Instances[2] = updatedInstance(head, 2, false)
	p, err := Make([]*cluster.Cluster{head}, observed, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cp := p.Clusters[0]
	if len(cp.Steps) != 0 {
		t.Errorf("steps = %q, want none", steps(cp))
	}
	if len(cp.Warnings) != 1 || !strings.Contains(cp.Warnings[0], "rollout held: website-2") {
		t.Errorf("warnings = %q", cp.Warnings)
	}

	// A fixing commit (a different image) restarts the broken instance
	// first, then continues.
	fixed := mustLoad(t, website("quay.io/enterprisedb/postgresql:13.3", 3))[0]
	p, err = Make([]*cluster.Cluster{fixed}, observed, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"update-objects",
		"restart-instance website-2 standby 13.2→13.3",
		"restart-instance website-1 standby 13.1→13.3",
		"switchover website-0 primary website-0→website-1",
		"restart-instance website-0 standby 13.1→13.3",
	}
	if diff := cmp.Diff(want, steps(p.Clusters[0])); diff != "" {
		t.Errorf("after the fix (-want +got):\n%s", diff)
	}
}

// The most lagging standby restarts first; the least lagging becomes the
// switchover target.
func TestPlanOrdersByLag(t *testing.T) {
	base, head := mustLoad(t, website(img131, 4))[0], mustLoad(t, website(img132, 4))[0]
	observed := Converged([]*cluster.Cluster{base})
	observed.Clusters[0].Instances[1].LagBytes = 500
	observed.Clusters[0].Instances[2].LagBytes = 10
	observed.Clusters[0].Instances[3].LagBytes = 100
	p, err := Make([]*cluster.Cluster{head}, observed, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"update-objects",
		"restart-instance website-1 standby 13.1→13.2",
		"restart-instance website-3 standby 13.1→13.2",
		"restart-instance website-2 standby 13.1→13.2",
		"switchover website-0 primary website-0→website-2",
		"restart-instance website-0 standby 13.1→13.2",
	}
	if diff := cmp.Diff(want, steps(p.Clusters[0])); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestInvariantOneInstanceAtATimePrimaryLast(t *testing.T) {
	// Over many shapes, every restart step names one instance, each
	// instance restarts at most once, and the primary's restart (or the
	// switchover away from it) comes after every standby's restart.
	for n := 1; n <= 6; n++ {
		for _, method := range []string{"switchover", "restart"} {
			extra := "  primaryUpdateMethod: " + method + "\n"
			cp := planOne(t, website(img131, n, extra), website(img132, n, extra), Options{})
			seen := map[string]bool{}
			primaryTouched := false
			for _, s := range cp.Steps {
				switch s.Action {
				case StepRestartInstance:
					if seen[s.Instance] {
						t.Fatalf("n=%d %s: %s restarted twice", n, method, s.Instance)
					}
					seen[s.Instance] = true
					if s.Instance != "website-0" && primaryTouched {
						t.Fatalf("n=%d %s: standby %s restarted after the primary", n, method, s.Instance)
					}
					if s.Instance == "website-0" {
						primaryTouched = true
					}
				case StepSwitchover:
					primaryTouched = true
				}
			}
			if len(seen) != n {
				t.Fatalf("n=%d %s: %d instances restarted, want %d", n, method, len(seen), n)
			}
		}
	}
}

func TestChangesListed(t *testing.T) {
	cp := planOne(t, website(img131, 3), website(img132, 3, "  postgresql:\n    parameters:\n      work_mem: 8MB\n"), Options{})
	var got []string
	for _, c := range cp.Changes {
		got = append(got, fmt.Sprintf("%s: %s → %s", c.Path, quoteOrUnset(c.Before), quoteOrUnset(c.After)))
	}
	want := []string{
		`spec.imageName: "quay.io/enterprisedb/postgresql:13.1" → "quay.io/enterprisedb/postgresql:13.2"`,
		`spec.postgresql.parameters.work_mem: (unset) → "8MB"`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestSeedFileCreatesPrimaryThenStandbys(t *testing.T) {
	data, err := os.ReadFile("../cluster/testdata/seed-website.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cp := planOne(t, "", string(data), Options{})
	want := []string{
		"update-objects",
		"create-instance website-0 primary →13.1",
		"create-instance website-1 standby →13.1",
		"create-instance website-2 standby →13.1",
	}
	if diff := cmp.Diff(want, steps(cp)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// Scale down that would remove the primary switches over first; during an
// image update no standby is updated yet, so any ready one takes over, and
// the kept instances then roll as usual.
func TestPlanScaleDownMovesPrimary(t *testing.T) {
	tests := []struct {
		name      string
		headImage string
		want      []string
	}{
		{
			name: "scale down only", headImage: img131,
			want: []string{
				"update-objects",
				"switchover website-2 primary website-2→website-0",
				"remove-instance website-2 standby",
			},
		},
		{
			name: "scale down during an image update", headImage: img132,
			want: []string{
				"update-objects",
				"switchover website-2 primary website-2→website-0",
				"remove-instance website-2 standby",
				"restart-instance website-1 standby 13.1→13.2",
				"switchover website-0 primary website-0→website-1",
				"restart-instance website-0 standby 13.1→13.2",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base, head := mustLoad(t, website(img131, 3))[0], mustLoad(t, website(tt.headImage, 2))[0]
			observed := Converged([]*cluster.Cluster{base})
			observed.Clusters[0].Primary = 2
			p, err := Make([]*cluster.Cluster{head}, observed, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, steps(p.Clusters[0])); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// Scale down 3 → 1 with the primary at ordinal 2 and website-0 crashed:
// website-0 is restarted first, then takes over, then the rest go.
func TestPlanScaleDownRestartsADownStandbyToTakeOver(t *testing.T) {
	base, head := mustLoad(t, website(img131, 3))[0], mustLoad(t, website(img131, 1))[0]
	observed := Converged([]*cluster.Cluster{base})
	observed.Clusters[0].Primary = 2
	observed.Clusters[0].Instances[0].Ready = false
	observed.Clusters[0].Instances[1].Ready = false
	observed.Clusters[0].Instances[0].Revision = "crashed-on-an-old-spec"
	observed.Clusters[0].Instances[1].Revision = "crashed-on-an-old-spec"
	p, err := Make([]*cluster.Cluster{head}, observed, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"update-objects",
		"restart-instance website-0 standby",
		"switchover website-2 primary website-2→website-0",
		"remove-instance website-2 standby",
		"remove-instance website-1 standby",
	}
	if diff := cmp.Diff(want, steps(p.Clusters[0])); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
