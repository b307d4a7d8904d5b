package kube

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pgsync/pgsync/internal/cluster"
)

// volumeClaim renders one volumeClaimTemplate from spec.storage or
// spec.walStorage (field, for errors): the pvcTemplate merged under
// pgsync's own settings, as CloudNativePG (size and storageClass, already
// filled from the template when unset, win; ReadWriteOnce and Filesystem
// unless the template says otherwise).
func volumeClaim(c *cluster.Cluster, name, field string, s *cluster.StorageConfiguration) (corev1.PersistentVolumeClaim, error) {
	size, err := s.Size.Parse()
	if err != nil {
		return corev1.PersistentVolumeClaim{}, fmt.Errorf("render %s: %s.size: %w", c.Key(), field, err)
	}
	spec := corev1.PersistentVolumeClaimSpec{
		StorageClassName: s.StorageClass,
		AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		VolumeMode:       ptr(corev1.PersistentVolumeFilesystem),
		Resources: corev1.VolumeResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceStorage: size},
		},
	}
	if t := s.PVCTemplate; t != nil {
		if len(t.AccessModes) > 0 {
			spec.AccessModes = nil
			for _, m := range t.AccessModes {
				spec.AccessModes = append(spec.AccessModes, corev1.PersistentVolumeAccessMode(m))
			}
		}
		if limit, ok := t.Resources.Limits["storage"]; ok {
			q, err := limit.Parse()
			if err != nil {
				return corev1.PersistentVolumeClaim{}, fmt.Errorf("render %s: %s.pvcTemplate.resources.limits.storage: %w", c.Key(), field, err)
			}
			spec.Resources.Limits = corev1.ResourceList{corev1.ResourceStorage: q}
		}
		if sel := t.Selector; sel != nil {
			ls := &metav1.LabelSelector{MatchLabels: sel.MatchLabels}
			for _, e := range sel.MatchExpressions {
				ls.MatchExpressions = append(ls.MatchExpressions, metav1.LabelSelectorRequirement{Key: e.Key,
					Operator: metav1.LabelSelectorOperator(e.Operator), Values: e.Values})
			}
			spec.Selector = ls
		}
		spec.VolumeAttributesClassName = t.VolumeAttributesClassName
	}
	return corev1.PersistentVolumeClaim{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels(c)},
		Spec:       spec,
	}, nil
}

// applyProbes overrides pgsync's probe timings with spec.probes, field by
// field; the handlers (the manager's /readyz and /healthz) stay.
func applyProbes(c *cluster.Cluster, ct *corev1.Container) {
	p := c.Spec.Probes
	if p == nil {
		return
	}
	set := func(pr *corev1.Probe, t cluster.Probe) {
		i32 := func(dst *int32, v *int) {
			if v != nil {
				*dst = int32(*v)
			}
		}
		i32(&pr.InitialDelaySeconds, t.InitialDelaySeconds)
		i32(&pr.TimeoutSeconds, t.TimeoutSeconds)
		i32(&pr.PeriodSeconds, t.PeriodSeconds)
		i32(&pr.SuccessThreshold, t.SuccessThreshold)
		i32(&pr.FailureThreshold, t.FailureThreshold)
		if v := t.TerminationGracePeriodSeconds; v != nil {
			pr.TerminationGracePeriodSeconds = ptr(int64(*v))
		}
	}
	if s := p.Startup; s != nil {
		// The default failure threshold spreads startDelay over the
		// period; a new period without a new threshold keeps startDelay.
		if s.PeriodSeconds != nil && s.FailureThreshold == nil {
			ct.StartupProbe.FailureThreshold = int32((max(c.Spec.StartDelay, *s.PeriodSeconds) + *s.PeriodSeconds - 1) / *s.PeriodSeconds)
		}
		set(ct.StartupProbe, s.Probe)
	}
	if r := p.Readiness; r != nil {
		set(ct.ReadinessProbe, r.Probe)
	}
	if l := p.Liveness; l != nil {
		set(ct.LivenessProbe, l.Probe)
	}
}

// applyPodSecurity merges spec.podSecurityContext into pgsync's restricted
// pod context (validation refused anything weaker).
func applyPodSecurity(c *cluster.Cluster, sc *corev1.PodSecurityContext) {
	p := c.Spec.PodSecurityContext
	if p == nil {
		return
	}
	id := func(dst **int64, v *int) {
		if v != nil {
			*dst = ptr(int64(*v))
		}
	}
	id(&sc.RunAsUser, p.RunAsUser)
	id(&sc.RunAsGroup, p.RunAsGroup)
	id(&sc.FSGroup, p.FSGroup)
	if p.FSGroupChangePolicy != "" {
		sc.FSGroupChangePolicy = ptr(corev1.PodFSGroupChangePolicy(p.FSGroupChangePolicy))
	}
	for _, g := range p.SupplementalGroups {
		sc.SupplementalGroups = append(sc.SupplementalGroups, int64(g))
	}
	if s := p.SeccompProfile; s != nil {
		sc.SeccompProfile = seccompProfile(s)
	}
	if o := p.SELinuxOptions; o != nil {
		sc.SELinuxOptions = &corev1.SELinuxOptions{User: o.User, Role: o.Role, Type: o.Type, Level: o.Level}
	}
	for _, s := range p.Sysctls {
		sc.Sysctls = append(sc.Sysctls, corev1.Sysctl{Name: s.Name, Value: s.Value})
	}
}

// applyContainerSecurity merges spec.securityContext into the postgres
// container's restricted context.
func applyContainerSecurity(c *cluster.Cluster, sc *corev1.SecurityContext) {
	s := c.Spec.SecurityContext
	if s == nil {
		return
	}
	id := func(dst **int64, v *int) {
		if v != nil {
			*dst = ptr(int64(*v))
		}
	}
	id(&sc.RunAsUser, s.RunAsUser)
	id(&sc.RunAsGroup, s.RunAsGroup)
	if s.Capabilities != nil && s.Capabilities.Drop != nil {
		sc.Capabilities = &corev1.Capabilities{}
		for _, d := range s.Capabilities.Drop {
			sc.Capabilities.Drop = append(sc.Capabilities.Drop, corev1.Capability(d))
		}
	}
	if s.SeccompProfile != nil {
		sc.SeccompProfile = seccompProfile(s.SeccompProfile)
	}
	if o := s.SELinuxOptions; o != nil {
		sc.SELinuxOptions = &corev1.SELinuxOptions{User: o.User, Role: o.Role, Type: o.Type, Level: o.Level}
	}
	if s.ProcMount != "" {
		sc.ProcMount = ptr(corev1.ProcMountType(s.ProcMount))
	}
}

func seccompProfile(s *cluster.SeccompProfile) *corev1.SeccompProfile {
	p := &corev1.SeccompProfile{Type: corev1.SeccompProfileType(s.Type)}
	if s.LocalhostProfile != "" {
		p.LocalhostProfile = ptr(s.LocalhostProfile)
	}
	return p
}
