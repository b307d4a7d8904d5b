package cluster

import "strings"

// The CloudNativePG v1 Cluster fields pgsync does not have, by path, each
// with the message that refuses it. Taken from CloudNativePG's API
// (api/v1/cluster_types.go, v1.30.0) and Kubernetes' ObjectMeta. A field
// here is a real CloudNativePG field that a file may well carry, so it is
// refused by name ("not supported by pgsync"), never reported as a typo.
//
// A path is a field path with list indexes written as [] ("spec.x[].y").
// An entry whose field becomes decodable is dead (the decoder only looks
// here for fields its types lack); TestCompat says which entry to remove
// and which row of docs/compat.md to change.
//
// Every message says "not supported by pgsync", so one grep finds them.
var unsupported = map[string]string{
	// Written by Kubernetes or the operator: kubectl get -o yaml output.
	"status":                              "the status is written by the operator, not by hand: not supported by pgsync in a Cluster file (remove it; pgsync reports status with `pgsync status`)",
	"metadata.uid":                        "written by Kubernetes: not supported by pgsync in a Cluster file (remove it; it is output of kubectl get -o yaml)",
	"metadata.resourceVersion":            "written by Kubernetes: not supported by pgsync in a Cluster file (remove it; it is output of kubectl get -o yaml)",
	"metadata.generation":                 "written by Kubernetes: not supported by pgsync in a Cluster file (remove it; it is output of kubectl get -o yaml)",
	"metadata.creationTimestamp":          "written by Kubernetes: not supported by pgsync in a Cluster file (remove it; it is output of kubectl get -o yaml)",
	"metadata.deletionTimestamp":          "written by Kubernetes: not supported by pgsync in a Cluster file (remove it; it is output of kubectl get -o yaml)",
	"metadata.deletionGracePeriodSeconds": "written by Kubernetes: not supported by pgsync in a Cluster file (remove it; it is output of kubectl get -o yaml)",
	"metadata.selfLink":                   "written by Kubernetes: not supported by pgsync in a Cluster file (remove it; it is output of kubectl get -o yaml)",
	"metadata.managedFields":              "written by Kubernetes: not supported by pgsync in a Cluster file (remove it; it is output of kubectl get -o yaml)",
	"metadata.ownerReferences":            "owner references are not supported by pgsync: a Cluster file is owned by its Git repository",
	"metadata.finalizers":                 "finalizers are not supported by pgsync: a Cluster file is not an object in the API server",
	"metadata.generateName":               "generated names are not supported by pgsync: a cluster needs a fixed metadata.name",

	// spec.bootstrap.initdb: what pgsync does not read of it.
	"spec.bootstrap.initdb.options": "raw initdb options are not supported by pgsync (CloudNativePG deprecates them): use the named fields (encoding, locale, dataChecksums, walSegmentSize, …)",

	// spec
	"spec.inheritedMetadata":       "inherited metadata (labels and annotations on every object of the cluster) is not supported by pgsync yet",
	"spec.postgresUID":             "postgresUID is not supported by pgsync: the pods run as the image's postgres user",
	"spec.postgresGID":             "postgresGID is not supported by pgsync: the pods run as the image's postgres group",
	"spec.podSelectorRefs":         "pod selector references in pg_hba (${podselector:NAME}) are not supported by pgsync",
	"spec.bootstrap.recovery":      "bootstrap from a backup or volume snapshot (recovery) is not supported by pgsync: a new cluster starts from initdb",
	"spec.bootstrap.pg_basebackup": "bootstrap as a copy of another PostgreSQL server (pg_basebackup) is not supported by pgsync: a new cluster starts from initdb",
	"spec.bootstrap.initdb.import": "importing databases from an external cluster is not supported by pgsync (externalClusters are not supported)",
	"spec.replica":                 "replica clusters (a cluster following another one) are not supported by pgsync",
	"spec.serviceAccountTemplate":  "a ServiceAccount template is not supported by pgsync: pgsync renders the ServiceAccount NAME with only the rights the instances need",
	"spec.serviceAccountName":      "a ServiceAccount of your own is not supported by pgsync: pgsync renders the ServiceAccount NAME with only the rights the instances need",
	"spec.ephemeralVolumeSource":   "an ephemeral volume source is not supported by pgsync: scratch space is an emptyDir",
	"spec.smartShutdownTimeout":    "smartShutdownTimeout is not supported by pgsync: the smart shutdown may take all of stopDelay before a fast one",
	"spec.livenessProbeTimeout":    "livenessProbeTimeout is not supported by pgsync",
	"spec.backup":                  "CloudNativePG backups are not supported by pgsync yet",
	"spec.nodeMaintenanceWindow":   "a node maintenance window is not supported by pgsync: a node drain is held back by the PodDisruptionBudgets; pgsync's own windows are the pgsync.io/maintenance-window annotation (docs/annotations.md)",
	"spec.externalClusters":        "external clusters (connections to other PostgreSQL servers, for recovery, replica clusters and imports) are not supported by pgsync",
	"spec.logLevel":                "the instances' log level is not supported by pgsync",
	"spec.projectedVolumeTemplate": "projected volumes are not supported by pgsync",
	"spec.env":                     "environment variables for the instances are not supported by pgsync",
	"spec.envFrom":                 "environment variables for the instances are not supported by pgsync",
	"spec.seccompProfile":          "a seccomp profile of your own is not supported by pgsync: every pod and container runs with RuntimeDefault",
	"spec.tablespaces":             "tablespaces are not supported by pgsync yet",
	"spec.enablePDB":               "enablePDB is not supported by pgsync: pgsync always renders PodDisruptionBudgets, so a node drain cannot take the primary and a standby at once",
	"spec.plugins":                 "CNPG-I plugins are not supported by pgsync",
	"spec.primaryLease":            "primaryLease timings are not supported by pgsync: pgsync's Lease timings are fixed (docs/instance-manager.md)",

	"spec.postgresql.pg_ident":                          "pg_ident.conf user name maps are not supported by pgsync yet",
	"spec.postgresql.synchronous.podFailureDomainKeys":  "failure-domain-aware synchronous replication (podFailureDomainKeys) is not supported by pgsync: every instance is a candidate",
	"spec.postgresql.synchronous.nodeFailureDomainKeys": "failure-domain-aware synchronous replication (nodeFailureDomainKeys) is not supported by pgsync: every instance is a candidate",
	"spec.postgresql.syncReplicaElectionConstraint":     "synchronous replica election constraints are not supported by pgsync",
	"spec.postgresql.shared_preload_libraries":          "CloudNativePG's list of extra preloaded libraries is not supported by pgsync: set the parameter spec.postgresql.parameters.shared_preload_libraries",
	"spec.postgresql.ldap":                              "LDAP authentication settings are not supported by pgsync yet",
	"spec.postgresql.promotionTimeout":                  "promotionTimeout is not supported by pgsync: a promotion waits for the standby to replay the old primary's last WAL",
	"spec.postgresql.enableAlterSystem":                 "enableAlterSystem is not supported by pgsync: the configuration comes from Git alone",
	"spec.postgresql.extensions":                        "extension images (postgresql.extensions) are not supported by pgsync: the extensions must be in the PostgreSQL image",

	"spec.ephemeralVolumesSizeLimit.shm": "a size limit of the shared memory volume is not supported by pgsync: the pods have no /dev/shm volume of their own (PostgreSQL uses the container runtime's /dev/shm); temporaryData is supported",

	"spec.resources.claims": "dynamic resource claims are not supported by pgsync",

	"spec.replicationSlots.highAvailability.synchronizeLogicalDecoding": "synchronizing logical decoding slots (synchronizeLogicalDecoding) is not supported by pgsync: only physical slots are managed and copied",
	"spec.monitoring.metricsQueriesTTL":                                 "metricsQueriesTTL is not supported by pgsync: the PostgreSQL metrics are read at every scrape",
}

