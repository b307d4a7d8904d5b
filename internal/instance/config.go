package instance

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// Config is everything `pgsync instance run` needs, from flags and env.
type Config struct {
	Cluster   string // Cluster name (Lease NAME-primary, Service NAME-rw)
	Namespace string
	Instance  string // this instance (= pod name)

	PGData string // the database directory (a subdirectory of the volume)
	// WALDir, when set, is pg_wal on a volume of its own (spec.walStorage):
	// initdb and pg_basebackup place it there, PGDATA/pg_wal links to it.
	WALDir string
	RunDir string // sockets, password file; a tmpfs (/run) in the pod
	PGBin  string // explicit PostgreSQL bin directory ("" = discover)

	Port             int
	ListenAddresses  string
	AdvertiseAddress string // host:port standbys use to reach this instance
	PodIP            string // the address written to the -rw EndpointSlice
	HTTPAddr         string
	// MetricsAddr serves /metrics (spec.monitoring; "": not served);
	// MetricsDefaultQueries adds the PostgreSQL metrics to the manager's.
	MetricsAddr           string
	MetricsDefaultQueries bool
	// MetricsQueries are the custom queries' files, relative to
	// MetricsQueriesDir (default pc.MetricsQueriesDir), read in order at
	// every scrape; MetricsTLS serves /metrics over TLS with the server
	// certificate (spec.monitoring.tls.enabled; needs CADir).
	MetricsQueries    []string
	MetricsQueriesDir string
	MetricsTLS        bool

	// ParametersFile holds the Cluster's postgresql.parameters as a JSON
	// object (a mounted ConfigMap); re-read while running.
	ParametersFile string
	// ConfigRevisionFile holds the config revision of the same ConfigMap
	// version as ParametersFile; published in /status once loaded.
	// Default: its key next to ParametersFile.
	ConfigRevisionFile string
	// HBAFile holds the Cluster's pg_hba lines as a JSON array of the same
	// ConfigMap version. Default: its key next to ParametersFile.
	HBAFile string

	StopDelay time.Duration // smart shutdown, then fast
	// SwitchoverDelay bounds the old primary's shutdown in a switchover.
	SwitchoverDelay time.Duration
	LeaseDuration   time.Duration
	// FailoverDelay: how long after the primary Lease's expiry the
	// standbys wait before electing a new primary (spec.failoverDelay).
	FailoverDelay time.Duration
	// Peers are the HTTP addresses (host:port) of the cluster's instance
	// managers, for the failover election; empty: every address of the
	// headless Service NAME-hl, on this manager's HTTP port.
	Peers []string

	Kubeconfig string // "" = in-cluster

	Credentials Credentials

	// CADir holds the cluster's CA (pc.CACertKey, pc.CAKeyKey, the NAME-ca
	// Secret): the manager issues its certificates from it (tls.go). ""
	// or without the files: no TLS.
	CADir string
	// CAGenerations is how many generations of the CA the pod mounts in
	// CADir (pc.CAGenerationDir; carotation.go); below 1 means 1.
	CAGenerations int
	// ServerAltDNSNames are more DNS names for the server certificate
	// (spec.certificates.serverAltDNSNames).
	ServerAltDNSNames []string
	// ServerCADir, ServerTLSDir, ClientCADir and ReplicationTLSDir hold
	// spec.certificates' Secrets of the user's ("" when not given):
	// used instead of what the manager would issue (usercerts.go).
	ServerCADir, ServerTLSDir, ClientCADir, ReplicationTLSDir string

	// InitDB holds spec.bootstrap.initdb's options (PGSYNC_INITDB), used
	// once, when this instance bootstraps the cluster.
	InitDB pc.InitDB
}

// LoadInitDB reads PGSYNC_INITDB (unset: pgsync's defaults).
func LoadInitDB(getenv func(string) string) (pc.InitDB, error) {
	var i pc.InitDB
	v := getenv(pc.EnvInitDB)
	if v == "" {
		return i, nil
	}
	if err := json.Unmarshal([]byte(v), &i); err != nil {
		return i, fmt.Errorf("%s: %w", pc.EnvInitDB, err)
	}
	return i, nil
}

