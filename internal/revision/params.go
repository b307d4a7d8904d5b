package revision

import (
	"sort"
	"strings"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/pgconf"
)

// RestartParameters returns the parameters of c whose change needs a
// restart, by lowercased name (PostgreSQL's names are case-insensitive).
func RestartParameters(c *cluster.Cluster) map[string]string {
	return splitParameters(c, true)
}

// reloadParameters are the other parameters of c: a reload applies them.
func reloadParameters(c *cluster.Cluster) map[string]string {
	return splitParameters(c, false)
}

// splitParameters returns the parameters whose restartOnly is restart. If
// two spellings of one name are written, the one sorting last wins, so the
// result does not depend on map order.
func splitParameters(c *cluster.Cluster, restart bool) map[string]string {
	version, _ := cluster.ParseVersion(c.Spec.ImageName)
	params := c.Spec.PostgreSQL.Parameters
	names := make([]string, 0, len(params))
	for name := range params {
		names = append(names, name)
	}
	sort.Strings(names)
	out := map[string]string{}
	for _, name := range names {
		lower := strings.ToLower(name)
		if restartOnly(version, lower) == restart {
			out[lower] = params[name]
		}
	}
	return out
}

// restartOnly decides whether changing the (lowercased) parameter name
// needs a restart, from its context in pgconf. A name pgconf does not know
// as settable counts as restart: the planner refuses unknown and read-only
// names, and an extension parameter of unknown context is safest restarted.
// With the version unknown (image pinned by digest) it restarts if it does
// in any supported major that has it.
func restartOnly(version cluster.Version, name string) bool {
	if version.Known {
		p, err := pgconf.Check(version.Major, name)
		if err != nil {
			return true
		}
		return pgconf.NeedsRestart(p.Context)
	}
	if pgconf.IsCustom(name) {
		ctx, ok := pgconf.LookupCustom(name)
		return !ok || pgconf.NeedsRestart(ctx)
	}
	majors := pgconf.MajorsWith(name)
	if len(majors) == 0 {
		return true
	}
	for _, m := range majors {
		ctx, _ := pgconf.Lookup(m, name)
		if !pgconf.Settable(ctx) || pgconf.NeedsRestart(ctx) {
			return true
		}
	}
	return false
}
