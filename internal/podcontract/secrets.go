package podcontract

// Secret ownership (docs/security.md): pgsync may only create Secrets,
// never read them, so it records which credential Secrets it created for a
// cluster that does not run yet, and refuses to build a new cluster on a
// Secret someone else created (whoever creates it first chooses the
// password) unless the Cluster file says to adopt it.
const (
	// AnnSecretsCreated, on the NAME-params ConfigMap, lists (comma-
	// separated) the credential Secrets pgsync created, so that a new
	// cluster's apply interrupted after a create keeps them. Written with
	// the field manager SecretsFieldManager, never by an apply of the
	// rendered objects.
	AnnSecretsCreated = "pgsync.io/secrets-created"
	// AnnAdoptSecrets "true" in a Cluster file: a new cluster keeps its
	// credential Secrets that exist already (left by a pruned cluster of
	// the same name, or provided on purpose) instead of refusing.
	AnnAdoptSecrets = "pgsync.io/adopt-secrets"
	// SecretsFieldManager writes AnnSecretsCreated.
	SecretsFieldManager = "pgsync-secrets"
)
