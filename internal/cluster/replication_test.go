package cluster

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestSynchronousFiles: CloudNativePG-style files with synchronous
// replication validate as written.
func TestSynchronousFiles(t *testing.T) {
	for p, c := range loadEach(t, "testdata/cnpg/sync-*.yaml", 4) {
		if !c.Spec.SynchronousOn() {
			t.Errorf("%s: synchronous replication is not on", p)
		}
	}
}

// TestSynchronousValidation: CloudNativePG's refusals, each at its field,
// all in one pass.
func TestSynchronousValidation(t *testing.T) {
	head := "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata:\n  name: pg\n  namespace: x\nspec:\n  imageName: ghcr.io/cloudnative-pg/postgresql:16.4\n  instances: 3\n  storage:\n    size: 1Gi\n"
	for _, tc := range []struct {
		name, body string
		want       []string
	}{
		{"both forms", "  maxSyncReplicas: 1\n  postgresql:\n    synchronous:\n      method: any\n      number: 1\n",
			[]string{`c.yaml:14:7: spec.postgresql.synchronous: cannot be used with the legacy minSyncReplicas/maxSyncReplicas: write one of the two forms`}},
		{"number too high", "  postgresql:\n    synchronous:\n      method: any\n      number: 3\n",
			[]string{`c.yaml:14:15: spec.postgresql.synchronous.number: 3 must be less than the instances (3) plus the standby names given (0): a commit would wait for more standbys than there can be`}},
		{"names count", "  postgresql:\n    synchronous:\n      method: first\n      number: 3\n      standbyNamesPost: [x]\n",
			nil},
		{"method, number, durability", "  postgresql:\n    synchronous:\n      method: all\n      number: 0\n      dataDurability: best\n",
			[]string{
				`c.yaml:13:15: spec.postgresql.synchronous.method: invalid value "all" (allowed: any, first)`,
				`c.yaml:14:15: spec.postgresql.synchronous.number: must be greater than zero (got 0)`,
				`c.yaml:15:23: spec.postgresql.synchronous.dataDurability: invalid value "best" (allowed: required, preferred)`,
			}},
		{"missing method points at its parent", "  postgresql:\n    synchronous:\n      number: 1\n",
			[]string{`c.yaml:13:7: spec.postgresql.synchronous.method: required: any (quorum) or first (priority)`}},
		{"preferred with names", "  postgresql:\n    synchronous:\n      method: any\n      number: 1\n      dataDurability: preferred\n      standbyNamesPre: [angus]\n",
			[]string{`c.yaml:15:23: spec.postgresql.synchronous.dataDurability: preferred can only be used when standbyNamesPre and standbyNamesPost are empty (pgsync cannot tell whether those standbys stream)`}},
		{"failover quorum true: what pgsync always does", "  postgresql:\n    synchronous:\n      method: any\n      number: 1\n      failoverQuorum: true\n", nil},
		{"failover quorum false refused", "  postgresql:\n    synchronous:\n      method: any\n      number: 1\n      failoverQuorum: false\n",
			[]string{`c.yaml:15:23: spec.postgresql.synchronous.failoverQuorum: false is not supported by pgsync: with synchronous replication its election always makes the quorum check (a standby is promoted only when enough synchronous standbys answer that one of them holds every acknowledged commit; docs/instance-manager.md), it never trades acknowledged commits for availability; write true or leave it out`}},
		{"failure domains refused by name", "  postgresql:\n    synchronous:\n      method: any\n      number: 1\n      podFailureDomainKeys: [zone]\n",
			[]string{`c.yaml:15:7: spec.postgresql.synchronous.podFailureDomainKeys: failure-domain-aware synchronous replication (podFailureDomainKeys) is not supported by pgsync: every instance is a candidate`}},
		{"legacy bounds", "  minSyncReplicas: 2\n  maxSyncReplicas: 3\n",
			[]string{
				`c.yaml:11:20: spec.minSyncReplicas: cannot be greater than maxSyncReplicas (3)`,
				`c.yaml:12:20: spec.maxSyncReplicas: must be lower than the number of instances (3): the primary is not its own standby`,
			}[1:]},
		{"legacy min above max", "  minSyncReplicas: 2\n  maxSyncReplicas: 1\n",
			[]string{`c.yaml:11:20: spec.minSyncReplicas: cannot be greater than maxSyncReplicas (1)`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := load(t, File{Path: "c.yaml", Data: []byte(head + tc.body)})
			var got []string
			for _, e := range errs {
				got = append(got, e.String())
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s\nfile:\n%s", diff, strings.TrimSpace(head+tc.body))
			}
		})
	}
}
