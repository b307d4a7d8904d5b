package cluster

import (
	"fmt"
	"regexp"
)

// SQLRefs is CloudNativePG's SQLRefs (spec.bootstrap.initdb.postInitSQLRefs,
// postInitTemplateSQLRefs, postInitApplicationSQLRefs): keys of ConfigMaps
// and Secrets of the cluster's namespace, each holding one SQL file the
// first primary runs once, after the phase's inline list, in the same
// database. As in CloudNativePG the Secrets' files run first, then the
// ConfigMaps', each list in the file's order.
type SQLRefs struct {
	SecretRefs    []SQLRef `json:"secretRefs"`
	ConfigMapRefs []SQLRef `json:"configMapRefs"`
}

// SQLRef is one key of a ConfigMap or Secret (CloudNativePG's
// SecretKeySelector, ConfigMapKeySelector).
type SQLRef struct {
	Name string `json:"name"`
	Key  string `json:"key"`
}

// PostInitPhase is one of the three post-init phases: its field prefix
// (postInitSQL…), the database it runs in ("" for the application's) and
// its refs.
type PostInitPhase struct {
	Field    string
	Database string
	Refs     *SQLRefs
}

// PostInitPhases are spec.bootstrap.initdb's post-init phases in the
// order they run (CloudNativePG's): postgres, template1 (so the
// application database, created from it, inherits), the application
// database.
func (i *BootstrapInitDB) PostInitPhases() []PostInitPhase {
	return []PostInitPhase{
		{"postInitSQL", "postgres", i.PostInitSQLRefs},
		{"postInitTemplateSQL", "template1", i.PostInitTemplateSQLRefs},
		{"postInitApplicationSQL", "", i.PostInitApplicationSQLRefs},
	}
}

// objectKey is Kubernetes' rule for a ConfigMap's and a Secret's keys.
var objectKey = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)

// validObjectKey: k can be a key of a ConfigMap or a Secret.
func validObjectKey(k string) bool {
	return len(k) <= 253 && objectKey.MatchString(k) && k != "." && k != ".."
}

// validateSQLRefs checks the three Refs: each entry names an object and a
// key, valid in Kubernetes, and is not listed twice in one phase (it
// would run twice).
func validateSQLRefs(i *BootstrapInitDB, bad func(field, format string, args ...any)) {
	for _, ph := range i.PostInitPhases() {
		if ph.Refs == nil {
			continue
		}
		field := "spec.bootstrap.initdb." + ph.Field + "Refs"
		for _, l := range []struct {
			list, kind string
			refs       []SQLRef
		}{{"secretRefs", "Secret", ph.Refs.SecretRefs}, {"configMapRefs", "ConfigMap", ph.Refs.ConfigMapRefs}} {
			seen := map[SQLRef]int{}
			for n, r := range l.refs {
				p := fmt.Sprintf("%s.%s[%d]", field, l.list, n)
				switch {
				case r.Name == "":
					bad(p+".name", "required: the %s holding the SQL file", l.kind)
				case !dns1123Subdomain(r.Name):
					bad(p+".name", "%q is not a valid %s name", r.Name, l.kind)
				}
				switch {
				case r.Key == "":
					bad(p+".key", "required: the key of the %s holding the SQL file", l.kind)
				case !validObjectKey(r.Key):
					bad(p+".key", "%q is not a valid %s key (letters, digits, '-', '_', '.')", r.Key, l.kind)
				}
				if j, dup := seen[r]; dup && r.Name != "" && r.Key != "" {
					bad(p, "%s %s key %s is listed already at %s.%s[%d] (it would run twice)", l.kind, r.Name, r.Key, field, l.list, j)
				} else if !dup {
					seen[r] = n
				}
			}
		}
	}
}
