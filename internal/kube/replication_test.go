package kube

import (
	"testing"

	"github.com/pgsync/pgsync/internal/cluster"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// TestReplicationKey: the params ConfigMap carries the synchronous
// settings the primary's manager turns into synchronous_standby_names.
func TestReplicationKey(t *testing.T) {
	doc := func(extra string) *cluster.Cluster {
		y := "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata:\n  name: pg\n  namespace: x\nspec:\n  imageName: ghcr.io/cloudnative-pg/postgresql:16.4\n  instances: 3\n  storage:\n    size: 1Gi\n" + extra
		set, err := cluster.Load([]cluster.File{{Path: "c.yaml", Data: []byte(y)}})
		if err != nil {
			t.Fatal(err)
		}
		return set.Clusters[0]
	}
	for _, tc := range []struct{ name, extra, want string }{
		{"off", "", `{"instances":["pg-0","pg-1","pg-2"]}`},
		{"synchronous", "  postgresql:\n    synchronous:\n      method: any\n      number: 1\n",
			`{"instances":["pg-0","pg-1","pg-2"],"synchronous":{"method":"any","number":1,"dataDurability":"required"}}`},
		{"legacy", "  minSyncReplicas: 1\n  maxSyncReplicas: 2\n",
			`{"instances":["pg-0","pg-1","pg-2"],"synchronous":{"method":"any","number":2,"dataDurability":"preferred","legacy":true,"min":1}}`},
	} {
		cm, err := paramsConfigMap(doc(tc.extra))
		if err != nil {
			t.Fatal(err)
		}
		if got := cm.Data[pc.ReplicationKey]; got != tc.want {
			t.Errorf("%s: %s\nwant %s", tc.name, got, tc.want)
		}
	}
}
