package kube

import (
	"github.com/pgsync/pgsync/internal/cluster"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// replication is the params ConfigMap's replication key: every instance
// (spec.instances, by name) and the synchronous replication settings,
// from spec.postgresql.synchronous or the legacy minSyncReplicas and
// maxSyncReplicas (maxSyncReplicas 0: off, as in CloudNativePG), and the
// replication slot settings when spec.replicationSlots is written (nil,
// the defaults, otherwise: a pgsync upgrade changes no ConfigMap).
func replication(c *cluster.Cluster) pc.Replication {
	n := NamesOf(c)
	r := pc.Replication{Instances: make([]string, c.Spec.Instances)}
	for i := range r.Instances {
		r.Instances[i] = n.Instance(i)
	}
	switch y := c.Spec.PostgreSQL.Synchronous; {
	case y != nil:
		d := y.DataDurability
		if d == "" {
			d = pc.DurabilityRequired
		}
		r.Synchronous = &pc.Synchronous{Method: y.Method, Number: y.Number,
			MaxStandbyNamesFromCluster: y.MaxStandbyNamesFromCluster,
			StandbyNamesPre:            y.StandbyNamesPre, StandbyNamesPost: y.StandbyNamesPost, DataDurability: d}
	case c.Spec.MaxSyncReplicas > 0:
		r.Synchronous = &pc.Synchronous{Legacy: true, Method: pc.SyncMethodAny,
			Number: c.Spec.MaxSyncReplicas, Min: c.Spec.MinSyncReplicas, DataDurability: pc.DurabilityPreferred}
	}
	if sp := &c.Spec; sp.ReplicationSlots != nil {
		r.Slots = &pc.Slots{HA: sp.HASlots(), Prefix: sp.SlotPrefix(), UpdateIntervalSeconds: sp.SlotUpdateInterval(),
			SynchronizeUser: sp.SynchronizeUserSlots()}
		if y := sp.ReplicationSlots.SynchronizeReplicas; y != nil {
			r.Slots.Exclude = y.ExcludePatterns
		}
	}
	return r
}
