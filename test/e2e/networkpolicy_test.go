package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// TestNetworkPolicyRealPods: with the NetworkPolicy agent of the local
// Kubernetes enforcing, the cluster's NetworkPolicy lets an application
// pod of its namespace write through website-rw and reach 5432 of every
// instance, keeps every instance's status port closed to it, and keeps
// 5432 closed to a pod of another namespace; the instances still
// replicate to each other, and after a switchover (its /status reads
// come from the node, which every network plugin lets in) the
// application writes through website-rw to the new primary.
func TestNetworkPolicyRealPods(t *testing.T) {
	t.Parallel()
	ctx, env, repo := websiteTest(t, 15*time.Minute)
	cs, ns := env.Client, env.Namespace
	createWebsite(ctx, t, env, repo, websiteYAML(ns, image1518, 2, ""), "website, two instances")
	if _, err := cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, "website", metav1.GetOptions{}); err != nil {
		t.Fatalf("NetworkPolicy website: %v", err)
	}
	ips := websitePodIPs(ctx, t, cs, ns)
	waitStatusStreaming(ctx, t, ips["website-1"], "website-1")

	probe := func(name, namespace, script string) []string {
		t.Helper()
		return strings.Split(runPodScript(ctx, t, cs, namespace, name, script), "\n")
	}
	// The mechanism that finds 8000 closed finds 5432 open on the same
	// addresses: a closed port is the policy's doing, not the probe's.
	ports := func(port int) string {
		var b strings.Builder
		for _, pod := range []string{"website-0", "website-1"} {
			fmt.Fprintf(&b, "if timeout 5 bash -c 'exec 3<>/dev/tcp/%[1]s/%[2]d'; then echo '%[3]s %[2]d open'; else echo '%[3]s %[2]d closed'; fi; ",
				ips[pod], port, pod)
		}
		return b.String()
	}
	app := "psql \"host=website-rw user=app dbname=app connect_timeout=10\" -v ON_ERROR_STOP=1 -qAtc "
	got := probe("app", ns, app+"\"CREATE TABLE np_probe (i int); INSERT INTO np_probe VALUES (1); SELECT 'rw ' || pg_is_in_recovery()\"; "+
		ports(pc.PostgresPort)+ports(pc.HTTPPort))
	want := []string{"rw false", "website-0 5432 open", "website-1 5432 open", "website-0 8000 closed", "website-1 8000 closed"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("from an application pod of the namespace: got %q, want %q (8000 open: is the NetworkPolicy agent running? kube-up starts it)", got, want)
	}

	// Another namespace's pod: 5432 is the namespace's only.
	other := ns + "-other"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: other}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.CoreV1().Namespaces().Delete(context.Background(), other, metav1.DeleteOptions{})
	})
	// No pod is admitted before the namespace's default ServiceAccount.
	waitUntil(ctx, t, "the default ServiceAccount of "+other, 200*time.Millisecond, func() bool {
		_, err := cs.CoreV1().ServiceAccounts(other).Get(ctx, "default", metav1.GetOptions{})
		return err == nil
	})
	got = probe("outsider", other, ports(pc.PostgresPort))
	if want := []string{"website-0 5432 closed", "website-1 5432 closed"}; strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("from a pod of another namespace: got %q, want %q", got, want)
	}

	// A switchover: the instances reach each other (the old primary
	// rejoins and streams from the new one), the application follows
	// website-rw.
	if out, code := pgsyncCLI(ctx, t, "switchover", ns+"/website", "--to", "website-1", "--kubeconfig", env.Kubeconfig); code != 0 {
		t.Fatalf("pgsync switchover exited %d:\n%s", code, out)
	}
	if p := primaryOf(ctx, t, cs, ns); p != "website-1" {
		t.Fatalf("primary after the switchover: %s, want website-1", p)
	}
	waitStatusStreaming(ctx, t, websitePodIPs(ctx, t, cs, ns)["website-0"], "website-0")
	got = probe("app-after", ns, app+"\"INSERT INTO np_probe VALUES (2); SELECT 'rw ' || pg_is_in_recovery() || ' ' || count(*) FROM np_probe\"")
	if want := []string{"rw false 2"}; strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("through website-rw after the switchover: got %q, want %q", got, want)
	}
}

// websitePodIPs are the IPs of the website cluster's pods, by name.
func websitePodIPs(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns string) map[string]string {
	t.Helper()
	list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: pc.LabelCluster + "=website"})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range list.Items {
		if p.Status.PodIP == "" {
			t.Fatalf("pod %s has no IP", p.Name)
		}
		out[p.Name] = p.Status.PodIP
	}
	return out
}

// waitStatusStreaming waits until the instance at ip says, on its status
// port (read from the node), that it is a standby streaming.
func waitStatusStreaming(ctx context.Context, t *testing.T, ip, name string) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(ip, fmt.Sprint(pc.HTTPPort))+pc.PathStatus, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			last = err.Error()
			continue
		}
		var st pc.Status
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil {
			last = err.Error()
			continue
		}
		last = fmt.Sprintf("role %s, streaming %v", st.Role, st.Streaming)
		if st.Streaming {
			t.Logf("%s: %s", name, last)
			return
		}
	}
	t.Fatalf("%s (%s) does not stream: %s", name, ip, last)
}

// runPodScript runs script with bash in a pod of namespace (the 15.18
// image, restricted-compliant, PGPASSWORD from website-app when the
// namespace has it) and returns its output, trimmed.
func runPodScript(ctx context.Context, t *testing.T, cs kubernetes.Interface, namespace, name, script string) string {
	t.Helper()
	yes, no := true, false
	uid := int64(26)
	var env []corev1.EnvVar
	if _, err := cs.CoreV1().Secrets(namespace).Get(ctx, "website-app", metav1.GetOptions{}); err == nil {
		env = append(env, corev1.EnvVar{Name: "PGPASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "website-app"}, Key: "password"}}})
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "shop"}},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot: &yes, RunAsUser: &uid, RunAsGroup: &uid,
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name: "probe", Image: image1518, ImagePullPolicy: corev1.PullIfNotPresent,
				Command: []string{"bash", "-c", script}, Env: env,
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: &no, RunAsNonRoot: &yes,
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
		},
	}
	if _, err := cs.CoreV1().Pods(namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod %s/%s: %v", namespace, name, err)
	}
	for {
		p, err := cs.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		if err == nil && (p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed) {
			logs, _ := cs.CoreV1().Pods(namespace).GetLogs(name, &corev1.PodLogOptions{}).DoRaw(ctx)
			out := strings.TrimSpace(string(logs))
			t.Logf("pod %s/%s (%s):\n%s", namespace, name, p.Status.Phase, out)
			return out
		}
		select {
		case <-ctx.Done():
			t.Fatalf("pod %s/%s did not finish: %v (events: %s)", namespace, name, ctx.Err(), events(cs, namespace))
			return ""
		case <-time.After(time.Second):
		}
	}
}
