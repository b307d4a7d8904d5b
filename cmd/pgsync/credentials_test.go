package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fluxcd/pkg/gittestserver"

	"github.com/pgsync/pgsync/test/gittest"
)

// TestRepoCredentialsNeverPrinted runs validate and plan (every format, at
// debug level) against a real Git server over HTTP that requires basic
// auth, with the credentials in the --repo URL — right, wrong, for an
// unreachable server and in a URL that does not parse — and greps
// everything the commands print for the secrets.
func TestRepoCredentialsNeverPrinted(t *testing.T) {
	const token, wrong = "tok-5ecret-in-url", "wr0ng-5ecret-in-url"
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	newGitRepo(t) // skips without git
	srv, err := gittestserver.NewTempGitServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(srv.Root()) })
	srv.Auth("git", token)
	if err := srv.StartHTTP(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.StopHTTP)
	src := gittest.NewRepo(t)
	src.Write(map[string]string{"clusters/website.yaml": seed(t)})
	src.Commit("website", nil)
	src.Push(filepath.Join(srv.Root(), "repo.git"))
	host := strings.TrimPrefix(srv.HTTPAddress(), "http://")

	good := "http://git:" + token + "@" + host + "/repo.git"
	tokenOnly := "http://" + token + "@" + host + "/repo.git" // as a token is often written; the server refuses it
	runs := []struct {
		args []string
		code int
	}{
		{[]string{"validate", "--repo", good, "--path", "clusters", "--log-level", "debug"}, 0},
		{[]string{"plan", "--repo", good, "--path", "clusters", "--offline", "--log-level", "debug"}, 0},
		{[]string{"plan", "--repo", good, "--path", "clusters", "--offline", "--format", "json"}, 0},
		{[]string{"plan", "--repo", good, "--path", "clusters", "--offline", "--format", "markdown"}, 0},
		{[]string{"validate", "--repo", "http://git:" + wrong + "@" + host + "/repo.git", "--log-level", "debug"}, 1},
		{[]string{"validate", "--repo", tokenOnly, "--log-level", "debug"}, 1},
		{[]string{"validate", "--repo", "http://git:" + token + "@127.0.0.1:1/repo.git"}, 1},
		{[]string{"plan", "--repo", "https://git:" + token + "@bad host/repo.git", "--offline"}, 1},
		{[]string{"plan", "--repo", "https://" + token + "@bad%zzhost/repo.git", "--offline"}, 1},
		{[]string{"validate", "--repo", "gopher://git:" + token + "@" + host + "/repo.git"}, 1},
	}
	for _, r := range runs {
		res := pgsync(t, r.args...)
		if res.code != r.code {
			t.Errorf("pgsync %s: exit %d, want %d\nstderr: %s", strings.Join(r.args[:1], " "), res.code, r.code, res.stderr)
		}
		for _, secret := range []string{token, wrong} {
			if strings.Contains(res.stdout, secret) || strings.Contains(res.stderr, secret) {
				t.Errorf("pgsync %v printed a secret:\nstdout: %s\nstderr: %s", r.args[0], res.stdout, res.stderr)
			}
		}
	}
}
