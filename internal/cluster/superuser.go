package cluster

import pc "github.com/pgsync/pgsync/internal/podcontract"

// SuperuserAccess is spec.enableSuperuserAccess, false when not written
// (CloudNativePG's default): the superuser's password is then NULL and
// its remote logins are refused; the instance managers log in over the
// local socket by peer authentication either way.
func (s *Spec) SuperuserAccess() bool {
	return s.EnableSuperuserAccess != nil && *s.EnableSuperuserAccess
}

// SuperuserSecretName is spec.superuserSecret.name ("" when not written:
// NAME-superuser, which pgsync generates while access is on).
func (s *Spec) SuperuserSecretName() string {
	if s.SuperuserSecret == nil {
		return ""
	}
	return s.SuperuserSecret.Name
}

// validateSuperuser checks spec.superuserSecret: a Secret name of the
// user's, not one of the Secrets pgsync generates for the cluster.
func validateSuperuser(c *Cluster, bad func(field, format string, args ...any)) {
	if c.Spec.SuperuserSecret == nil {
		return
	}
	n := pc.Names{Cluster: c.Metadata.Name}
	switch s := c.Spec.SuperuserSecret.Name; {
	case !dns1123Subdomain(s):
		bad("spec.superuserSecret.name", "%q is not a valid Secret name", s)
	case s == n.AppSecret() || s == n.ReplicationSecret() || s == n.CASecret() || s == c.AppSecretName():
		bad("spec.superuserSecret.name", "%q holds another credential of the cluster; name a basic-auth Secret of your own with the superuser's password", s)
	}
}
