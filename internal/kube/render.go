package kube

import (
	"encoding/json"
	"fmt"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	coordv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/pgsync/pgsync/internal/cluster"
	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/internal/revision"
)

// Options are what rendering needs beyond the Cluster.
type Options struct {
	// InstanceImage is the pgsync image whose binary the init container
	// copies into the pod (e.g. ghcr.io/pgsync/pgsync:v1.2.3).
	InstanceImage string
	// InstanceImagePullPolicy: default IfNotPresent. A mutable tag rebuilt
	// in place (localhost:5000/pgsync:dev) wants Always.
	InstanceImagePullPolicy corev1.PullPolicy
	// TargetPrimary is the instance pgsync wants as primary, written to the
	// Lease's pgsync.io/target-primary annotation and selected by the
	// primary's PodDisruptionBudget. Required: TargetPrimary(c, liveLease)
	// keeps what the live Lease says (NAME-0 for a new cluster); another
	// value starts a switchover. Required rather than defaulted, so a
	// caller that forgets it gets an error, not a switchover to NAME-0.
	TargetPrimary string
	// Replicas, when set, is the StatefulSet's replicas instead of
	// spec.instances: apply grows and shrinks a cluster one instance per
	// step, each ready before the next, so the objects of a cluster being
	// created or scaled carry the number of instances that exist so far.
	Replicas *int32
	// Commit is the Git commit the spec comes from, recorded in the
	// StatefulSet's pgsync.io/applied-commit annotation ("" records none).
	Commit string
}

// Objects are every object of one cluster except the Secrets (NewSecrets).
type Objects struct {
	ServiceAccount *corev1.ServiceAccount
	Role           *rbacv1.Role
	RoleBinding    *rbacv1.RoleBinding
	Params         *corev1.ConfigMap
	RW             *corev1.Service
	RWSlice        *discoveryv1.EndpointSlice
	// RO and R are nil when spec.managed.services disables them.
	RO, R    *corev1.Service
	Headless *corev1.Service
	// Additional are spec.managed.services.additional, in order.
	Additional    []*corev1.Service
	Lease         *coordv1.Lease
	PrimaryPDB    *policyv1.PodDisruptionBudget
	StandbyPDB    *policyv1.PodDisruptionBudget
	NetworkPolicy *networkingv1.NetworkPolicy
	StatefulSet   *appsv1.StatefulSet
	// PodMonitor is nil without spec.monitoring.enablePodMonitor
	// (podmonitor.go).
	PodMonitor *unstructured.Unstructured
}

// List returns the objects in apply order: identity and permissions, then
// configuration, routing and the Lease, and the StatefulSet last, so its
// pods never start before what they read exists, nor before their
// NetworkPolicy does (they are never open to more than it admits).
func (o *Objects) List() []runtime.Object {
	out := []runtime.Object{o.ServiceAccount, o.Role, o.RoleBinding, o.Params, o.RW, o.RWSlice}
	for _, s := range []*corev1.Service{o.RO, o.R} {
		if s != nil {
			out = append(out, s)
		}
	}
	out = append(out, o.Headless)
	for _, s := range o.Additional {
		out = append(out, s)
	}
	out = append(out, o.Lease, o.PrimaryPDB, o.StandbyPDB, o.NetworkPolicy, o.StatefulSet)
	if o.PodMonitor != nil {
		// Last: what scrapes the pods follows them.
		out = append(out, o.PodMonitor)
	}
	return out
}

