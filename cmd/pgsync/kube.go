package main

import (
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/pgsync/pgsync/internal/observe"
)

// kubeArgs are the flags that select the live clusters; plan (live) and
// status share them.
type kubeArgs struct {
	kubeconfig, context, namespace string
	statusVia                      string
	statusTimeout                  time.Duration
}

func (a *kubeArgs) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&a.kubeconfig, "kubeconfig", "", "kubeconfig file (default: as kubectl — $KUBECONFIG, ~/.kube/config, then the in-cluster service account)")
	f.StringVar(&a.context, "context", "", "kubeconfig context (default: its current context)")
	f.StringVarP(&a.namespace, "namespace", "n", "", "only this namespace (default: every namespace)")
	f.StringVar(&a.statusVia, "status-via", "direct", "how instance /status is read: direct (the pod IP, from inside the cluster's network) or proxy (the API server's pod proxy; needs get on pods/proxy)")
	f.DurationVar(&a.statusTimeout, "status-timeout", 2*time.Second, "timeout of each instance /status call")
}

// kubeClients are the clients of one API server.
type kubeClients struct {
	config  *rest.Config
	typed   kubernetes.Interface
	dynamic dynamic.Interface
	// metadata reads objects as metadata only (observe.Watch).
	metadata metadata.Interface
}

// connect loads the configuration exactly as kubectl does (client-go's
// loading rules and overrides, falling back to in-cluster).
func (a *kubeArgs) connect() (*kubeClients, error) {
	switch a.statusVia {
	case "direct", "proxy":
	default:
		return nil, fmt.Errorf("--status-via %q: allowed: direct, proxy", a.statusVia)
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = a.kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: a.context}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = "pgsync"
	// Observation and drift make a burst of calls per cluster; the
	// default 5 QPS would make a fleet's plan crawl.
	cfg.QPS, cfg.Burst = 100, 200
	typed, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	md, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return &kubeClients{config: cfg, typed: typed, dynamic: dyn, metadata: md}, nil
}

// observeOptions are the observation options the flags select.
func (a *kubeArgs) observeOptions(k *kubeClients) observe.Options {
	opts := observe.Options{Namespace: a.namespace, StatusTimeout: a.statusTimeout}
	if a.statusVia == "proxy" {
		opts.Status = observe.ProxyStatus{Client: k.typed}
	} else {
		// Pod IPs are reached directly, never through HTTP_PROXY.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.Proxy = nil
		opts.Status = observe.DirectStatus{Client: &http.Client{Timeout: a.statusTimeout, Transport: tr}}
	}
	return opts
}
