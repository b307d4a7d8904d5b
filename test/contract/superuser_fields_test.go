package contract

import "github.com/pgsync/pgsync/internal/cluster"

// spec.enableSuperuserAccess: true is what pgsync does (the superuser's
// remote logins are allowed unless the user's pg_hba refuses them), so it
// has no effect of its own to check; false is refused at its path.
func init() {
	refusals["spec.enableSuperuserAccess"] = func(s *cluster.Spec) {
		f := false
		s.EnableSuperuserAccess = &f
	}
}
