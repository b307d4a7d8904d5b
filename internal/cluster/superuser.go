package cluster

// validateSuperuser checks spec.enableSuperuserAccess: pgsync lets the
// superuser log in over the network with its generated password (as
// CloudNativePG's true), and does not turn that off by itself yet; a
// pg_hba rule of the user's does (docs/security.md).
func validateSuperuser(c *Cluster, bad func(field, format string, args ...any)) {
	if a := c.Spec.EnableSuperuserAccess; a != nil && !*a {
		bad("spec.enableSuperuserAccess", "false is not supported by pgsync yet: it does not turn the superuser's remote logins off by itself; "+
			"its instance managers no longer need them (they rejoin as streaming_replica), so the spec.postgresql.pg_hba rules "+
			"\"hostssl all postgres 0.0.0.0/0 reject\" and \"hostssl replication postgres 0.0.0.0/0 reject\" (and ::/0) do it (docs/security.md); "+
			"write true or leave it out")
	}
}
