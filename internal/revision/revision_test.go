package revision

import (
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pgsync/pgsync/internal/cluster"
)

var update = flag.Bool("update", false, "rewrite testdata/examples.golden")

// minimal is a cluster with every hashed field at its default, plus extra
// spec lines.
func minimal(extra ...string) string {
	return `apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata:
  name: web
  namespace: shop
spec:
  imageName: localhost:5000/postgresql:15.18
  instances: 3
  storage:
    size: 1Gi
` + strings.Join(extra, "")
}

// full sets every field the encoding hashes to a value that is not its
// default.
var full = minimal(`  postgresql:
    parameters:
      shared_buffers: 128MB
      work_mem: 8MB
    pg_hba:
      - host all all 10.0.0.0/8 scram-sha-256
    synchronous:
      method: first
      number: 2
      maxStandbyNamesFromCluster: 2
      standbyNamesPre: [angus]
      standbyNamesPost: [malcolm]
  managed:
    roles:
    - {name: dante, login: true, inRoles: [pg_monitor], passwordSecret: {name: dante-pw}}
  replicationSlots:
    highAvailability: {enabled: false, slotPrefix: _pg_}
    updateInterval: 10
    synchronizeReplicas: {enabled: false, excludePatterns: ["^keep"]}
  monitoring: {disableDefaultQueries: true}
  certificates: {serverAltDNSNames: [db.example.com]}
  enableSuperuserAccess: true
  superuserSecret: {name: web-su}
  resources:
    requests: {cpu: 100m, memory: 128Mi}
    limits: {memory: 512Mi}
  affinity:
    enablePodAntiAffinity: false
    topologyKey: topology.kubernetes.io/zone
    podAntiAffinityType: required
    nodeSelector: {disk: ssd}
    tolerations:
    - {key: dedicated, operator: Exists, effect: NoExecute, tolerationSeconds: 30}
    - {key: spot, value: "yes", effect: NoSchedule}
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms: [{matchExpressions: [{key: pool, operator: In, values: [db]}]}]
    additionalPodAffinity:
      preferredDuringSchedulingIgnoredDuringExecution:
        - {weight: 20, podAffinityTerm: {topologyKey: topology.kubernetes.io/zone, labelSelector: {matchLabels: {app: shop}}}}
    additionalPodAntiAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        - {topologyKey: kubernetes.io/hostname, labelSelector: {matchLabels: {workload: batch}}}
  imagePullSecrets: [{name: regcred}]
  priorityClassName: db-high
  schedulerName: my-scheduler
  topologySpreadConstraints:
    - {maxSkew: 1, topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {pgsync.io/cluster: web}}}
  ephemeralVolumesSizeLimit: {temporaryData: 1Gi}
`)

func load(t *testing.T, doc string) *cluster.Cluster {
	t.Helper()
	set, err := cluster.Load([]cluster.File{{Path: "c.yaml", Data: []byte(doc)}})
	if err != nil {
		t.Fatalf("load: %v\n%s", err, doc)
	}
	if len(set.Clusters) != 1 {
		t.Fatalf("got %d clusters, want 1", len(set.Clusters))
	}
	return set.Clusters[0]
}

func TestFormat(t *testing.T) {
	shape := regexp.MustCompile(`^v1-[0-9a-f]{12}$`)
	for _, doc := range []string{minimal(), full} {
		c := load(t, doc)
		for _, rev := range []string{Restart(c), Config(c)} {
			if !shape.MatchString(rev) {
				t.Errorf("revision %q is not v1- and 12 hex digits", rev)
			}
		}
	}
}

// TestDefaultsOmitted pins the rule that keeps revisions stable across
// upgrades: a cluster with every hashed field at its default encodes its
// image and nothing else, so a field added later (omitted at its default)
// changes no existing revision.
func TestDefaultsOmitted(t *testing.T) {
	c := load(t, minimal())
	if got, want := restartFields(c), []string{`image="localhost:5000/postgresql:15.18"`}; strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("restart encoding %q, want %q", got, want)
	}
	if got := configFields(c); len(got) != 0 {
		t.Errorf("config encoding %q, want none", got)
	}
}

