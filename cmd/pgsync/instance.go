package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgsync/pgsync/internal/instance"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

func init() { commands = append(commands, newInstanceCmd) }

func newInstanceCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "instance",
		Short: "The instance manager that runs inside each Postgres pod",
	}
	cmd.AddCommand(newInstanceRunCmd(), newInstanceBootstrapCmd(), newInstanceStopCmd())
	return cmd
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func newInstanceRunCmd() *cobra.Command {
	var c instance.Config
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run as PID 1 of the postgres container: supervise postgres and align its role with the cluster",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelInfo}))
			creds, err := instance.LoadCredentials(os.Getenv, os.ReadFile)
			if err != nil {
				return err
			}
			c.Credentials = creds
			if c.InitDB, err = instance.LoadInitDB(os.Getenv); err != nil {
				return err
			}
			if c.AdvertiseAddress == "" && c.Instance != "" && c.Cluster != "" && c.Namespace != "" {
				c.AdvertiseAddress = pc.Names{Cluster: c.Cluster}.Address(c.Instance, c.Namespace, c.Port)
			}
			if err := instance.Run(context.Background(), c, log); err != nil {
				log.Error("instance manager failed", "error", err.Error())
				return exitError{1}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.Cluster, "cluster", envOr(pc.EnvCluster, ""), "Cluster name (env "+pc.EnvCluster+")")
	f.StringVar(&c.Namespace, "namespace", envOr(pc.EnvPodNamespace, ""), "namespace (env "+pc.EnvPodNamespace+")")
	f.StringVar(&c.Instance, "instance", envOr(pc.EnvPodName, ""), "this instance's name, the pod name (env "+pc.EnvPodName+")")
	f.StringVar(&c.PGData, "pgdata", envOr(pc.EnvPGData, pc.PGData), "database directory (env "+pc.EnvPGData+")")
	f.StringVar(&c.WALDir, "wal-dir", envOr(pc.EnvWALDir, ""), "pg_wal on its own volume (spec.walStorage): initdb and pg_basebackup --waldir (env "+pc.EnvWALDir+"; default: inside the database directory)")
	f.StringVar(&c.RunDir, pc.FlagRunDir, pc.RunDir, "directory for sockets and the password file")
	f.StringVar(&c.PGBin, "pg-bin", envOr(pc.EnvPGBin, ""), "PostgreSQL bin directory (default: PATH, pg_config, /usr/lib/postgresql/*/bin …)")
	f.IntVar(&c.Port, pc.FlagPort, pc.PostgresPort, "PostgreSQL port")
	f.StringVar(&c.ListenAddresses, "listen-addresses", "*", "PostgreSQL listen_addresses")
	f.StringVar(&c.AdvertiseAddress, "advertise-address", envOr(pc.EnvAdvertiseAddress, ""), "host:port standbys use to reach this instance (default INSTANCE.CLUSTER-hl.NAMESPACE.svc:PORT)")
	f.StringVar(&c.PodIP, "pod-ip", envOr(pc.EnvPodIP, ""), "address written to the CLUSTER-rw EndpointSlice (env "+pc.EnvPodIP+")")
	f.StringVar(&c.HTTPAddr, pc.FlagHTTPAddr, ":"+strconv.Itoa(pc.HTTPPort), "address of "+pc.PathHealthz+", "+pc.PathReadyz+" and "+pc.PathStatus)
	f.StringVar(&c.MetricsAddr, pc.FlagMetricsAddr, "", "address of "+pc.PathMetrics+" in the Prometheus format (spec.monitoring; default: not served)")
	f.StringArrayVar(&c.MetricsQueries, pc.FlagMetricsQueries, nil, "a file of custom queries in CloudNativePG's format, relative to --metrics-queries-dir, re-read at every scrape; repeated, later files' queries replace earlier ones of the same name (spec.monitoring.customQueriesConfigMap, customQueriesSecret)")
	f.StringVar(&c.MetricsQueriesDir, "metrics-queries-dir", pc.MetricsQueriesDir, "directory of the --"+pc.FlagMetricsQueries+" files")
	f.BoolVar(&c.MetricsTLS, pc.FlagMetricsTLS, false, "serve "+pc.PathMetrics+" over TLS with the instance's server certificate (spec.monitoring.tls.enabled; needs --ca-dir)")
	f.BoolVar(&c.MetricsDefaultQueries, pc.FlagMetricsDefaultQueries, true, "serve the PostgreSQL metrics on "+pc.PathMetrics+" beside the manager's own (false: spec.monitoring.disableDefaultQueries)")
	f.StringVar(&c.ParametersFile, "parameters-file", envOr(pc.EnvParametersFile, ""), "JSON object of postgresql.parameters (a mounted ConfigMap), re-read while running (env "+pc.EnvParametersFile+")")
	f.StringVar(&c.ConfigRevisionFile, "config-revision-file", envOr(pc.EnvConfigRevisionFile, ""), "the config revision of the parameters file, published in "+pc.PathStatus+" once loaded (env "+pc.EnvConfigRevisionFile+"; default: "+pc.ConfigRevisionKey+" next to the parameters file)")
	f.StringVar(&c.HBAFile, "hba-file", "", "JSON array of pg_hba.conf lines (spec.postgresql.pg_hba), written before pgsync's defaults, re-read with the parameters file (default: "+pc.HBAKey+" next to the parameters file)")
	f.DurationVar(&c.StopDelay, pc.FlagStopDelay, 30*time.Second, "on SIGTERM, smart shutdown for this long, then fast")
	f.DurationVar(&c.SwitchoverDelay, pc.FlagSwitchoverDelay, time.Hour, "in a switchover, how long the primary's shutdown may take before it is made immediate (spec.switchoverDelay)")
	f.DurationVar(&c.LeaseDuration, pc.FlagLeaseDuration, 15*time.Second, "primary Lease duration; the primary stops writing before it runs out")
	f.DurationVar(&c.FailoverDelay, pc.FlagFailoverDelay, 0, "after the primary Lease expired, wait this much longer before the standbys elect a new primary (spec.failoverDelay)")
	f.StringSliceVar(&c.Peers, "peers", nil, "HTTP addresses (host:port) of the cluster's instance managers for the failover election (default: the addresses of CLUSTER-hl on this manager's HTTP port)")
	f.StringVar(&c.Kubeconfig, "kubeconfig", "", "kubeconfig (default: KUBECONFIG, then in-cluster)")
	f.StringVar(&c.CADir, "ca-dir", envOr(pc.EnvCADir, ""), "directory holding the cluster's CA ("+pc.CACertKey+", "+pc.CAKeyKey+"): TLS on, certificates issued from it (env "+pc.EnvCADir+"; unset: no TLS)")
	generations, _ := strconv.Atoi(envOr(pc.EnvCAGenerations, "1"))
	f.IntVar(&c.CAGenerations, "ca-generations", generations, "how many generations of the CA the pod mounts in --ca-dir (the first at its root, generation N in gen<N>/; env "+pc.EnvCAGenerations+")")
	f.StringVar(&c.ServerCADir, "server-ca-dir", envOr(pc.EnvServerCADir, ""), "spec.certificates.serverCASecret's directory ("+pc.CACertKey+", and "+pc.CAKeyKey+" without --server-tls-dir; env "+pc.EnvServerCADir+")")
	f.StringVar(&c.ServerTLSDir, "server-tls-dir", envOr(pc.EnvServerTLSDir, ""), "spec.certificates.serverTLSSecret's directory ("+pc.TLSCertKey+", "+pc.TLSKeyKey+"; env "+pc.EnvServerTLSDir+")")
	f.StringVar(&c.ClientCADir, "client-ca-dir", envOr(pc.EnvClientCADir, ""), "spec.certificates.clientCASecret's directory ("+pc.CACertKey+", and "+pc.CAKeyKey+" without --replication-tls-dir; env "+pc.EnvClientCADir+")")
	f.StringVar(&c.ReplicationTLSDir, "replication-tls-dir", envOr(pc.EnvReplicationTLSDir, ""), "spec.certificates.replicationTLSSecret's directory ("+pc.TLSCertKey+", "+pc.TLSKeyKey+"; env "+pc.EnvReplicationTLSDir+")")
	f.StringSliceVar(&c.ServerAltDNSNames, "server-alt-dns-names", pc.SplitNames(envOr(pc.EnvServerAltDNSNames, "")), "more DNS names for the server certificate (spec.certificates.serverAltDNSNames; env "+pc.EnvServerAltDNSNames+")")
	return cmd
}