// Render returns every object of c (defaulted and validated by
// cluster.Load) except the Secrets.
func Render(c *cluster.Cluster, opts Options) (*Objects, error) {
	if c.Metadata.Name == "" || c.Metadata.Namespace == "" {
		return nil, fmt.Errorf("render: cluster needs a name and a namespace (got %q)", c.Key())
	}
	if opts.InstanceImage == "" {
		return nil, fmt.Errorf("render %s: no pgsync instance image", c.Key())
	}
	if c.Spec.Instances < 1 {
		return nil, fmt.Errorf("render %s: instances must be at least 1 (got %d)", c.Key(), c.Spec.Instances)
	}
	params, err := paramsConfigMap(c)
	if err != nil {
		return nil, err
	}
	sts, err := statefulSet(c, opts)
	if err != nil {
		return nil, err
	}
	netpol, err := networkPolicy(c)
	if err != nil {
		return nil, err
	}
	n := NamesOf(c)
	target := opts.TargetPrimary
	if target == "" {
		return nil, fmt.Errorf("render %s: no target primary (pass kube.TargetPrimary(c, liveLease))", c.Key())
	}
	var ro, r *corev1.Service
	if c.Spec.DefaultServiceOn(cluster.SelectorRO) {
		ro = selectorService(c, n.RO(), selectorOf(c, cluster.SelectorRO))
	}
	if c.Spec.DefaultServiceOn(cluster.SelectorR) {
		r = selectorService(c, n.R(), selectorOf(c, cluster.SelectorR))
	}
	return &Objects{
		ServiceAccount: serviceAccount(c),
		Role:           role(c, opts.Replicas),
		RoleBinding:    roleBinding(c),
		Params:         params,
		RW:             rwService(c),
		RWSlice:        rwSlice(c),
		RO:             ro,
		R:              r,
		Headless:       headlessService(c),
		Additional:     additionalServices(c),
		Lease:          lease(c, target),
		PrimaryPDB:     primaryPDB(c, target),
		StandbyPDB:     standbyPDB(c, target),
		NetworkPolicy:  netpol,
		StatefulSet:    sts,
		PodMonitor:     podMonitor(c),
	}, nil
}

// TargetPrimary is the target a re-render keeps: the live Lease's
// annotation if it has one, else NAME-0. Re-applying the Lease with a
// different value would start a switchover.
func TargetPrimary(c *cluster.Cluster, live *coordv1.Lease) string {
	if live != nil {
		if t := live.Annotations[pc.AnnTargetPrimary]; t != "" {
			return t
		}
	}
	return NamesOf(c).Instance(0)
}

func meta(c *cluster.Cluster, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: c.Metadata.Namespace, Labels: labels(c)}
}

func serviceAccount(c *cluster.Cluster) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta: meta(c, c.Metadata.Name),
	}
}

// role is exactly docs/instance-manager.md's RBAC table: the Lease, the
// pre-created EndpointSlice and the cluster's pods, each by name, and
// creating Events.
// The pods listed are those of spec.instances or of replicas, whichever
// is more: during a scale down the instances still to be removed must keep
// get and patch on their own pod (their managers relabel it).
func role(c *cluster.Cluster, replicas *int32) *rbacv1.Role {
	n := NamesOf(c)
	count := c.Spec.Instances
	if replicas != nil && int(*replicas) > count {
		count = int(*replicas)
	}
	pods := make([]string, count)
	for i := range pods {
		pods[i] = n.Instance(i)
	}
	return &rbacv1.Role{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
		ObjectMeta: meta(c, c.Metadata.Name),
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"},
				ResourceNames: []string{n.Lease()}, Verbs: []string{"get", "list", "watch", "update"}},
			{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"},
				ResourceNames: []string{n.RW()}, Verbs: []string{"get", "update"}},
			{APIGroups: []string{""}, Resources: []string{"pods"},
				ResourceNames: pods, Verbs: []string{"get", "patch"}},
			// The managers record a failover and a rejoin's discarded WAL
			// as Events on their own pods. create cannot be limited by
			// resourceNames (the name is generated): any Event in the
			// namespace, and nothing else — no get, list or update.
			{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create"}},
		},
	}
}

func roleBinding(c *cluster.Cluster) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
		ObjectMeta: meta(c, c.Metadata.Name),
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: c.Metadata.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: c.Metadata.Name,
			Namespace: c.Metadata.Namespace}},
	}
}

// paramsConfigMap is one version of what the manager applies by
// reloading: postgresql.parameters as the JSON object of strings its
// --parameters-file reads (keys sorted by encoding/json), the pg_hba lines
// as a JSON array of strings (always present, [] for none), and the config
// revision they make up. A ConfigMap volume swaps the three keys together.
func paramsConfigMap(c *cluster.Cluster) (*corev1.ConfigMap, error) {
	p := c.Spec.PostgreSQL.Parameters
	if p == nil {
		p = map[string]string{}
	}
	raw, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("render %s parameters: %w", c.Key(), err)
	}
	lines := c.Spec.PostgreSQL.PgHBA
	if lines == nil {
		lines = []string{}
	}
	hba, err := json.Marshal(lines)
	if err != nil {
		return nil, fmt.Errorf("render %s pg_hba: %w", c.Key(), err)
	}
	rep, err := json.Marshal(replication(c))
	if err != nil {
		return nil, fmt.Errorf("render %s replication: %w", c.Key(), err)
	}
	cm := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: meta(c, NamesOf(c).Params()),
		Data: map[string]string{pc.ParamsKey: string(raw), pc.HBAKey: string(hba),
			pc.ReplicationKey: string(rep), pc.ConfigRevisionKey: Revisions(c)[pc.AnnConfigRevision],
			pc.SuperuserAccessKey: superuserAccess(c)},
	}
	if roles, ok := managedRoles(c); ok {
		raw, err := json.Marshal(roles)
		if err != nil {
			return nil, fmt.Errorf("render %s managed roles: %w", c.Key(), err)
		}
		cm.Data[pc.RolesKey] = string(raw)
	}
	return cm, nil
}

