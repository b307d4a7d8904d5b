package plan

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	"github.com/pgsync/pgsync/internal/cluster"
)

// diffSpecs lists every field that differs between two clusters, by path,
// sorted. A nil cluster has no fields (create and delete).
func diffSpecs(before, after *cluster.Cluster) []Change {
	b, a := flatten(before), flatten(after)
	paths := map[string]bool{}
	for p := range b {
		paths[p] = true
	}
	for p := range a {
		paths[p] = true
	}
	var changes []Change
	for _, p := range sortedKeys(paths) {
		bv, bok := b[p]
		av, aok := a[p]
		if bok == aok && bv == av {
			continue
		}
		c := Change{Path: p}
		if bok {
			c.Before = &bv
		}
		if aok {
			c.After = &av
		}
		changes = append(changes, c)
	}
	return changes
}

// flatten maps field paths of a cluster's metadata labels/annotations and
// spec to their values as strings. Unset and empty values are left out, so
// a default written out and the same default implied compare equal.
func flatten(c *cluster.Cluster) map[string]string {
	out := map[string]string{}
	if c == nil {
		return out
	}
	doc := map[string]any{
		"metadata": map[string]any{"labels": c.Metadata.Labels, "annotations": c.Metadata.Annotations},
		"spec":     c.Spec,
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		panic(fmt.Sprintf("plan: cluster spec does not marshal: %v", err)) // only plain data types
	}
	var tree any
	if err := json.Unmarshal(raw, &tree); err != nil {
		panic(fmt.Sprintf("plan: cluster spec does not unmarshal: %v", err))
	}
	flattenInto(out, "", tree)
	return out
}

func flattenInto(out map[string]string, path string, v any) {
	switch v := v.(type) {
	case nil:
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := k
			if path != "" {
				p = path + "." + k
			}
			flattenInto(out, p, v[k])
		}
	case []any:
		for i, item := range v {
			flattenInto(out, path+"["+strconv.Itoa(i)+"]", item)
		}
	case string:
		if v != "" {
			out[path] = v
		}
	case float64:
		out[path] = strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		out[path] = strconv.FormatBool(v)
	default:
		out[path] = fmt.Sprint(v)
	}
}