func TestSame(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b string
	}{
		{"explicit affinity defaults",
			minimal("  affinity:\n    enablePodAntiAffinity: true\n    topologyKey: kubernetes.io/hostname\n    podAntiAffinityType: preferred\n"),
			minimal()},
		{"empty maps and lists",
			minimal("  postgresql:\n    parameters: {}\n    pg_hba: []\n  resources:\n    requests: {}\n    limits: {}\n  affinity:\n    nodeSelector: {}\n    tolerations: []\n"),
			minimal()},
		{"1Gi is 1024Mi, 500m is 0.5",
			minimal("  resources:\n    requests: {cpu: 500m, memory: 1Gi}\n    limits: {memory: 1Gi}\n"),
			minimal("  resources:\n    requests: {cpu: \"0.5\", memory: 1024Mi}\n    limits: {memory: 1073741824}\n")},
		{"parameter names are case-insensitive",
			minimal("  postgresql:\n    parameters:\n      shared_buffers: 128MB\n      work_mem: 8MB\n"),
			minimal("  postgresql:\n    parameters:\n      Shared_Buffers: 128MB\n      WORK_MEM: 8MB\n")},
		{"toleration operator Equal written out",
			minimal("  affinity:\n    tolerations:\n    - {key: spot, operator: Equal, value: \"yes\"}\n"),
			minimal("  affinity:\n    tolerations:\n    - {key: spot, value: \"yes\"}\n")},
		{"enableSuperuserAccess false written out", minimal("  enableSuperuserAccess: false\n"), minimal()},
		{"settings that neither a restart nor a reload applies",
			minimal(),
			strings.Replace(strings.Replace(minimal("  description: other\n  primaryUpdateStrategy: supervised\n  primaryUpdateMethod: restart\n  stopDelay: 60\n  imagePullPolicy: Always\n"),
				"instances: 3", "instances: 5", 1), "size: 1Gi", "size: 2Gi", 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := load(t, tc.a), load(t, tc.b)
			if Restart(a) != Restart(b) {
				t.Errorf("Restart differs:\n%q\n%q", restartFields(a), restartFields(b))
			}
			if Config(a) != Config(b) {
				t.Errorf("Config differs:\n%q\n%q", configFields(a), configFields(b))
			}
		})
	}
}

// TestUnsetIsDefault: a Cluster that did not go through cluster.Load's
// defaults (nil pointers, empty strings, nil maps) has the revisions of its
// defaulted self.
func TestUnsetIsDefault(t *testing.T) {
	defaulted := load(t, minimal())
	unset := load(t, minimal())
	unset.Spec.Affinity = cluster.AffinityConfiguration{}
	unset.Spec.PostgreSQL = cluster.PostgresConfiguration{}
	unset.Spec.Resources = cluster.ResourceRequirements{}
	if Restart(unset) != Restart(defaulted) || Config(unset) != Config(defaulted) {
		t.Errorf("unset fields change the revisions: %q vs %q", restartFields(unset), restartFields(defaulted))
	}
}

