package contract

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/kube"
	"github.com/pgsync/pgsync/internal/plan"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// baseSpec sets every field (defaults included, from cluster.Load) so that
// each entry below changes one of them away from a known value.
const baseSpec = `apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: fx, namespace: shop}
spec:
  description: base
  imageName: ghcr.io/cloudnative-pg/postgresql:15.8
  instances: 3
  storage: {size: 10Gi}
  postgresql:
    parameters: {work_mem: 8MB}
    pg_hba: [host all app 10.0.0.0/8 scram-sha-256]
  resources:
    requests: {cpu: 500m, memory: 1Gi}
    limits: {memory: 2Gi}
  affinity:
    nodeSelector: {disk: ssd}
    tolerations:
      - {key: dedicated, operator: Equal, value: db, effect: NoExecute, tolerationSeconds: 60}
`

// effect says where a field's effect is checked, and how changing the
// field shows: exactly one of rendered (a field of the rendered objects)
// and planned (what the planner does with it, in a scenario of its own).
type effect struct {
	where   string
	set     func(s *cluster.Spec)
	render  func(o *kube.Objects) any
	planned func(c *cluster.Cluster) any
}

func postgres(o *kube.Objects) corev1.Container {
	return o.StatefulSet.Spec.Template.Spec.Containers[0]
}
func podSpec(o *kube.Objects) corev1.PodSpec { return o.StatefulSet.Spec.Template.Spec }
func ptr[T any](v T) *T                      { return &v }

