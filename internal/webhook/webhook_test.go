package webhook_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgsync/pgsync/internal/metrics"
	"github.com/pgsync/pgsync/internal/webhook"
)

// The daemon hands its *metrics.Metrics to the handler as is.
var _ webhook.Recorder = (*metrics.Metrics)(nil)

const secret = "s3cr3t-Wg7pQ2xL9vN4"

// forge sends deliveries the way one platform does: its event header, its
// proof of the secret, and the other headers it documents.
type forge struct {
	platform  string
	pushEvent string // the event header's value for a push
	pushFile  string // a push to refs/heads/main, under testdata
	headers   func(h http.Header, event string, body []byte, secret string)
}

func sig256(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

func sig1(secret string, body []byte) string {
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

const deliveryID = "f6266f16-1bf3-46a5-9ea4-602e06ead473"

var (
	github = forge{
		platform: webhook.PlatformGitHub, pushEvent: "push", pushFile: "github-push.json",
		headers: func(h http.Header, event string, body []byte, secret string) {
			h.Set("User-Agent", "GitHub-Hookshot/7c3e5b1")
			h.Set("X-GitHub-Event", event)
			h.Set("X-GitHub-Delivery", deliveryID)
			h.Set("X-GitHub-Hook-ID", "109948940")
			h.Set("X-GitHub-Hook-Installation-Target-Type", "repository")
			h.Set("X-GitHub-Hook-Installation-Target-ID", "186853002")
			h.Set("X-Hub-Signature", "sha1="+sig1(secret, body))
			h.Set("X-Hub-Signature-256", "sha256="+sig256(secret, body))
		},
	}
	gitlab = forge{
		platform: webhook.PlatformGitLab, pushEvent: "Push Hook", pushFile: "gitlab-push.json",
		headers: func(h http.Header, event string, body []byte, secret string) {
			h.Set("User-Agent", "GitLab/17.9.2")
			h.Set("X-Gitlab-Event", event)
			h.Set("X-Gitlab-Token", secret)
			h.Set("X-Gitlab-Instance", "https://gitlab.example.com")
			h.Set("X-Gitlab-Webhook-UUID", "0b4f5e0a-4d7c-4bb0-9b8e-2f1c6a3b7d10")
			h.Set("X-Gitlab-Event-UUID", deliveryID)
			h.Set("Idempotency-Key", deliveryID)
		},
	}
	gitea = forge{
		platform: webhook.PlatformGitea, pushEvent: "push", pushFile: "gitea-push.json",
		headers: giteaHeaders,
	}
	forgejo = forge{
		platform: webhook.PlatformForgejo, pushEvent: "push", pushFile: "gitea-push.json",
		headers: func(h http.Header, event string, body []byte, secret string) {
			giteaHeaders(h, event, body, secret)
			h.Set("X-Forgejo-Delivery", deliveryID)
			h.Set("X-Forgejo-Event", event)
			h.Set("X-Forgejo-Event-Type", event)
			h.Set("X-Forgejo-Signature", sig256(secret, body))
		},
	}
	forges = []forge{github, gitlab, gitea, forgejo}
)

// giteaHeaders are what Gitea's deliverer sets: its own, Gogs' and
// GitHub's names for the same event and signature.
func giteaHeaders(h http.Header, event string, body []byte, secret string) {
	sig := sig256(secret, body)
	h.Set("User-Agent", "Go-http-client/1.1")
	h.Set("X-Gitea-Delivery", deliveryID)
	h.Set("X-Gitea-Event", event)
	h.Set("X-Gitea-Event-Type", event)
	h.Set("X-Gitea-Signature", sig)
	h.Set("X-Gogs-Delivery", deliveryID)
	h.Set("X-Gogs-Event", event)
	h.Set("X-Gogs-Event-Type", event)
	h.Set("X-Gogs-Signature", sig)
	h.Set("X-Hub-Signature", "sha1="+sig1(secret, body))
	h.Set("X-Hub-Signature-256", "sha256="+sig)
	h["X-GitHub-Delivery"] = []string{deliveryID}
	h["X-GitHub-Event"] = []string{event}
	h["X-GitHub-Event-Type"] = []string{event}
}

func payload(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withRef is the payload with its ref replaced, as the forge would send
// for a push to another ref (re-encoded: the bytes differ, as they would).
func withRef(t *testing.T, body []byte, ref string) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	doc["ref"] = ref
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// lockedBuffer collects the handler's log records from the server's
// goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// env is a handler behind a real HTTP server, with real metrics.
type env struct {
	t       *testing.T
	url     string
	h       *webhook.Handler
	m       *metrics.Metrics
	calls   atomic.Int32
	logs    *lockedBuffer
	trigger func()
}

func newEnv(t *testing.T, cfg webhook.Config) *env {
	t.Helper()
	e := &env{t: t, m: metrics.New(), logs: &lockedBuffer{}}
	cfg.Secret = webhook.NewSecret([]byte(secret))
	cfg.Recorder = e.m
	cfg.Logger = slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if cfg.Trigger == nil {
		cfg.Trigger = func() { e.calls.Add(1) }
	}
	h, err := webhook.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.h = h
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	e.url = srv.URL + "/webhook"
	return e
}

type response struct {
	status int
	body   string
}

// post sends one delivery and waits until any fetch it asked for ran, so
// e.calls is exact afterwards.
func (e *env) post(h http.Header, body io.Reader, contentLength int64) response {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.t.Context(), 30*time.Second) // a hung handler fails the test instead of the run
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, body)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header = h
	req.ContentLength = contentLength
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, strings.TrimSpace(string(b))}
}

