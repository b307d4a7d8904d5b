package e2e

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/pgsync/pgsync/test/kubeenv"
)

const (
	image1518 = "localhost:5000/postgresql:15.18"
	image1520 = "localhost:5000/postgresql:15.20"
	stsName   = "pg"
)

// TestSmokeStatefulSetPostgres exercises what pgsync will stand on: a
// StatefulSet of three PostgreSQL pods on the `standard` StorageClass,
// admitted under PodSecurity `restricted`, a ClusterIP Service reachable from
// the host and by name from a pod, data kept across pod deletion, and an
// OnDelete image change (15.18 → 15.20) that restarts only the pod deleted.
func TestSmokeStatefulSetPostgres(t *testing.T) {
	t.Parallel() // a busy node changes none of its assertions (doc.go)
	env := kubeenv.Cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	cs, ns := env.Client, env.Namespace

	for _, svc := range []*corev1.Service{
		{ObjectMeta: metav1.ObjectMeta{Name: stsName + "-hl"}, Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone, Selector: map[string]string{"app": stsName},
			Ports: []corev1.ServicePort{{Name: "postgres", Port: 5432}},
		}},
		{ObjectMeta: metav1.ObjectMeta{Name: stsName}, Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": stsName},
			Ports:    []corev1.ServicePort{{Name: "postgres", Port: 5432, TargetPort: intstr.FromInt32(5432)}},
		}},
	} {
		if _, err := cs.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create Service %s: %v", svc.Name, err)
		}
	}
	// The namespace really enforces restricted: a pod without a security
	// context is refused, so the StatefulSet's pods below were admitted
	// under it, not merely created.
	checkRestrictedEnforced(ctx, t, cs, ns)
	if _, err := cs.AppsV1().StatefulSets(ns).Create(ctx, statefulSet(image1518), metav1.CreateOptions{}); err != nil {
		t.Fatalf("create StatefulSet (must be admitted under restricted): %v", err)
	}
	pods := waitPodsReady(ctx, t, cs, ns, 3)
	for _, p := range pods {
		if img := p.Spec.Containers[0].Image; img != image1518 {
			t.Fatalf("pod %s runs %s, want %s", p.Name, img, image1518)
		}
		if sc := p.Spec.SecurityContext; sc == nil || sc.FSGroupChangePolicy == nil || *sc.FSGroupChangePolicy != corev1.FSGroupChangeOnRootMismatch {
			t.Errorf("pod %s: fsGroupChangePolicy is not OnRootMismatch: %+v", p.Name, sc)
		}
		if v := query(ctx, t, p.Status.PodIP, "SHOW server_version"); !strings.HasPrefix(v, "15.18 ") {
			t.Errorf("pod %s reports server_version %q, want 15.18", p.Name, v)
		}
		checkServerRunsAs26(ctx, t, p)
		checkClaimOnStandard(ctx, t, cs, ns, "pgdata-"+p.Name)
	}

	// Each pod gets its own row, written straight to its IP from the host.
	for _, p := range pods {
		exec(ctx, t, p.Status.PodIP, "CREATE TABLE smoke(v text)", fmt.Sprintf("INSERT INTO smoke VALUES ('written to %s')", p.Name))
	}

	// The ClusterIP Service from the host.
	svc, err := cs.CoreV1().Services(ns).Get(ctx, stsName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := query(ctx, t, svc.Spec.ClusterIP, "SELECT v FROM smoke"); !strings.HasPrefix(got, "written to "+stsName+"-") {
		t.Errorf("through the Service from the host: got %q", got)
	}

	// The Service by DNS name from a pod: the name resolves to the
	// Service's ClusterIP and PostgreSQL answers through it.
	host := fmt.Sprintf("%s.%s.svc.cluster.local", stsName, ns)
	logs := checkDNSFromPod(ctx, t, cs, ns, host)
	if f := strings.Fields(logs); len(f) < 2 || f[0] != svc.Spec.ClusterIP || f[1] != host {
		t.Errorf("from a pod, %s resolved to %q, want the ClusterIP %s", host, logs, svc.Spec.ClusterIP)
	}
	for _, want := range []string{host + ":5432 - accepting connections", "API server reachable"} {
		if !strings.Contains(logs, want) {
			t.Errorf("DNS check pod output lacks %q: %s", want, logs)
		}
	}

	// Data survives deleting a pod.
	p1 := recreate(ctx, t, cs, ns, stsName+"-1")
	if got := query(ctx, t, p1.Status.PodIP, "SELECT v FROM smoke"); got != "written to "+stsName+"-1" {
		t.Errorf("after deleting %s-1: got %q, want its row back", stsName, got)
	}

	// OnDelete: a new image restarts nothing until a pod is deleted.
	before := podUIDs(ctx, t, cs, ns)
	sts, err := cs.AppsV1().StatefulSets(ns).Get(ctx, stsName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := sts.Spec.UpdateStrategy.Type; got != appsv1.OnDeleteStatefulSetStrategyType {
		t.Fatalf("StatefulSet update strategy %q, want OnDelete", got)
	}
	sts.Spec.Template.Spec.Containers[0].Image = image1520
	if _, err := cs.AppsV1().StatefulSets(ns).Update(ctx, sts, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update the image: %v", err)
	}
	waitUpdateRevision(ctx, t, cs, ns, sts.Generation+1)
	// Give the controller time to (wrongly) act; OnDelete must leave pods alone.
	time.Sleep(10 * time.Second)
	after := podUIDs(ctx, t, cs, ns)
	for name, id := range before {
		if after[name] != id {
			t.Errorf("pod %s was replaced or restarted without being deleted (OnDelete): %s, then %s", name, id, after[name])
		}
	}
	p2 := recreate(ctx, t, cs, ns, stsName+"-2")
	if img := p2.Spec.Containers[0].Image; img != image1520 {
		t.Errorf("recreated %s runs %s, want %s", p2.Name, img, image1520)
	}
	if v := query(ctx, t, p2.Status.PodIP, "SHOW server_version"); !strings.HasPrefix(v, "15.20") {
		t.Errorf("recreated %s reports server_version %q, want 15.20", p2.Name, v)
	}
	if got := query(ctx, t, p2.Status.PodIP, "SELECT v FROM smoke"); got != "written to "+stsName+"-2" {
		t.Errorf("after the upgrade of %s-2: got %q, want its row back", stsName, got)
	}
	checkServerRunsAs26(ctx, t, p2)
	for _, name := range []string{stsName + "-0", stsName + "-1"} {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if img := p.Spec.Containers[0].Image; img != image1518 {
			t.Errorf("%s was not deleted yet runs %s", name, img)
		}
		if v := query(ctx, t, p.Status.PodIP, "SHOW server_version"); !strings.HasPrefix(v, "15.18 ") {
			t.Errorf("%s was not deleted yet reports server_version %q", name, v)
		}
	}
}

// checkRestrictedEnforced asks the API server (dry run) to admit a pod with
// no security context into ns and expects a PodSecurity `restricted` refusal.
func checkRestrictedEnforced(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns string) {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "not-restricted"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image1518}}},
	}
	_, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `violates PodSecurity "restricted`) {
		t.Fatalf("namespace %s admitted a pod without a security context (want a PodSecurity restricted refusal): %v", ns, err)
	}
}