// effects maps every field path of cluster.Spec (json names; [] for list
// elements; a map is one field) to where its effect is checked.
var effects = map[string]effect{
	"spec.description": {
		where:  "nothing runs differently: a note for humans, kept in the StatefulSet's pgsync.io/applied-spec (and shown by plan as a change)",
		set:    func(s *cluster.Spec) { s.Description = "changed" },
		render: func(o *kube.Objects) any { return o.StatefulSet.Annotations[pc.AnnAppliedSpec] },
	},
	"spec.imageName": {
		where:  "postgres container image (internal/kube TestRender…); the pod revision, so the planner restarts instances",
		set:    func(s *cluster.Spec) { s.ImageName = "ghcr.io/cloudnative-pg/postgresql:15.9" },
		render: func(o *kube.Objects) any { return postgres(o).Image },
	},
	// imageCatalogRef: the catalog entry's image becomes the postgres
	// container's (fxCatalogs, loaded with every changed spec).
	"spec.imageCatalogRef.apiGroup": {
		where: "validated (either group pgsync reads); kept in the applied spec: which catalog is used is kind, name and major",
		set: func(s *cluster.Spec) {
			catalogRef(s, "postgresql.k8s.enterprisedb.io", "ImageCatalog", "fx-catalog", 15)
		},
		render: func(o *kube.Objects) any { return o.StatefulSet.Annotations[pc.AnnAppliedSpec] },
	},
	"spec.imageCatalogRef.kind": {
		where:  "postgres container image: from the ClusterImageCatalog rather than the namespace's ImageCatalog (TestCatalogImageRendered)",
		set:    func(s *cluster.Spec) { catalogRef(s, "postgresql.cnpg.io", "ClusterImageCatalog", "fx-catalog", 15) },
		render: func(o *kube.Objects) any { return postgres(o).Image },
	},
	"spec.imageCatalogRef.name": {
		where:  "postgres container image: the named catalog's entry",
		set:    func(s *cluster.Spec) { catalogRef(s, "postgresql.cnpg.io", "ImageCatalog", "fx-other", 15) },
		render: func(o *kube.Objects) any { return postgres(o).Image },
	},
	"spec.imageCatalogRef.major": {
		where:  "postgres container image: the catalog's entry for that major",
		set:    func(s *cluster.Spec) { catalogRef(s, "postgresql.cnpg.io", "ImageCatalog", "fx-catalog", 16) },
		render: func(o *kube.Objects) any { return postgres(o).Image },
	},
	"spec.imagePullPolicy": {
		where:  "postgres container imagePullPolicy (the kubelet's)",
		set:    func(s *cluster.Spec) { s.ImagePullPolicy = "Always" },
		render: func(o *kube.Objects) any { return postgres(o).ImagePullPolicy },
	},
	"spec.instances": {
		where: "StatefulSet replicas, the Role's pod names, the PDBs; the planner scales one instance per step",
		set:   func(s *cluster.Spec) { s.Instances = 2 },
		render: func(o *kube.Objects) any {
			return fmt.Sprint(*o.StatefulSet.Spec.Replicas, o.Role.Rules[2].ResourceNames)
		},
	},
	"spec.primaryUpdateStrategy": {
		where:   "planner: supervised stops before the primary's update for approval (await-approval step)",
		set:     func(s *cluster.Spec) { s.PrimaryUpdateStrategy = "supervised" },
		planned: imageUpdate,
	},
	"spec.primaryUpdateMethod": {
		where:   "planner: restart updates the primary in place instead of a switchover",
		set:     func(s *cluster.Spec) { s.PrimaryUpdateMethod = "restart" },
		planned: imageUpdate,
	},
	"spec.storage.storageClass": {
		where: "volumeClaimTemplate storageClassName",
		set:   func(s *cluster.Spec) { s.Storage.StorageClass = ptr("fast") },
		render: func(o *kube.Objects) any {
			return fmt.Sprint(o.StatefulSet.Spec.VolumeClaimTemplates[0].Spec.StorageClassName)
		},
	},
	"spec.storage.size": {
		where: "volumeClaimTemplate storage request; the planner grows existing claims",
		set:   func(s *cluster.Spec) { s.Storage.Size = "20Gi" },
		render: func(o *kube.Objects) any {
			return fmt.Sprint(o.StatefulSet.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests)
		},
	},
	"spec.storage.resizeInUseVolumes": {
		where:   "planner: the resize step says the volume grows while its instance restarts",
		set:     func(s *cluster.Spec) { s.Storage.ResizeInUseVolumes = ptr(false) },
		planned: volumeGrowth,
	},
	"spec.postgresql.parameters": {
		where:  "ConfigMap parameters.json → the manager's pgsync.conf (TestRenderedPodRunsTheManager: SHOW; TestConfigRevisionAndHBA: reload)",
		set:    func(s *cluster.Spec) { s.PostgreSQL.Parameters = map[string]string{"work_mem": "16MB"} },
		render: func(o *kube.Objects) any { return o.Params.Data[pc.ParamsKey] },
	},
	"spec.postgresql.pg_hba": {
		where:  "ConfigMap pg_hba.json → the manager's pg_hba.conf (TestRenderedPodRunsTheManager: a rejected connection; TestConfigRevisionAndHBA)",
		set:    func(s *cluster.Spec) { s.PostgreSQL.PgHBA = []string{"host all app 0.0.0.0/0 reject"} },
		render: func(o *kube.Objects) any { return o.Params.Data[pc.HBAKey] },
	},
	"spec.resources.requests": {
		where:  "postgres container resources.requests (the kubelet's)",
		set:    func(s *cluster.Spec) { s.Resources.Requests = map[string]cluster.Quantity{"cpu": "1"} },
		render: func(o *kube.Objects) any { return fmt.Sprint(postgres(o).Resources.Requests) },
	},
	"spec.resources.limits": {
		where:  "postgres container resources.limits (the kubelet's)",
		set:    func(s *cluster.Spec) { s.Resources.Limits = map[string]cluster.Quantity{"memory": "4Gi"} },
		render: func(o *kube.Objects) any { return fmt.Sprint(postgres(o).Resources.Limits) },
	},
	"spec.affinity.enablePodAntiAffinity": {
		where:  "pod affinity (none when false; the scheduler's)",
		set:    func(s *cluster.Spec) { s.Affinity.EnablePodAntiAffinity = ptr(false) },
		render: func(o *kube.Objects) any { return podSpec(o).Affinity == nil },
	},
	"spec.affinity.topologyKey": {
		where: "pod anti-affinity topologyKey",
		set:   func(s *cluster.Spec) { s.Affinity.TopologyKey = "topology.kubernetes.io/zone" },
		render: func(o *kube.Objects) any {
			return podSpec(o).Affinity.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm.TopologyKey
		},
	},
	"spec.affinity.podAntiAffinityType": {
		where: "pod anti-affinity required vs preferred",
		set:   func(s *cluster.Spec) { s.Affinity.PodAntiAffinityType = "required" },
		render: func(o *kube.Objects) any {
			return len(podSpec(o).Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution)
		},
	},
	"spec.affinity.nodeSelector": {
		where:  "pod nodeSelector",
		set:    func(s *cluster.Spec) { s.Affinity.NodeSelector = map[string]string{"disk": "nvme"} },
		render: func(o *kube.Objects) any { return podSpec(o).NodeSelector["disk"] },
	},
	"spec.affinity.tolerations[].key": {
		where:  "pod tolerations",
		set:    func(s *cluster.Spec) { s.Affinity.Tolerations[0].Key = "other" },
		render: func(o *kube.Objects) any { return podSpec(o).Tolerations[0].Key },
	},
	"spec.affinity.tolerations[].operator": {
		where: "pod tolerations",
		set: func(s *cluster.Spec) {
			s.Affinity.Tolerations[0].Operator, s.Affinity.Tolerations[0].Value = "Exists", ""
		},
		render: func(o *kube.Objects) any { return podSpec(o).Tolerations[0].Operator },
	},
	"spec.affinity.tolerations[].value": {
		where:  "pod tolerations",
		set:    func(s *cluster.Spec) { s.Affinity.Tolerations[0].Value = "olap" },
		render: func(o *kube.Objects) any { return podSpec(o).Tolerations[0].Value },
	},
	"spec.affinity.tolerations[].effect": {
		where: "pod tolerations",
		set: func(s *cluster.Spec) {
			s.Affinity.Tolerations[0].Effect, s.Affinity.Tolerations[0].TolerationSeconds = "NoSchedule", nil
		},
		render: func(o *kube.Objects) any { return podSpec(o).Tolerations[0].Effect },
	},
	"spec.affinity.tolerations[].tolerationSeconds": {
		where:  "pod tolerations",
		set:    func(s *cluster.Spec) { s.Affinity.Tolerations[0].TolerationSeconds = ptr(300) },
		render: func(o *kube.Objects) any { return *podSpec(o).Tolerations[0].TolerationSeconds },
	},
	"spec.startDelay": {
		where:  "startup probe failureThreshold (the kubelet's)",
		set:    func(s *cluster.Spec) { s.StartDelay = 600 },
		render: func(o *kube.Objects) any { return postgres(o).StartupProbe.FailureThreshold },
	},
	"spec.stopDelay": {
		where: "the manager's --stop-delay (TestRenderedPodRunsTheManager: escalation after it), terminationGracePeriodSeconds, the preStop timeout",
		set:   func(s *cluster.Spec) { s.StopDelay = 60 },
		render: func(o *kube.Objects) any {
			return fmt.Sprint(postgres(o).Args, *podSpec(o).TerminationGracePeriodSeconds, postgres(o).Lifecycle.PreStop.Exec.Command)
		},
	},
	"spec.switchoverDelay": {
		where:  "the manager's --switchover-delay (TestRenderedPodRunsTheManager: in effect; TestSwitchoverDelay: what happens past it)",
		set:    func(s *cluster.Spec) { s.SwitchoverDelay = 60 },
		render: func(o *kube.Objects) any { return postgres(o).Args },
	},
	"spec.postgresql.synchronous.method": {
		where: "ConfigMap replication.json → the primary's synchronous_standby_names (TestSynchronousStandbyNames)",
		set: func(s *cluster.Spec) {
			s.PostgreSQL.Synchronous = &cluster.SynchronousReplicaConfiguration{Method: "first", Number: 1}
		},
		render: replicationKey,
	},
	"spec.postgresql.synchronous.number": {
		where: "ConfigMap replication.json → the primary's synchronous_standby_names (TestSynchronousStandbyNames)",
		set: func(s *cluster.Spec) {
			s.PostgreSQL.Synchronous = &cluster.SynchronousReplicaConfiguration{Method: "any", Number: 2}
		},
		render: replicationKey,
	},
	"spec.postgresql.synchronous.maxStandbyNamesFromCluster": {
		where: "ConfigMap replication.json → the primary's synchronous_standby_names (instance.TestSyncStandbyNames)",
		set: func(s *cluster.Spec) {
			s.PostgreSQL.Synchronous = &cluster.SynchronousReplicaConfiguration{Method: "any", Number: 1, MaxStandbyNamesFromCluster: ptr(1)}
		},
		render: replicationKey,
	},
	"spec.postgresql.synchronous.standbyNamesPre": {
		where: "ConfigMap replication.json → the primary's synchronous_standby_names (instance.TestSyncStandbyNames)",
		set: func(s *cluster.Spec) {
			s.PostgreSQL.Synchronous = &cluster.SynchronousReplicaConfiguration{Method: "any", Number: 1, StandbyNamesPre: []string{"angus"}}
		},
		render: replicationKey,
	},
	"spec.postgresql.synchronous.standbyNamesPost": {
		where: "ConfigMap replication.json → the primary's synchronous_standby_names (instance.TestSyncStandbyNames)",
		set: func(s *cluster.Spec) {
			s.PostgreSQL.Synchronous = &cluster.SynchronousReplicaConfiguration{Method: "any", Number: 1, StandbyNamesPost: []string{"malcolm"}}
		},
		render: replicationKey,
	},
	"spec.postgresql.synchronous.dataDurability": {
		where: "ConfigMap replication.json → the primary's synchronous_standby_names (TestSynchronousStandbyNames: preferred)",
		set: func(s *cluster.Spec) {
			s.PostgreSQL.Synchronous = &cluster.SynchronousReplicaConfiguration{Method: "any", Number: 1, DataDurability: "preferred"}
		},
		render: replicationKey,
	},
	"spec.minSyncReplicas": {
		where:  "ConfigMap replication.json (legacy) → the primary's synchronous_standby_names (TestSynchronousStandbyNames: legacy)",
		set:    func(s *cluster.Spec) { s.MinSyncReplicas, s.MaxSyncReplicas = 1, 2 },
		render: replicationKey,
	},
	"spec.maxSyncReplicas": {
		where:  "ConfigMap replication.json (legacy) → the primary's synchronous_standby_names (TestSynchronousStandbyNames: legacy)",
		set:    func(s *cluster.Spec) { s.MaxSyncReplicas = 1 },
		render: replicationKey,
	},
	"spec.failoverDelay": {
		where:  "the manager's --failover-delay (TestRenderedPodRunsTheManager: in effect; role.TestElect: the election waits for it)",
		set:    func(s *cluster.Spec) { s.FailoverDelay = 30 },
		render: func(o *kube.Objects) any { return postgres(o).Args },
	},
}