// deliver sends body as f would, signed with key.
func (e *env) deliver(f forge, event string, body []byte, key string) response {
	e.t.Helper()
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	f.headers(h, event, body, key)
	r := e.post(h, bytes.NewReader(body), int64(len(body)))
	e.h.Wait()
	return r
}

// count is the pgsync_webhook_requests_total series for platform and
// result, as the registry serves it.
func (e *env) count(platform, result string) int {
	e.t.Helper()
	families, err := e.m.Registry().Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != metrics.NameWebhookRequests {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["platform"] == platform && labels["result"] == result {
				return int(m.GetCounter().GetValue())
			}
		}
	}
	return 0
}

func (e *env) expect(r response, status int, text string) {
	e.t.Helper()
	if r.status != status || !strings.Contains(r.body, text) {
		e.t.Fatalf("response %d %q, want %d containing %q", r.status, r.body, status, text)
	}
}

func TestPushTriggers(t *testing.T) {
	for _, f := range forges {
		t.Run(f.platform, func(t *testing.T) {
			e := newEnv(t, webhook.Config{Ref: "main"})
			body := payload(t, f.pushFile)

			e.expect(e.deliver(f, f.pushEvent, body, secret), http.StatusAccepted, "push to refs/heads/main: fetch triggered")
			if n := e.calls.Load(); n != 1 {
				t.Fatalf("trigger called %d times, want 1", n)
			}
			e.expect(e.deliver(f, f.pushEvent, withRef(t, body, "refs/heads/feature"), secret), http.StatusOK, "push to refs/heads/feature ignored: watching refs/heads/main or refs/tags/main")
			if n := e.calls.Load(); n != 1 {
				t.Fatalf("a push to another branch triggered: %d calls", n)
			}
			if got := e.count(f.platform, webhook.ResultTriggered); got != 1 {
				t.Errorf("triggered count = %d, want 1", got)
			}
			if got := e.count(f.platform, webhook.ResultIgnored); got != 1 {
				t.Errorf("ignored count = %d, want 1", got)
			}
		})
	}
}

func TestOtherEventsAnswer200WithoutTrigger(t *testing.T) {
	e := newEnv(t, webhook.Config{Ref: "main"})
	e.expect(e.deliver(github, "ping", payload(t, "github-ping.json"), secret), http.StatusOK, "pong")
	e.expect(e.deliver(gitlab, "Merge Request Hook", payload(t, "gitlab-merge-request.json"), secret), http.StatusOK, `event "Merge Request Hook" ignored`)
	e.expect(e.deliver(gitea, "create", []byte(`{"sha":"bffeb74224043ba2feb48d137756c8a9331c449a","ref":"v1.0","ref_type":"tag"}`), secret), http.StatusOK, `event "create" ignored`)
	// A ping is only ever ignored after its signature is checked.
	e.expect(e.deliver(github, "ping", payload(t, "github-ping.json"), "wrong"), http.StatusUnauthorized, "X-Hub-Signature-256 does not match")
	if n := e.calls.Load(); n != 0 {
		t.Fatalf("trigger called %d times, want 0", n)
	}
	if e.count(webhook.PlatformGitHub, webhook.ResultIgnored) != 1 || e.count(webhook.PlatformGitLab, webhook.ResultIgnored) != 1 || e.count(webhook.PlatformGitea, webhook.ResultIgnored) != 1 {
		t.Error("each ignored event is counted once under its platform")
	}
}

