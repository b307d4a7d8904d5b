package gitsource

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Environment variables read by AuthFromEnv.
const (
	EnvToken            = "PGSYNC_GIT_TOKEN"
	EnvUsername         = "PGSYNC_GIT_USERNAME"
	EnvSSHKey           = "PGSYNC_GIT_SSH_KEY"
	EnvSSHKeyPassphrase = "PGSYNC_GIT_SSH_KEY_PASSPHRASE"
	EnvKnownHosts       = "PGSYNC_GIT_KNOWN_HOSTS"
)

// DefaultUsername is the basic-auth user sent with a token when none is
// configured. Git hosts ignore it for tokens, but it must not be empty.
const DefaultUsername = "git"

// sshTimeout bounds the SSH dial and handshake; go-git does not pass the
// context to the SSH dialer.
const sshTimeout = 30 * time.Second

// Auth holds the credentials for remote repositories. The zero value means
// "read them from the environment" (AuthFromEnv). Its String, GoString and
// LogValue never show the token or the passphrase.
type Auth struct {
	// Username is the basic-auth user for http(s); "" means the URL's user,
	// else DefaultUsername.
	Username string
	// Token is sent as the basic-auth password for http(s).
	Token string
	// SSHKeyPath is the private key file for ssh.
	SSHKeyPath string
	// SSHKeyPassphrase decrypts SSHKeyPath when it is encrypted.
	SSHKeyPassphrase string
	// KnownHostsPath is the known_hosts file for ssh; "" means
	// ~/.ssh/known_hosts. Host key checking cannot be turned off.
	KnownHostsPath string
}

// AuthFromEnv reads Auth from the PGSYNC_GIT_* variables through getenv
// (os.Getenv in production).
func AuthFromEnv(getenv func(string) string) Auth {
	return Auth{
		Username:         getenv(EnvUsername),
		Token:            getenv(EnvToken),
		SSHKeyPath:       getenv(EnvSSHKey),
		SSHKeyPassphrase: getenv(EnvSSHKeyPassphrase),
		KnownHostsPath:   getenv(EnvKnownHosts),
	}
}

func mask(s string) string {
	if s == "" {
		return `""`
	}
	return "***"
}

// String describes a without its secrets.
func (a Auth) String() string {
	return fmt.Sprintf("Auth{Username:%q Token:%s SSHKeyPath:%q SSHKeyPassphrase:%s KnownHostsPath:%q}",
		a.Username, mask(a.Token), a.SSHKeyPath, mask(a.SSHKeyPassphrase), a.KnownHostsPath)
}

// GoString keeps %#v from printing the secrets.
func (a Auth) GoString() string { return "gitsource." + a.String() }

// LogValue keeps slog from printing the secrets.
func (a Auth) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("username", a.Username),
		slog.Bool("token_set", a.Token != ""),
		slog.String("ssh_key", a.SSHKeyPath),
		slog.Bool("ssh_key_passphrase_set", a.SSHKeyPassphrase != ""),
		slog.String("known_hosts", a.KnownHostsPath),
	)
}

// MarshalJSON keeps encoding/json (and slog's JSON handler, which uses it
// for nested structs such as Options) from printing the secrets.
func (a Auth) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Username            string `json:"username"`
		TokenSet            bool   `json:"token_set"`
		SSHKeyPath          string `json:"ssh_key"`
		SSHKeyPassphraseSet bool   `json:"ssh_key_passphrase_set"`
		KnownHostsPath      string `json:"known_hosts"`
	}{a.Username, a.Token != "", a.SSHKeyPath, a.SSHKeyPassphrase != "", a.KnownHostsPath})
}

// secrets lists every credential value that must never appear in output.
func (a Auth) secrets(loc location) []string {
	var s []string
	for _, v := range []string{a.Token, a.SSHKeyPassphrase, loc.urlPassword} {
		if v != "" {
			s = append(s, v)
		}
	}
	return s
}

// transportAuth builds go-git's auth for loc. It returns nil for local and
// file:// repositories and for http(s) without a token.
func transportAuth(loc location, a Auth) (transport.AuthMethod, error) {
	switch loc.kind {
	case kindHTTP:
		return httpAuth(loc, a)
	case kindSSH:
		return sshAuth(loc, a)
	default:
		return nil, nil
	}
}

