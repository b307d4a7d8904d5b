// Package webhook owns the push-event endpoint of `pgsync run`: an
// http.Handler that accepts deliveries from GitHub, GitLab, Gitea and
// Forgejo, proves each came from the forge with a shared secret, and asks
// for a fetch when a push moved the watched ref.
//
// A delivery only ever triggers a fetch: the daemon reads the commit from
// Git itself (and verifies it there), never from the payload, so the
// payload's commits, SHAs and URLs are not read. What the secret protects
// is the fetch rate and the counts, not the desired state.
//
// How each forge proves a delivery:
//
//	GitHub          X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>
//	Gitea, Forgejo  X-Gitea-Signature / X-Forgejo-Signature: <hex HMAC-SHA256 of the body>
//	GitLab          X-Gitlab-Token: <the secret itself> (compared in constant time)
//
// GitLab's token proves the sender knows the secret but does not cover the
// body; an HMAC does. No platform's scheme stops the replay of a whole
// recorded delivery; a replay costs one more fetch.
//
// Only JSON deliveries are read (a form-encoded one is refused with 415:
// set the forge's content type to application/json). Serve the handler
// from an http.Server with ReadHeaderTimeout and ReadTimeout set: the body
// is bounded here in size, not in time.
//
// It must not import `pgsync/...` or `github.com/prometheus/...`: counts
// leave through the Recorder interface, which *metrics.Metrics satisfies.
package webhook

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"strings"
	"sync"
)

// Platforms, the platform label of every counted request.
const (
	PlatformGitHub  = "github"
	PlatformGitLab  = "gitlab"
	PlatformGitea   = "gitea"
	PlatformForgejo = "forgejo"
	// PlatformUnknown: no forge's event header, so nothing to verify.
	PlatformUnknown = "unknown"
)

// Results, the result label of every counted request.
const (
	// ResultTriggered: a verified push to the watched ref; a fetch was
	// asked for (202).
	ResultTriggered = "triggered"
	// ResultIgnored: verified, but not a push to the watched ref (a ping,
	// another event, another branch) (200).
	ResultIgnored = "ignored"
	// ResultUnauthorized: a missing or wrong signature or token (401).
	ResultUnauthorized = "unauthorized"
	// ResultTooLarge: the body is over Config.MaxBody (413).
	ResultTooLarge = "too_large"
	// ResultBadRequest: not a POST, not JSON, or a push without a ref
	// (405, 415, 400).
	ResultBadRequest = "bad_request"
)

// DefaultMaxBody bounds a delivery's body. Push payloads list at most 20
// commits on GitHub and GitLab; 4 MiB leaves room for commits touching
// thousands of files, and a larger delivery is refused rather than
// buffered (the next poll still sees the commit).
const DefaultMaxBody = 4 << 20

// Recorder counts requests; *metrics.Metrics is one.
type Recorder interface {
	WebhookRequest(platform, result string)
}

// Secret is the shared webhook secret. It never prints: fmt, slog and JSON
// all show "[redacted]".
type Secret struct{ b []byte }

const redacted = "[redacted]"

// NewSecret wraps a secret held in memory (LoadSecret reads one from a
// file, as the daemon does).
func NewSecret(s []byte) Secret { return Secret{b: bytes.Clone(s)} }

// LoadSecret reads the secret from a file (a mounted Kubernetes Secret).
// Trailing line breaks are dropped, so `echo $SECRET > file` works; an
// empty secret is an error. The error never holds the file's content.
func LoadSecret(path string) (Secret, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Secret{}, fmt.Errorf("reading the webhook secret: %w", err)
	}
	b = bytes.TrimRight(b, "\r\n")
	if len(b) == 0 {
		return Secret{}, fmt.Errorf("webhook secret file %s is empty", path)
	}
	return Secret{b: b}, nil
}

// Empty reports whether there is no secret.
func (s Secret) Empty() bool { return len(s.b) == 0 }

// String, Format (every verb, %#v included), LogValue and MarshalText keep
// the secret out of messages, logs and JSON.
func (s Secret) String() string                { return redacted }
func (s Secret) Format(f fmt.State, verb rune) { _, _ = io.WriteString(f, redacted) }
func (s Secret) LogValue() slog.Value          { return slog.StringValue(redacted) }
func (s Secret) MarshalText() ([]byte, error)  { return []byte(redacted), nil }

