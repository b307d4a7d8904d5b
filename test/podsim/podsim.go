// Package podsim plays, against a bare kube-apiserver (test/kubeenv), the
// parts of Kubernetes and of pgsync's pods that such a server lacks: pods
// created from a rendered StatefulSet's template as its controller would,
// their status as a kubelet would report it, a claim's status.capacity as
// a storage driver would set it, the primary Lease's holder as an instance
// manager would take it, and the managers' /status documents served on
// loopback addresses (Linux routes all of 127.0.0.0/8 to lo) standing in
// for pod IPs. Only tests import it.
//
// It must not import `internal/observe` or `internal/statusview`: what
// they observe is built here independently of them.
package podsim

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/kube"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// Apply applies every rendered object as pgsync does (server-side apply,
// field manager pgsync).
func Apply(ctx context.Context, dyn dynamic.Interface, o *kube.Objects) error {
	for _, obj := range o.List() {
		if _, err := kube.Apply(ctx, dyn, obj, kube.ApplyOptions{}); err != nil {
			return err
		}
	}
	return nil
}

// ConvergedStatus is what instance n of c reports once converged: n 0
// the primary (the Lease holder), the others streaming standbys, every
// one with configRevision loaded.
func ConvergedStatus(c *cluster.Cluster, n int, configRevision string) pc.Status {
	names := kube.NamesOf(c)
	st := pc.Status{Cluster: c.Metadata.Name, Instance: names.Instance(n), Action: "none",
		LeaseHolder: names.Instance(0), Target: names.Instance(0), PostgresWanted: true, PostgresRunning: true,
		PostmasterPID: 100 + n, PostgresStarts: 1, Accepting: true, Timeline: 1, ServerVersion: "15.18",
		ConfigRevision: configRevision, PendingRestart: []string{}}
	if n == 0 {
		st.Role, st.CurrentLSN, st.FlushedLSN = pc.StatusPrimary, "0/3000148", "0/3000148"
	} else {
		st.Role, st.Upstream, st.Streaming = pc.StatusStandby, names.Instance(0), true
		st.ReceivedLSN, st.ReplayedLSN, st.FlushedLSN = "0/3000148", "0/3000148", "0/3000148"
	}
	return st
}

// DeployConverged makes c look converged and running, as the executor
// leaves it: its objects applied (with the applied-spec and applied-commit
// annotations, spec.instances replicas, instanceImage in the init
// container), its Secrets, a claim and a Ready pod per instance at ips[n]
// with the manager's role label, the Lease held by instance 0, and each
// instance's ConvergedStatus served by srv.
func DeployConverged(ctx context.Context, cs kubernetes.Interface, dyn dynamic.Interface, srv *Servers, c *cluster.Cluster, commit, instanceImage string, ips []string) error {
	names := kube.NamesOf(c)
	if _, err := kube.EnsureSecrets(ctx, cs, c, rand.Reader, kube.SecretPolicy{}); err != nil {
		return err
	}
	objs, err := kube.Render(c, kube.Options{InstanceImage: instanceImage, TargetPrimary: names.Instance(0), Commit: commit})
	if err != nil {
		return err
	}
	for _, obj := range objs.List() {
		if _, err := kube.Apply(ctx, dyn, obj, kube.ApplyOptions{Force: true}); err != nil {
			return err
		}
	}
	sts, err := cs.AppsV1().StatefulSets(c.Metadata.Namespace).Get(ctx, c.Metadata.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	configRev := objs.Params.Data[pc.ConfigRevisionKey]
	for n := 0; n < c.Spec.Instances; n++ {
		if err := CreateClaim(ctx, cs, sts, n, "", ""); err != nil {
			return err
		}
		// The role label is the manager's, per pod: a template copy
		// carries it into the pod.
		withRole := sts.DeepCopy()
		withRole.Spec.Template.Labels[pc.LabelRole] = pc.RoleReplica
		if n == 0 {
			withRole.Spec.Template.Labels[pc.LabelRole] = pc.RolePrimary
		}
		if _, err := CreatePod(ctx, cs, withRole, n, Pod{IP: ips[n], Ready: true}); err != nil {
			return err
		}
		srv.Set(ips[n], ConvergedStatus(c, n, configRev))
	}
	return HoldLease(ctx, cs, c.Metadata.Namespace, names.Lease(), names.Instance(0))
}

// Pod is how one simulated pod runs.
type Pod struct {
	// IP is the pod IP ("" before the pod has one).
	IP string
	// Ready is the pod's Ready condition.
	Ready    bool
	Restarts int32
}

// CreatePod creates pod ordinal of sts from its template, as the
// StatefulSet controller does (name, hostname and subdomain, the pod-name
// label, the owner reference, the claim template as a volume), then sets
// its status as a kubelet running it would.
func CreatePod(ctx context.Context, cs kubernetes.Interface, sts *appsv1.StatefulSet, ordinal int, p Pod) (*corev1.Pod, error) {
	name := fmt.Sprintf("%s-%d", sts.Name, ordinal)
	labels := map[string]string{pc.LabelPodName: name}
	for k, v := range sts.Spec.Template.Labels {
		labels[k] = v
	}
	annotations := map[string]string{}
	for k, v := range sts.Spec.Template.Annotations {
		annotations[k] = v
	}
	spec := *sts.Spec.Template.Spec.DeepCopy()
	spec.Hostname, spec.Subdomain = name, sts.Spec.ServiceName
	for _, vct := range sts.Spec.VolumeClaimTemplates {
		spec.Volumes = append(spec.Volumes, corev1.Volume{Name: vct.Name, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: vct.Name + "-" + name}}})
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: sts.Namespace, Labels: labels, Annotations: annotations,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "StatefulSet", Name: sts.Name,
				UID: sts.UID, Controller: ptr(true), BlockOwnerDeletion: ptr(true)}}},
		Spec: spec,
	}
	created, err := cs.CoreV1().Pods(sts.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("create pod %s/%s: %w", sts.Namespace, name, err)
	}
	return SetPodStatus(ctx, cs, created, p)
}

