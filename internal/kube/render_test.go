package kube

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/pgsync/pgsync/internal/cluster"
	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/internal/revision"
)

const testYAML = `apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata:
  name: web
  namespace: shop
spec:
  description: the shop's database
  imageName: localhost:5000/postgresql:15.18
  instances: 3
  startDelay: 60
  stopDelay: 20
  storage:
    storageClass: standard
    size: 1Gi
  postgresql:
    parameters:
      max_connections: "120"
      work_mem: 8MB
  resources:
    requests: {cpu: 100m, memory: 128Mi}
    limits: {memory: 512Mi}
  affinity:
    nodeSelector: {disk: ssd}
    tolerations:
    - {key: dedicated, operator: Equal, value: pg, effect: NoExecute, tolerationSeconds: 30}
`

// loadCluster decodes, defaults and validates YAML like the CLI does; edit
// changes the YAML text first.
func loadCluster(t testing.TB, edit func(string) string) *cluster.Cluster {
	t.Helper()
	y := testYAML
	if edit != nil {
		y = edit(y)
	}
	set, err := cluster.Load([]cluster.File{{Path: "web.yaml", Data: []byte(y)}})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return set.Clusters[0]
}

func render(t testing.TB, c *cluster.Cluster) *Objects {
	t.Helper()
	o, err := Render(c, Options{InstanceImage: "localhost:5000/pgsync:dev", TargetPrimary: "web-0"})
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return o
}

