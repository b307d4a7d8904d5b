package cluster

import (
	"fmt"
	"slices"
)

// BootstrapConfiguration is CloudNativePG's spec.bootstrap. pgsync creates
// a cluster with initdb only; recovery and pg_basebackup are refused by
// name (unsupported.go).
type BootstrapConfiguration struct {
	InitDB *BootstrapInitDB `json:"initdb"`
}

// BootstrapInitDB is CloudNativePG's spec.bootstrap.initdb: how the first
// primary runs initdb and what it creates then. It takes effect once, at
// bootstrap; the planner refuses a change on a running cluster
// (plan/initdb.go).
type BootstrapInitDB struct {
	// Database is the application database (default app); Owner its
	// owner role (default: the database's name).
	Database string `json:"database"`
	Owner    string `json:"owner"`
	// Secret names a basic-auth Secret of the user's holding the owner's
	// password (its username must be Owner); nil: pgsync generates
	// NAME-app.
	Secret *LocalObjectReference `json:"secret"`

	Encoding       string `json:"encoding"`
	LocaleCollate  string `json:"localeCollate"`
	LocaleCType    string `json:"localeCType"`
	Locale         string `json:"locale"`
	LocaleProvider string `json:"localeProvider"`
	ICULocale      string `json:"icuLocale"`
	ICURules       string `json:"icuRules"`
	BuiltinLocale  string `json:"builtinLocale"`
	// DataChecksums: nil means on (pgsync's default, unlike
	// CloudNativePG's off); false turns them off.
	DataChecksums *bool `json:"dataChecksums"`
	// WALSegmentSize in megabytes (initdb --wal-segsize); 0: 16.
	WALSegmentSize int `json:"walSegmentSize"`

	// PostInitSQL runs in the postgres database, PostInitTemplateSQL in
	// template1, PostInitApplicationSQL in the application database, in
	// that order, once, as the superuser.
	PostInitSQL            []string `json:"postInitSQL"`
	PostInitApplicationSQL []string `json:"postInitApplicationSQL"`
	PostInitTemplateSQL    []string `json:"postInitTemplateSQL"`
	// The Refs name SQL files in ConfigMaps and Secrets, each run after
	// its inline list in the same database (sqlrefs.go).
	PostInitSQLRefs            *SQLRefs `json:"postInitSQLRefs"`
	PostInitApplicationSQLRefs *SQLRefs `json:"postInitApplicationSQLRefs"`
	PostInitTemplateSQLRefs    *SQLRefs `json:"postInitTemplateSQLRefs"`
}

// LocalObjectReference names an object of the cluster's namespace.
type LocalObjectReference struct {
	Name string `json:"name"`
}

// Defaults of spec.bootstrap.initdb (CloudNativePG's).
const (
	DefaultDatabase = "app"
	DefaultEncoding = "UTF8"
)

// AppDatabase is the application database the primary creates.
func (c *Cluster) AppDatabase() string {
	if i := c.initDB(); i != nil && i.Database != "" {
		return i.Database
	}
	return DefaultDatabase
}

// AppOwner is the application database's owner role.
func (c *Cluster) AppOwner() string {
	if i := c.initDB(); i != nil && i.Owner != "" {
		return i.Owner
	}
	return c.AppDatabase()
}

// AppSecretName is the user's Secret holding the owner's password, or ""
// when pgsync generates it (NAME-app).
func (c *Cluster) AppSecretName() string {
	if i := c.initDB(); i != nil && i.Secret != nil {
		return i.Secret.Name
	}
	return ""
}

func (c *Cluster) initDB() *BootstrapInitDB {
	if c.Spec.Bootstrap == nil {
		return nil
	}
	return c.Spec.Bootstrap.InitDB
}

// initdb options by the first major that has them (initdb's documentation).
var initdbSince = []struct {
	field string
	major int
	set   func(*BootstrapInitDB) bool
}{
	{"localeProvider", 15, func(i *BootstrapInitDB) bool { return i.LocaleProvider != "" }},
	{"icuLocale", 15, func(i *BootstrapInitDB) bool { return i.ICULocale != "" }},
	{"icuRules", 16, func(i *BootstrapInitDB) bool { return i.ICURules != "" }},
	{"builtinLocale", 17, func(i *BootstrapInitDB) bool { return i.BuiltinLocale != "" }},
}

// validateInitDB checks spec.bootstrap.initdb against the major version
// (0: unknown, no version checks).
func validateInitDB(c *Cluster, major int, bad func(field, format string, args ...any)) {
	i := c.initDB()
	if i == nil {
		return
	}
	const p = "spec.bootstrap.initdb"
	if i.Database != "" && slices.Contains([]string{"postgres", "template0", "template1"}, i.Database) {
		bad(p+".database", "%q is one of PostgreSQL's own databases; name the application database", i.Database)
	}
	if slices.Contains([]string{"postgres", "streaming_replica"}, i.Owner) {
		bad(p+".owner", "%q is a role pgsync manages (the superuser, the replication user); name the application's owner", i.Owner)
	}
	for _, f := range []struct{ field, v string }{{"database", i.Database}, {"owner", i.Owner}} {
		if len(f.v) > 63 {
			bad(p+"."+f.field, "%q is longer than PostgreSQL's 63-byte identifiers", f.v)
		}
	}
	if i.Secret != nil && !dns1123Subdomain(i.Secret.Name) {
		bad(p+".secret.name", "%q is not a valid Secret name", i.Secret.Name)
	}
	if i.LocaleProvider != "" && !slices.Contains([]string{"libc", "icu", "builtin"}, i.LocaleProvider) {
		bad(p+".localeProvider", "invalid value %q (allowed: libc, icu, builtin)", i.LocaleProvider)
	}
	if (i.ICULocale != "" || i.ICURules != "") && i.LocaleProvider != "icu" {
		field := "icuLocale"
		if i.ICULocale == "" {
			field = "icuRules"
		}
		bad(p+"."+field, "needs localeProvider: icu")
	}
	if i.BuiltinLocale != "" && i.LocaleProvider != "builtin" {
		bad(p+".builtinLocale", "needs localeProvider: builtin")
	}
	if i.LocaleProvider == "builtin" && major >= 17 && i.BuiltinLocale == "" && i.Locale == "" {
		bad(p+".builtinLocale", "required with localeProvider: builtin (C or C.UTF-8)")
	}
	if major > 0 {
		for _, s := range initdbSince {
			if s.set(i) && major < s.major {
				bad(p+"."+s.field, "not available in PostgreSQL %d: initdb has it from PostgreSQL %d", major, s.major)
			}
		}
		if i.LocaleProvider == "builtin" && major < 17 {
			bad(p+".localeProvider", "builtin is not available in PostgreSQL %d: it came with PostgreSQL 17", major)
		}
	}
	if w := i.WALSegmentSize; w != 0 && (w < 1 || w > 1024 || w&(w-1) != 0) {
		bad(p+".walSegmentSize", "must be a power of 2 between 1 and 1024 megabytes (got %d)", w)
	}
	for _, list := range []struct {
		field string
		sql   []string
	}{{"postInitSQL", i.PostInitSQL}, {"postInitApplicationSQL", i.PostInitApplicationSQL}, {"postInitTemplateSQL", i.PostInitTemplateSQL}} {
		for n, q := range list.sql {
			if q == "" {
				bad(fmt.Sprintf("%s.%s[%d]", p, list.field, n), "empty statement")
			}
		}
	}
	validateSQLRefs(i, bad)
}
