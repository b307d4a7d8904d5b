package plan

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/pgconf"
)

// managedParameters are written by the instance manager itself, or would
// take the instance out of pgsync's hands (running programs, loading files,
// writing logs or keys where nothing reads them, settings with no effect in
// a pod); a spec that sets one is refused with the reason. The list follows
// CloudNativePG's fixed parameters, plus what pgsync does not build yet
// (archiving, TLS).
var managedParameters = map[string]string{
	"listen_addresses":            "the instance manager listens on the pod network",
	"port":                        "Services and replication use port 5432",
	"unix_socket_directories":     "the instance manager puts its sockets in its run directory",
	"unix_socket_group":           "the instance manager owns its socket directory",
	"unix_socket_permissions":     "the instance manager owns its socket directory",
	"data_directory":              "PGDATA is the pgdata volume",
	"config_file":                 "the instance manager writes the configuration",
	"hba_file":                    "use spec.postgresql.pg_hba",
	"ident_file":                  "the instance manager writes the configuration",
	"hosts_file":                  "a file location for SNI's pg_hosts.conf (PostgreSQL 19): TLS is configured by pgsync",
	"external_pid_file":           "the instance manager supervises postgres",
	"primary_conninfo":            "the instance manager points standbys at the primary",
	"primary_slot_name":           "the instance manager manages replication",
	"synchronous_standby_names":   "use spec.postgresql.synchronous: the instance manager lists the standbys",
	"promote_trigger_file":        "promotion is part of the switchover protocol",
	"hot_standby":                 "standbys must accept read-only queries",
	"logging_collector":           "logs go to stdout as JSON",
	"log_destination":             "logs go to stdout as JSON",
	"log_directory":               "logs go to stdout as JSON",
	"log_filename":                "logs go to stdout as JSON",
	"log_file_mode":               "logs go to stdout as JSON: there is no log file",
	"log_rotation_age":            "logs go to stdout as JSON: there is no log file",
	"log_rotation_size":           "logs go to stdout as JSON: there is no log file",
	"log_truncate_on_rotation":    "logs go to stdout as JSON: there is no log file",
	"syslog_facility":             "logs go to stdout as JSON, not to syslog",
	"syslog_ident":                "logs go to stdout as JSON, not to syslog",
	"syslog_sequence_numbers":     "logs go to stdout as JSON, not to syslog",
	"syslog_split_messages":       "logs go to stdout as JSON, not to syslog",
	"event_source":                "only used on Windows",
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
	"recovery_target_action":      "point-in-time recovery is not a pgsync feature",
	"recovery_target_inclusive":   "point-in-time recovery is not a pgsync feature",
	"recovery_min_apply_delay":    "a delayed standby could not take over in a switchover",
	"archive_mode":                "WAL archiving is not a pgsync feature yet (with archiving on and nothing archiving, WAL fills the volume)",
	"archive_command":             "it runs a shell command as the postgres user in every primary; WAL archiving is not a pgsync feature yet",
	"archive_library":             "it loads a library into the archiver; WAL archiving is not a pgsync feature yet",
	"archive_timeout":             "WAL archiving is not a pgsync feature yet, so it has no effect",
	"archive_cleanup_command":     "it runs a shell command as the postgres user in every standby; WAL archiving is not a pgsync feature yet",
	"restore_command":             "it runs a shell command as the postgres user in every standby; standbys stream from the primary",
	"recovery_end_command":        "it runs a shell command as the postgres user; recovery is the instance manager's",
	"dynamic_library_path":        "it would let LOAD and CREATE EXTENSION load libraries from anywhere on the filesystem; libraries come from the image's $libdir",
	"krb_server_keyfile":          "a file location inside the container: nothing mounts a keytab there",
	"stats_temp_directory":        "a file location inside the container (read-only root filesystem)",
	"allow_system_table_mods":     "lets a superuser break the system catalogs",
	"full_page_writes":            "pg_rewind, which a rejoining primary needs, requires full page writes",
	"bonjour":                     "Bonjour has no use in a pod (and is not compiled into the usual images)",
	"bonjour_name":                "Bonjour has no use in a pod",
	"transaction_isolation":       "a session setting that postgres refuses in a configuration file (use default_transaction_isolation)",
	"transaction_read_only":       "a session setting that postgres refuses in a configuration file (use default_transaction_read_only)",
	"transaction_deferrable":      "a session setting that postgres refuses in a configuration file (use default_transaction_deferrable)",
}

// sslReason refuses every ssl* parameter: pgsync owns the server's TLS
// configuration (ssl on, the certificates each instance issues from the
// cluster's CA); a setting would turn it off, point at files that are not
// in the pod or run a program.
const sslReason = "TLS is configured by pgsync (ssl on, each instance's certificates issued from the cluster's CA, docs/security.md), not by parameters: ssl off would let plaintext in, and a key, certificate or passphrase command here would point at files or programs that are not in the pod"

// libraryLists hold names of libraries postgres loads: plain names only, so
// that what loads comes from the image's library directory.
var libraryLists = map[string]bool{
	"shared_preload_libraries":  true,
	"session_preload_libraries": true,
	"local_preload_libraries":   true,
	"jit_provider":              true,
	// PostgreSQL 19: the libraries logical decoding may load as output plugins.
	"output_plugin_libraries": true,
}

