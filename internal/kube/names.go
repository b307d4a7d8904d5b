package kube

import (
	"github.com/pgsync/pgsync/internal/cluster"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// NamesOf returns the object names of c (the pod contract's, from its name).
func NamesOf(c *cluster.Cluster) pc.Names { return pc.Names{Cluster: c.Metadata.Name} }

// labels are on every object of the cluster.
func labels(c *cluster.Cluster) map[string]string {
	return map[string]string{pc.LabelManagedBy: pc.ManagedBy, pc.LabelCluster: c.Metadata.Name}
}

// with returns a copy of m plus kv pairs.
func with(m map[string]string, kv ...string) map[string]string {
	out := make(map[string]string, len(m)+len(kv)/2)
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func ptr[T any](v T) *T { return &v }