// superuserAccess is spec.enableSuperuserAccess as the managers read it.
func superuserAccess(c *cluster.Cluster) string {
	if c.Spec.SuperuserAccess() {
		return pc.SuperuserAccessOn
	}
	return pc.SuperuserAccessOff
}

func postgresPort() []corev1.ServicePort {
	return []corev1.ServicePort{{Name: pc.PortNamePG, Protocol: corev1.ProtocolTCP, Port: pc.PostgresPort,
		TargetPort: intstr.FromInt32(pc.PostgresPort)}}
}

// rwService has no selector: its endpoints are the EndpointSlice NAME-rw,
// which the promoting instance rewrites in one update (DESIGN.md §6).
func rwService(c *cluster.Cluster) *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: meta(c, NamesOf(c).RW()),
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Ports: postgresPort()},
	}
}

// rwSlice is pre-created empty so the manager needs no `create` (which
// RBAC cannot limit by name). It carries only what pgsync owns: the labels
// tying it to NAME-rw, the address type and the port; the endpoints belong
// to the instance manager and are never rendered.
func rwSlice(c *cluster.Cluster) *discoveryv1.EndpointSlice {
	n := NamesOf(c)
	m := meta(c, n.RW())
	m.Labels = with(m.Labels, discoveryv1.LabelServiceName, n.RW(), discoveryv1.LabelManagedBy, "pgsync.io")
	return &discoveryv1.EndpointSlice{
		TypeMeta:    metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
		ObjectMeta:  m,
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports: []discoveryv1.EndpointPort{{Name: ptr(pc.PortNamePG), Protocol: ptr(corev1.ProtocolTCP),
			Port: ptr(int32(pc.PostgresPort))}},
	}
}

func selectorService(c *cluster.Cluster, name string, selector map[string]string) *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: meta(c, name),
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Selector: selector,
			Ports: postgresPort()},
	}
}

// headlessService governs the StatefulSet's pod DNS names
// (NAME-N.NAME-hl.NS.svc), which standbys use to reach the primary. Not-ready
// addresses are published: a standby bootstrapping from the primary, or a
// primary not yet ready, must still resolve.
func headlessService(c *cluster.Cluster) *corev1.Service {
	s := selectorService(c, NamesOf(c).Headless(), map[string]string{pc.LabelCluster: c.Metadata.Name})
	s.Spec.ClusterIP = corev1.ClusterIPNone
	s.Spec.PublishNotReadyAddresses = true
	return s
}

// lease carries only metadata: the holder fields are the instance
// managers' (written with Update), and an apply that never lists them
// never owns, conflicts with or resets them.
func lease(c *cluster.Cluster, target string) *coordv1.Lease {
	m := meta(c, NamesOf(c).Lease())
	m.Annotations = map[string]string{pc.AnnTargetPrimary: target}
	return &coordv1.Lease{
		TypeMeta:   metav1.TypeMeta{APIVersion: "coordination.k8s.io/v1", Kind: "Lease"},
		ObjectMeta: m,
	}
}