// TestEveryFieldHasAnEffect: every field cluster.Spec accepts has an entry
// in effects, and changing it changes what its entry names.
func TestEveryFieldHasAnEffect(t *testing.T) {
	var paths []string
	walk(reflect.TypeOf(cluster.Spec{}), "spec", &paths)
	for _, p := range paths {
		if _, refused := refusals[p]; refused {
			continue // TestRefusedFieldsAreRefused
		}
		if _, ok := effects[p]; !ok {
			t.Errorf("%s is accepted but has no entry in effects (test/contract/fields_test.go): add one naming where its effect "+
				"is checked (a rendered object's field, a manager flag, a planner behaviour) with a check that changing it changes that; "+
				"or, if it has no effect, make internal/cluster's validation refuse it", p)
		}
	}
	for p := range effects {
		if !slices.Contains(paths, p) {
			t.Errorf("effects has an entry for %s, which cluster.Spec no longer has", p)
		}
	}
	for p := range refusals {
		if !slices.Contains(paths, p) {
			t.Errorf("refusals has an entry for %s, which cluster.Spec no longer has", p)
		}
	}

	base := load(t, []byte(baseSpec))
	baseObjs := render(t, base)
	for _, p := range sortedKeys(effects) {
		e := effects[p]
		t.Run(p, func(t *testing.T) {
			if (e.render == nil) == (e.planned == nil) || e.set == nil || e.where == "" {
				t.Fatal("an entry needs where, set, and exactly one of render and planned")
			}
			changed := withSpec(t, base, e.set)
			if e.render != nil {
				before, after := e.render(baseObjs), e.render(render(t, changed))
				if reflect.DeepEqual(before, after) {
					t.Errorf("changing %s leaves the rendered %v unchanged (%s)", p, before, e.where)
				}
				return
			}
			before, after := e.planned(base), e.planned(changed)
			if reflect.DeepEqual(before, after) {
				t.Errorf("changing %s leaves the plan unchanged: %v (%s)", p, before, e.where)
			}
		})
	}
}