func TestRenderStatefulSet(t *testing.T) {
	c := loadCluster(t, nil)
	o := render(t, c)
	s := o.StatefulSet
	pod := s.Spec.Template.Spec
	if len(pod.Containers) != 1 || len(pod.InitContainers) != 1 {
		t.Fatalf("containers %d, init containers %d; want 1 and 1", len(pod.Containers), len(pod.InitContainers))
	}
	pg, boot := pod.Containers[0], pod.InitContainers[0]
	env := map[string]corev1.EnvVar{}
	for _, e := range pg.Env {
		env[e.Name] = e
	}
	mounts := map[string]string{}
	for _, m := range pg.VolumeMounts {
		mounts[m.MountPath] = m.Name
	}
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		vols[v.Name] = v
	}
	for _, tc := range []struct {
		field     string
		got, want any
	}{
		{"name", s.Name, "web"},
		{"namespace", s.Namespace, "shop"},
		{"replicas", *s.Spec.Replicas, int32(3)},
		{"updateStrategy", s.Spec.UpdateStrategy.Type, "OnDelete"},
		{"podManagementPolicy", s.Spec.PodManagementPolicy, "Parallel"},
		{"serviceName", s.Spec.ServiceName, "web-hl"},
		{"selector", s.Spec.Selector.MatchLabels, map[string]string{"pgsync.io/cluster": "web"}},
		{"pvc retention", *s.Spec.PersistentVolumeClaimRetentionPolicy, "{Retain Retain}"},
		{"vct name", s.Spec.VolumeClaimTemplates[0].Name, "pgdata"},
		{"vct storageClass", *s.Spec.VolumeClaimTemplates[0].Spec.StorageClassName, "standard"},
		{"vct size", s.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests.Storage().String(), "1Gi"},
		{"vct access", s.Spec.VolumeClaimTemplates[0].Spec.AccessModes, "[ReadWriteOnce]"},
		{"template labels", s.Spec.Template.Labels, map[string]string{"pgsync.io/cluster": "web", "app.kubernetes.io/managed-by": "pgsync"}},
		{"revision", s.Spec.Template.Annotations["pgsync.io/revision"], revision.Restart(c)},
		{"config revision", s.Spec.Template.Annotations["pgsync.io/config-revision"], revision.Config(c)},
		{"serviceAccount", pod.ServiceAccountName, "web"},
		{"grace", *pod.TerminationGracePeriodSeconds, int64(20 + stopMargin)},
		{"bootstrap image", boot.Image, "localhost:5000/pgsync:dev"},
		{"bootstrap command", boot.Command, []string{"/pgsync", "instance", "bootstrap", "--to", "/controller"}},
		{"bootstrap mount", fmt.Sprint(boot.VolumeMounts[0].Name, " ", boot.VolumeMounts[0].MountPath, " ", len(boot.VolumeMounts)), "controller /controller 1"},
		{"postgres image", pg.Image, "localhost:5000/postgresql:15.18"},
		{"postgres pull", pg.ImagePullPolicy, "IfNotPresent"},
		{"postgres command", pg.Command, []string{"/controller/pgsync", "instance", "run"}},
		{"preStop: graceful stop through the manager", pg.Lifecycle.PreStop.Exec.Command,
			[]string{"/controller/pgsync", "instance", "stop", fmt.Sprintf("--timeout=%ds", 20+stopMargin)}},
		{"postgres args", pg.Args, []string{"--run-dir=/run/pgsync", "--port=5432", "--http-addr=:8000", "--stop-delay=20s", "--switchover-delay=1h0m0s"}},
		{"env cluster", env["PGSYNC_CLUSTER"].Value, "web"},
		{"env POD_NAME", env["POD_NAME"].ValueFrom.FieldRef.FieldPath, "metadata.name"},
		{"env POD_NAMESPACE", env["POD_NAMESPACE"].ValueFrom.FieldRef.FieldPath, "metadata.namespace"},
		{"env POD_IP", env["POD_IP"].ValueFrom.FieldRef.FieldPath, "status.podIP"},
		{"env PGDATA", env["PGDATA"].Value, "/var/lib/postgresql/data/pgdata"},
		{"env params", env["PGSYNC_PARAMETERS_FILE"].Value, "/etc/pgsync/params/parameters.json"},
		{"env superuser", env["PGSYNC_SUPERUSER_PASSWORD_FILE"].Value, "/etc/pgsync/credentials/superuser-password"},
		{"env replication", env["PGSYNC_REPLICATION_PASSWORD_FILE"].Value, "/etc/pgsync/credentials/replication-password"},
		{"env app password", env["PGSYNC_APP_PASSWORD_FILE"].Value, "/etc/pgsync/credentials/app-password"},
		{"env app user", env["PGSYNC_APP_USER"].Value, "app"},
		{"env app db", env["PGSYNC_APP_DATABASE"].Value, "app"},
		{"mount data", mounts["/var/lib/postgresql/data"], "pgdata"},
		{"mount controller", mounts["/controller"], "controller"},
		{"mount tmp", mounts["/tmp"], "tmp"},
		{"mount run", mounts["/run"], "run"},
		{"mount params", mounts["/etc/pgsync/params"], "params"},
		{"mount credentials", mounts["/etc/pgsync/credentials"], "credentials"},
		{"params volume", vols["params"].ConfigMap.Name, "web-params"},
		{"tmp is emptyDir", vols["tmp"].EmptyDir != nil, true},
		{"run is emptyDir", vols["run"].EmptyDir != nil, true},
		{"controller is emptyDir", vols["controller"].EmptyDir != nil, true},
		{"credentials mode", *vols["credentials"].Projected.DefaultMode, int32(0o440)},
		{"credentials sources", projectedSecrets(vols["credentials"]), "web-superuser/password→superuser-password web-replication/password→replication-password web-app/password→app-password"},
		{"requests", pg.Resources.Requests, corev1.ResourceList{"cpu": resource.MustParse("100m"), "memory": resource.MustParse("128Mi")}},
		{"limits", pg.Resources.Limits, corev1.ResourceList{"memory": resource.MustParse("512Mi")}},
		{"readiness", probe(pg.ReadinessProbe), "GET /readyz :http every 1s ×3"},
		{"liveness", probe(pg.LivenessProbe), "GET /healthz :http every 10s ×3"},
		{"startup: startDelay 60s", probe(pg.StartupProbe), "GET /readyz :http every 1s ×60"},
		{"ports", pg.Ports, `[{postgres 0 5432 TCP } {http 0 8000 TCP }]`},
		{"nodeSelector", pod.NodeSelector, map[string]string{"disk": "ssd"}},
		{"tolerations", pod.Tolerations, []corev1.Toleration{{Key: "dedicated", Operator: "Equal", Value: "pg", Effect: "NoExecute", TolerationSeconds: ptr(int64(30))}}},
		{"anti-affinity preferred", pod.Affinity.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution, []corev1.WeightedPodAffinityTerm{{Weight: 100, PodAffinityTerm: corev1.PodAffinityTerm{
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"pgsync.io/cluster": "web"}}, TopologyKey: "kubernetes.io/hostname"}}}},
		{"no required anti-affinity", len(pod.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution), 0},
		{"sts labels", s.Labels, map[string]string{"pgsync.io/cluster": "web", "app.kubernetes.io/managed-by": "pgsync"}},
	} {
		t.Run(tc.field, func(t *testing.T) { same(t, tc.got, tc.want) })
	}
}

