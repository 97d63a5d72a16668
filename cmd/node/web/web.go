package web

import (
	"bytes"
	"embed"
	"net/http"
	"time"
)

//go:embed static
var static embed.FS

// CSP is the page's Content-Security-Policy: its own files and its own
// API, nothing inline, nothing from elsewhere, not framed.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// files are what the page serves, by path, with their types: spelled out
// rather than guessed from the system's MIME table, which differs between
// machines.
var files = map[string]struct{ name, contentType string }{
	"/":           {"static/index.html", "text/html; charset=utf-8"},
	"/index.html": {"static/index.html", "text/html; charset=utf-8"},
	"/app.js":     {"static/app.js", "text/javascript; charset=utf-8"},
	"/style.css":  {"static/style.css", "text/css; charset=utf-8"},
	"/icon.svg":   {"static/icon.svg", "image/svg+xml"},
}

// Handler serves the page. Every other path is a 404.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		f, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		b, err := static.ReadFile(f.name)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		h.Set("Content-Type", f.contentType)
		http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(b))
	})
}
