package instance

import (
	"fmt"
	"strings"

	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// syncStandbyNames is the primary's synchronous_standby_names for rep,
// self being the primary and streaming the application_names of the
// standbys streaming from it now; "" turns synchronous replication off.
// It follows CloudNativePG's rules (docs/instance-manager.md):
//   - required durability lists every instance, the streaming standbys
//     first, then the others, then the primary itself (so the list is never
//     empty and a commit waits for standbys that are away): writes block
//     when too few standbys stream, nothing acknowledged is lost;
//   - preferred lists only the streaming standbys and lowers the number to
//     their count (none: asynchronous);
//   - legacy minSyncReplicas/maxSyncReplicas: ANY over the streaming
//     standbys, maxSyncReplicas of them when that many stream, else
//     minSyncReplicas, else all that stream.
//
// maxStandbyNamesFromCluster truncates the instances' part; standbyNamesPre
// and standbyNamesPost surround it.
func syncStandbyNames(rep pc.Replication, self string, streaming map[string]bool) string {
	s := rep.Synchronous
	if s == nil {
		return ""
	}
	var healthy, away []string
	for _, n := range rep.Instances {
		switch {
		case n == self:
		case streaming[n]:
			healthy = append(healthy, n)
		default:
			away = append(away, n)
		}
	}
	if s.Legacy {
		num := s.Number
		if len(healthy) < num {
			num = s.Min
		}
		num = min(num, len(healthy))
		if num <= 0 {
			return ""
		}
		return formatSyncNames(pc.SyncMethodAny, num, healthy)
	}
	preferred := s.DataDurability == pc.DurabilityPreferred
	names := healthy
	if !preferred {
		names = append(append(append([]string(nil), healthy...), away...), self)
	}
	if m := s.MaxStandbyNamesFromCluster; m != nil && len(names) > *m {
		names = names[:max(*m, 0)]
	}
	num := s.Number
	if preferred {
		num = min(num, len(names))
	}
	names = append(append(append([]string(nil), s.StandbyNamesPre...), names...), s.StandbyNamesPost...)
	if num <= 0 || len(names) == 0 {
		return ""
	}
	return formatSyncNames(s.Method, num, names)
}

// formatSyncNames renders METHOD NUM ("a","b"): each name double-quoted,
// as instance names hold '-' (not an identifier character).
func formatSyncNames(method string, num int, names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = `"` + strings.ReplaceAll(n, `"`, `""`) + `"`
	}
	return fmt.Sprintf("%s %d (%s)", strings.ToUpper(method), num, strings.Join(q, ","))
}