// same compares values, or a value's fmt rendering with a string.
func same(t *testing.T, got, want any) {
	t.Helper()
	if w, ok := want.(string); ok {
		if g := fmt.Sprint(got); g != w {
			t.Errorf("got %s, want %s", g, w)
		}
		return
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func probe(p *corev1.Probe) string {
	if p == nil || p.HTTPGet == nil {
		return "none"
	}
	return fmt.Sprintf("GET %s :%s every %ds ×%d", p.HTTPGet.Path, p.HTTPGet.Port.String(), p.PeriodSeconds, p.FailureThreshold)
}

func projectedSecrets(v corev1.Volume) string {
	var out []string
	for _, s := range v.Projected.Sources {
		for _, it := range s.Secret.Items {
			out = append(out, s.Secret.Name+"/"+it.Key+"→"+it.Path)
		}
	}
	return strings.Join(out, " ")
}

func TestRenderVariants(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(string) string
		check func(t *testing.T, o *Objects)
	}{
		{"required anti-affinity with topology key", func(y string) string {
			return y + "    podAntiAffinityType: required\n    topologyKey: topology.kubernetes.io/zone\n"
		}, func(t *testing.T, o *Objects) {
			a := o.StatefulSet.Spec.Template.Spec.Affinity.PodAntiAffinity
			if len(a.PreferredDuringSchedulingIgnoredDuringExecution) != 0 || len(a.RequiredDuringSchedulingIgnoredDuringExecution) != 1 {
				t.Fatalf("want only a required term: %+v", a)
			}
			same(t, a.RequiredDuringSchedulingIgnoredDuringExecution[0].TopologyKey, "topology.kubernetes.io/zone")
		}},
		{"anti-affinity disabled", func(y string) string { return y + "    enablePodAntiAffinity: false\n" },
			func(t *testing.T, o *Objects) {
				if a := o.StatefulSet.Spec.Template.Spec.Affinity; a != nil {
					t.Fatalf("affinity %+v, want none", a)
				}
			}},
		{"default storage class", func(y string) string { return strings.Replace(y, "    storageClass: standard\n", "", 1) },
			func(t *testing.T, o *Objects) {
				if sc := o.StatefulSet.Spec.VolumeClaimTemplates[0].Spec.StorageClassName; sc != nil {
					t.Fatalf("storageClassName %q, want unset (the cluster's default)", *sc)
				}
			}},
		{"startDelay: one probe per second for that long", func(y string) string { return strings.Replace(y, "startDelay: 60", "startDelay: 7", 1) },
			func(t *testing.T, o *Objects) {
				same(t, o.StatefulSet.Spec.Template.Spec.Containers[0].StartupProbe.FailureThreshold, int32(7))
			}},
		{"one instance: the primary may be evicted", func(y string) string { return strings.Replace(y, "instances: 3", "instances: 1", 1) },
			func(t *testing.T, o *Objects) {
				same(t, o.PrimaryPDB.Spec.MinAvailable.IntValue(), 0)
				same(t, o.StandbyPDB.Spec.MinAvailable.IntValue(), 0)
				same(t, o.Role.Rules[2].ResourceNames, []string{"web-0"})
			}},
		{"two instances: the standby may be evicted, the primary not", func(y string) string { return strings.Replace(y, "instances: 3", "instances: 2", 1) },
			func(t *testing.T, o *Objects) {
				same(t, o.PrimaryPDB.Spec.MinAvailable.IntValue(), 1)
				same(t, o.StandbyPDB.Spec.MinAvailable.IntValue(), 0)
			}},
		{"five instances: one standby at a time", func(y string) string { return strings.Replace(y, "instances: 3", "instances: 5", 1) },
			func(t *testing.T, o *Objects) {
				same(t, o.PrimaryPDB.Spec.MinAvailable.IntValue(), 1)
				same(t, o.StandbyPDB.Spec.MinAvailable.IntValue(), 3)
				same(t, o.Role.Rules[2].ResourceNames, []string{"web-0", "web-1", "web-2", "web-3", "web-4"})
			}},
		{"restart parameter changes the revision, reload parameter only the config revision", func(y string) string {
			return strings.Replace(strings.Replace(y, `max_connections: "120"`, `max_connections: "200"`, 1), "work_mem: 8MB", "work_mem: 16MB", 1)
		}, func(t *testing.T, o *Objects) {
			base := render(t, loadCluster(t, nil)).StatefulSet.Spec.Template.Annotations
			got := o.StatefulSet.Spec.Template.Annotations
			if got[pc.AnnRevision] == base[pc.AnnRevision] || got[pc.AnnConfigRevision] == base[pc.AnnConfigRevision] {
				t.Fatalf("revisions %v, base %v: both must change", got, base)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, render(t, loadCluster(t, tc.edit))) })
	}
}

// TestRestrictedProfile checks every field PodSecurity `restricted` looks
// at, plus the read-only root and fsGroupChangePolicy DESIGN.md §4 asks for
// (the API tier proves admission itself).
func TestRestrictedProfile(t *testing.T) {
	pod := render(t, loadCluster(t, nil)).StatefulSet.Spec.Template.Spec
	psc := pod.SecurityContext
	same(t, *psc.RunAsNonRoot, true)
	same(t, *psc.RunAsUser, int64(26))
	same(t, *psc.RunAsGroup, int64(26))
	same(t, *psc.FSGroup, int64(26))
	same(t, *psc.FSGroupChangePolicy, corev1.FSGroupChangeOnRootMismatch)
	same(t, psc.SeccompProfile.Type, corev1.SeccompProfileTypeRuntimeDefault)
	if pod.HostNetwork || pod.HostPID || pod.HostIPC {
		t.Error("host namespaces")
	}
	for _, v := range pod.Volumes {
		if v.HostPath != nil {
			t.Errorf("volume %s is a hostPath", v.Name)
		}
	}
	for _, c := range append(append([]corev1.Container{}, pod.InitContainers...), pod.Containers...) {
		t.Run(c.Name, func(t *testing.T) {
			sc := c.SecurityContext
			same(t, *sc.AllowPrivilegeEscalation, false)
			same(t, *sc.ReadOnlyRootFilesystem, true)
			same(t, *sc.RunAsNonRoot, true)
			same(t, sc.Capabilities.Drop, []corev1.Capability{"ALL"})
			same(t, len(sc.Capabilities.Add), 0)
			if sc.Privileged != nil && *sc.Privileged {
				t.Error("privileged")
			}
			for _, p := range c.Ports {
				if p.HostPort != 0 {
					t.Errorf("hostPort %d", p.HostPort)
				}
			}
		})
	}
}

func TestRenderRole(t *testing.T) {
	o := render(t, loadCluster(t, nil))
	want := []rbacv1.PolicyRule{
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, ResourceNames: []string{"web-primary"}, Verbs: []string{"get", "list", "watch", "update"}},
		{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, ResourceNames: []string{"web-rw"}, Verbs: []string{"get", "update"}},
		{APIGroups: []string{""}, Resources: []string{"pods"}, ResourceNames: []string{"web-0", "web-1", "web-2"}, Verbs: []string{"get", "patch"}},
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create"}},
	}
	same(t, o.Role.Rules, want)
	for _, r := range o.Role.Rules {
		for _, res := range r.Resources {
			if res == "secrets" {
				t.Error("the Role grants Secrets")
			}
		}
		// Only creating Events cannot be limited by name.
		if len(r.ResourceNames) == 0 && !slices.Equal(r.Resources, []string{"events"}) {
			t.Errorf("rule %v is not limited by resourceNames", r)
		}
	}
	same(t, o.RoleBinding.RoleRef, rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "web"})
	same(t, o.RoleBinding.Subjects, []rbacv1.Subject{{Kind: "ServiceAccount", Name: "web", Namespace: "shop"}})
	same(t, o.ServiceAccount.Name, "web")
}

