package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"node/cmd/node/api"
	"node/cmd/node/api/apitest"
)

// FuzzClientAnswer: whatever an impostor on the daemon's port answers,
// the client returns a value or an error, and never panics.
func FuzzClientAnswer(f *testing.F) {
	list, _ := json.Marshal(map[string]any{"torrents": apitest.Torrents(2)})
	for _, s := range [][]byte{
		list, []byte(`{"error":"no such torrent"}`), []byte(`{"error":null}`), []byte(`{"error":""}`),
		[]byte(`{"torrents":[{"info_hash":"zz","length":-1,"done":1e309}]}`), []byte(`<html>`), []byte(``),
		[]byte(`{"torrents":null}`), []byte(`{"torrents":[null]}`), []byte(`{"buckets":[{"nodes":[{"dist":1e400}]}]}`),
		[]byte(`{"lookups":[{"answers":[{"dist":null}]}]}`), []byte(`[` + strings.Repeat("[", 20000)),
	} {
		for _, code := range []int{200, 201, 204, 400, 404, 409, 500} {
			f.Add(code, s)
		}
	}
	f.Fuzz(func(t *testing.T, code int, body []byte) {
		if code < 100 || code > 999 {
			return
		}
		var l struct {
			Torrents []api.Torrent `json:"torrents"`
		}
		var d api.TorrentDetail
		var st api.DHTStatus
		for _, c := range []struct {
			want int
			out  any
		}{{200, &l}, {200, &d}, {200, &st}, {201, &api.Torrent{}}, {204, nil}} {
			err := api.DecodeAnswer(code, c.want, body, api.MaxResponseBytes, c.out)
			if code != c.want && err == nil {
				t.Fatalf("HTTP %d accepted as %d", code, c.want)
			}
			if err != nil && err.Error() == "" {
				t.Fatalf("an empty error for HTTP %d %q", code, body)
			}
		}
	})
}

// FuzzAddRequest: whatever body a client posts, the server answers one of
// its documented statuses, in JSON, and only well-formed requests reach
// the backend.
func FuzzAddRequest(f *testing.F) {
	for _, s := range []string{
		`{"magnet":"magnet:?xt=urn:btih:` + strings.Repeat("3c", 20) + `"}`,
		`{"torrent":"ZDQ6aW5mb2Rl","dir":"/x","paused":true,"seed_ratio":2}`,
		`{"magnet":"magnet:?xt=urn:btih:` + strings.Repeat("3c", 20) + `","torrent":"ZGU="}`,
		`{"seed_ratio":null}`, `{"evil":1}`, `{}`, `null`, `[]`, `{"magnet":"\u0000"}`, `{"a":` + strings.Repeat("[", 10000),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		b := &apitest.Backend{}
		h := api.Handler(api.ServerConfig{Backend: b, Token: testToken})
		req := httptest.NewRequestWithContext(context.Background(), "POST", "/api/v1/torrents", bytes.NewReader(body))
		req.Host = "127.0.0.1:1"
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		resp := w.Result()
		out, _ := io.ReadAll(resp.Body)
		switch resp.StatusCode {
		case http.StatusCreated, http.StatusBadRequest, http.StatusConflict, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("HTTP %d for %q", resp.StatusCode, body)
		}
		if !json.Valid(out) || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("answer %q is not JSON", out)
		}
		for _, r := range b.Adds {
			if (r.Magnet == "") == (len(r.Torrent) == 0) {
				t.Fatalf("the backend got %+v", r)
			}
		}
	})
}