// primaryPDB forbids evicting the primary: a drain of its node waits until
// pgsync has switched over. With one instance there is nothing to switch
// to and a drain would hang forever, so it allows the eviction
// (minAvailable 0): the downtime a single instance implies anyway.
//
// It selects the target primary by pod name (a label the StatefulSet
// controller sets and never changes), not by pgsync.io/role: the
// disruption controller recomputes a budget when a pod starts matching it
// but not when a pod stops matching (it looks up only the updated pod's
// new budget), so after a switchover a role-selected budget kept counting
// the old primary and allowed evicting the new one (seen in e2e). A
// changed selector is an update of the budget itself, which the controller
// always recomputes, and pgsync applies it together with the Lease's new
// target.
//
// minAvailable (an integer) rather than maxUnavailable: with
// maxUnavailable the disruption controller counts the whole StatefulSet's
// replicas as expected pods, not the ones the selector matches, and would
// never allow evicting a standby.
func primaryPDB(c *cluster.Cluster, target string) *policyv1.PodDisruptionBudget {
	min := 1
	if c.Spec.Instances == 1 {
		min = 0
	}
	return &policyv1.PodDisruptionBudget{
		TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
		ObjectMeta: meta(c, NamesOf(c).PrimaryPDB()),
		Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable: ptr(intstr.FromInt32(int32(min))),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{
				pc.LabelCluster: c.Metadata.Name, pc.LabelPodName: target}},
		},
	}
}

// standbyPDB lets a drain take at most one of the other instances at a
// time: minAvailable = instances - 2 of the instances-1 non-primaries. Its
// selector (every instance but the target) never overlaps primaryPDB: the
// eviction API refuses a pod matched by two budgets.
func standbyPDB(c *cluster.Cluster, target string) *policyv1.PodDisruptionBudget {
	min := c.Spec.Instances - 2
	if min < 0 {
		min = 0
	}
	return &policyv1.PodDisruptionBudget{
		TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
		ObjectMeta: meta(c, NamesOf(c).StandbyPDB()),
		Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable: ptr(intstr.FromInt32(int32(min))),
			Selector: &metav1.LabelSelector{
				MatchLabels: map[string]string{pc.LabelCluster: c.Metadata.Name},
				MatchExpressions: []metav1.LabelSelectorRequirement{{Key: pc.LabelPodName,
					Operator: metav1.LabelSelectorOpNotIn, Values: []string{target}}},
			},
		},
	}
}

// AppliedSpec is the JSON stored in the StatefulSet's pgsync.io/applied-spec
// annotation: the Cluster's spec, which holds no credentials (those live
// only in the Secrets).
func AppliedSpec(c *cluster.Cluster) (string, error) {
	raw, err := json.Marshal(c.Spec)
	if err != nil {
		return "", fmt.Errorf("render %s applied spec: %w", c.Key(), err)
	}
	return string(raw), nil
}

// ReadAppliedSpec reads back the Cluster a live StatefulSet was last
// applied from (name and namespace from the object, the spec from its
// annotation); ok is false when the annotation is missing.
func ReadAppliedSpec(sts *appsv1.StatefulSet) (c *cluster.Cluster, ok bool, err error) {
	raw, ok := sts.Annotations[pc.AnnAppliedSpec]
	if !ok {
		return nil, false, nil
	}
	c = &cluster.Cluster{Metadata: cluster.Metadata{Name: sts.Name, Namespace: sts.Namespace}}
	if err := json.Unmarshal([]byte(raw), &c.Spec); err != nil {
		return nil, true, fmt.Errorf("StatefulSet %s/%s: annotation %s: %w", sts.Namespace, sts.Name, pc.AnnAppliedSpec, err)
	}
	if raw, ok := sts.Annotations[pc.AnnAppliedMetadata]; ok {
		var md appliedMetadata
		if err := json.Unmarshal([]byte(raw), &md); err != nil {
			return nil, true, fmt.Errorf("StatefulSet %s/%s: annotation %s: %w", sts.Namespace, sts.Name, pc.AnnAppliedMetadata, err)
		}
		c.Metadata.Labels, c.Metadata.Annotations = md.Labels, md.Annotations
	}
	return c, true, nil
}

// appliedMetadata is the pgsync.io/applied-metadata annotation.
type appliedMetadata struct {
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

func resourceList(m map[string]cluster.Quantity) (corev1.ResourceList, error) {
	if len(m) == 0 {
		return nil, nil
	}
	out := corev1.ResourceList{}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		q, err := m[k].Parse()
		if err != nil {
			return nil, fmt.Errorf("resource %s: %w", k, err)
		}
		out[corev1.ResourceName(k)] = q
	}
	return out, nil
}

// Revisions are the annotations of a pod template: what the pods created
// from it were started with (revision.Restart) and configured with
// (revision.Config).
func Revisions(c *cluster.Cluster) map[string]string {
	return map[string]string{pc.AnnRevision: revision.Restart(c), pc.AnnConfigRevision: revision.Config(c)}
}