func TestRenderServicesLeaseParams(t *testing.T) {
	c := loadCluster(t, nil)
	o := render(t, c)
	port := []corev1.ServicePort{{Name: "postgres", Protocol: "TCP", Port: 5432, TargetPort: intstr.FromInt32(5432)}}
	for _, tc := range []struct {
		field     string
		got, want any
	}{
		{"rw name", o.RW.Name, "web-rw"},
		{"rw has no selector", len(o.RW.Spec.Selector), 0},
		{"rw ports", o.RW.Spec.Ports, port},
		{"rw slice name", o.RWSlice.Name, "web-rw"},
		{"rw slice service label", o.RWSlice.Labels["kubernetes.io/service-name"], "web-rw"},
		{"rw slice managed-by (the manager's own value)", o.RWSlice.Labels["endpointslice.kubernetes.io/managed-by"], "pgsync.io"},
		{"rw slice empty", len(o.RWSlice.Endpoints), 0},
		{"rw slice port", fmt.Sprint(*o.RWSlice.Ports[0].Name, *o.RWSlice.Ports[0].Port, *o.RWSlice.Ports[0].Protocol), "postgres5432TCP"},
		{"rw slice address type", o.RWSlice.AddressType, "IPv4"},
		{"ro selector", o.RO.Spec.Selector, map[string]string{"pgsync.io/cluster": "web", "pgsync.io/role": "replica"}},
		{"ro ports", o.RO.Spec.Ports, port},
		{"r selector", o.R.Spec.Selector, map[string]string{"pgsync.io/cluster": "web"}},
		{"hl name", o.Headless.Name, "web-hl"},
		{"hl headless", o.Headless.Spec.ClusterIP, "None"},
		{"hl publishes not-ready", o.Headless.Spec.PublishNotReadyAddresses, true},
		{"hl selector", o.Headless.Spec.Selector, map[string]string{"pgsync.io/cluster": "web"}},
		{"lease name", o.Lease.Name, "web-primary"},
		{"lease target at creation", o.Lease.Annotations, map[string]string{"pgsync.io/target-primary": "web-0"}},
		{"lease has no holder", o.Lease.Spec.HolderIdentity == nil && o.Lease.Spec.RenewTime == nil && o.Lease.Spec.LeaseDurationSeconds == nil, true},
		{"params", o.Params.Data, map[string]string{"parameters.json": `{"max_connections":"120","work_mem":"8MB"}`, "config-revision": revision.Config(c), "pg_hba.json": "[]",
			"replication.json": `{"instances":["web-0","web-1","web-2"]}`, "superuser-access": "off"}},
		{"primary pdb", fmt.Sprint(o.PrimaryPDB.Name, " ", o.PrimaryPDB.Spec.MinAvailable.IntValue(), " ", metav1.FormatLabelSelector(o.PrimaryPDB.Spec.Selector)), "web-primary 1 pgsync.io/cluster=web,statefulset.kubernetes.io/pod-name=web-0"},
		{"standby pdb", fmt.Sprint(o.StandbyPDB.Name, " ", o.StandbyPDB.Spec.MinAvailable.IntValue(), " ", metav1.FormatLabelSelector(o.StandbyPDB.Spec.Selector)), "web-standby 1 pgsync.io/cluster=web,statefulset.kubernetes.io/pod-name notin (web-0)"},
	} {
		t.Run(tc.field, func(t *testing.T) { same(t, tc.got, tc.want) })
	}
	// Every object: both labels, the namespace, a kind.
	for _, obj := range o.List() {
		m, err := metaOf(obj)
		if err != nil {
			t.Fatal(err)
		}
		if m.GetLabels()[pc.LabelManagedBy] != "pgsync" || m.GetLabels()[pc.LabelCluster] != "web" || m.GetNamespace() != "shop" {
			t.Errorf("%T %s: labels %v namespace %q", obj, m.GetName(), m.GetLabels(), m.GetNamespace())
		}
		if obj.GetObjectKind().GroupVersionKind().Kind == "" {
			t.Errorf("%T %s: no kind", obj, m.GetName())
		}
	}
	// A re-render keeps the live target; without a live Lease it is NAME-0.
	same(t, TargetPrimary(c, nil), "web-0")
	live := o.Lease.DeepCopy()
	live.Annotations[pc.AnnTargetPrimary] = "web-2"
	same(t, TargetPrimary(c, live), "web-2")
	o2, err := Render(c, Options{InstanceImage: "x", TargetPrimary: TargetPrimary(c, live)})
	if err != nil {
		t.Fatal(err)
	}
	same(t, o2.Lease.Annotations[pc.AnnTargetPrimary], "web-2")
	// The budgets follow the target.
	same(t, metav1.FormatLabelSelector(o2.PrimaryPDB.Spec.Selector), "pgsync.io/cluster=web,statefulset.kubernetes.io/pod-name=web-2")
	same(t, metav1.FormatLabelSelector(o2.StandbyPDB.Spec.Selector), "pgsync.io/cluster=web,statefulset.kubernetes.io/pod-name notin (web-2)")
}

