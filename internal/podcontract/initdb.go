package podcontract

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
}
