package plan

import (
	"slices"
	"strings"

	"github.com/pgsync/pgsync/internal/cluster"
)

// serviceChanges says which Services an objects step creates, re-creates
// and deletes going from before to after (spec.managed.services), as plan
// text: "Services: create web-lb; re-create web-standbys (updateStrategy
// replace); delete web-ro (no longer in the spec)". "" when none: the
// Services that stay are applied like every other object.
func serviceChanges(before, after *cluster.Cluster) string {
	var had []string
	if before != nil {
		had = before.ServiceNames()
	}
	have := after.ServiceNames()
	var create, recreate, del []string
	for _, n := range have {
		if !slices.Contains(had, n) {
			create = append(create, n)
		}
	}
	for _, n := range had {
		if !slices.Contains(have, n) {
			del = append(del, n)
		}
	}
	if before != nil {
		was := map[string]cluster.ManagedService{}
		for _, ms := range before.Spec.AdditionalServices() {
			was[ms.ServiceTemplate.Metadata.Name] = ms
		}
		for _, ms := range after.Spec.AdditionalServices() {
			old, ok := was[ms.ServiceTemplate.Metadata.Name]
			if ok && ms.Strategy() == cluster.ServiceUpdateReplace && !jsonEqual(old, ms) {
				recreate = append(recreate, ms.ServiceTemplate.Metadata.Name)
			}
		}
	}
	var parts []string
	if len(create) > 0 {
		parts = append(parts, "create "+strings.Join(create, ", "))
	}
	if len(recreate) > 0 {
		parts = append(parts, "re-create "+strings.Join(recreate, ", ")+" (updateStrategy replace: deleted and created anew, with a new cluster IP)")
	}
	if len(del) > 0 {
		parts = append(parts, "delete "+strings.Join(del, ", ")+" (no longer in the spec)")
	}
	if len(parts) == 0 {
		return ""
	}
	return "Services: " + strings.Join(parts, "; ")
}
