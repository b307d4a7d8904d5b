package gitsource

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// kind is how a repository location is reached.
type kind int

const (
	kindLocal kind = iota // a directory on this machine, opened in place
	kindFile              // file:// URL, cloned into the cache
	kindHTTP              // http:// or https://
	kindSSH               // ssh:// or scp-like user@host:path
)

// location is a parsed Options.Repo. url never carries a password: that is
// lifted into urlPassword so it can travel as transport auth instead.
type location struct {
	kind        kind
	path        string // kindLocal only
	url         string // remote kinds: the URL without any password
	scheme      string
	host        string // hostname without port
	port        string // as written, "" when absent
	urlUser     string
	urlPassword string
}

var (
	schemeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://`)
	// scpLikeRE follows go-git's (and git's) rule: [user@]host:[port:]path,
	// where no '/' comes before the first ':'.
	scpLikeRE = regexp.MustCompile(`^(?:([^@/]+)@)?([^:/\s]+):(?:([0-9]{1,5}):)?(.+)$`)
)

// parseLocation classifies repo. It is pure: a local path is not checked for
// existence here.
func parseLocation(repo string) (location, error) {
	if repo == "" {
		return location{}, fmt.Errorf("repository location is empty")
	}
	if schemeRE.MatchString(repo) {
		return parseURL(repo)
	}
	if m := scpLikeRE.FindStringSubmatch(repo); m != nil {
		return location{kind: kindSSH, url: repo, scheme: "ssh", urlUser: m[1], host: m[2], port: m[3]}, nil
	}
	return location{kind: kindLocal, path: repo}, nil
}

func parseURL(raw string) (location, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the input, which may hold a password.
		return location{}, fmt.Errorf("repository URL %q is not a valid URL", redactURL(raw))
	}
	loc := location{scheme: strings.ToLower(u.Scheme), host: u.Hostname(), port: u.Port()}
	switch loc.scheme {
	case "file":
		loc.kind = kindFile
	case "http", "https":
		loc.kind = kindHTTP
	case "ssh", "git+ssh", "ssh+git":
		loc.kind = kindSSH
	default:
		return location{}, fmt.Errorf("repository URL %q: unsupported scheme %q (want file, https, http or ssh)", redactURL(raw), u.Scheme)
	}
	if u.User != nil {
		loc.urlUser = u.User.Username()
		loc.urlPassword, _ = u.User.Password()
		if loc.kind == kindHTTP {
			// Credentials travel as basic auth, never inside the URL that
			// is stored in the cache's config or shown in messages.
			u.User = nil
		} else {
			u.User = url.User(loc.urlUser)
		}
	}
	loc.url = u.String()
	return loc, nil
}

// redactURL hides the user information of a URL-shaped string (a
// password, or a token written as the user name), for messages about input
// that could not be parsed.
func redactURL(raw string) string {
	if i := strings.Index(raw, "://"); i >= 0 {
		rest := raw[i+3:]
		end := len(rest)
		if slash := strings.IndexAny(rest, "/?#"); slash >= 0 {
			end = slash
		}
		if at := strings.LastIndex(rest[:end], "@"); at >= 0 {
			return raw[:i+3] + "***" + rest[at:]
		}
	}
	return raw
}

// Display returns how messages and logs may name the repository repo (an
// Options.Repo as the user wrote it): a URL without its password, and an
// http(s) URL without any user information (a token is often written as
// the user name); what does not parse, with its user information hidden.
func Display(repo string) string {
	loc, err := parseLocation(repo)
	if err != nil {
		return redactURL(repo)
	}
	return loc.String()
}

// cacheKey names a remote's cache entry: a stable hash of its URL without
// credentials, so a rotated token keeps using the same clone.
func (l location) cacheKey() string {
	sum := sha256.Sum256([]byte(l.url))
	return hex.EncodeToString(sum[:16])
}

// String is what messages and logs call the repository.
func (l location) String() string {
	if l.kind == kindLocal {
		return redactURL(l.path)
	}
	return l.url
}