// TestRefuses: every way a delivery fails its proof answers 401, triggers
// nothing and is counted as unauthorized; the secret never reaches the log.
func TestRefuses(t *testing.T) {
	e := newEnv(t, webhook.Config{Ref: "main"})
	unauthorized := map[string]int{}
	refuse := func(platform string, r response, text string) {
		t.Helper()
		e.expect(r, http.StatusUnauthorized, text)
		unauthorized[platform]++
	}

	for _, f := range forges {
		body := payload(t, f.pushFile)
		header := map[string]string{
			webhook.PlatformGitHub: "X-Hub-Signature-256", webhook.PlatformGitLab: "X-Gitlab-Token",
			webhook.PlatformGitea: "X-Gitea-Signature", webhook.PlatformForgejo: "X-Forgejo-Signature",
		}[f.platform]

		// The wrong secret.
		refuse(f.platform, e.deliver(f, f.pushEvent, body, "not-"+secret), header+" does not match")
		// A secret that is a prefix of the real one (no early-exit compare).
		refuse(f.platform, e.deliver(f, f.pushEvent, body, secret[:len(secret)-1]), "does not match")

		// No proof at all: the forge's webhook has no secret configured.
		h := http.Header{"Content-Type": {"application/json"}}
		f.headers(h, f.pushEvent, body, secret)
		for _, k := range []string{"X-Hub-Signature-256", "X-Gitlab-Token", "X-Gitea-Signature", "X-Forgejo-Signature"} {
			h.Del(k)
		}
		if f.platform == webhook.PlatformForgejo {
			refuse(f.platform, e.post(h, bytes.NewReader(body), int64(len(body))), "forgejo delivery without X-Forgejo-Signature")
		} else {
			refuse(f.platform, e.post(h, bytes.NewReader(body), int64(len(body))), "delivery without "+header)
		}
	}

	// A recorded push to another branch, replayed with its ref changed to
	// the watched one under the original signature.
	for _, f := range []forge{github, gitea, forgejo} {
		recorded := withRef(t, payload(t, f.pushFile), "refs/heads/feature")
		h := http.Header{"Content-Type": {"application/json"}}
		f.headers(h, f.pushEvent, recorded, secret)
		changed := bytes.Replace(recorded, []byte("refs/heads/feature"), []byte("refs/heads/main"), 1)
		refuse(f.platform, e.post(h, bytes.NewReader(changed), int64(len(changed))), "does not match the body")
		// The same with one byte of whitespace added: still not the signed body.
		padded := append(bytes.Clone(recorded), ' ')
		refuse(f.platform, e.post(h, bytes.NewReader(padded), int64(len(padded))), "does not match the body")
	}

	// Signatures in the wrong shape.
	body := payload(t, "github-push.json")
	for _, sig := range []string{sig256(secret, body), "sha1=" + sig1(secret, body), "sha256=zz" + sig256(secret, body)[2:], "sha256="} {
		h := http.Header{"Content-Type": {"application/json"}}
		github.headers(h, "push", body, secret)
		h.Set("X-Hub-Signature-256", sig)
		refuse(webhook.PlatformGitHub, e.post(h, bytes.NewReader(body), int64(len(body))), "does not match")
	}
	// Gitea's other headers (X-Hub-Signature-256) do not stand in for its own.
	h := http.Header{"Content-Type": {"application/json"}}
	gitea.headers(h, "push", payload(t, "gitea-push.json"), secret)
	h.Set("X-Gitea-Signature", sig256("wrong", payload(t, "gitea-push.json")))
	refuse(webhook.PlatformGitea, e.post(h, bytes.NewReader(payload(t, "gitea-push.json")), -1), "X-Gitea-Signature does not match")

	// No forge's headers at all.
	anon := http.Header{"Content-Type": {"application/json"}, "X-Hub-Signature-256": {"sha256=" + sig256(secret, body)}}
	refuse(webhook.PlatformUnknown, e.post(anon, bytes.NewReader(body), int64(len(body))), "not a signed delivery")

	e.h.Wait()
	if n := e.calls.Load(); n != 0 {
		t.Fatalf("refused deliveries triggered %d fetches", n)
	}
	for platform, want := range unauthorized {
		if got := e.count(platform, webhook.ResultUnauthorized); got != want {
			t.Errorf("%s: unauthorized count = %d, want %d", platform, got, want)
		}
	}
	if logs := e.logs.String(); strings.Contains(logs, secret) || strings.Contains(logs, sig256(secret, body)) {
		t.Errorf("the log holds the secret or a signature:\n%s", logs)
	} else if !strings.Contains(logs, "result=unauthorized") {
		t.Errorf("the log does not record the refusals:\n%s", logs)
	}
}