// walk lists the field paths of t: structs by json name, a list's element
// fields under [], maps and scalars as leaves.
func walk(t reflect.Type, path string, out *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			name, opts, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			if name == "" && t.Field(i).Anonymous && opts == "inline" {
				walk(t.Field(i).Type, path, out) // its fields are the parent's
				continue
			}
			if name == "" || name == "-" {
				continue
			}
			walk(t.Field(i).Type, path+"."+name, out)
		}
	case reflect.Slice:
		if e := t.Elem(); e.Kind() == reflect.Struct || e.Kind() == reflect.Pointer {
			walk(e, path+"[]", out)
			return
		}
		*out = append(*out, path)
	default:
		*out = append(*out, path)
	}
}

// imageUpdate is what the planner does when the image of a converged
// cluster changes: the steps, in order, with their instances.
func imageUpdate(c *cluster.Cluster) any {
	old := withSpec(nil, c, func(s *cluster.Spec) { s.ImageName = "ghcr.io/cloudnative-pg/postgresql:15.7" })
	return steps(c, plan.Converged([]*cluster.Cluster{old}))
}

// volumeGrowth is what the planner does when the volumes must grow.
func volumeGrowth(c *cluster.Cluster) any {
	bigger := withSpec(nil, c, func(s *cluster.Spec) { s.Storage.Size = "50Gi" })
	return steps(bigger, plan.Converged([]*cluster.Cluster{c}))
}