// SetPodStatus reports pod as running with p's IP, readiness and restarts.
func SetPodStatus(ctx context.Context, cs kubernetes.Interface, pod *corev1.Pod, p Pod) (*corev1.Pod, error) {
	pod = pod.DeepCopy()
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	ready := corev1.ConditionFalse
	if p.Ready {
		ready = corev1.ConditionTrue
	}
	pod.Status = corev1.PodStatus{
		Phase:     corev1.PodRunning,
		StartTime: &now,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.ContainersReady, Status: ready, LastTransitionTime: now},
			{Type: corev1.PodReady, Status: ready, LastTransitionTime: now},
		},
		HostIP: "127.0.0.1", HostIPs: []corev1.HostIP{{IP: "127.0.0.1"}},
	}
	if p.IP != "" {
		pod.Status.PodIP, pod.Status.PodIPs = p.IP, []corev1.PodIP{{IP: p.IP}}
	}
	for _, c := range pod.Spec.InitContainers {
		pod.Status.InitContainerStatuses = append(pod.Status.InitContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: c.Image,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}}})
	}
	for _, c := range pod.Spec.Containers {
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: c.Image, Ready: p.Ready, Started: ptr(true), RestartCount: p.Restarts,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}})
	}
	out, err := cs.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("update status of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return out, nil
}

// CreateClaim creates the data claim of ordinal from sts's claim template,
// as the StatefulSet controller does, asking request ("" = the template's
// size), and reports it bound with capacity ("" = the request).
func CreateClaim(ctx context.Context, cs kubernetes.Interface, sts *appsv1.StatefulSet, ordinal int, request, capacity string) error {
	if len(sts.Spec.VolumeClaimTemplates) == 0 {
		return fmt.Errorf("StatefulSet %s/%s has no claim template", sts.Namespace, sts.Name)
	}
	vct := sts.Spec.VolumeClaimTemplates[0]
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%s-%d", vct.Name, sts.Name, ordinal), Namespace: sts.Namespace,
			Labels: map[string]string{}},
		Spec: *vct.Spec.DeepCopy(),
	}
	for k, v := range sts.Spec.Selector.MatchLabels {
		pvc.Labels[k] = v
	}
	for k, v := range vct.Labels {
		pvc.Labels[k] = v
	}
	if request != "" {
		q, err := resource.ParseQuantity(request)
		if err != nil {
			return err
		}
		pvc.Spec.Resources.Requests = corev1.ResourceList{corev1.ResourceStorage: q}
	}
	created, err := cs.CoreV1().PersistentVolumeClaims(sts.Namespace).Create(ctx, pvc, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create claim %s/%s: %w", pvc.Namespace, pvc.Name, err)
	}
	capQ := created.Spec.Resources.Requests[corev1.ResourceStorage]
	if capacity != "" {
		if capQ, err = resource.ParseQuantity(capacity); err != nil {
			return err
		}
	}
	created.Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound,
		AccessModes: created.Spec.AccessModes, Capacity: corev1.ResourceList{corev1.ResourceStorage: capQ}}
	if _, err := cs.CoreV1().PersistentVolumeClaims(sts.Namespace).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update status of claim %s/%s: %w", pvc.Namespace, pvc.Name, err)
	}
	return nil
}