// TestGitLabTokenDoesNotCoverTheBody pins what the package doc says:
// GitLab's token authenticates the sender, not the payload, so a changed
// body under a valid token is accepted. It can only ask for a fetch.
func TestGitLabTokenDoesNotCoverTheBody(t *testing.T) {
	e := newEnv(t, webhook.Config{Ref: "main"})
	changed := withRef(t, payload(t, "gitlab-push.json"), "refs/heads/main")
	changed = append(changed, []byte("\n")...)
	e.expect(e.deliver(gitlab, "Push Hook", changed, secret), http.StatusAccepted, "fetch triggered")
}

func TestBodySize(t *testing.T) {
	const limit = 1024
	e := newEnv(t, webhook.Config{Ref: "main", MaxBody: limit})
	for _, name := range []string{"github-push.json", "gitlab-push.json"} {
		if n := len(payload(t, name)); n <= limit {
			t.Fatalf("%s: %d bytes is not over the %d limit", name, n, limit)
		}
	}

	// Announced by Content-Length: refused before the body is read.
	e.expect(e.deliver(github, "push", payload(t, "github-push.json"), secret), http.StatusRequestEntityTooLarge, "over the limit")
	// Chunked, no length: refused once the limit is crossed.
	big := append(payload(t, "github-push.json"), bytes.Repeat([]byte(" "), 16<<10)...)
	h := http.Header{"Content-Type": {"application/json"}}
	github.headers(h, "push", big, secret)
	e.expect(e.post(h, io.MultiReader(bytes.NewReader(big)), -1), http.StatusRequestEntityTooLarge, "over the limit")
	// A wrong GitLab token is refused before the body, whatever its size.
	e.expect(e.deliver(gitlab, "Push Hook", payload(t, "gitlab-push.json"), "wrong"), http.StatusUnauthorized, "X-Gitlab-Token does not match")
	// Exactly at the limit: read.
	atLimit := withRef(t, []byte(`{"ref":""}`), "refs/heads/main")
	atLimit = append(atLimit, bytes.Repeat([]byte(" "), limit-len(atLimit))...)
	e.expect(e.deliver(github, "push", atLimit, secret), http.StatusAccepted, "fetch triggered")

	if got := e.count(webhook.PlatformGitHub, webhook.ResultTooLarge); got != 2 {
		t.Errorf("too_large count = %d, want 2", got)
	}
	if n := e.calls.Load(); n != 1 {
		t.Errorf("trigger called %d times, want 1 (the delivery at the limit)", n)
	}
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t, webhook.Config{Ref: "main"})
	body := payload(t, "github-push.json")

	// A form-encoded delivery (GitHub's other content type), signed.
	form := []byte("payload=" + url.QueryEscape(string(body)))
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	github.headers(h, "push", form, secret)
	e.expect(e.post(h, bytes.NewReader(form), int64(len(form))), http.StatusUnsupportedMediaType, "set the webhook's content type to application/json")

	// Not JSON, and JSON without a ref, both correctly signed.
	e.expect(e.deliver(github, "push", []byte("ref=refs/heads/main"), secret), http.StatusBadRequest, "not JSON")
	e.expect(e.deliver(gitea, "push", []byte(`{"before":"28e1879d029cb852e4844d9c718537df08844e03"}`), secret), http.StatusBadRequest, "has no ref")

	// GET.
	ctx := t.Context()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != http.MethodPost {
		t.Errorf("GET: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	if n := e.calls.Load(); n != 0 {
		t.Fatalf("bad requests triggered %d fetches", n)
	}
	if got := e.count(webhook.PlatformGitHub, webhook.ResultBadRequest); got != 2 {
		t.Errorf("github bad_request count = %d, want 2", got)
	}
}

func TestWatchedRef(t *testing.T) {
	for _, tc := range []struct {
		ref     string
		trigger []string
		ignore  []string
	}{
		{"main", []string{"refs/heads/main", "refs/tags/main"}, []string{"refs/heads/mainline", "refs/heads/feature/main"}},
		{"refs/heads/release/v2", []string{"refs/heads/release/v2"}, []string{"refs/tags/release/v2", "refs/heads/main"}},
		{"v1.4", []string{"refs/tags/v1.4"}, []string{"refs/tags/v1.40"}},
		{"", []string{"refs/heads/main", "refs/heads/anything"}, []string{"refs/tags/v1"}},
		{"HEAD", []string{"refs/heads/main"}, []string{"refs/tags/v1"}},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			e := newEnv(t, webhook.Config{Ref: tc.ref})
			base := payload(t, "github-push.json")
			for _, ref := range tc.trigger {
				e.expect(e.deliver(github, "push", withRef(t, base, ref), secret), http.StatusAccepted, "fetch triggered")
			}
			for _, ref := range tc.ignore {
				e.expect(e.deliver(github, "push", withRef(t, base, ref), secret), http.StatusOK, "ignored")
			}
			if n := int(e.calls.Load()); n != len(tc.trigger) {
				t.Errorf("trigger called %d times, want %d", n, len(tc.trigger))
			}
		})
	}
}

