package cluster

// validateSynchronous checks spec.postgresql.synchronous and the legacy
// spec.minSyncReplicas/maxSyncReplicas with CloudNativePG's rules (its
// validating webhook), each problem at its field.
func validateSynchronous(c *Cluster, bad func(field, format string, args ...any)) {
	s := &c.Spec
	sync := s.PostgreSQL.Synchronous
	if s.MinSyncReplicas < 0 {
		bad("spec.minSyncReplicas", "must not be negative (got %d)", s.MinSyncReplicas)
	}
	if s.MaxSyncReplicas < 0 {
		bad("spec.maxSyncReplicas", "must not be negative (got %d)", s.MaxSyncReplicas)
	}
	if s.MaxSyncReplicas > 0 && s.MaxSyncReplicas >= s.Instances {
		bad("spec.maxSyncReplicas", "must be lower than the number of instances (%d): the primary is not its own standby", s.Instances)
	}
	if s.MinSyncReplicas > s.MaxSyncReplicas {
		bad("spec.minSyncReplicas", "cannot be greater than maxSyncReplicas (%d)", s.MaxSyncReplicas)
	}
	if sync == nil {
		return
	}
	const p = "spec.postgresql.synchronous"
	if s.MinSyncReplicas > 0 || s.MaxSyncReplicas > 0 {
		bad(p, "cannot be used with the legacy minSyncReplicas/maxSyncReplicas: write one of the two forms")
	}
	switch sync.Method {
	case "":
		bad(p+".method", "required: any (quorum) or first (priority)")
	case "any", "first":
	default:
		bad(p+".method", "invalid value %q (allowed: any, first)", sync.Method)
	}
	if sync.Number <= 0 {
		bad(p+".number", "must be greater than zero (got %d)", sync.Number)
	} else if total := s.Instances + len(sync.StandbyNamesPre) + len(sync.StandbyNamesPost); sync.Number >= total {
		bad(p+".number", "%d must be less than the instances (%d) plus the standby names given (%d): a commit would wait for more standbys than there can be", sync.Number, s.Instances, total-s.Instances)
	}
	if m := sync.MaxStandbyNamesFromCluster; m != nil && *m < 0 {
		bad(p+".maxStandbyNamesFromCluster", "must not be negative (got %d)", *m)
	}
	switch sync.DataDurability {
	case "", "required":
	case "preferred":
		if len(sync.StandbyNamesPre)+len(sync.StandbyNamesPost) > 0 {
			bad(p+".dataDurability", "preferred can only be used when standbyNamesPre and standbyNamesPost are empty (pgsync cannot tell whether those standbys stream)")
		}
	default:
		bad(p+".dataDurability", "invalid value %q (allowed: required, preferred)", sync.DataDurability)
	}
	if q := sync.FailoverQuorum; q != nil && !*q {
		bad(p+".failoverQuorum", "false is not supported by pgsync: with synchronous replication its election always makes the quorum check "+
			"(a standby is promoted only when enough synchronous standbys answer that one of them holds every acknowledged commit; "+
			"docs/instance-manager.md), it never trades acknowledged commits for availability; write true or leave it out")
	}
	for _, l := range []struct {
		field string
		names []string
	}{{p + ".standbyNamesPre", sync.StandbyNamesPre}, {p + ".standbyNamesPost", sync.StandbyNamesPost}} {
		for i, n := range l.names {
			if n == "" || !printable(n) {
				bad(l.field+"["+itoa(i)+"]", "%q is not an application_name (non-empty, printable)", n)
			}
		}
	}
}

func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// SynchronousOn says whether the cluster runs synchronous replication
// (either form), and describes its mode for the plan.
func (s *Spec) SynchronousOn() bool {
	return s.PostgreSQL.Synchronous != nil || s.MaxSyncReplicas > 0
}
