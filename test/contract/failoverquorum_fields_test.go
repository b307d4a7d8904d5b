package contract

import "github.com/pgsync/pgsync/internal/cluster"

// spec.postgresql.synchronous.failoverQuorum: true is what pgsync's
// election always does with synchronous replication (role.Elect), so it
// has no effect of its own to check; false, the only other value, is
// refused at its path.
func init() {
	refusals["spec.postgresql.synchronous.failoverQuorum"] = func(s *cluster.Spec) {
		f := false
		s.PostgreSQL.Synchronous = &cluster.SynchronousReplicaConfiguration{Method: "any", Number: 1, FailoverQuorum: &f}
	}
}
