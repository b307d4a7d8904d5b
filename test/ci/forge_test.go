package ci

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
)

// forge plays the comment API of one platform: GitHub's issue comments
// (list, create, edit by id) or GitLab's merge-request notes (the same, plus
// GET /user), with their pagination (per_page and page, small defaults), and
// a 401 for any request without the expected bearer token.
type forge struct {
	platform string // "github" or "gitlab"
	token    string
	bot      string // the author of what the token posts
	srv      *httptest.Server

	mu       sync.Mutex
	comments []*comment
	requests []request
	nextID   int64
}

type comment struct {
	ID     int64
	Body   string
	Author string
}

type request struct {
	Method, Path, Authorization string
}

const (
	ghRepo = "acme/db"
	ghPR   = "7"
	glProj = "42"
	glMR   = "3"
)

func newForge(t *testing.T, platform, token string) *forge {
	t.Helper()
	f := &forge{platform: platform, token: token, nextID: 1000}
	mux := http.NewServeMux()
	switch platform {
	case "github":
		f.bot = "github-actions[bot]"
		list := "/repos/" + ghRepo + "/issues/" + ghPR + "/comments"
		mux.HandleFunc("GET "+list, f.list(30))
		mux.HandleFunc("POST "+list, f.create)
		mux.HandleFunc("PATCH /repos/"+ghRepo+"/issues/comments/{id}", f.edit)
	case "gitlab":
		f.bot = "project_42_bot_5f3a"
		notes := "/api/v4/projects/" + glProj + "/merge_requests/" + glMR + "/notes"
		mux.HandleFunc("GET /api/v4/user", func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, map[string]any{"id": 77, "username": f.bot})
		})
		mux.HandleFunc("GET "+notes, f.list(20))
		mux.HandleFunc("POST "+notes, f.create)
		mux.HandleFunc("PUT "+notes+"/{id}", f.edit)
	default:
		t.Fatalf("unknown platform %q", platform)
	}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.requests = append(f.requests, request{r.Method, r.URL.Path, r.Header.Get("Authorization")})
		f.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+f.token {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Bad credentials"})
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// apiURL is what the platform's own variable (GITHUB_API_URL, CI_API_V4_URL)
// holds.
func (f *forge) apiURL() string {
	if f.platform == "gitlab" {
		return f.srv.URL + "/api/v4"
	}
	return f.srv.URL
}

// seed adds comments by other authors, before any of the bot's.
func (f *forge) seed(author, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	f.comments = append(f.comments, &comment{ID: f.nextID, Body: body, Author: author})
}

func (f *forge) render(c *comment) map[string]any {
	m := map[string]any{"id": c.ID, "body": c.Body}
	if f.platform == "gitlab" {
		m["author"] = map[string]any{"username": c.Author}
		m["system"] = false
	} else {
		m["user"] = map[string]any{"login": c.Author, "type": "User"}
	}
	return m
}

func (f *forge) list(defaultPerPage int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		perPage, page := defaultPerPage, 1
		if v, err := strconv.Atoi(r.URL.Query().Get("per_page")); err == nil && v > 0 {
			perPage = min(v, 100)
		}
		if v, err := strconv.Atoi(r.URL.Query().Get("page")); err == nil && v > 0 {
			page = v
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		out := []map[string]any{}
		for i := (page - 1) * perPage; i < len(f.comments) && i < page*perPage; i++ {
			out = append(out, f.render(f.comments[i]))
		}
		writeJSON(w, http.StatusOK, out)
	}
}

func (f *forge) create(w http.ResponseWriter, r *http.Request) {
	var in struct{ Body *string }
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Body == nil {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"message": fmt.Sprintf("no body: %v", err)})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	c := &comment{ID: f.nextID, Body: *in.Body, Author: f.bot}
	f.comments = append(f.comments, c)
	writeJSON(w, http.StatusCreated, f.render(c))
}

func (f *forge) edit(w http.ResponseWriter, r *http.Request) {
	var in struct{ Body *string }
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Body == nil {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"message": fmt.Sprintf("no body: %v", err)})
		return
	}
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.comments {
		if c.ID != id {
			continue
		}
		if c.Author != f.bot { // both platforms: only the author edits
			writeJSON(w, http.StatusForbidden, map[string]string{"message": "not the author"})
			return
		}
		c.Body = *in.Body
		writeJSON(w, http.StatusOK, f.render(c))
		return
	}
	writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not Found"})
}

// botComments are the comments the token posted.
func (f *forge) botComments() []comment {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []comment
	for _, c := range f.comments {
		if c.Author == f.bot {
			out = append(out, *c)
		}
	}
	return out
}

// count is how many requests had this method.
func (f *forge) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.requests {
		if r.Method == method {
			n++
		}
	}
	return n
}

func (f *forge) allRequests() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.requests...)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