// checkServerRunsAs26 asks the PostgreSQL server of pod which uid and gid it
// runs as (COPY FROM PROGRAM runs a command as the server's OS user).
func checkServerRunsAs26(ctx context.Context, t *testing.T, pod corev1.Pod) {
	t.Helper()
	c := connect(ctx, t, pod.Status.PodIP)
	defer c.Close(ctx)
	var ids string
	for _, s := range []string{"CREATE TEMP TABLE ids(v text)", "COPY ids FROM PROGRAM 'echo $(id -u):$(id -g)'"} {
		if _, err := c.Exec(ctx, s); err != nil {
			t.Fatalf("%s on %s: %v", s, pod.Name, err)
		}
	}
	if err := c.QueryRow(ctx, "SELECT v FROM ids").Scan(&ids); err != nil {
		t.Fatalf("read the server's uid on %s: %v", pod.Name, err)
	}
	if ids != "26:26" {
		t.Errorf("PostgreSQL in %s runs as uid:gid %s, want 26:26", pod.Name, ids)
	}
}

// checkClaimOnStandard checks that the claim was provisioned dynamically on
// the `standard` StorageClass by the local provisioner.
func checkClaimOnStandard(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, claim string) {
	t.Helper()
	pvc, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, claim, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("claim %s: %v", claim, err)
	}
	if pvc.Status.Phase != corev1.ClaimBound || pvc.Spec.StorageClassName == nil || *pvc.Spec.StorageClassName != "standard" {
		t.Fatalf("claim %s: phase %s, class %v; want Bound on standard", claim, pvc.Status.Phase, pvc.Spec.StorageClassName)
	}
	pv, err := cs.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("volume of claim %s: %v", claim, err)
	}
	if by := pv.Annotations["pv.kubernetes.io/provisioned-by"]; by != "local.kubelocal.pgsync.io" || pv.Spec.StorageClassName != "standard" {
		t.Errorf("volume %s of claim %s: provisioned by %q, class %q; want the local provisioner on standard", pv.Name, claim, by, pv.Spec.StorageClassName)
	}
}