// TestCoalescing: pushes that arrive while a fetch runs are answered at
// once (the handler never waits for Trigger) and make exactly one more
// fetch when it returns.
func TestCoalescing(t *testing.T) {
	started := make(chan struct{}, 10)
	release := make(chan struct{})
	var calls atomic.Int32
	e := newEnv(t, webhook.Config{Ref: "main", Trigger: func() {
		calls.Add(1)
		started <- struct{}{}
		<-release // the fetch runs until the test lets it end
	}})
	body := payload(t, "github-push.json")
	send := func() {
		t.Helper()
		h := http.Header{"Content-Type": {"application/json"}}
		github.headers(h, "push", body, secret)
		e.expect(e.post(h, bytes.NewReader(body), int64(len(body))), http.StatusAccepted, "fetch triggered")
	}

	send()
	recv(t, started, "the first fetch") // it runs, and blocks
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(send) // answered while the fetch blocks: none waits on it
	}
	wg.Wait()
	release <- struct{}{}                         // the first fetch ends ...
	recv(t, started, "the fetch after the first") // ... and exactly one more starts
	release <- struct{}{}
	e.h.Wait()
	select {
	case <-started:
		t.Fatal("a third fetch started")
	default:
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("trigger called %d times for 21 pushes, want 2", n)
	}
	if got := e.count(webhook.PlatformGitHub, webhook.ResultTriggered); got != 21 {
		t.Errorf("triggered count = %d, want 21", got)
	}

	// Once idle, the next push fetches again.
	go func() { <-started; release <- struct{}{} }()
	send()
	e.h.Wait()
	if n := calls.Load(); n != 3 {
		t.Fatalf("trigger called %d times, want 3", n)
	}
}

// recv waits for what ch should get; a channel that stays empty fails the
// test instead of hanging the run.
func recv(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s never started", what)
	}
}

func TestSecret(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "webhook-secret")
	if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := webhook.LoadSecret(file)
	if err != nil {
		t.Fatal(err)
	}
	// The file's trailing newline is not part of the secret: a delivery
	// signed with the secret alone is accepted.
	var calls atomic.Int32
	h, err := webhook.New(webhook.Config{Secret: s, Ref: "main", Trigger: func() { calls.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	body := payload(t, "github-push.json")
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	github.headers(req.Header, "push", body, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h.Wait()
	if resp.StatusCode != http.StatusAccepted || calls.Load() != 1 {
		t.Fatalf("delivery signed with the file's secret: %d, %d calls", resp.StatusCode, calls.Load())
	}

	// It never prints.
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "secret", s, "cfg", webhook.Config{Secret: s, Ref: "main"})
	js, err := json.Marshal(struct{ S webhook.Secret }{s})
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{
		fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s %q %x", s, s, s, s, s, s),
		fmt.Sprintf("%+v %#v", webhook.Config{Secret: s}, webhook.Config{Secret: s}),
		logged.String(), string(js),
	} {
		if strings.Contains(out, secret) || strings.Contains(out, hex.EncodeToString([]byte(secret))) {
			t.Errorf("the secret is printed: %s", out)
		}
		if !strings.Contains(out, "[redacted]") {
			t.Errorf("no [redacted] in %s", out)
		}
	}

	for _, tc := range []struct{ content, want string }{{"", "is empty"}, {"\n\r\n", "is empty"}} {
		if err := os.WriteFile(file, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := webhook.LoadSecret(file); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("LoadSecret(%q) = %v, want %q", tc.content, err, tc.want)
		}
	}
	if _, err := webhook.LoadSecret(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file is not an error")
	}
	if _, err := webhook.New(webhook.Config{Trigger: func() {}}); err == nil || !strings.Contains(err.Error(), "no secret") {
		t.Errorf("New without a secret: %v", err)
	}
	if _, err := webhook.New(webhook.Config{Secret: s}); err == nil {
		t.Error("New without a Trigger is accepted")
	}
}