// HoldLease makes holder the holder of the Lease, with a plain Update by
// the instance managers' field manager, as a manager taking it does.
func HoldLease(ctx context.Context, cs kubernetes.Interface, namespace, lease, holder string) error {
	leases := cs.CoordinationV1().Leases(namespace)
	l, err := leases.Get(ctx, lease, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get Lease %s/%s: %w", namespace, lease, err)
	}
	now := metav1.NewMicroTime(time.Now())
	l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds, l.Spec.AcquireTime, l.Spec.RenewTime = &holder, ptr(int32(15)), &now, &now
	if _, err := leases.Update(ctx, l, metav1.UpdateOptions{FieldManager: pc.InstanceFieldManager}); err != nil {
		return fmt.Errorf("update Lease %s/%s: %w", namespace, lease, err)
	}
	return nil
}

// Servers serve instance managers' /status documents, one listener per
// pod IP, all on one port (as every pod's manager listens on the same
// port).
type Servers struct {
	port     int
	requests atomic.Int64
	mu       sync.Mutex
	byIP     map[string]*entry
	servers  []*http.Server
	release  chan struct{}
	once     sync.Once
}

type entry struct {
	st   pc.Status
	hang bool
}

// Serve listens on port of each ip (port 0: one free on the first IP,
// shared by the others; taken again with a new port if another IP has it
// in use). Close stops every listener.
func Serve(ips []string, port int) (*Servers, error) {
	fixed := port != 0
	for attempt := 0; ; attempt++ {
		s, err := serve(ips, port)
		if err == nil {
			return s, nil
		}
		if fixed || attempt >= 5 || !errors.Is(err, syscall.EADDRINUSE) {
			return nil, err
		}
	}
}

func serve(ips []string, port int) (*Servers, error) {
	s := &Servers{byIP: map[string]*entry{}, release: make(chan struct{})}
	for _, ip := range ips {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("status server on %s: %w", ip, err)
		}
		port = l.Addr().(*net.TCPAddr).Port
		s.byIP[ip] = &entry{}
		srv := &http.Server{Handler: s.handler(ip), ReadHeaderTimeout: 10 * time.Second}
		s.servers = append(s.servers, srv)
		go func() { _ = srv.Serve(l) }()
	}
	s.port = port
	return s, nil
}

// Requests is how many /status requests the servers have had.
func (s *Servers) Requests() int64 { return s.requests.Load() }

// Port is the port every listener shares.
func (s *Servers) Port() int { return s.port }

// Set makes ip serve st (and stop hanging).
func (s *Servers) Set(ip string, st pc.Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byIP[ip] = &entry{st: st}
}

// Hang makes ip accept requests and never answer them (a manager stuck
// behind a lock, a pod whose network drops replies).
func (s *Servers) Hang(ip string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byIP[ip] = &entry{hang: true}
}

func (s *Servers) handler(ip string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != pc.PathStatus {
			http.NotFound(w, r)
			return
		}
		s.requests.Add(1)
		s.mu.Lock()
		e := *s.byIP[ip]
		s.mu.Unlock()
		if e.hang {
			select {
			case <-r.Context().Done():
			case <-s.release:
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(e.st)
	})
}

// Close stops every listener and releases hanging requests.
func (s *Servers) Close() {
	s.once.Do(func() { close(s.release) })
	for _, srv := range s.servers {
		_ = srv.Close()
	}
}

func ptr[T any](v T) *T { return &v }