// TestChanges: every hashed field changes its revision, and only that one.
// The cases must cover every field of full's encoding.
func TestChanges(t *testing.T) {
	base := load(t, full)
	type which int
	const (
		restart which = iota
		config
	)
	const tolerations = "    - {key: dedicated, operator: Exists, effect: NoExecute, tolerationSeconds: 30}\n" +
		"    - {key: spot, value: \"yes\", effect: NoSchedule}\n"
	cases := []struct {
		field    string // the encoded field, without keys or indices
		in       which
		old, new string // the edit of full
	}{
		{"image", restart, "postgresql:15.18", "postgresql:15.19"},
		{"parameters", restart, "shared_buffers: 128MB", "shared_buffers: 256MB"},
		{"parameters", restart, "      work_mem: 8MB\n", "      work_mem: 8MB\n      max_connections: \"200\"\n"},
		{"parameters", config, "work_mem: 8MB", "work_mem: 16MB"},
		{"parameters", config, "      work_mem: 8MB\n", "      work_mem: 8MB\n      log_min_duration_statement: 500ms\n"},
		{"pg_hba", config, "10.0.0.0/8", "10.1.0.0/16"},
		{"pg_hba", config, "    pg_hba:\n", "    pg_hba:\n      - host all all 10.2.0.0/16 scram-sha-256\n"},
		{"synchronous.method", config, "method: first", "method: any"},
		{"synchronous.number", config, "number: 2", "number: 1"},
		{"synchronous.maxStandbyNamesFromCluster", config, "maxStandbyNamesFromCluster: 2", "maxStandbyNamesFromCluster: 1"},
		{"synchronous.standbyNamesPre", config, "[angus]", "[angus, fergus]"},
		{"synchronous.standbyNamesPost", config, "[malcolm]", "[donald]"},
		{"managed.roles", config, "login: true, inRoles", "login: false, inRoles"},
		{"managed.roles", config, "[pg_monitor], passwordSecret", "[pg_signal_backend], passwordSecret"},
		{"managed.roles.passwordSecrets", restart, "{name: dante-pw}", "{name: dante-password}"},
		{"replicationSlots.highAvailability.enabled", config, "enabled: false, slotPrefix", "enabled: true, slotPrefix"},
		{"replicationSlots.highAvailability.slotPrefix", config, "slotPrefix: _pg_", "slotPrefix: _xx_"},
		{"replicationSlots.updateInterval", config, "updateInterval: 10", "updateInterval: 20"},
		{"replicationSlots.synchronizeReplicas.enabled", config, "{enabled: false, excludePatterns", "{enabled: true, excludePatterns"},
		{"replicationSlots.synchronizeReplicas.excludePatterns", config, `["^keep"]`, `["^keep", "^tmp"]`},
		{"monitoring", restart, "  monitoring: {disableDefaultQueries: true}\n", ""},
		{"monitoring.disableDefaultQueries", restart, "disableDefaultQueries: true", "disableDefaultQueries: false"},
		{"monitoring.customQueriesConfigMap", restart, "{disableDefaultQueries: true}", "{disableDefaultQueries: true, customQueriesConfigMap: [{name: q, key: k}]}"},
		{"monitoring.customQueriesSecret", restart, "{disableDefaultQueries: true}", "{disableDefaultQueries: true, customQueriesSecret: [{name: q, key: k}]}"},
		{"monitoring.tls.enabled", restart, "{disableDefaultQueries: true}", "{disableDefaultQueries: true, tls: {enabled: true}}"},
		{"enableSuperuserAccess", config, "enableSuperuserAccess: true", "enableSuperuserAccess: false"},
		{"superuserSecret", restart, "{name: web-su}", "{name: web-superuser-2}"},
		{"certificates.serverAltDNSNames", restart, "[db.example.com]", "[db.example.com, pg.example.com]"},
		{"resources.requests", restart, "cpu: 100m", "cpu: 200m"},
		{"resources.requests", restart, "memory: 128Mi", "memory: 256Mi"},
		{"resources.limits", restart, "limits: {memory: 512Mi}", "limits: {memory: 512Mi, cpu: 1}"},
		{"affinity.enablePodAntiAffinity", restart, "enablePodAntiAffinity: false", "enablePodAntiAffinity: true"},
		{"affinity.topologyKey", restart, "topology.kubernetes.io/zone", "kubernetes.io/hostname"},
		{"affinity.podAntiAffinityType", restart, "podAntiAffinityType: required", "podAntiAffinityType: preferred"},
		{"affinity.nodeSelector", restart, "{disk: ssd}", "{disk: hdd}"},
		{"affinity.tolerations.key", restart, "key: dedicated", "key: reserved"},
		{"affinity.tolerations.operator", restart, "operator: Exists", "operator: Equal"},
		{"affinity.tolerations.value", restart, `value: "yes"`, `value: "no"`},
		{"affinity.tolerations.effect", restart, "effect: NoSchedule", "effect: PreferNoSchedule"},
		{"affinity.tolerations.tolerationSeconds", restart, "tolerationSeconds: 30", "tolerationSeconds: 60"},
		{"imagePullSecrets", restart, "[{name: regcred}]", "[{name: regcred}, {name: mirror}]"},
		{"priorityClassName", restart, "priorityClassName: db-high", "priorityClassName: db-low"},
		{"schedulerName", restart, "schedulerName: my-scheduler", "schedulerName: other-scheduler"},
		{"topologySpreadConstraints", restart, "{maxSkew: 1, topologyKey", "{maxSkew: 2, topologyKey"},
		{"topologySpreadConstraints", restart, "whenUnsatisfiable: DoNotSchedule", "whenUnsatisfiable: ScheduleAnyway"},
		{"ephemeralVolumesSizeLimit.temporaryData", restart, "temporaryData: 1Gi", "temporaryData: 2Gi"},
		{"affinity.nodeAffinity", restart, "values: [db]", "values: [db, olap]"},
		{"affinity.additionalPodAffinity", restart, "{weight: 20,", "{weight: 30,"},
		{"affinity.additionalPodAntiAffinity", restart, "{workload: batch}", "{workload: olap}"},
		// The same tolerations in another order.
		{"affinity.tolerations", restart, tolerations,
			"    - {key: spot, value: \"yes\", effect: NoSchedule}\n    - {key: dedicated, operator: Exists, effect: NoExecute, tolerationSeconds: 30}\n"},
	}
	covered := map[string]bool{}
	for _, tc := range cases {
		edited := strings.Replace(full, tc.old, tc.new, 1)
		if edited == full {
			t.Fatalf("%s: the edit changes nothing", tc.field)
		}
		c := load(t, edited)
		restartChanged, configChanged := Restart(c) != Restart(base), Config(c) != Config(base)
		if want := tc.in == restart; restartChanged != want || configChanged == want {
			t.Errorf("%s: restart changed %v, config changed %v (encodings %q, %q)", tc.field, restartChanged, configChanged, restartFields(c), configFields(c))
		}
		kind := "restart "
		if tc.in == config {
			kind = "config "
		}
		covered[kind+tc.field] = true
	}
	keyOrIndex := regexp.MustCompile(`\[[^]]*\]`)
	for kind, lines := range map[string][]string{"restart ": restartFields(base), "config ": configFields(base)} {
		for _, line := range lines {
			field := keyOrIndex.ReplaceAllString(strings.SplitN(line, "=", 2)[0], "")
			if !covered[kind+field] {
				t.Errorf("no case changes the %s field %s (line %s)", strings.TrimSpace(kind), field, line)
			}
		}
	}
}

