package plan

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

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
// spec to their values as strings, walking the types by their json tags
// (the names users write). Unset and empty values are left out, so a
// default written out and the same default implied compare equal.
func flatten(c *cluster.Cluster) map[string]string {
	out := map[string]string{}
	if c == nil {
		return out
	}
	flattenValue(out, "metadata.labels", reflect.ValueOf(c.Metadata.Labels))
	flattenValue(out, "metadata.annotations", reflect.ValueOf(c.Metadata.Annotations))
	flattenValue(out, "spec", reflect.ValueOf(c.Spec))
	return out
}

func flattenValue(out map[string]string, path string, v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			flattenValue(out, path, v.Elem())
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			flattenValue(out, path+"."+name, v.Field(i))
		}
	case reflect.Map:
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		for _, k := range keys {
			flattenValue(out, path+"."+k.String(), v.MapIndex(k))
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			flattenValue(out, path+"["+strconv.Itoa(i)+"]", v.Index(i))
		}
	case reflect.String:
		if s := v.String(); s != "" {
			out[path] = s
		}
	case reflect.Int:
		out[path] = strconv.FormatInt(v.Int(), 10)
	case reflect.Bool:
		out[path] = strconv.FormatBool(v.Bool())
	default:
		panic(fmt.Sprintf("plan: cannot flatten %s at %s", v.Type(), path))
	}
}
