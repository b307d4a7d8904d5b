package pgconf

import "strings"

// customParam is a parameter defined by a commonly preloaded extension.
type customParam struct {
	Param
	// minMajor is the first PostgreSQL major whose contrib module (or
	// matching extension release) defines the parameter.
	minMajor int
}

// customParams holds the contexts of well-known extension parameters.
//
// Sources: pg_settings of a PostgreSQL 15.18 server started with
// shared_preload_libraries = 'pg_stat_statements,auto_explain,pgaudit'
// (contrib from the Debian postgresql-15 package, pgaudit 1.7.0 from Debian's
// postgresql-15-pgaudit), and for auto_explain.log_parameter_max_length
// (added in PostgreSQL 16) the auto_explain documentation ("Only superusers
// can change this setting"). The contexts are assumed unchanged across
// 13-18 (verified live for 15 only): the integration test checks the table
// against a live server whenever the libraries are installed.
var customParams = map[string]customParam{
	// pg_stat_statements (contrib). max sizes shared memory: restart.
	"pg_stat_statements.max":            {Param{"pg_stat_statements.max", ContextPostmaster, VarInteger}, 13},
	"pg_stat_statements.track":          {Param{"pg_stat_statements.track", ContextSuperuser, VarEnum}, 13},
	"pg_stat_statements.track_utility":  {Param{"pg_stat_statements.track_utility", ContextSuperuser, VarBool}, 13},
	"pg_stat_statements.track_planning": {Param{"pg_stat_statements.track_planning", ContextSuperuser, VarBool}, 13},
	"pg_stat_statements.save":           {Param{"pg_stat_statements.save", ContextSighup, VarBool}, 13},

	// auto_explain (contrib): every parameter is superuser.
	"auto_explain.log_min_duration":         {Param{"auto_explain.log_min_duration", ContextSuperuser, VarInteger}, 13},
	"auto_explain.log_parameter_max_length": {Param{"auto_explain.log_parameter_max_length", ContextSuperuser, VarInteger}, 16},
	"auto_explain.log_analyze":              {Param{"auto_explain.log_analyze", ContextSuperuser, VarBool}, 13},
	"auto_explain.log_settings":             {Param{"auto_explain.log_settings", ContextSuperuser, VarBool}, 13},
	"auto_explain.log_verbose":              {Param{"auto_explain.log_verbose", ContextSuperuser, VarBool}, 13},
	"auto_explain.log_buffers":              {Param{"auto_explain.log_buffers", ContextSuperuser, VarBool}, 13},
	"auto_explain.log_wal":                  {Param{"auto_explain.log_wal", ContextSuperuser, VarBool}, 13},
	"auto_explain.log_triggers":             {Param{"auto_explain.log_triggers", ContextSuperuser, VarBool}, 13},
	"auto_explain.log_timing":               {Param{"auto_explain.log_timing", ContextSuperuser, VarBool}, 13},
	"auto_explain.log_format":               {Param{"auto_explain.log_format", ContextSuperuser, VarEnum}, 13},
	"auto_explain.log_level":                {Param{"auto_explain.log_level", ContextSuperuser, VarEnum}, 13},
	"auto_explain.log_nested_statements":    {Param{"auto_explain.log_nested_statements", ContextSuperuser, VarBool}, 13},
	"auto_explain.sample_rate":              {Param{"auto_explain.sample_rate", ContextSuperuser, VarReal}, 13},

	// pgaudit (separate extension, one release line per major): every
	// parameter is superuser.
	"pgaudit.log":                {Param{"pgaudit.log", ContextSuperuser, VarString}, 13},
	"pgaudit.log_catalog":        {Param{"pgaudit.log_catalog", ContextSuperuser, VarBool}, 13},
	"pgaudit.log_client":         {Param{"pgaudit.log_client", ContextSuperuser, VarBool}, 13},
	"pgaudit.log_level":          {Param{"pgaudit.log_level", ContextSuperuser, VarString}, 13},
	"pgaudit.log_parameter":      {Param{"pgaudit.log_parameter", ContextSuperuser, VarBool}, 13},
	"pgaudit.log_relation":       {Param{"pgaudit.log_relation", ContextSuperuser, VarBool}, 13},
	"pgaudit.log_rows":           {Param{"pgaudit.log_rows", ContextSuperuser, VarBool}, 13},
	"pgaudit.log_statement":      {Param{"pgaudit.log_statement", ContextSuperuser, VarBool}, 13},
	"pgaudit.log_statement_once": {Param{"pgaudit.log_statement_once", ContextSuperuser, VarBool}, 13},
	"pgaudit.role":               {Param{"pgaudit.role", ContextSuperuser, VarString}, 13},
}

// LookupCustom returns the context of a well-known extension parameter
// (pg_stat_statements.*, auto_explain.*, pgaudit.*). Names are
// case-insensitive. ok is false for every other name; such custom names are
// placeholders to PostgreSQL until the defining library loads.
func LookupCustom(name string) (Context, bool) {
	p, ok := customParams[strings.ToLower(name)]
	return p.Context, ok
}

// CustomParams returns the well-known extension parameters, sorted by name.
func CustomParams() []Param {
	out := make([]Param, 0, len(customParams))
	for _, p := range customParams {
		out = append(out, p.Param)
	}
	sortParams(out)
	return out
}

// customInfo is LookupCustom restricted to parameters present in major.
func customInfo(name string, major int) (Param, bool) {
	p, ok := customParams[strings.ToLower(name)]
	if !ok || major < p.minMajor {
		return Param{}, false
	}
	return p.Param, true
}

// customDomains are the value domains of the extension parameters that are
// not plain booleans or strings, from pg_settings of the same PostgreSQL
// 15.18 server (auto_explain.log_parameter_max_length: the documentation's
// -1 .. INT_MAX bytes, PostgreSQL 16+). Their bounds apply to DomainMajor
// only (extension sources were not transcribed); other majors get the unit
// and enum values.
var customDomains = map[string]Domain{
	"pg_stat_statements.max":                {VarType: VarInteger, Min: 100, Max: 1073741823},
	"pg_stat_statements.track":              {VarType: VarEnum, Enum: []string{"none", "top", "all"}},
	"auto_explain.log_min_duration":         {VarType: VarInteger, Unit: "ms", Min: -1, Max: 2147483647},
	"auto_explain.log_parameter_max_length": {VarType: VarInteger, Unit: "B", Min: -1, Max: 2147483647},
	"auto_explain.log_format":               {VarType: VarEnum, Enum: []string{"text", "xml", "json", "yaml"}},
	"auto_explain.log_level":                {VarType: VarEnum, Enum: []string{"debug5", "debug4", "debug3", "debug2", "debug1", "info", "notice", "warning", "log"}},
	"auto_explain.sample_rate":              {VarType: VarReal, Min: 0, Max: 1},
}