// Config says what the handler accepts and what it calls.
type Config struct {
	// Secret is the secret configured on the forge's webhook.
	Secret Secret
	// Ref is the watched ref: a full name (refs/heads/main), or a short
	// name matching the branch or the tag of that name ("main"). "" or
	// "HEAD" means any branch: the remote's default branch is not known
	// here, and an extra fetch is cheap while a missed one waits a whole
	// poll interval.
	Ref string
	// Trigger asks for a fetch. It may block (a synchronous fetch): the
	// handler never waits for it, and pushes that arrive while it runs
	// make exactly one more call once it returns.
	Trigger func()
	// Recorder counts every request by platform and result; nil counts
	// nothing.
	Recorder Recorder
	// MaxBody bounds the body; 0 means DefaultMaxBody.
	MaxBody int64
	// Logger receives one record per request (never the secret, a
	// signature or the body); nil discards them.
	Logger *slog.Logger
}

// Handler is the webhook endpoint; it is safe for concurrent use.
type Handler struct {
	cfg  Config
	refs []string // the full ref names a push must name; nil = any branch
	log  *slog.Logger
	fire *coalescer
}

// New checks cfg and returns the handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Secret.Empty() {
		return nil, errors.New("webhook: no secret: an unauthenticated endpoint would let anyone trigger fetches")
	}
	if cfg.Trigger == nil {
		return nil, errors.New("webhook: no Trigger func")
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{cfg: cfg, refs: watchedRefs(cfg.Ref), log: log, fire: &coalescer{fn: cfg.Trigger}}, nil
}

func watchedRefs(ref string) []string {
	switch {
	case ref == "" || ref == "HEAD":
		return nil
	case strings.HasPrefix(ref, "refs/"):
		return []string{ref}
	}
	return []string{"refs/heads/" + ref, "refs/tags/" + ref}
}

// delivery is what the headers say about a request.
type delivery struct {
	platform string
	event    string
	id       string
	// proof is the signature (hex HMAC) or, for GitLab, the token.
	proof string
}

func readHeaders(h http.Header) delivery {
	switch {
	case h.Get("X-Forgejo-Event") != "":
		return delivery{PlatformForgejo, h.Get("X-Forgejo-Event"), h.Get("X-Forgejo-Delivery"), firstOf(h, "X-Forgejo-Signature", "X-Gitea-Signature")}
	case h.Get("X-Gitea-Event") != "":
		// Gitea also sends X-GitHub-Event and X-Hub-Signature-256, so it
		// is recognised first to be counted as itself.
		return delivery{PlatformGitea, h.Get("X-Gitea-Event"), h.Get("X-Gitea-Delivery"), h.Get("X-Gitea-Signature")}
	case h.Get("X-Gitlab-Event") != "":
		return delivery{PlatformGitLab, h.Get("X-Gitlab-Event"), h.Get("X-Gitlab-Event-UUID"), h.Get("X-Gitlab-Token")}
	case h.Get("X-GitHub-Event") != "":
		return delivery{PlatformGitHub, h.Get("X-GitHub-Event"), h.Get("X-GitHub-Delivery"), h.Get("X-Hub-Signature-256")}
	}
	return delivery{platform: PlatformUnknown}
}

func firstOf(h http.Header, keys ...string) string {
	for _, k := range keys {
		if v := h.Get(k); v != "" {
			return v
		}
	}
	return ""
}

