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
	"listen_addresses":        "the instance manager listens on the pod network",
	"port":                    "Services and replication use port 5432",
	"unix_socket_directories": "the instance manager uses /run/postgresql",
	"data_directory":          "PGDATA is the pgdata volume",
	"config_file":             "the instance manager writes the configuration",
	"hba_file":                "use spec.postgresql.pg_hba",
	"ident_file":              "the instance manager writes the configuration",
	"external_pid_file":       "the instance manager supervises postgres",
	"primary_conninfo":        "the instance manager points standbys at the primary",
	"primary_slot_name":       "the instance manager manages replication",
	"promote_trigger_file":    "promotion is part of the switchover protocol",
	"hot_standby":             "standbys must accept read-only queries",
	"logging_collector":       "logs go to stdout as JSON",
	"log_destination":         "logs go to stdout as JSON",
	"log_directory":           "logs go to stdout as JSON",
	"log_filename":            "logs go to stdout as JSON",
	"cluster_name":            "set to the cluster's name",
	"recovery_target":         "point-in-time recovery is not a pgsync feature",
	"recovery_target_lsn":     "point-in-time recovery is not a pgsync feature",
	"recovery_target_name":    "point-in-time recovery is not a pgsync feature",
	"recovery_target_time":    "point-in-time recovery is not a pgsync feature",
	"recovery_target_xid":     "point-in-time recovery is not a pgsync feature",
}

// paramEffect says how a parameter change takes effect.
type paramEffect struct {
	restart bool
	// note is shown as a warning (e.g. a custom parameter planned as
	// needing a restart because its context is unknown).
	note string
}

// classifyParameter decides whether changing name needs a restart. version
// may be unknown (image pinned by digest): then the name must exist in some
// supported major, and it restarts if it does in any of them.
func classifyParameter(version cluster.Version, name string) (paramEffect, error) {
	lower := strings.ToLower(name)
	if why, ok := managedParameters[lower]; ok {
		return paramEffect{}, fmt.Errorf("parameter %q is managed by pgsync and cannot be set (%s)", name, why)
	}
	unknownCustom := paramEffect{restart: true, note: fmt.Sprintf("parameter %q is an extension parameter pgsync does not know; planned as needing a restart", name)}
	if version.Known {
		p, err := pgconf.Check(version.Major, lower)
		switch {
		case errors.Is(err, pgconf.ErrUnknownCustom):
			return unknownCustom, nil
		case err != nil:
			return paramEffect{}, err
		}
		return paramEffect{restart: pgconf.NeedsRestart(p.Context)}, nil
	}
	// Version unknown: accept a name any supported major knows, and
	// restart if any of them would.
	if pgconf.IsCustom(lower) {
		if ctx, ok := pgconf.LookupCustom(lower); ok {
			return paramEffect{restart: pgconf.NeedsRestart(ctx)}, nil
		}
		return unknownCustom, nil
	}
	majors := pgconf.MajorsWith(lower)
	if len(majors) == 0 {
		return paramEffect{}, fmt.Errorf("%w: %q in PostgreSQL %d to %d", pgconf.ErrUnknownParameter, name, cluster.MinMajor, cluster.MaxMajor)
	}
	var effect paramEffect
	for _, m := range majors {
		ctx, _ := pgconf.Lookup(m, lower)
		if !pgconf.Settable(ctx) {
			return paramEffect{}, fmt.Errorf("%w: %q is read-only", pgconf.ErrNotSettable, name)
		}
		effect.restart = effect.restart || pgconf.NeedsRestart(ctx)
	}
	return effect, nil
}

// CheckParameters validates every parameter of c against the table for its
// PostgreSQL version, returning positioned problems and warnings. `pgsync
// validate` calls it; Plan refuses a cluster with problems.
func CheckParameters(c *cluster.Cluster) (warnings, problems []cluster.Diagnostic) {
	version, _ := cluster.ParseVersion(c.Spec.ImageName)
	for _, name := range sortedKeys(c.Spec.PostgreSQL.Parameters) {
		field := "spec.postgresql.parameters." + name
		effect, err := classifyParameter(version, name)
		if err != nil {
			problems = append(problems, cluster.Diagnostic{Pos: c.Pos(field), Field: field, Message: err.Error()})
			continue
		}
		if effect.note != "" {
			warnings = append(warnings, cluster.Diagnostic{Pos: c.Pos(field), Field: field, Message: effect.note})
		}
	}
	if v := strings.ToLower(c.Spec.PostgreSQL.Parameters["wal_level"]); v == "minimal" {
		field := "spec.postgresql.parameters.wal_level"
		problems = append(problems, cluster.Diagnostic{Pos: c.Pos(field), Field: field, Message: `"minimal" cannot stream to standbys (allowed: replica, logical)`})
	}
	return warnings, problems
}

// restartParameters returns the parameters of c whose change needs a
// restart, with their values. Unknown names count as restart (CheckParameters
// has refused them before this matters).
func restartParameters(c *cluster.Cluster) map[string]string {
	version, _ := cluster.ParseVersion(c.Spec.ImageName)
	out := map[string]string{}
	for name, value := range c.Spec.PostgreSQL.Parameters {
		if effect, err := classifyParameter(version, name); err != nil || effect.restart {
			out[strings.ToLower(name)] = value
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
