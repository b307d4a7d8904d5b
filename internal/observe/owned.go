package observe

import (
	"encoding/json"
	"reflect"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// unchanged reports whether a server-side apply of body (what pgsync
// renders) would provably leave live as it is, so drift needs no dry run:
// the fields pgsync owns in live (its one Apply entry of managedFields)
// are exactly the fields of body, each with body's value. Then the apply
// sets nothing that differs, takes over nothing and removes nothing.
// Whenever that cannot be shown from the field set alone (an atomic value
// the server defaulted into, a list item matched by index, another
// manager's edit of a field pgsync owned), it reports false and the dry
// run decides: false is never wrong, only slower.
func unchanged(body, live *unstructured.Unstructured) bool {
	owned := appliedFields(live)
	if owned == nil {
		return false
	}
	want := body.DeepCopy().Object
	// Identity fields are never in a field set.
	delete(want, "apiVersion")
	delete(want, "kind")
	if md, ok := want["metadata"].(map[string]any); ok {
		delete(md, "name")
		delete(md, "namespace")
		if len(md) == 0 {
			delete(want, "metadata")
		}
	}
	return covers(want, owned, live.Object)
}

// appliedFields is pgsync's field set in live (FieldsV1 decoded), or nil
// when there is not exactly one Apply entry of pgsync's.
func appliedFields(live *unstructured.Unstructured) map[string]any {
	var entry *metav1.ManagedFieldsEntry
	mfs := live.GetManagedFields()
	for i := range mfs {
		mf := &mfs[i]
		if mf.Manager != pc.FieldManager || mf.Subresource != "" {
			continue
		}
		if entry != nil || mf.Operation != metav1.ManagedFieldsOperationApply || mf.FieldsType != "FieldsV1" || mf.FieldsV1 == nil {
			return nil
		}
		entry = mf
	}
	if entry == nil {
		return nil
	}
	var fields map[string]any
	if err := json.Unmarshal(entry.FieldsV1.Raw, &fields); err != nil {
		return nil
	}
	return fields
}

// covers: owned (a FieldsV1 node) is exactly the fields of want, and each
// has the same value in got. A node with no children is a value owned
// whole (a scalar, or an atomic map or list): equal or not.
func covers(want any, owned map[string]any, got any) bool {
	children := 0
	for k := range owned {
		if k != "." {
			children++
		}
	}
	if children == 0 {
		return reflect.DeepEqual(want, got)
	}
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || len(w) != children {
			return false
		}
		for k, v := range w {
			o, ok := owned["f:"+k].(map[string]any)
			if !ok || !covers(v, o, g[k]) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(w) != children {
			return false
		}
		used := map[string]bool{}
		for _, item := range w {
			k, o, liveItem := ownedItem(owned, item, g)
			if o == nil || used[k] || !covers(item, o, liveItem) {
				return false
			}
			used[k] = true
		}
		return true
	}
	return false
}

// ownedItem finds the child of a list's FieldsV1 node that names item —
// "k:{...}" (an item of a map-list, by its key fields) or "v:..." (an item
// of a set, by value) — and item's counterpart in the live list. Index
// keys ("i:N") and ambiguous matches find nothing.
func ownedItem(owned map[string]any, item any, live []any) (string, map[string]any, any) {
	for k, child := range owned {
		o, ok := child.(map[string]any)
		if !ok {
			continue
		}
		switch {
		case strings.HasPrefix(k, "k:"):
			var keys map[string]any
			if json.Unmarshal([]byte(k[2:]), &keys) != nil || !hasKeys(item, keys) {
				continue
			}
			var match any
			for _, l := range live {
				if hasKeys(l, keys) {
					if match != nil {
						return "", nil, nil
					}
					match = l
				}
			}
			if match == nil {
				return "", nil, nil
			}
			return k, o, match
		case strings.HasPrefix(k, "v:"):
			var v any
			if json.Unmarshal([]byte(k[2:]), &v) != nil || !sameJSON(item, v) {
				continue
			}
			for _, l := range live {
				if sameJSON(l, v) {
					return k, o, l
				}
			}
			return "", nil, nil
		}
	}
	return "", nil, nil
}

// hasKeys: item is a map holding each key field with its value.
func hasKeys(item any, keys map[string]any) bool {
	m, ok := item.(map[string]any)
	if !ok || len(keys) == 0 {
		return false
	}
	for f, v := range keys {
		if !sameJSON(m[f], v) {
			return false
		}
	}
	return true
}

// sameJSON compares values as JSON (a decoded key's numbers are float64,
// an object's int64).
func sameJSON(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}