// synonyms are names a Kubernetes user reaches for first, and the
// CloudNativePG field meant (replicas is one edit from replica, the replica
// cluster settings, which is not what the user meant).
var synonyms = map[string]string{
	"spec.replicas": "instances",
	"spec.image":    "imageName",
}

// unsupportedAt returns the refusal of the field at path (list indexes
// allowed), and whether there is one.
func unsupportedAt(path string) (string, bool) {
	msg, ok := unsupported[schemaPath(path)]
	return msg, ok
}

// unsupportedChildren returns the names of the refused fields directly
// under path: a field pgsync lacks whose own sub-fields are refused one by
// one (spec.bootstrap: recovery, pg_basebackup), and the names to suggest
// for a typo in a mapping.
func unsupportedChildren(path string) []string {
	prefix := schemaPath(path) + "."
	if path == "" {
		prefix = ""
	}
	seen := map[string]bool{}
	var names []string
	for p := range unsupported {
		rest, ok := strings.CutPrefix(p, prefix)
		if !ok {
			continue
		}
		name := rest
		if i := strings.IndexAny(rest, ".["); i >= 0 {
			name = rest[:i]
		}
		if !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	return names
}

// schemaPath writes every list index of path as [].
func schemaPath(path string) string {
	b := make([]byte, 0, len(path))
	for i := 0; i < len(path); i++ {
		b = append(b, path[i])
		if path[i] == '[' {
			for i+1 < len(path) && path[i+1] != ']' {
				i++
			}
		}
	}
	return string(b)
}

// unsupportedKinds are CloudNativePG's other kinds (api/v1, v1.30.0): a
// document of one of them in the repository is refused by name rather than
// skipped like a kind of another product, since its author expects it to
// take effect. ImageCatalog and ClusterImageCatalog are read (catalog.go).
var unsupportedKinds = map[string]string{
	"Backup":          "CloudNativePG backups are not supported by pgsync yet",
	"ScheduledBackup": "CloudNativePG backups are not supported by pgsync yet",
	"Pooler":          "PgBouncer poolers are not supported by pgsync",
	"Database":        "declarative databases (the Database kind) are not supported by pgsync yet",
	"Publication":     "declarative logical replication publications are not supported by pgsync",
	"Subscription":    "declarative logical replication subscriptions are not supported by pgsync",
	"FailoverQuorum":  "FailoverQuorum is written by the operator: not supported by pgsync in the repository",
}