func statefulSet(image string) *appsv1.StatefulSet {
	yes, no := true, false
	uid := int64(26)
	onRoot := corev1.FSGroupChangeOnRootMismatch
	labels := map[string]string{"app": stsName}
	script := `set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  initdb -D "$PGDATA" -U postgres --auth=trust --no-sync >/dev/null
  echo "host all all 0.0.0.0/0 trust" >>"$PGDATA/pg_hba.conf"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/tmp -c fsync=off`
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: stsName, Labels: labels},
		Spec: appsv1.StatefulSetSpec{
			Replicas:            ptr(int32(3)),
			ServiceName:         stsName + "-hl",
			Selector:            &metav1.LabelSelector{MatchLabels: labels},
			PodManagementPolicy: appsv1.ParallelPodManagement,
			UpdateStrategy:      appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr(int64(10)),
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot: &yes, RunAsUser: &uid, RunAsGroup: &uid, FSGroup: &uid,
						FSGroupChangePolicy: &onRoot,
						SeccompProfile:      &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{{
						Name: "postgres", Image: image, ImagePullPolicy: corev1.PullIfNotPresent,
						Command: []string{"sh", "-c", script},
						Ports:   []corev1.ContainerPort{{Name: "postgres", ContainerPort: 5432}},
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: &no, ReadOnlyRootFilesystem: &yes, RunAsNonRoot: &yes,
							Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"pg_isready", "-h", "/tmp", "-U", "postgres"}}},
							PeriodSeconds: 2, TimeoutSeconds: 5,
						},
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
							corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("64Mi"),
						}},
						VolumeMounts: []corev1.VolumeMount{
							{Name: "pgdata", MountPath: "/var/lib/postgresql/data"},
							{Name: "tmp", MountPath: "/tmp"},
							{Name: "run", MountPath: "/run"},
						},
					}},
					Volumes: []corev1.Volume{
						{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
						{Name: "run", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
					},
				},
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "pgdata"},
				Spec: corev1.PersistentVolumeClaimSpec{
					StorageClassName: ptr("standard"),
					AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
				},
			}},
		},
	}
}

func ptr[T any](v T) *T { return &v }

// waitPodsReady waits for n Ready pods of the StatefulSet and returns them
// ordered by name.
func waitPodsReady(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns string, n int) []corev1.Pod {
	t.Helper()
	var last string
	for {
		list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + stsName})
		if err == nil {
			ready := map[string]corev1.Pod{}
			var states []string
			for _, p := range list.Items {
				if p.DeletionTimestamp == nil && isReady(p) {
					ready[p.Name] = p
				}
				states = append(states, fmt.Sprintf("%s=%s", p.Name, podState(p)))
			}
			last = strings.Join(states, " ")
			if len(ready) == n {
				out := make([]corev1.Pod, 0, n)
				for i := 0; i < n; i++ {
					out = append(out, ready[fmt.Sprintf("%s-%d", stsName, i)])
				}
				return out
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %d Ready pods: %v (pods: %s; events: %s)", n, ctx.Err(), last, events(cs, ns))
		case <-time.After(time.Second):
		}
	}
}

func isReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func podState(p corev1.Pod) string {
	for _, c := range p.Status.ContainerStatuses {
		if c.State.Waiting != nil {
			return c.State.Waiting.Reason
		}
		if c.State.Terminated != nil {
			return "Terminated:" + c.State.Terminated.Reason
		}
	}
	return string(p.Status.Phase)
}

func events(cs kubernetes.Interface, ns string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	list, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, e := range list.Items {
		if e.Type != corev1.EventTypeNormal {
			out = append(out, fmt.Sprintf("%s %s: %s", e.InvolvedObject.Name, e.Reason, e.Message))
		}
	}
	return strings.Join(out, "; ")
}

