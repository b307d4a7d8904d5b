// Command kubelocal runs a real single-node Kubernetes on this machine, built
// from upstream sources: etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler, containerd + runc, kubelet, kube-proxy and CoreDNS as host
// processes, plus a loopback image registry and a local-directory volume
// provisioner that it serves itself. See docs/local-kubernetes.md.
//
//	kubelocal up       build what is missing, start everything, wait until the
//	                   node is Ready; the last line printed is `export KUBECONFIG=…`
//	kubelocal down     stop everything by PID and remove what the cluster left on
//	                   the host (iptables chains, bridge, netns, mounts, cgroups)
//	kubelocal status   show the processes and the node
//	kubelocal images   build the images into the cache; while the cluster is
//	                   up, its registry serves the rebuilt ones at once
//	kubelocal images --push HOST:PORT
//	                   build, then push them to that registry, signed, with
//	                   their SBOMs attached (make images)
//	kubelocal image REF DIR
//	                   build one image, from the cached root file systems as
//	                   they are, into a new OCI layout DIR; print its digest
//
// It owns the processes, host network set-up and state under its state
// directory. It must not import `internal/...`.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	p, err := defaultPaths()
	if err != nil {
		fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch os.Args[1] {
	case "up":
		err = up(ctx, p)
	case "down":
		err = down(p)
	case "status":
		err = status(ctx, p)
	case "images":
		push := ""
		if len(os.Args) == 4 && os.Args[2] == "--push" {
			push = os.Args[3]
		} else if len(os.Args) != 2 {
			usage()
			os.Exit(2)
		}
		var unlock func()
		if unlock, err = lockImages(p); err != nil {
			break
		}
		defer unlock()
		err = buildImages(ctx, p)
		localUp := false
		if c, derr := net.DialTimeout("tcp", registryAddr, time.Second); derr == nil {
			c.Close()
			localUp = true
		}
		if err == nil && localUp {
			// The cluster is up: its registry serves what it was pushed
			// at start, and the blobs of a replaced image are gone from
			// the layout; push the rebuilt images (the pgsync one) too.
			err = pushLayout(ctx, p)
			if err == nil {
				err = attachTrust(ctx, p, registryAddr)
			}
		}
		switch {
		case err != nil || push == "":
		case push == registryAddr && !localUp:
			err = fmt.Errorf("no registry at %s (make kube-up, or IMAGE_REGISTRY=HOST:PORT)", registryAddr)
		case push != registryAddr:
			// make images: push to the registry named, sign there,
			// attach the SBOMs.
			err = pushLayoutTo(ctx, p, push)
			if err == nil {
				err = attachTrust(ctx, p, push)
			}
		}
	case "image":
		if len(os.Args) != 4 {
			usage()
			os.Exit(2)
		}
		var dg fmt.Stringer
		dg, err = buildOne(ctx, p, os.Args[2], os.Args[3])
		if err == nil {
			fmt.Println(dg)
		}
	case "run": // the supervisor `up` starts in the background
		err = supervise(ctx, p)
	case "env":
		fmt.Printf("export KUBECONFIG=%s\n", p.kubeconfig())
	default:
		usage()
		os.Exit(2)
	}
	if err != nil {
		fatal(err)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: kubelocal up|down|status|images [--push HOST:PORT]|image REF DIR|env")
}

func fatal(err error) {
	var ee exitError
	if errors.As(err, &ee) {
		fmt.Fprintln(os.Stderr, "kubelocal:", ee.msg)
		os.Exit(ee.code)
	}
	fmt.Fprintln(os.Stderr, "kubelocal:", err)
	os.Exit(1)
}

type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return e.msg }