func metaOf(obj any) (metav1.Object, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("%T has no metadata", obj)
	}
	return m, nil
}

func TestAppliedSpecRoundTrip(t *testing.T) {
	c := loadCluster(t, nil)
	sts := render(t, c).StatefulSet
	back, ok, err := ReadAppliedSpec(sts)
	if err != nil || !ok {
		t.Fatalf("read back: ok=%v err=%v", ok, err)
	}
	if d := cmp.Diff(c.Spec, back.Spec); d != "" {
		t.Errorf("spec (-rendered +read back):\n%s", d)
	}
	same(t, back.Key(), c.Key())
	if revision.Restart(back) != revision.Restart(c) || revision.Config(back) != revision.Config(c) {
		t.Error("revisions differ after the round trip")
	}
	if _, ok := sts.Annotations[pc.AnnAppliedMetadata]; ok || back.Metadata.Labels != nil || back.Metadata.Annotations != nil {
		t.Errorf("a file with no labels or annotations: %s %q, read back %+v", pc.AnnAppliedMetadata, sts.Annotations[pc.AnnAppliedMetadata], back.Metadata)
	}
	// The file's labels and annotations come back too: the planner
	// compares them with Git's, as it does the spec.
	c.Metadata.Labels = map[string]string{"team": "payments"}
	c.Metadata.Annotations = map[string]string{pc.AnnMaintenanceWindow: "Sat 02:00-04:00 UTC", "pgsync.io/wave": "2"}
	back, _, err = ReadAppliedSpec(render(t, c).StatefulSet)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(c.Metadata, back.Metadata); d != "" {
		t.Errorf("metadata (-rendered +read back):\n%s", d)
	}
}