// podUIDs identifies each pod of the StatefulSet and its running container
// ("UID container-ID restarts=N"): a pod replaced or a container restarted
// in place changes it.
func podUIDs(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns string) map[string]string {
	t.Helper()
	list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + stsName})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range list.Items {
		id := string(p.UID)
		for _, c := range p.Status.ContainerStatuses {
			id += fmt.Sprintf(" %s restarts=%d", c.ContainerID, c.RestartCount)
		}
		out[p.Name] = id
	}
	if len(out) != 3 {
		t.Fatalf("want 3 pods of the StatefulSet, have %v", out)
	}
	return out
}

// recreate deletes a pod and waits for the StatefulSet to bring it back Ready.
func recreate(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, name string) corev1.Pod {
	t.Helper()
	old, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete %s: %v", name, err)
	}
	for {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil && p.UID != old.UID && isReady(*p) {
			return *p
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s did not come back Ready: %v (events: %s)", name, ctx.Err(), events(cs, ns))
		case <-time.After(time.Second):
		}
	}
}

func waitUpdateRevision(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns string, gen int64) {
	t.Helper()
	for {
		s, err := cs.AppsV1().StatefulSets(ns).Get(ctx, stsName, metav1.GetOptions{})
		if err == nil && s.Status.ObservedGeneration >= gen && s.Status.UpdateRevision != s.Status.CurrentRevision {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("StatefulSet did not observe the new template: %v", ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// checkDNSFromPod runs a pod (restricted-compliant, the 15.18 image) that
// resolves host, connects to PostgreSQL through it, and opens a connection to
// the API server through the kubernetes Service; it returns the pod's output
// (first line: getent's "ADDRESS NAME").
func checkDNSFromPod(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, host string) string {
	t.Helper()
	yes, no := true, false
	uid := int64(26)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "dns-check"},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot: &yes, RunAsUser: &uid, RunAsGroup: &uid,
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name: "check", Image: image1518, ImagePullPolicy: corev1.PullIfNotPresent,
				// Also the API server through the kubernetes Service, as
				// pgsync's instance manager reaches it from its pod.
				Command: []string{"bash", "-c", fmt.Sprintf("getent hosts %[1]s && pg_isready -h %[1]s -p 5432 -t 20 && "+
					"timeout 10 bash -c 'exec 3<>/dev/tcp/kubernetes.default.svc.cluster.local/443' && echo API server reachable", host)},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: &no, RunAsNonRoot: &yes,
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
		},
	}
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create DNS check pod: %v", err)
	}
	for {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err == nil && (p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed) {
			logs, _ := cs.CoreV1().Pods(ns).GetLogs(pod.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
			if p.Status.Phase == corev1.PodFailed {
				t.Fatalf("from a pod, %s did not resolve or answer: %s", host, logs)
			}
			t.Logf("from a pod: %s", strings.TrimSpace(string(logs)))
			return strings.TrimSpace(string(logs))
		}
		select {
		case <-ctx.Done():
			t.Fatalf("DNS check pod did not finish: %v (events: %s)", ctx.Err(), events(cs, ns))
			return ""
		case <-time.After(time.Second):
		}
	}
}

func connect(ctx context.Context, t *testing.T, ip string) *pgx.Conn {
	t.Helper()
	dsn := fmt.Sprintf("postgres://postgres@%s/postgres?sslmode=disable&connect_timeout=10", net.JoinHostPort(ip, "5432"))
	var last error
	for i := 0; i < 20; i++ {
		c, err := pgx.Connect(ctx, dsn)
		if err == nil {
			return c
		}
		last = err
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("connect to %s: %v", ip, last)
	return nil
}

func exec(ctx context.Context, t *testing.T, ip string, stmts ...string) {
	t.Helper()
	c := connect(ctx, t, ip)
	defer c.Close(ctx)
	for _, s := range stmts {
		if _, err := c.Exec(ctx, s); err != nil {
			t.Fatalf("%s on %s: %v", s, ip, err)
		}
	}
}

func query(ctx context.Context, t *testing.T, ip, q string) string {
	t.Helper()
	c := connect(ctx, t, ip)
	defer c.Close(ctx)
	var v string
	if err := c.QueryRow(ctx, q).Scan(&v); err != nil {
		t.Fatalf("%s on %s: %v", q, ip, err)
	}
	return v
}
