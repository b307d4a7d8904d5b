package apply

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// withCertificateSecrets adds to why a pod is not Ready the Secrets of
// spec.certificates it mounts, when the kubelet has started none of its
// containers: those projections are not optional, so a missing Secret or
// key holds the pod before it starts (FailedMount Events, which pgsync may
// not list), and the wait's timeout then says which Secrets to check
// rather than only "Pending". pgsync cannot read Secrets, so it cannot say
// which one is missing.
func withCertificateSecrets(why string, p *corev1.Pod, secrets []string) string {
	if len(secrets) == 0 || p.Status.Phase != corev1.PodPending || !scheduled(p) {
		return why
	}
	for _, cs := range append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if cs.State.Running != nil || cs.State.Terminated != nil || cs.LastTerminationState.Terminated != nil {
			return why
		}
	}
	return why + fmt.Sprintf("; its containers have not started: it mounts the Secrets %s of spec.certificates (not optional), "+
		"and the kubelet holds the pod while one is missing or lacks a key (ca.crt, ca.key, tls.crt, tls.key; its FailedMount Events say which: kubectl -n %s describe pod %s)",
		strings.Join(secrets, ", "), p.Namespace, p.Name)
}

func scheduled(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