func TestParameterSplit(t *testing.T) {
	doc := func(image string) string {
		return strings.Replace(minimal(`  postgresql:
    parameters:
      shared_buffers: 128MB
      work_mem: 8MB
      pg_stat_statements.max: "10000"
      pg_stat_statements.track: all
      myext.knob: "1"
`), "localhost:5000/postgresql:15.18", image, 1)
	}
	want := map[string]string{"shared_buffers": "128MB", "pg_stat_statements.max": "10000", "myext.knob": "1"}
	for _, image := range []string{"localhost:5000/postgresql:15.18", "localhost:5000/postgresql@sha256:" + strings.Repeat("ab", 32)} {
		got := RestartParameters(load(t, doc(image)))
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: restart parameters %v, want %v", image, got, want)
		}
	}
}

// TestExamplesGolden pins both revisions of every cluster in examples/repo,
// with their encodings so a difference shows which field moved.
//
// A change of testdata/examples.golden is a change of the revisions of
// running clusters: after the pgsync upgrade every cluster in production
// restarts. It needs a new Version prefix (docs/revisions.md), not a
// rewrite with -update; -update is for a cluster added to examples/repo.
func TestExamplesGolden(t *testing.T) {
	root := filepath.Join("..", "..", "examples", "repo")
	var files []cluster.File
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if ext := strings.ToLower(filepath.Ext(path)); ext != ".yaml" && ext != ".yml" {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		files = append(files, cluster.File{Path: filepath.ToSlash(rel), Data: data})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	set, err := cluster.Load(files)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Clusters) == 0 {
		t.Fatal("no clusters in examples/repo")
	}
	var b strings.Builder
	for _, c := range set.Clusters {
		fmt.Fprintf(&b, "%s restart %s\n", c.Key(), Restart(c))
		for _, line := range restartFields(c) {
			fmt.Fprintf(&b, "\t%s\n", line)
		}
		fmt.Fprintf(&b, "%s config %s\n", c.Key(), Config(c))
		for _, line := range configFields(c) {
			fmt.Fprintf(&b, "\t%s\n", line)
		}
	}
	path := filepath.Join("testdata", "examples.golden")
	if *update {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./internal/revision -update creates it)", err)
	}
	if got := b.String(); got != string(want) {
		t.Errorf("revisions of examples/repo changed: every such cluster in production would restart after the upgrade (see the comment above)\n--- got ---\n%s--- want ---\n%s", got, want)
	}
}

// TestSynchronousConfig: data durability and the legacy form change the
// config revision (not in full: they exclude its names), and a cluster
// without synchronous replication keeps the revision it had before the
// fields existed (nothing encoded).
func TestSynchronousConfig(t *testing.T) {
	sync := func(extra string) string {
		return minimal("  postgresql:\n    synchronous:\n      method: any\n      number: 1\n" + extra)
	}
	for _, tc := range []struct{ name, a, b string }{
		{"preferred", sync(""), sync("      dataDurability: preferred\n")},
		{"legacy max", minimal("  maxSyncReplicas: 1\n"), minimal("  maxSyncReplicas: 2\n")},
		{"legacy min", minimal("  maxSyncReplicas: 2\n"), minimal("  maxSyncReplicas: 2\n  minSyncReplicas: 1\n")},
		{"legacy on", minimal(), minimal("  maxSyncReplicas: 1\n")},
	} {
		if Config(load(t, tc.a)) == Config(load(t, tc.b)) {
			t.Errorf("%s: the config revision does not change", tc.name)
		}
	}
	if got := configFields(load(t, sync("      dataDurability: required\n"))); slices.Contains(got, `synchronous.dataDurability="required"`) {
		t.Errorf("the default durability is encoded: %q", got)
	}
}