// libraryName is a file name in $libdir without path or extension
// (pg_stat_statements, auto_explain, llvmjit, plugin_debugger).
var libraryName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)

// managedReason reports why pgsync refuses a parameter by name, or "".
func managedReason(lower string) string {
	if why, ok := managedParameters[lower]; ok {
		return why
	}
	if strings.HasPrefix(lower, "ssl") && !strings.Contains(lower, ".") {
		return sslReason
	}
	return ""
}

// checkText refuses what no parameter value may hold: control characters
// (a newline ends the configuration line: postgres refuses to start, or
// keeps the old file on reload), text that is not UTF-8, and unbalanced
// quotes (pgsync quotes every value itself; a quote of the YAML's or a
// half-quoted list item is a mistake postgres would refuse or misread).
func checkText(v string) error {
	if !utf8.ValidString(v) {
		return errors.New("the value is not valid UTF-8")
	}
	for i, r := range v {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("the value holds a control character (%U at byte %d); values are one line of text", r, i)
		}
	}
	if n := strings.Count(v, `'`); n%2 != 0 {
		return fmt.Errorf("the value has an unbalanced single quote; write the value without quotes, pgsync quotes it")
	}
	if n := strings.Count(v, `"`); n%2 != 0 {
		return fmt.Errorf("the value has an unbalanced double quote")
	}
	return nil
}

// checkLibraries checks a comma-separated list of library names.
func checkLibraries(name, v string) error {
	if strings.TrimSpace(v) == "" {
		return nil
	}
	for _, item := range strings.Split(v, ",") {
		lib := strings.TrimSpace(item)
		if len(lib) >= 2 && lib[0] == '"' && lib[len(lib)-1] == '"' {
			lib = lib[1 : len(lib)-1]
		}
		if !libraryName.MatchString(lib) {
			return fmt.Errorf("%q is not a plain library name: %s takes names of libraries in the image's library directory ($libdir), never paths", lib, name)
		}
	}
	return nil
}

// checkValue checks the value of a parameter whose name is valid.
func checkValue(c *cluster.Cluster, version cluster.Version, name, value string) error {
	lower := strings.ToLower(name)
	if err := checkText(value); err != nil {
		return err
	}
	if libraryLists[lower] {
		if err := checkLibraries(lower, value); err != nil {
			return err
		}
	}
	major := version.Major
	if !version.Known {
		// Version unknown: the newest major that has it (custom names: any).
		major = pgconf.MaxMajor
		if ms := pgconf.MajorsWith(lower); len(ms) > 0 {
			major = ms[len(ms)-1]
		}
	}
	err := pgconf.CheckValue(major, lower, value)
	switch {
	case errors.Is(err, pgconf.ErrInvalidValue):
		return err
	case err != nil:
		return nil // the name's problem, reported by checkParameter
	}
	switch lower {
	case "wal_level":
		if strings.EqualFold(value, "minimal") {
			return errors.New(`"minimal" cannot stream to standbys (allowed: replica, logical)`)
		}
	case "max_wal_senders":
		// Every standby streams through one; a new standby's base backup
		// (pg_basebackup -X stream) takes two more.
		n, _ := pgconf.NumericValue(major, lower, value)
		if min := c.Spec.Instances + 1; n < float64(min) {
			return fmt.Errorf("%s is too few for %d instances: each standby streams through one WAL sender and a new standby's base backup takes two (at least %d)", value, c.Spec.Instances, min)
		}
	}
	return nil
}

// checkParameter checks that name may be set in version, returning a
// note to show as a warning (a custom parameter pgsync does not know). How
// a change takes effect, restart or reload, is internal/revision's split.
// version may be unknown (image pinned by digest): then the name must exist
// in some supported major and be settable in every major that has it.
func checkParameter(version cluster.Version, name string) (note string, err error) {
	lower := strings.ToLower(name)
	if why := managedReason(lower); why != "" {
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

// CheckParameters validates every parameter of c — its name against the
// table for its PostgreSQL version, its value against the parameter's type,
// unit, range or values (pgconf.CheckValue) and pgsync's rules (checkValue)
// — returning positioned problems and warnings, every one of them in one
// pass. `pgsync validate` calls it; Plan refuses a cluster with problems.
func CheckParameters(c *cluster.Cluster) (warnings, problems []cluster.Diagnostic) {
	version, _ := cluster.ParseVersion(c.Spec.ImageName)
	for _, name := range sortedKeys(c.Spec.PostgreSQL.Parameters) {
		field := "spec.postgresql.parameters." + name
		note, err := checkParameter(version, name)
		if err == nil {
			err = checkValue(c, version, name, c.Spec.PostgreSQL.Parameters[name])
		}
		if err != nil {
			problems = append(problems, cluster.Diagnostic{Pos: c.Pos(field), Field: field, Message: err.Error()})
			continue
		}
		if note != "" {
			warnings = append(warnings, cluster.Diagnostic{Pos: c.Pos(field), Field: field, Message: note})
		}
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
