package instance

import (
	"fmt"
	"slices"
	"strconv"
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
	method, num, names := syncStandbys(rep, self, streaming)
	if num <= 0 || len(names) == 0 {
		return ""
	}
	return formatSyncNames(method, num, names)
}

// syncSet is the set an election must reckon with for
// syncStandbyNames(rep, self, streaming): the names listed but self.
func syncSet(rep pc.Replication, self string, streaming map[string]bool) pc.SyncSet {
	method, num, names := syncStandbys(rep, self, streaming)
	if num <= 0 || len(names) == 0 {
		return pc.SyncSet{}
	}
	set := pc.SyncSet{Method: method, Number: num}
	for _, n := range names {
		if n != self {
			set.Standbys = append(set.Standbys, n)
		}
	}
	return set
}

// sameSet: a and b make commits wait for the same standbys (the order of
// the names and Settled aside; the election counts any n of the list).
func sameSet(a, b pc.SyncSet) bool {
	if a.Number != b.Number || (a.Number > 0 && a.Method != b.Method) {
		return false
	}
	x, y := slices.Clone(a.Standbys), slices.Clone(b.Standbys)
	slices.Sort(x)
	slices.Sort(y)
	return a.Number == 0 || slices.Equal(x, y)
}

// syncStandbys is synchronous_standby_names' method, number and names
// (num 0: off).
func syncStandbys(rep pc.Replication, self string, streaming map[string]bool) (method string, num int, names []string) {
	s := rep.Synchronous
	if s == nil {
		return "", 0, nil
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
		return pc.SyncMethodAny, num, healthy
	}
	preferred := s.DataDurability == pc.DurabilityPreferred
	names = healthy
	if !preferred {
		names = append(append(append([]string(nil), healthy...), away...), self)
	}
	if m := s.MaxStandbyNamesFromCluster; m != nil && len(names) > *m {
		names = names[:max(*m, 0)]
	}
	num = s.Number
	if preferred {
		num = min(num, len(names))
	}
	names = append(append(append([]string(nil), s.StandbyNamesPre...), names...), s.StandbyNamesPost...)
	return s.Method, num, names
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

// parseSyncNames reads formatSyncNames' output back (ok false for
// anything else).
func parseSyncNames(s string) (method string, num int, names []string, ok bool) {
	head, rest, found := strings.Cut(s, " (")
	if !found || !strings.HasSuffix(rest, ")") {
		return "", 0, nil, false
	}
	m, n, found := strings.Cut(head, " ")
	if !found {
		return "", 0, nil, false
	}
	num, err := strconv.Atoi(n)
	if err != nil {
		return "", 0, nil, false
	}
	list := strings.TrimSuffix(rest, ")")
	for len(list) > 0 {
		if list[0] != '"' {
			return "", 0, nil, false
		}
		var b strings.Builder
		i := 1
		for ; i < len(list); i++ {
			if list[i] == '"' {
				if i+1 < len(list) && list[i+1] == '"' {
					b.WriteByte('"')
					i++
					continue
				}
				break
			}
			b.WriteByte(list[i])
		}
		if i >= len(list) {
			return "", 0, nil, false
		}
		names = append(names, b.String())
		list = strings.TrimPrefix(list[i+1:], ",")
	}
	return strings.ToLower(m), num, names, true
}
