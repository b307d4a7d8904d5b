package plan

import (
	"fmt"

	"github.com/pgsync/pgsync/internal/cluster"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// The CA's rotation (docs/security.md). pgsync never reads a Secret, so
// it learns of the CA from the instances: each reports the generations
// its pod mounts and sees, and whether the newest has less than a year
// left. A due rotation is a rotate-ca step creating the next generation;
// instances whose pods cannot mount it (created before rotation) are
// re-created by the rolling restart, as they would stop verifying their
// peers once those issue from it.

// caNewest is the cluster's newest CA generation as its instances see
// it, 0 when none reports one; due: one that sees it reports it due.
func caNewest(o *ObservedCluster) (newest int, due bool) {
	for _, in := range o.Instances {
		if in.CA != nil && in.CA.Newest > newest {
			newest = in.CA.Newest
		}
	}
	for _, in := range o.Instances {
		if in.CA != nil && in.CA.Newest == newest && in.CA.RotationDue {
			due = true
		}
	}
	return newest, due
}

// caGeneration is the generation the cluster has once this plan ran: the
// newest, or the next when a rotation is due.
func caGeneration(o *ObservedCluster) int {
	newest, due := caNewest(o)
	if due && newest < pc.CAGenerations {
		return newest + 1
	}
	return newest
}

// caRotation is the rotate-ca step when one is due, or a warning when the
// pod template's generations are used up.
func caRotation(d *cluster.Cluster, o *ObservedCluster) ([]Step, []string) {
	newest, due := caNewest(o)
	if !due {
		return nil, nil
	}
	n := pc.Names{Cluster: d.Metadata.Name}
	if newest >= pc.CAGenerations {
		return nil, []string{fmt.Sprintf("TLS: the CA %s expires within a year and is the last of the %d generations pgsync rotates through: replace it by hand (docs/security.md)", n.CASecretOf(newest), pc.CAGenerations)}
	}
	st := clusterStep(PhaseObjects, StepRotateCA, fmt.Sprintf(
		"the CA %s expires within a year: create its successor %s, trusted by the instances and published in ConfigMap %s at once, issuing certificates a month later; the old CA stays trusted until it expires; no restart",
		n.CASecretOf(newest), n.CASecretOf(newest+1), n.CAConfigMap()))
	st.From, st.To = n.CASecretOf(newest), n.CASecretOf(newest+1)
	return []Step{st}, nil
}

// recreateReason says why instance in must have its pod re-created even
// on the desired revision ("" when it need not): a standby that cannot
// stream from a primary with TLS, or a pod that cannot mount the
// cluster's newest CA (the primary too: it would refuse the standbys'
// new client certificates).
func recreateReason(d *cluster.Cluster, o *ObservedCluster, in ObservedInstance) string {
	if cutOffByTLS(o, in) {
		return fmt.Sprintf("standby created before pgsync's TLS, which cannot stream from %s, a primary with TLS: its pod is re-created with TLS", instanceName(d, o.Primary))
	}
	if gen := caGeneration(o); in.CA != nil && in.CA.Mounted < gen {
		return fmt.Sprintf("its pod mounts %d of the CA's generations, created before pgsync rotated the CA: it would stop verifying its peers once they issue from %s; its pod is re-created",
			in.CA.Mounted, pc.Names{Cluster: d.Metadata.Name}.CASecretOf(gen))
	}
	return ""
}
