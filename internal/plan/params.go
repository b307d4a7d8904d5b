package plan

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/pgconf"
)

// managedParameters are written by the instance manager itself; a spec that
// sets one is refused, because the cluster would break or drift.
var managedParameters = map[string]string{
	"listen_addresses":            "the instance manager listens on the pod network",
	"port":                        "Services and replication use port 5432",
	"unix_socket_directories":     "the instance manager puts its sockets in its run directory",
	"data_directory":              "PGDATA is the pgdata volume",
	"config_file":                 "the instance manager writes the configuration",
	"hba_file":                    "use spec.postgresql.pg_hba",
	"ident_file":                  "the instance manager writes the configuration",
	"external_pid_file":           "the instance manager supervises postgres",
	"primary_conninfo":            "the instance manager points standbys at the primary",
	"primary_slot_name":           "the instance manager manages replication",
	"promote_trigger_file":        "promotion is part of the switchover protocol",
	"hot_standby":                 "standbys must accept read-only queries",
	"logging_collector":           "logs go to stdout as JSON",
	"log_destination":             "logs go to stdout as JSON",
	"log_directory":               "logs go to stdout as JSON",
	"log_filename":                "logs go to stdout as JSON",
	"cluster_name":                "reserved: pgsync names the instances",
	"log_line_prefix":             "logs go to stdout as JSON, with the manager's own prefix",
	"recovery_target_timeline":    "the instance manager follows the primary's latest timeline",
	"wal_retrieve_retry_interval": "the instance manager tunes it for switchovers",
	"password_encryption":         "the instance manager creates its roles with SCRAM",
	"recovery_target":             "point-in-time recovery is not a pgsync feature",
	"recovery_target_lsn":         "point-in-time recovery is not a pgsync feature",
	"recovery_target_name":        "point-in-time recovery is not a pgsync feature",
	"recovery_target_time":        "point-in-time recovery is not a pgsync feature",
	"recovery_target_xid":         "point-in-time recovery is not a pgsync feature",
}

// checkParameter checks that name may be set in version, returning a
// note to show as a warning (a custom parameter pgsync does not know). How
// a change takes effect, restart or reload, is internal/revision's split.
// version may be unknown (image pinned by digest): then the name must exist
// in some supported major and be settable in every major that has it.
func checkParameter(version cluster.Version, name string) (note string, err error) {
	lower := strings.ToLower(name)
	if why, ok := managedParameters[lower]; ok {
		return "", fmt.Errorf("parameter %q is managed by pgsync and cannot be set (%s)", name, why)
	}
	unknownCustom := fmt.Sprintf("parameter %q is an extension parameter pgsync does not know; planned as needing a restart", name)
	if version.Known {
		_, err := pgconf.Check(version.Major, lower)
		switch {
		case errors.Is(err, pgconf.ErrUnknownCustom):
			return unknownCustom, nil
		case err != nil:
			return "", err
		}
		return "", nil
	}
	// Version unknown: accept a name any supported major knows.
	if pgconf.IsCustom(lower) {
		if _, ok := pgconf.LookupCustom(lower); ok {
			return "", nil
		}
		return unknownCustom, nil
	}
	majors := pgconf.MajorsWith(lower)
	if len(majors) == 0 {
		return "", fmt.Errorf("%w: %q in PostgreSQL %d to %d", pgconf.ErrUnknownParameter, name, cluster.MinMajor, cluster.MaxMajor)
	}
	for _, m := range majors {
		ctx, _ := pgconf.Lookup(m, lower)
		if !pgconf.Settable(ctx) {
			return "", fmt.Errorf("%w: %q is read-only", pgconf.ErrNotSettable, name)
		}
	}
	return "", nil
}

// CheckParameters validates every parameter of c against the table for its
// PostgreSQL version, returning positioned problems and warnings. `pgsync
// validate` calls it; Plan refuses a cluster with problems.
func CheckParameters(c *cluster.Cluster) (warnings, problems []cluster.Diagnostic) {
	version, _ := cluster.ParseVersion(c.Spec.ImageName)
	for _, name := range sortedKeys(c.Spec.PostgreSQL.Parameters) {
		field := "spec.postgresql.parameters." + name
		note, err := checkParameter(version, name)
		if err != nil {
			problems = append(problems, cluster.Diagnostic{Pos: c.Pos(field), Field: field, Message: err.Error()})
			continue
		}
		if note != "" {
			warnings = append(warnings, cluster.Diagnostic{Pos: c.Pos(field), Field: field, Message: note})
		}
	}
	if v := strings.ToLower(c.Spec.PostgreSQL.Parameters["wal_level"]); v == "minimal" {
		field := "spec.postgresql.parameters.wal_level"
		problems = append(problems, cluster.Diagnostic{Pos: c.Pos(field), Field: field, Message: `"minimal" cannot stream to standbys (allowed: replica, logical)`})
	}
	return warnings, problems
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