func steps(desired *cluster.Cluster, observed plan.Observed) []string {
	p, err := plan.Make([]*cluster.Cluster{desired}, observed, plan.Options{})
	if err != nil {
		panic(err)
	}
	var out []string
	for _, cp := range p.Clusters {
		for _, s := range cp.Steps {
			out = append(out, fmt.Sprintf("%s %s %s", s.Action, s.Instance, s.Reason))
		}
	}
	return out
}

func load(t *testing.T, data []byte) *cluster.Cluster {
	t.Helper()
	set, err := cluster.Load([]cluster.File{{Path: "fx.yaml", Data: data}})
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	return set.Clusters[0]
}

// withSpec returns c with f applied to a copy of its spec, loaded again so
// the changed value is one validation accepts (a JSON document is YAML).
func withSpec(t *testing.T, c *cluster.Cluster, f func(*cluster.Spec)) *cluster.Cluster {
	raw, err := json.Marshal(c.Spec)
	if err != nil {
		panic(err)
	}
	var s cluster.Spec
	if err := json.Unmarshal(raw, &s); err != nil {
		panic(err)
	}
	f(&s)
	doc, err := json.Marshal(map[string]any{"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
		"metadata": map[string]string{"name": c.Metadata.Name, "namespace": c.Metadata.Namespace}, "spec": s})
	if err != nil {
		panic(err)
	}
	set, err := cluster.Load([]cluster.File{{Path: "changed.json", Data: doc}, {Path: "catalogs.yaml", Data: []byte(fmt.Sprintf(fxCatalogs, c.Metadata.Namespace))}})
	if err != nil {
		if t == nil {
			panic(err)
		}
		t.Fatalf("the changed spec is not accepted: %v", err)
	}
	return set.Clusters[0]
}

func render(t *testing.T, c *cluster.Cluster) *kube.Objects {
	t.Helper()
	o, err := kube.Render(c, kube.Options{InstanceImage: instImage, TargetPrimary: kube.TargetPrimary(c, nil)})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// fxCatalogs are the image catalogs withSpec loads beside a changed spec
// (namespace: the cluster's): each entry a different image.
const fxCatalogs = `apiVersion: postgresql.cnpg.io/v1
kind: ImageCatalog
metadata: {name: fx-catalog, namespace: %[1]s}
spec:
  images:
    - {major: 15, image: "ghcr.io/cloudnative-pg/postgresql:15.10-minimal-trixie"}
    - {major: 16, image: "ghcr.io/cloudnative-pg/postgresql:16.6-minimal-trixie"}
---
apiVersion: postgresql.cnpg.io/v1
kind: ImageCatalog
metadata: {name: fx-other, namespace: %[1]s}
spec:
  images:
    - {major: 15, image: "ghcr.io/cloudnative-pg/postgresql:15.12-minimal-trixie"}
---
apiVersion: postgresql.cnpg.io/v1
kind: ClusterImageCatalog
metadata: {name: fx-catalog}
spec:
  images:
    - {major: 15, image: "ghcr.io/cloudnative-pg/postgresql:15.11-standard-trixie"}
`

// catalogRef makes s take its image from a catalog of fxCatalogs.
func catalogRef(s *cluster.Spec, group, kind, name string, major int) {
	s.ImageName = ""
	s.ImageCatalogRef = &cluster.ImageCatalogRef{APIGroup: group, Kind: kind, Name: name, Major: major}
}

func replicationKey(o *kube.Objects) any { return o.Params.Data[pc.ReplicationKey] }