func httpAuth(loc location, a Auth) (transport.AuthMethod, error) {
	token := a.Token
	if token == "" {
		token = loc.urlPassword
	}
	if token == "" {
		return nil, nil
	}
	if loc.scheme == "http" && !isLoopback(loc.host) {
		return nil, fmt.Errorf("refusing to send a token over plain http to %s: use https", loc.host)
	}
	user := a.Username
	if user == "" {
		user = loc.urlUser
	}
	if user == "" {
		user = DefaultUsername
	}
	return &githttp.BasicAuth{Username: user, Password: token}, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func sshAuth(loc location, a Auth) (transport.AuthMethod, error) {
	if a.SSHKeyPath == "" {
		return nil, fmt.Errorf("ssh repository %s needs a private key: set %s", loc, EnvSSHKey)
	}
	user := loc.urlUser
	if user == "" {
		user = "git"
	}
	pemBytes, err := os.ReadFile(a.SSHKeyPath)
	if err != nil {
		return nil, fmt.Errorf("reading ssh key: %w", err)
	}
	var missing *ssh.PassphraseMissingError
	if _, err := ssh.ParsePrivateKey(pemBytes); errors.As(err, &missing) && a.SSHKeyPassphrase == "" {
		return nil, fmt.Errorf("reading ssh key %s: it is encrypted: set %s", a.SSHKeyPath, EnvSSHKeyPassphrase)
	}
	keys, err := gitssh.NewPublicKeys(user, pemBytes, a.SSHKeyPassphrase)
	if err != nil {
		return nil, fmt.Errorf("reading ssh key %s: %w", a.SSHKeyPath, err)
	}
	khPath := a.KnownHostsPath
	if khPath == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("finding known_hosts: %w (set %s)", err, EnvKnownHosts)
		}
		khPath = filepath.Join(home, ".ssh", "known_hosts")
	}
	if _, err := os.Stat(khPath); err != nil {
		return nil, fmt.Errorf("ssh host key checking needs a known_hosts file: %w (set %s)", err, EnvKnownHosts)
	}
	db, err := gitssh.NewKnownHostsDb(khPath)
	if err != nil {
		return nil, fmt.Errorf("reading known_hosts %s: %w", khPath, err)
	}
	port := loc.port
	if port == "" {
		port = "22"
	}
	hostPort := net.JoinHostPort(loc.host, port)
	check := db.HostKeyCallback()
	keys.HostKeyCallback = func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := check(hostname, remote, key)
		var ke *knownhosts.KeyError
		if errors.As(err, &ke) {
			if len(ke.Want) == 0 {
				return fmt.Errorf("host key %s of %s is not in %s; verify its fingerprint and add it",
					ssh.FingerprintSHA256(key), hostname, khPath)
			}
			return fmt.Errorf("host key %s of %s does NOT match %s (line %d): possible man-in-the-middle",
				ssh.FingerprintSHA256(key), hostname, khPath, ke.Want[0].Line)
		}
		return err
	}
	// Offer only the key types known_hosts has for this host, so a server
	// that also holds another type is not rejected for showing that one.
	keys.HostKeyAlgorithms = db.HostKeyAlgorithms(hostPort)
	return timedSSHAuth{keys}, nil
}

// timedSSHAuth adds a dial/handshake timeout to go-git's key auth.
type timedSSHAuth struct{ *gitssh.PublicKeys }

func (a timedSSHAuth) ClientConfig() (*ssh.ClientConfig, error) {
	cfg, err := a.PublicKeys.ClientConfig()
	if err != nil {
		return nil, err
	}
	cfg.Timeout = sshTimeout
	return cfg, nil
}

// scrubbedError carries a message with every secret replaced. It keeps
// errors.Is working against the original chain but does not expose it
// (no Unwrap), so nothing can print the unscrubbed text.
type scrubbedError struct {
	msg   string
	cause error
}

func (e *scrubbedError) Error() string        { return e.msg }
func (e *scrubbedError) Is(target error) bool { return errors.Is(e.cause, target) }

// scrub returns err with every secret removed from its message.
func scrub(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, s := range secrets {
		msg = strings.ReplaceAll(msg, s, "***")
	}
	return &scrubbedError{msg: msg, cause: err}
}