// Credentials come from the cluster's Secrets, mounted as files or passed as
// environment variables; never read through the API.
type Credentials struct {
	// SuperuserPassword is PGSYNC_SUPERUSER_PASSWORD, a fixed password
	// (tests); in a pod it is "" and SuperuserPasswordFile names the
	// projected Secret file, re-read while the manager runs (superuser.go).
	// Neither is needed: the manager logs in by peer authentication.
	SuperuserPassword     string
	SuperuserPasswordFile string
	ReplicationPassword   string
	AppUser               string
	AppDatabase           string
	AppPassword           string
}

// LoadCredentials reads the pod contract's credential variables
// (PGSYNC_REPLICATION_PASSWORD and PGSYNC_APP_PASSWORD, each also as
// NAME_FILE, a path; the replication password is optional: with TLS,
// standbys authenticate by certificate, and only a cluster created before
// TLS has one), plus PGSYNC_APP_USER and PGSYNC_APP_DATABASE.
// PGSYNC_SUPERUSER_PASSWORD is optional too, and its _FILE is only
// remembered: the file may appear, change or go while the manager runs.
func LoadCredentials(getenv func(string) string, readFile func(string) ([]byte, error)) (Credentials, error) {
	get := func(name string, required bool) (string, error) {
		if v := getenv(name); v != "" {
			return v, nil
		}
		if p := getenv(name + pc.FileSuffix); p != "" {
			b, err := readFile(p)
			if err != nil {
				return "", fmt.Errorf("read %s_FILE: %w", name, err)
			}
			return strings.TrimRight(string(b), "\r\n"), nil
		}
		if required {
			return "", fmt.Errorf("%s (or %s_FILE) is not set", name, name)
		}
		return "", nil
	}
	var c Credentials
	var err error
	var errs []error
	c.SuperuserPassword, c.SuperuserPasswordFile = getenv(pc.EnvSuperuserPassword), getenv(pc.EnvSuperuserPassword+pc.FileSuffix)
	if c.ReplicationPassword, err = getOptional(getenv, readFile, pc.EnvReplicationPassword); err != nil {
		errs = append(errs, err)
	}
	if c.AppPassword, err = get(pc.EnvAppPassword, false); err != nil {
		errs = append(errs, err)
	}
	c.AppUser, c.AppDatabase = getenv(pc.EnvAppUser), getenv(pc.EnvAppDatabase)
	if c.AppUser != "" && c.AppPassword == "" {
		errs = append(errs, errors.New(pc.EnvAppUser+" is set without "+pc.EnvAppPassword))
	}
	return c, errors.Join(errs...)
}

// getOptional reads NAME, or the file NAME_FILE names; a file that does
// not exist reads as unset (an optional Secret projection).
func getOptional(getenv func(string) string, readFile func(string) ([]byte, error), name string) (string, error) {
	if v := getenv(name); v != "" {
		return v, nil
	}
	p := getenv(name + pc.FileSuffix)
	if p == "" {
		return "", nil
	}
	b, err := readFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read %s_FILE: %w", name, err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// Validate reports missing or inconsistent settings.
func (c *Config) Validate() error {
	var errs []error
	for _, f := range []struct{ name, v string }{
		{"cluster", c.Cluster}, {"namespace", c.Namespace}, {"instance", c.Instance},
		{"pgdata", c.PGData}, {"run-dir", c.RunDir}, {"advertise-address", c.AdvertiseAddress},
	} {
		if f.v == "" {
			errs = append(errs, fmt.Errorf("--%s is required", f.name))
		}
	}
	if c.Port <= 0 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("--port %d out of range", c.Port))
	}
	if c.SwitchoverDelay <= 0 {
		errs = append(errs, fmt.Errorf("--switchover-delay %s: must be positive", c.SwitchoverDelay))
	}
	if c.FailoverDelay < 0 {
		errs = append(errs, fmt.Errorf("--%s %s: must not be negative", pc.FlagFailoverDelay, c.FailoverDelay))
	}
	if c.LeaseDuration < 3*time.Second {
		errs = append(errs, fmt.Errorf("--lease-duration %s: at least 3s", c.LeaseDuration))
	}
	return errors.Join(errs...)
}

// postgresEnv is the server's environment: the manager's, minus anything
// that could carry a secret or pgsync's own settings.
func postgresEnv(environ []string) []string {
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "PGSYNC_") || name == "KUBECONFIG" || name == "PGPASSWORD" || name == "PGPASSFILE" {
			continue
		}
		out = append(out, kv)
	}
	return out
}
