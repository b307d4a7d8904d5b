package gitsource

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fluxcd/gitkit"
	"github.com/fluxcd/pkg/gittestserver"
	"golang.org/x/crypto/ssh"

	"github.com/pgsync/pgsync/test/gittest"
)

// sshServer serves one repository over SSH. The server accepts only
// clientKey; hostKey is the key it presents.
type sshServer struct {
	bareDir  string
	url      string // ssh://git@127.0.0.1:PORT/repo.git
	hostPort string // 127.0.0.1:PORT
	hostKey  string // authorized_keys form of the server's host key
}

func startSSHServer(t *testing.T, clientKey ssh.PublicKey) sshServer {
	t.Helper()
	requireGit(t)
	srv, err := gittestserver.NewTempGitServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(srv.Root()) })
	keyDir := t.TempDir()
	srv.KeyDir(keyDir)
	srv.Auth("git", "http-only") // turns on public key auth for SSH
	want := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(clientKey)))
	// A package global of gittestserver: these tests must not run in
	// parallel with each other.
	srv.PublicKeyLookupFunc(func(content string) (*gitkit.PublicKey, error) {
		if content != want {
			return nil, errors.New("unknown client key")
		}
		return &gitkit.PublicKey{Id: "test-user"}, nil
	})
	if err := srv.ListenSSH(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.StartSSH() }()
	t.Cleanup(func() { _ = srv.StopSSH() })
	hostKey, err := os.ReadFile(filepath.Join(keyDir, "gitkit.rsa.pub"))
	if err != nil {
		t.Fatal(err)
	}
	u := srv.SSHAddress()
	return sshServer{
		bareDir:  filepath.Join(srv.Root(), "repo.git"),
		url:      u + "/repo.git",
		hostPort: strings.TrimPrefix(u, "ssh://git@"),
		hostKey:  strings.TrimSpace(string(hostKey)),
	}
}

// clientKey writes one ed25519 private key twice in OpenSSH format: plain,
// and encrypted with passphrase. It returns both paths and the public key.
func clientKey(t *testing.T, passphrase string) (plain, encrypted string, _ ssh.PublicKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	plain, encrypted = filepath.Join(dir, "id_ed25519"), filepath.Join(dir, "id_ed25519_encrypted")
	block, err := ssh.MarshalPrivateKey(priv, "pgsync test")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(plain, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "pgsync test", []byte(passphrase))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(encrypted, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return plain, encrypted, sshPub
}

// knownHosts writes a known_hosts file with one line per host pattern.
func knownHosts(t *testing.T, lines ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// khLine is a known_hosts line for hostPort ("[host]:port key").
func khLine(t *testing.T, hostPort, key string) string {
	t.Helper()
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		t.Fatal(err)
	}
	return "[" + host + "]:" + port + " " + key
}

func otherRSAHostKey(t *testing.T) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ssh.NewPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
}

func TestSSH(t *testing.T) {
	const passphrase = "ssh-Passphrase-never-printed"
	// Decrypting a key runs bcrypt; only the cases about the passphrase
	// pay for it.
	keyPath, encKeyPath, pub := clientKey(t, passphrase)
	srv := startSSHServer(t, pub)
	f := gittest.NewRepo(t)
	f.Write(map[string]string{"clusters/a.yaml": "a: 1\n"})
	c1 := f.Commit("c1", nil)
	f.Push(srv.bareDir)

	good := knownHosts(t, khLine(t, srv.hostPort, srv.hostKey))
	wrongKey := knownHosts(t, khLine(t, srv.hostPort, otherRSAHostKey(t)))
	otherHost := knownHosts(t, "[git.example.com]:22 "+srv.hostKey)
	otherKeyPath, _, _ := clientKey(t, "x")
	host, port, _ := net.SplitHostPort(srv.hostPort)
	scpLike := "git@" + host + ":" + port + ":repo.git"

	for _, tc := range []struct {
		name    string
		url     string
		env     map[string]string
		home    string // $HOME/.ssh/known_hosts source, when set
		wantErr string // "" = success
	}{
		{name: "ssh URL, right known_hosts", url: srv.url,
			env: map[string]string{EnvSSHKey: keyPath, EnvKnownHosts: good}},
		{name: "encrypted key", url: srv.url,
			env: map[string]string{EnvSSHKey: encKeyPath, EnvSSHKeyPassphrase: passphrase, EnvKnownHosts: good}},
		{name: "scp-like URL", url: scpLike,
			env: map[string]string{EnvSSHKey: keyPath, EnvKnownHosts: good}},
		{name: "known_hosts from HOME", url: srv.url, home: good,
			env: map[string]string{EnvSSHKey: keyPath, EnvSSHKeyPassphrase: passphrase}},
		{name: "wrong host key", url: srv.url, wantErr: "does NOT match",
			env: map[string]string{EnvSSHKey: keyPath, EnvKnownHosts: wrongKey}},
		{name: "unknown host", url: srv.url, wantErr: "is not in " + otherHost,
			env: map[string]string{EnvSSHKey: keyPath, EnvKnownHosts: otherHost}},
		{name: "no known_hosts file", url: srv.url, wantErr: "needs a known_hosts file",
			env: map[string]string{EnvSSHKey: keyPath, EnvKnownHosts: filepath.Join(t.TempDir(), "none")}},
		{name: "no known_hosts in HOME", url: srv.url, home: "-", wantErr: "needs a known_hosts file",
			env: map[string]string{EnvSSHKey: keyPath, EnvSSHKeyPassphrase: passphrase}},
		{name: "no key", url: srv.url, wantErr: EnvSSHKey,
			env: map[string]string{EnvKnownHosts: good}},
		{name: "wrong passphrase", url: srv.url, wantErr: "reading ssh key",
			env: map[string]string{EnvSSHKey: encKeyPath, EnvSSHKeyPassphrase: "nope", EnvKnownHosts: good}},
		{name: "encrypted key without passphrase", url: srv.url, wantErr: "it is encrypted: set " + EnvSSHKeyPassphrase,
			env: map[string]string{EnvSSHKey: encKeyPath, EnvKnownHosts: good}},
		{name: "key the server does not accept", url: srv.url, wantErr: "unable to authenticate",
			env: map[string]string{EnvSSHKey: otherKeyPath, EnvKnownHosts: good}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hermeticEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			if tc.home != "" {
				home := t.TempDir()
				t.Setenv("HOME", home)
				if tc.home != "-" {
					data, err := os.ReadFile(tc.home)
					if err != nil {
						t.Fatal(err)
					}
					if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(filepath.Join(home, ".ssh", "known_hosts"), data, 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
			r, err := Open(t.Context(), Options{Repo: tc.url, CacheDir: t.TempDir()})
			if err != nil && strings.Contains(err.Error(), passphrase) {
				t.Fatalf("error leaks the passphrase: %v", err)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := mustResolve(t, r, "main"); got != c1 {
				t.Fatalf("main = %s, want %s", got, c1)
			}
			files, err := r.Files(c1, "clusters")
			if err != nil || len(files) != 1 {
				t.Fatalf("Files: %v, %v", paths(files), err)
			}
		})
	}
}