func TestSecrets(t *testing.T) {
	c := loadCluster(t, nil)
	c.Spec.EnableSuperuserAccess = ptr(true)
	none := func(string) bool { return false }
	secrets, err := NewSecrets(c, none, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*corev1.Secret{}
	for _, s := range secrets {
		byName[s.Name] = s
		same(t, s.Type, corev1.SecretTypeBasicAuth)
		same(t, s.Labels, map[string]string{"pgsync.io/cluster": "web", "app.kubernetes.io/managed-by": "pgsync"})
		if len(s.Annotations) != 0 {
			t.Errorf("%s has annotations %v", s.Name, s.Annotations)
		}
		if pw := string(s.Data["password"]); len(pw) != PasswordLength || strings.Trim(pw, passwordAlphabet) != "" {
			t.Errorf("%s: password %d characters, or outside the alphabet", s.Name, len(pw))
		}
	}
	// No NAME-replication: standbys log in by certificate.
	same(t, len(byName), 2)
	same(t, string(byName["web-superuser"].Data["username"]), "postgres")
	same(t, string(byName["web-app"].Data["username"]), "app")
	same(t, string(byName["web-app"].Data["dbname"]), "app")
	same(t, string(byName["web-app"].Data["host"]), "web-rw.shop.svc")
	if string(byName["web-superuser"].Data["password"]) == string(byName["web-app"].Data["password"]) {
		t.Error("two Secrets share a password")
	}

	// Existing Secrets are never regenerated: only the missing one comes back.
	again, err := NewSecrets(c, func(n string) bool { return n != "web-app" }, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 1 || again[0].Name != "web-app" {
		t.Fatalf("with two existing, got %d Secrets", len(again))
	}
	if all, _ := NewSecrets(c, func(string) bool { return true }, failingReader{}); len(all) != 0 {
		t.Fatalf("with all existing, got %d Secrets", len(all))
	}

	// The injected reader decides the password: deterministic, no bias.
	pw1, _ := Password(bytes.NewReader(bytes.Repeat([]byte{0, 1, 61, 248, 255, 62}, 40)))
	same(t, pw1, strings.Repeat("AB9A", 8))
	if _, err := Password(failingReader{}); err == nil {
		t.Error("a failing reader must fail the generation")
	}

	// No password anywhere in the rendered objects (annotations, applied spec).
	objs := render(t, c)
	for _, obj := range objs.List() {
		raw, err := json.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if bytes.Contains(raw, s.Data["password"]) {
				t.Errorf("%T contains the password of %s", obj, s.Name)
			}
		}
		if bytes.Contains(raw, []byte(`"password"`)) && fmt.Sprintf("%T", obj) != "*v1.StatefulSet" {
			t.Errorf("%T mentions a password key", obj)
		}
	}
	if strings.Contains(strings.ToLower(objs.StatefulSet.Annotations[pc.AnnAppliedSpec]), "password") {
		t.Error("applied spec mentions a password")
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

func TestRenderRefusals(t *testing.T) {
	c := loadCluster(t, nil)
	if _, err := Render(c, Options{}); err == nil {
		t.Error("no instance image: want an error")
	}
	bad := *c
	bad.Metadata.Namespace = ""
	if _, err := Render(&bad, Options{InstanceImage: "x", TargetPrimary: "web-0"}); err == nil {
		t.Error("no namespace: want an error")
	}
	if _, err := Render(c, Options{InstanceImage: "x"}); err == nil {
		t.Error("no target primary: want an error, not a default that could start a switchover")
	}
}

func TestApplyBody(t *testing.T) {
	o := render(t, loadCluster(t, nil))
	lease, err := ApplyBody(o.Lease)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := lease.Object["spec"]; ok {
		t.Errorf("the Lease apply body has a spec: %v", lease.Object["spec"])
	}
	slice, err := ApplyBody(o.RWSlice)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := slice.Object["endpoints"]; ok {
		t.Error("the EndpointSlice apply body lists endpoints: pgsync would own (and reset) them")
	}
	sts, err := ApplyBody(o.StatefulSet)
	if err != nil {
		t.Fatal(err)
	}
	sts.SetAnnotations(nil) // the applied spec is JSON text of its own
	raw, _ := json.Marshal(sts.Object)
	for _, bad := range []string{"null", `"status"`, "creationTimestamp"} {
		if bytes.Contains(raw, []byte(bad)) {
			t.Errorf("StatefulSet apply body contains %s", bad)
		}
	}
}

// TestRoleCoversInstancesBeingRemoved: during a scale down (replicas above
// spec.instances) the Role still lists every pod that runs, so a manager
// waiting for its removal keeps get and patch on its own pod.
func TestRoleCoversInstancesBeingRemoved(t *testing.T) {
	c := loadCluster(t, nil) // 3 instances
	five := int32(5)
	o, err := Render(c, Options{InstanceImage: "localhost:5000/pgsync:dev", TargetPrimary: "web-0", Replicas: &five})
	if err != nil {
		t.Fatal(err)
	}
	var pods []string
	for _, r := range o.Role.Rules {
		if len(r.Resources) == 1 && r.Resources[0] == "pods" {
			pods = r.ResourceNames
		}
	}
	if len(pods) != 5 || pods[4] != "web-4" {
		t.Errorf("Role pods %v, want web-0 … web-4 while 5 replicas run", pods)
	}
}

// TestRenderFailoverDelay: spec.failoverDelay reaches the manager as
// --failover-delay; unset (0, the default) it is not passed at all, so the
// pod template of an existing cluster stays as it was.
func TestRenderFailoverDelay(t *testing.T) {
	argsOf := func(c *cluster.Cluster) []string {
		return render(t, c).StatefulSet.Spec.Template.Spec.Containers[0].Args
	}
	plain := argsOf(loadCluster(t, nil))
	for _, a := range plain {
		if strings.HasPrefix(a, "--failover-delay") {
			t.Errorf("--failover-delay passed without spec.failoverDelay: %v", plain)
		}
	}
	got := argsOf(loadCluster(t, func(y string) string { return y + "  failoverDelay: 30\n" }))
	if want := append(append([]string{}, plain...), "--failover-delay=30s"); !slices.Equal(got, want) {
		t.Errorf("args %v, want %v", got, want)
	}
}

// TestRenderLeaseDuration: the Cluster file's pgsync.io/lease-duration
// reaches the manager as --lease-duration; unset it is not passed (the
// manager's default, 15s), so existing pod templates stay as they were.
func TestRenderLeaseDuration(t *testing.T) {
	argsOf := func(c *cluster.Cluster) []string {
		return render(t, c).StatefulSet.Spec.Template.Spec.Containers[0].Args
	}
	plain := argsOf(loadCluster(t, nil))
	for _, a := range plain {
		if strings.HasPrefix(a, "--lease-duration") {
			t.Errorf("--lease-duration passed without the annotation: %v", plain)
		}
	}
	got := argsOf(loadCluster(t, func(y string) string {
		return strings.Replace(y, "  namespace: shop\n", "  namespace: shop\n  annotations:\n    pgsync.io/lease-duration: 8s\n", 1)
	}))
	if want := append(append([]string{}, plain...), "--lease-duration=8s"); !slices.Equal(got, want) {
		t.Errorf("args %v, want %v", got, want)
	}
}

// peers writes a NetworkPolicy's ingress rules compactly: one line per
// rule, its ports, then its peers (pod selectors, namespace selectors,
// CIDRs).
func peers(spec networkingv1.NetworkPolicySpec) string {
	var b strings.Builder
	for _, r := range spec.Ingress {
		var ports []string
		for _, p := range r.Ports {
			ports = append(ports, fmt.Sprintf("%s/%s", p.Port.String(), *p.Protocol))
		}
		b.WriteString(strings.Join(ports, ",") + " from")
		for _, f := range r.From {
			switch {
			case f.PodSelector != nil:
				b.WriteString(" pods{" + metav1.FormatLabelSelector(f.PodSelector) + "}")
			case f.NamespaceSelector != nil:
				b.WriteString(" namespaces{" + metav1.FormatLabelSelector(f.NamespaceSelector) + "}")
			case f.IPBlock != nil:
				b.WriteString(" " + f.IPBlock.CIDR)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

func TestRenderNetworkPolicy(t *testing.T) {
	const (
		own    = "5432/TCP,8000/TCP from pods{pgsync.io/cluster=web}\n"
		status = "8000/TCP from namespaces{kubernetes.io/metadata.name=pgsync} pods{app.kubernetes.io/name=pgsync}\n"
	)
	for _, tc := range []struct {
		name, annotations, want string
		spec                    string
	}{
		{name: "metrics from anywhere", spec: "  monitoring: {}\n",
			want: own + "5432/TCP from pods{<none>}\n" + status + "9187/TCP from\n"},
		{"default: the namespace's pods", "", own + "5432/TCP from pods{<none>}\n" + status, ""},
		{"namespace, said", "pgsync.io/clients: namespace", own + "5432/TCP from pods{<none>}\n" + status, ""},
		{"only the cluster's own pods", "pgsync.io/clients: cluster", own + status, ""},
		{"a label selector", `pgsync.io/clients: "app in (shop,admin),tier!=batch"`,
			own + "5432/TCP from pods{app in (admin,shop),tier notin (batch)}\n" + status, ""},
		{"one label, without another", `pgsync.io/clients: "app=shop,!batch"`,
			own + "5432/TCP from pods{app=shop,!batch}\n" + status, ""},
		{"the API server's addresses", `pgsync.io/status-from: "192.0.2.0/28,2001:db8::/64"`,
			own + "5432/TCP from pods{<none>}\n" +
				"8000/TCP from namespaces{kubernetes.io/metadata.name=pgsync} pods{app.kubernetes.io/name=pgsync} 192.0.2.0/28 2001:db8::/64\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := loadCluster(t, func(y string) string {
				y += tc.spec
				if tc.annotations == "" {
					return y
				}
				return strings.Replace(y, "  namespace: shop\n", "  namespace: shop\n  annotations:\n    "+tc.annotations+"\n", 1)
			})
			np := render(t, c).NetworkPolicy
			same(t, np.Name, "web")
			same(t, np.Namespace, "shop")
			same(t, metav1.FormatLabelSelector(&np.Spec.PodSelector), "pgsync.io/cluster=web")
			same(t, fmt.Sprint(np.Spec.PolicyTypes), "[Ingress]")
			same(t, peers(np.Spec), tc.want)
		})
	}
}
