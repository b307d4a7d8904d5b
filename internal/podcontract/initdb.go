package podcontract

import "strconv"

// EnvInitDB carries spec.bootstrap.initdb's initdb options and post-init
// SQL to the instance manager, as the JSON of InitDB. Set only when the
// Cluster writes spec.bootstrap.initdb, so that other clusters keep their
// pod template (and revision). Used once, when the first primary runs
// initdb; the database, owner and password travel as EnvAppDatabase,
// EnvAppUser and EnvAppPassword.
const EnvInitDB = "PGSYNC_INITDB"

// InitDB is the value of EnvInitDB. Empty fields keep pgsync's defaults
// (UTF8, locale C, data checksums on, 16 MB WAL segments).
type InitDB struct {
	Encoding       string `json:"encoding,omitempty"`
	LocaleCollate  string `json:"localeCollate,omitempty"`
	LocaleCType    string `json:"localeCType,omitempty"`
	Locale         string `json:"locale,omitempty"`
	LocaleProvider string `json:"localeProvider,omitempty"`
	ICULocale      string `json:"icuLocale,omitempty"`
	ICURules       string `json:"icuRules,omitempty"`
	BuiltinLocale  string `json:"builtinLocale,omitempty"`
	// NoDataChecksums turns data checksums off (dataChecksums: false).
	NoDataChecksums bool `json:"noDataChecksums,omitempty"`
	// Major is the image's PostgreSQL major version (0: unknown, an image
	// pinned by digest only): PostgreSQL 18's initdb turns checksums on
	// unless told --no-data-checksums, which older ones do not know.
	Major int `json:"major,omitempty"`
	// WALSegmentSize in megabytes; 0: initdb's default.
	WALSegmentSize int `json:"walSegmentSize,omitempty"`

	PostInitSQL            []string `json:"postInitSQL,omitempty"`
	PostInitTemplateSQL    []string `json:"postInitTemplateSQL,omitempty"`
	PostInitApplicationSQL []string `json:"postInitApplicationSQL,omitempty"`
	// The files of spec.bootstrap.initdb's SQLRefs, each list in the
	// order the files run (the Secrets' first, then the ConfigMaps').
	PostInitSQLRefs            []SQLFile `json:"postInitSQLRefs,omitempty"`
	PostInitTemplateSQLRefs    []SQLFile `json:"postInitTemplateSQLRefs,omitempty"`
	PostInitApplicationSQLRefs []SQLFile `json:"postInitApplicationSQLRefs,omitempty"`
	// SQLRefsDir is where the files are; empty (as rendered):
	// PostInitSQLDir. A manager run outside a pod (the PostgreSQL test
	// tier) is given its own.
	SQLRefsDir string `json:"sqlRefsDir,omitempty"`
}

// Post-init SQL files (spec.bootstrap.initdb.postInitSQLRefs,
// postInitTemplateSQLRefs, postInitApplicationSQLRefs): each {name, key}
// is projected into the post-init-sql volume at
// PostInitSQLDir/PostInitSQLPath(field, n). Optional: a missing object or
// key is a missing file, which the bootstrapping manager names (and waits
// for) in its status, rather than a pod the kubelet holds; and once
// bootstrapped, a ConfigMap or Secret deleted cannot keep a later pod
// (a new standby, a restart) from starting.
const (
	PostInitSQLVolume = "post-init-sql"
	PostInitSQLDir    = "/etc/pgsync/post-init-sql"
)

// SQLFile is one projected post-init SQL file and where it comes from
// (for the manager's messages).
type SQLFile struct {
	// Path is relative to PostInitSQLDir.
	Path string `json:"path"`
	// Secret: the file is a Secret's key, whose text PostgreSQL's
	// messages may quote, so the manager reports none of them.
	Secret bool   `json:"secret,omitempty"`
	Name   string `json:"name"`
	Key    string `json:"key"`
}

// PostInitSQLPath is where the n-th file (in run order) of field
// (postInitSQLRefs…) is projected, relative to PostInitSQLDir.
func PostInitSQLPath(field string, n int) string {
	return field + "/" + strconv.Itoa(n) + ".sql"
}
