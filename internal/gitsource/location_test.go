package gitsource

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseLocation(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want location
	}{
		{".", location{kind: kindLocal, path: "."}},
		{"/srv/repo", location{kind: kindLocal, path: "/srv/repo"}},
		{"./a:b", location{kind: kindLocal, path: "./a:b"}}, // '/' before ':' → a path, as in git
		{"file:///srv/repo.git", location{kind: kindFile, url: "file:///srv/repo.git", scheme: "file"}},
		{"https://git.example.com/org/repo.git", location{kind: kindHTTP, url: "https://git.example.com/org/repo.git", scheme: "https", host: "git.example.com"}},
		{"https://bot:s3cret@git.example.com:8443/org/repo.git", location{kind: kindHTTP, url: "https://git.example.com:8443/org/repo.git", scheme: "https", host: "git.example.com", port: "8443", urlUser: "bot", urlPassword: "s3cret"}},
		{"HTTP://127.0.0.1/r", location{kind: kindHTTP, url: "http://127.0.0.1/r", scheme: "http", host: "127.0.0.1"}},
		{"ssh://git@git.example.com:2222/org/repo.git", location{kind: kindSSH, url: "ssh://git@git.example.com:2222/org/repo.git", scheme: "ssh", host: "git.example.com", port: "2222", urlUser: "git"}},
		{"ssh://deploy:pw@h/r", location{kind: kindSSH, url: "ssh://deploy@h/r", scheme: "ssh", host: "h", urlUser: "deploy", urlPassword: "pw"}},
		{"git@github.com:org/repo.git", location{kind: kindSSH, url: "git@github.com:org/repo.git", scheme: "ssh", host: "github.com", urlUser: "git"}},
		{"git@127.0.0.1:2222:repo.git", location{kind: kindSSH, url: "git@127.0.0.1:2222:repo.git", scheme: "ssh", host: "127.0.0.1", port: "2222", urlUser: "git"}},
		{"host:repo.git", location{kind: kindSSH, url: "host:repo.git", scheme: "ssh", host: "host"}},
	} {
		got, err := parseLocation(tc.in)
		if err != nil {
			t.Errorf("parseLocation(%q): %v", tc.in, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(location{})); diff != "" {
			t.Errorf("parseLocation(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"", "empty"},
		{"ftp://h/r", `unsupported scheme "ftp"`},
		{"https://u:tok3n@h/%zz", `"https://***@h/%zz" is not a valid URL`},
		{"https://tok3n@h/%zz", `"https://***@h/%zz" is not a valid URL`},
	} {
		_, err := parseLocation(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseLocation(%q) err = %v, want %q", tc.in, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "tok3n") {
			t.Errorf("parseLocation(%q) err leaks the password: %v", tc.in, err)
		}
	}
}

func TestCacheKeyIgnoresCredentials(t *testing.T) {
	a, _ := parseLocation("https://git.example.com/org/repo.git")
	b, _ := parseLocation("https://bot:tok@git.example.com/org/repo.git")
	c, _ := parseLocation("https://git.example.com/org/other.git")
	if a.cacheKey() != b.cacheKey() {
		t.Error("a token in the URL changed the cache key")
	}
	if a.cacheKey() == c.cacheKey() {
		t.Error("two repositories share a cache key")
	}
	if len(a.cacheKey()) != 32 {
		t.Errorf("cache key %q: want 32 hex digits", a.cacheKey())
	}
}

func TestCleanDir(t *testing.T) {
	for in, want := range map[string]string{
		"": "", ".": "", "./": "", "clusters": "clusters", "clusters/": "clusters",
		"./clusters/prod/": "clusters/prod", "a//b": "a/b", "a/../b": "b", `a\b`: "a/b",
	} {
		got, err := cleanDir(in)
		if err != nil || got != want {
			t.Errorf("cleanDir(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"..", "../x", "a/../../x", "/abs"} {
		if got, err := cleanDir(in); err == nil {
			t.Errorf("cleanDir(%q) = %q, want an error", in, got)
		}
	}
}

func TestAuthNeverPrintsSecrets(t *testing.T) {
	const token, pass = "tok-5ecret-value", "pass-5ecret-value"
	a := AuthFromEnv(func(k string) string {
		return map[string]string{EnvToken: token, EnvSSHKeyPassphrase: pass, EnvUsername: "bot", EnvSSHKey: "/k", EnvKnownHosts: "/kh"}[k]
	})
	if a.Token != token || a.SSHKeyPassphrase != pass || a.Username != "bot" || a.SSHKeyPath != "/k" || a.KnownHostsPath != "/kh" {
		t.Fatalf("AuthFromEnv = %v", a)
	}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("opening", "auth", a, "opts", Options{Repo: "r", Auth: a})
	for _, out := range []string{
		fmt.Sprint(a), fmt.Sprintf("%v %+v %#v %s", a, a, a, a),
		fmt.Sprintf("%v %+v %#v", Options{Auth: a}, Options{Auth: a}, Options{Auth: a}),
		logs.String(),
	} {
		if strings.Contains(out, token) || strings.Contains(out, pass) {
			t.Errorf("secret printed: %s", out)
		}
		if !strings.Contains(out, "bot") {
			t.Errorf("non-secret field missing from %s", out)
		}
	}
}

func TestHTTPAuth(t *testing.T) {
	loc, _ := parseLocation("https://git.example.com/r")
	if m, err := transportAuth(loc, Auth{}); m != nil || err != nil {
		t.Errorf("no token: auth %v, err %v; want none", m, err)
	}
	m, err := transportAuth(loc, Auth{Token: "t"})
	if err != nil || m == nil || !strings.Contains(m.String(), "git:") {
		t.Errorf("token without user: %v, %v; want basic auth as %q", m, err, DefaultUsername)
	}
	loc, _ = parseLocation("https://bot@git.example.com/r")
	if m, _ := transportAuth(loc, Auth{Token: "t"}); m == nil || !strings.Contains(m.String(), "bot:") {
		t.Errorf("URL user: %v, want bot", m)
	}
	if m, _ := transportAuth(loc, Auth{Token: "t", Username: "x"}); m == nil || !strings.Contains(m.String(), "x:") {
		t.Errorf("explicit user: %v, want x", m)
	}
	loc, _ = parseLocation("http://git.example.com/r")
	if _, err := transportAuth(loc, Auth{Token: "t"}); err == nil || !strings.Contains(err.Error(), "plain http") {
		t.Errorf("token over plain http to a remote host: err %v, want a refusal", err)
	}
	for _, host := range []string{"127.0.0.1", "localhost", "[::1]"} {
		loc, _ = parseLocation("http://" + host + ":8080/r")
		if _, err := transportAuth(loc, Auth{Token: "t"}); err != nil {
			t.Errorf("token over http to loopback %s: %v", host, err)
		}
	}
}

// TestDisplayHidesCredentials: what messages call a repository never holds
// a password or a token, whatever form the location takes.
func TestDisplayHidesCredentials(t *testing.T) {
	const secret = "s3cr3t-t0ken"
	for _, tc := range []struct{ repo, want string }{
		{"https://bot:" + secret + "@git.example.com/fleet.git", "https://git.example.com/fleet.git"},
		{"https://" + secret + "@github.com/org/fleet.git", "https://github.com/org/fleet.git"},
		{"https://" + secret + ":x-oauth-basic@github.com/org/fleet.git", "https://github.com/org/fleet.git"},
		{"http://bot:" + secret + "@10.0.0.1:3000/fleet", "http://10.0.0.1:3000/fleet"},
		{"ssh://git:" + secret + "@git.example.com/fleet.git", "ssh://git@git.example.com/fleet.git"},
		{"file:///srv/git/fleet.git", "file:///srv/git/fleet.git"},
		{"/srv/git/fleet", "/srv/git/fleet"},
		{"git@github.com:org/fleet.git", "git@github.com:org/fleet.git"},
		// Not parseable: the user information is hidden anyway.
		{"https://bot:" + secret + "@git example.com/fleet.git", "https://***@git example.com/fleet.git"},
		{"https://" + secret + "@git%zz.example.com/x", "https://***@git%zz.example.com/x"},
		{"gopher://bot:" + secret + "@host/x", "gopher://***@host/x"},
	} {
		got := Display(tc.repo)
		if got != tc.want || strings.Contains(got, secret) {
			t.Errorf("Display(%q) = %q, want %q", tc.repo, got, tc.want)
		}
		if _, err := parseLocation(tc.repo); err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("parseLocation(%q) error shows the secret: %v", tc.repo, err)
		}
	}
}
