package podcontract

import "time"

// The managed roles of the NAME-params ConfigMap: spec.managed.roles as
// the primary's manager reconciles them (docs/instance-manager.md,
// "Managed roles"). Passwords are never here: a role names the Secret
// holding its password, which the pod projects (RoleSecretsDir).
const (
	// RolesKey holds ManagedRoles as JSON; present only when the Cluster
	// has spec.managed.roles, so that other clusters' ConfigMap is
	// unchanged.
	RolesKey = "roles.json"
	// RolesFile is read from the same ConfigMap volume; the manager finds
	// it next to the parameters file.
	RolesFile = ParamsDir + "/" + RolesKey
)

// The managed roles' password Secrets, projected into the credentials
// volume (optional: a missing Secret or key is a missing file, reported
// by the manager, not a pod that cannot start): the Secret NAME's
// username and password keys as RoleSecretsDir/NAME/username and
// RoleSecretsDir/NAME/password. EnvRoleSecretsDir names the directory;
// set only when a role names a Secret, so that other clusters keep their
// pod template.
const (
	RoleSecretsSubdir = "roles"
	RoleSecretsDir    = CredentialsDir + "/" + RoleSecretsSubdir
	EnvRoleSecretsDir = "PGSYNC_ROLE_SECRETS_DIR"
	RoleUsernameFile  = "username"
	RolePasswordFile  = "password"
)

// ManagedRoles is the content of RolesKey, in spec order.
type ManagedRoles struct {
	Roles []ManagedRole `json:"roles"`
}

// ManagedRole is one spec.managed.roles entry with CloudNativePG's
// defaults filled in (inherit true, connectionLimit -1).
type ManagedRole struct {
	Name    string `json:"name"`
	Comment string `json:"comment,omitempty"`
	// Absent: ensure: absent, the role is dropped (and nothing else of
	// the entry is read).
	Absent          bool `json:"absent,omitempty"`
	Login           bool `json:"login,omitempty"`
	Superuser       bool `json:"superuser,omitempty"`
	CreateDB        bool `json:"createdb,omitempty"`
	CreateRole      bool `json:"createrole,omitempty"`
	Inherit         bool `json:"inherit"`
	Replication     bool `json:"replication,omitempty"`
	BypassRLS       bool `json:"bypassrls,omitempty"`
	ConnectionLimit int  `json:"connectionLimit"`
	// ValidUntil is an RFC 3339 time; empty: the password never expires.
	ValidUntil string   `json:"validUntil,omitempty"`
	InRoles    []string `json:"inRoles,omitempty"`
	// PasswordSecret names a basic-auth Secret of the cluster's namespace
	// (its username must be Name), projected under RoleSecretsDir; empty:
	// the password is left as it is, unless DisablePassword sets it to
	// NULL.
	PasswordSecret  string `json:"passwordSecret,omitempty"`
	DisablePassword bool   `json:"disablePassword,omitempty"`
}

// ManagedRolesStatus is Status.ManagedRoles: the primary's last
// reconciliation of RolesKey (CloudNativePG's managedRolesStatus).
type ManagedRolesStatus struct {
	// Reconciled are the roles that match their entry (absent ones too:
	// not in the database).
	Reconciled []string `json:"reconciled"`
	// Failed maps a role to why it does not match (a membership in a role
	// that does not exist, objects owned by a role to drop, a Secret that
	// cannot be read); never a password or a statement.
	Failed map[string]string `json:"failed,omitempty"`
	// At is when the reconciliation ran.
	At time.Time `json:"at"`
}

// EventRoleFailed is the reason of the Warning Event the primary's manager
// records on its pod when a managed role cannot be reconciled (once per
// distinct problem); EventRoleReconciled when it is again.
const (
	EventRoleFailed     = "ManagedRoleFailed"
	EventRoleReconciled = "ManagedRoleReconciled"
)
