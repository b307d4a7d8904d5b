package plan

import (
	"fmt"

	"github.com/pgsync/pgsync/internal/cluster"
)

// APIKind is what a live observation found of a kind pgsync renders only
// on request (the Prometheus Operator's PodMonitor), whose CRD another
// product installs.
type APIKind struct {
	// Checked: the API server was asked. False offline and from a base
	// commit (nothing to ask: the plan renders the object), and when no
	// desired cluster needs the kind.
	Checked bool
	// Served: the API server serves the kind.
	Served bool
	// Err: why asking failed (Served is then false).
	Err string
}

// NeedsPodMonitor says whether a desired cluster asks for a PodMonitor:
// only then do the shells ask the API server for the kind, so the
// clusters without one are planned as before, with no new request.
func NeedsPodMonitor(desired []*cluster.Cluster) bool {
	for _, c := range desired {
		if c != nil && c.Spec.PodMonitorOn() {
			return true
		}
	}
	return false
}

// podMonitorRefusals refuse every desired cluster with enablePodMonitor
// when the API server was found not to serve PodMonitor: the apply would
// fail at the PodMonitor after changing the cluster's other objects.
func podMonitorRefusals(desired []*cluster.Cluster, k APIKind) []cluster.Diagnostic {
	if !k.Checked || k.Served {
		return nil
	}
	const field = "spec.monitoring.enablePodMonitor"
	msg := "the API server has no PodMonitor kind (monitoring.coreos.com/v1): install the Prometheus Operator's CRDs or set enablePodMonitor: false"
	if k.Err != "" {
		msg = "cannot tell whether the API server serves the PodMonitor kind (monitoring.coreos.com/v1): " + k.Err
	}
	var out []cluster.Diagnostic
	for _, d := range desired {
		if d != nil && d.Spec.PodMonitorOn() {
			out = append(out, cluster.Diagnostic{Pos: d.Pos(field), Field: field, Message: msg})
		}
	}
	return out
}

// podMonitorObjects names a new cluster's PodMonitor in its objects
// step ("" without one, so other plans read as before).
func podMonitorObjects(d *cluster.Cluster) string {
	if !d.Spec.PodMonitorOn() {
		return ""
	}
	return fmt.Sprintf(", and PodMonitor %s", d.Metadata.Name)
}

// podMonitorChange is what an objects step does to the PodMonitor ("" when
// nothing: it stays, or there is none).
func podMonitorChange(before, after *cluster.Cluster) string {
	had, has := before != nil && before.Spec.PodMonitorOn(), after.Spec.PodMonitorOn()
	switch {
	case has && !had:
		return "create PodMonitor " + after.Metadata.Name
	case had && !has:
		return "delete PodMonitor " + after.Metadata.Name + " (enablePodMonitor is off)"
	}
	return ""
}