func newInstanceBootstrapCmd() *cobra.Command {
	var to string
	cmd := &cobra.Command{
		Use:   "bootstrap --to DIR",
		Short: "Copy this binary into DIR (the init container's job)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dst, err := instance.CopyBinary(to)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), dst)
			return nil
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "destination directory")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

func newInstanceStopCmd() *cobra.Command {
	var (
		pid     int
		timeout time.Duration
		runDir  string
	)
	cmd := &cobra.Command{
		Use:   "stop",
		Short: "Ask the instance manager for a graceful stop and wait for it (the container's preStop hook)",
		Long: `Stop asks the instance manager (PID 1 of the container by default), with
SIGUSR2, to stop postgres gracefully — a smart shutdown, fast after the stop
delay — and waits until postgres is down (the manager then waits for the
container's stop signal) or --timeout passes. As the postgres container's
preStop hook it makes pod deletion graceful even when the image's STOPSIGNAL
is SIGINT (a fast shutdown), as it is in many PostgreSQL images, and
returns before the container ends, so the kubelet records no failed hook.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return instance.RequestStop(ctx, pid, filepath.Join(runDir, pc.StopMarker), 100*time.Millisecond)
		},
	}
	cmd.Flags().IntVar(&pid, "pid", 1, "process to stop")
	cmd.Flags().StringVar(&runDir, "run-dir", pc.RunDir, "the manager's --run-dir, where it marks postgres stopped")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Minute, "give up waiting after this long (the kubelet's grace period bounds it anyway)")
	return cmd
}
