package api_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"

	"node/cmd/node/api"
	"node/cmd/node/api/apitest"
)

func client(s *api.Server, tok string) *api.Client {
	return api.NewClient(s.Addr().String(), tok)
}

// TestClient: every call round-trips, and the Backend's errors keep their
// identity over the wire.
func TestClient(t *testing.T) {
	ctx := context.Background()
	b := fakeWithOne()
	s := start(t, b)
	c := client(s, testToken)
	defer c.Close()
	known, unknown := mustIH(t, knownIH), mustIH(t, unknownIH)

	ts, err := c.List(ctx)
	if err != nil || len(ts) != 1 || ts[0].InfoHash != knownIH {
		t.Fatalf("List: %+v, %v", ts, err)
	}
	ratio := 1.5
	added, err := c.Add(ctx, api.AddRequest{Magnet: "magnet:?xt=urn:btih:" + magnetIH + "&dn=hello", Dir: "/d", Paused: true, SeedRatio: &ratio})
	if err != nil || added.InfoHash != magnetIH || added.Name != "hello" || added.State != api.StatePaused || added.SeedRatio != 1.5 || added.Dir != "/d" {
		t.Fatalf("Add: %+v, %v", added, err)
	}
	if _, err := c.Add(ctx, api.AddRequest{Magnet: "magnet:?xt=urn:btih:" + magnetIH}); !errors.Is(err, api.ErrExists) {
		t.Fatalf("duplicate Add: %v", err)
	}
	var br api.BadRequest
	if _, err := c.Add(ctx, api.AddRequest{Magnet: "magnet:?xt=urn:btih:nothex"}); !errors.As(err, &br) || !strings.Contains(err.Error(), "magnet") {
		t.Fatalf("bad magnet: %v", err)
	}
	if _, err := c.Add(ctx, api.AddRequest{}); !errors.As(err, &br) {
		t.Fatalf("empty Add: %v", err)
	}
	d, err := c.Get(ctx, known)
	if err != nil || d.InfoHash != knownIH || !slices.Equal(d.PieceBuckets, []float64{0, 0, 0, 0}) || len(d.Files) != 1 {
		t.Fatalf("Get: %+v, %v", d, err)
	}
	if p, err := c.Pause(ctx, known); err != nil || p.State != api.StatePaused {
		t.Fatalf("Pause: %+v, %v", p, err)
	}
	if p, err := c.Resume(ctx, known); err != nil || p.State != api.StateDownloading {
		t.Fatalf("Resume: %+v, %v", p, err)
	}
	st, err := c.DHT(ctx)
	if err != nil || st.Nodes != 1 || len(st.Buckets) != 1 || *st.Lookups[0].Answers[0].Dist != 3.5 {
		t.Fatalf("DHT: %+v, %v", st, err)
	}
	for name, call := range map[string]func() error{
		"Get":    func() error { _, err := c.Get(ctx, unknown); return err },
		"Pause":  func() error { _, err := c.Pause(ctx, unknown); return err },
		"Resume": func() error { _, err := c.Resume(ctx, unknown); return err },
		"Remove": func() error { return c.Remove(ctx, unknown, false) },
	} {
		err := call()
		if !errors.Is(err, api.ErrNotFound) || errors.Is(err, api.ErrExists) {
			t.Errorf("%s of an unknown torrent: %v", name, err)
		}
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Status != http.StatusNotFound || !strings.Contains(ae.Message, unknownIH) {
			t.Errorf("%s: %#v", name, err)
		}
	}
	if err := c.Remove(ctx, known, true); err != nil {
		t.Fatal(err)
	}
	if del, ok := b.Removed[known]; !ok || !del {
		t.Fatalf("Remove with data: %v", b.Removed)
	}
	if err := c.Remove(ctx, mustIH(t, magnetIH), false); err != nil || b.Removed[mustIH(t, magnetIH)] {
		t.Fatalf("Remove keeping data: %v %v", err, b.Removed)
	}
	if ts, err := c.List(ctx); err != nil || len(ts) != 0 {
		t.Fatalf("List after removing all: %v, %v", ts, err)
	}

	// A wrong token is a clear error, no torrent identity.
	_, err = client(s, "wrong").List(ctx)
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized || !strings.Contains(err.Error(), "token") || errors.Is(err, api.ErrNotFound) {
		t.Fatalf("wrong token: %v", err)
	}
}

// TestClientNoDaemon: nothing listening is ECONNREFUSED, which the
// commands turn into "no daemon running".
func TestClientNoDaemon(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = api.NewClient(addr, testToken).List(context.Background())
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("%v", err)
	}
}

// TestClientImpostor: whatever answers on the port, the client bounds what
// it reads and says it is not the daemon.
func TestClientImpostor(t *testing.T) {
	for _, c := range []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{"html 200", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<html>hi</html>") }, "not the API's JSON"},
		{"html 404", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, "not an API answer"},
		{"endless", func(w http.ResponseWriter, r *http.Request) {
			buf := make([]byte, 1<<20)
			for i := 0; i <= api.MaxResponseBytes>>20; i++ {
				if _, err := w.Write(buf); err != nil {
					return
				}
			}
		}, "over"},
		{"endless error", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(500)
			io.WriteString(w, `{"error":"`+strings.Repeat("x", api.MaxErrorBytes)+`"}`)
		}, "over"},
		{"redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://evil.example/", http.StatusFound)
		}, "not an API answer"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var sawAuth []string
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				sawAuth = append(sawAuth, r.Host)
				c.handler(w, r)
			})}
			go srv.Serve(ln)
			defer srv.Close()
			cl := api.NewClient(ln.Addr().String(), testToken)
			defer cl.Close()
			_, err = cl.List(context.Background())
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%v, want %q", err, c.want)
			}
			if len(sawAuth) != 1 {
				t.Fatalf("%d requests, want 1 (no redirect followed)", len(sawAuth))
			}
		})
	}
}

var _ api.Backend = (*apitest.Backend)(nil)

// TestClientUnspecifiedAddr: --api 0.0.0.0:PORT (or [::]) reaches the
// daemon at the loopback of the family, which its Host check takes.
func TestClientUnspecifiedAddr(t *testing.T) {
	for _, c := range []struct{ listen, unspecified string }{{"127.0.0.1:0", "0.0.0.0"}, {"[::1]:0", "::"}} {
		s, err := api.Listen(c.listen, api.ServerConfig{Backend: fakeWithOne(), Token: testToken})
		if err != nil {
			t.Logf("%s: %v", c.listen, err) // no IPv6 loopback here
			continue
		}
		_, port, _ := net.SplitHostPort(s.Addr().String())
		cl := api.NewClient(net.JoinHostPort(c.unspecified, port), testToken)
		ts, err := cl.List(context.Background())
		cl.Close()
		s.Close()
		if err != nil || len(ts) != 1 {
			t.Fatalf("%s: %v, %v", c.unspecified, ts, err)
		}
	}
}