// ServeHTTP checks, in order: the method, the forge's headers and proof
// (a GitLab token before the body is read), the content type, the body's
// size, the HMAC over the body, then the event and its ref.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d := readHeaders(r.Header)
	answer := func(status int, result, msg string, args ...any) {
		if h.cfg.Recorder != nil {
			h.cfg.Recorder.WebhookRequest(d.platform, result)
		}
		level := slog.LevelInfo
		if result == ResultUnauthorized || result == ResultBadRequest || result == ResultTooLarge {
			level = slog.LevelWarn
		}
		text := fmt.Sprintf(msg, args...)
		h.log.Log(r.Context(), level, "webhook request", "platform", d.platform, "event", d.event,
			"delivery", d.id, "result", result, "status", status, "remote", r.RemoteAddr, "detail", text)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, text+"\n")
	}

	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		answer(http.StatusMethodNotAllowed, ResultBadRequest, "only POST is accepted")
		return
	}
	switch {
	case d.platform == PlatformUnknown:
		answer(http.StatusUnauthorized, ResultUnauthorized, "no X-GitHub-Event, X-Gitlab-Event, X-Gitea-Event or X-Forgejo-Event header: not a signed delivery")
		return
	case d.proof == "":
		answer(http.StatusUnauthorized, ResultUnauthorized, "%s delivery without %s", d.platform, proofHeader(d.platform))
		return
	case d.platform == PlatformGitLab && !tokenEqual(d.proof, h.cfg.Secret.b):
		answer(http.StatusUnauthorized, ResultUnauthorized, "X-Gitlab-Token does not match the secret")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		answer(http.StatusUnsupportedMediaType, ResultBadRequest, "content type %q: set the webhook's content type to application/json", r.Header.Get("Content-Type"))
		return
	}
	if r.ContentLength > h.cfg.MaxBody {
		answer(http.StatusRequestEntityTooLarge, ResultTooLarge, "body of %d bytes is over the limit of %d", r.ContentLength, h.cfg.MaxBody)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			answer(http.StatusRequestEntityTooLarge, ResultTooLarge, "body is over the limit of %d bytes", h.cfg.MaxBody)
			return
		}
		answer(http.StatusBadRequest, ResultBadRequest, "reading the body: %v", err)
		return
	}
	if d.platform != PlatformGitLab && !hmacValid(d.platform, d.proof, body, h.cfg.Secret.b) {
		answer(http.StatusUnauthorized, ResultUnauthorized, "%s does not match the body signed with the secret", proofHeader(d.platform))
		return
	}

	if d.platform == PlatformGitHub && d.event == "ping" {
		answer(http.StatusOK, ResultIgnored, "pong")
		return
	}
	if !isPush(d) {
		answer(http.StatusOK, ResultIgnored, "event %q ignored: only pushes trigger a fetch", d.event)
		return
	}
	var push struct {
		Ref string `json:"ref"`
	}
	if err := json.Unmarshal(body, &push); err != nil {
		answer(http.StatusBadRequest, ResultBadRequest, "push payload is not JSON: %v", err)
		return
	}
	if push.Ref == "" {
		answer(http.StatusBadRequest, ResultBadRequest, "push payload has no ref")
		return
	}
	if !h.watches(push.Ref) {
		answer(http.StatusOK, ResultIgnored, "push to %s ignored: watching %s", push.Ref, h.watched())
		return
	}
	h.fire.fire()
	answer(http.StatusAccepted, ResultTriggered, "push to %s: fetch triggered", push.Ref)
}

func proofHeader(platform string) string {
	switch platform {
	case PlatformGitHub:
		return "X-Hub-Signature-256"
	case PlatformGitLab:
		return "X-Gitlab-Token"
	case PlatformGitea:
		return "X-Gitea-Signature"
	case PlatformForgejo:
		return "X-Forgejo-Signature"
	}
	return "a signature"
}

func isPush(d delivery) bool {
	switch d.platform {
	case PlatformGitLab:
		return d.event == "Push Hook" || d.event == "Tag Push Hook"
	default:
		return d.event == "push"
	}
}

func (h *Handler) watches(ref string) bool {
	if h.refs == nil {
		return strings.HasPrefix(ref, "refs/heads/")
	}
	for _, r := range h.refs {
		if r == ref {
			return true
		}
	}
	return false
}

func (h *Handler) watched() string {
	if h.refs == nil {
		return "every branch"
	}
	return strings.Join(h.refs, " or ")
}

// hmacValid checks a hex HMAC-SHA256 of body (GitHub's with its sha256=
// prefix) in constant time.
func hmacValid(platform, sig string, body, secret []byte) bool {
	if platform == PlatformGitHub {
		var ok bool
		if sig, ok = strings.CutPrefix(sig, "sha256="); !ok {
			return false
		}
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// tokenEqual compares digests so that neither the secret's bytes nor its
// length leak through timing.
func tokenEqual(token string, secret []byte) bool {
	a, b := sha256.Sum256([]byte(token)), sha256.Sum256(secret)
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// Wait blocks until no Trigger call runs or is due: for a shutdown that
// lets the last asked-for fetch start, and for tests that count calls.
// Call it once the server has stopped handing requests to h (Shutdown has
// returned), as with any sync.WaitGroup.
func (h *Handler) Wait() { h.fire.idle.Wait() }

// coalescer calls fn from one goroutine at a time; fire never blocks, and
// any number of fires while fn runs make exactly one more call.
type coalescer struct {
	fn   func()
	idle sync.WaitGroup // held while the loop goroutine runs

	mu      sync.Mutex
	running bool
	pending bool
}

func (c *coalescer) fire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		c.pending = true
		return
	}
	c.running = true
	c.idle.Add(1)
	go c.loop()
}

func (c *coalescer) loop() {
	defer c.idle.Done()
	for {
		c.fn()
		c.mu.Lock()
		if !c.pending {
			c.running = false
			c.mu.Unlock()
			return
		}
		c.pending = false
		c.mu.Unlock()
	}
}
