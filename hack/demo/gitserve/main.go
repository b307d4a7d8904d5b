// Command gitserve serves the bare Git repositories under -root over
// HTTP (the smart protocol, fetch and push) by handing each request to
// `git http-backend`: the demo's Git server, which the local Kubernetes's
// pods reach on the node IP. It is git's own server behind net/http/cgi,
// not a Git implementation; only plain HTTP, for loopback and the node's
// bridge.
//
// It must not import `pgsync/...`.
package main

import (
	"flag"
	"log/slog"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8418", "address to serve on")
	root := flag.String("root", "", "directory of the bare repositories (NAME.git)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	git, err := exec.LookPath("git")
	if err != nil || *root == "" {
		log.Error("gitserve needs git on PATH and -root", "error", err)
		os.Exit(2)
	}
	backend := &cgi.Handler{
		Path: git,
		Args: []string{"http-backend"},
		// Every repository under root is served; pushes need
		// http.receivepack in the repository's config.
		Env: []string{"GIT_PROJECT_ROOT=" + *root, "GIT_HTTP_EXPORT_ALL=1"},
	}
	logged := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t0 := time.Now()
		backend.ServeHTTP(w, r)
		log.Info("request", "method", r.Method, "path", r.URL.Path, "query", r.URL.RawQuery, "seconds", time.Since(t0).Seconds())
	})
	srv := &http.Server{Addr: *listen, Handler: logged, ReadHeaderTimeout: 10 * time.Second}
	log.Info("serving", "listen", *listen, "root", *root)
	if err := srv.ListenAndServe(); err != nil {
		log.Error("serve", "error", err)
		os.Exit(1)
	}
}
