package api_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"node/cmd/node/api"
)

func TestTokenFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	tok, err := api.LoadOrCreateToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) != 2*api.TokenBytes {
		t.Fatalf("token %q", tok)
	}
	path := filepath.Join(dir, api.TokenFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v", fi.Mode())
	}
	again, err := api.LoadOrCreateToken(dir)
	if err != nil || again != tok {
		t.Fatalf("second load: %q, %v; want %q", again, err, tok)
	}
	if read, err := api.ReadToken(path); err != nil || read != tok {
		t.Fatalf("ReadToken: %q, %v", read, err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}

	// Readable by others: refused, not fixed silently.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := api.LoadOrCreateToken(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a 0644 token: %v", err)
	}
	if _, err := api.ReadToken(path); err == nil {
		t.Fatal("ReadToken took a 0644 token")
	}
	os.Chmod(path, 0o600)

	for _, bad := range []string{"", "short", strings.Repeat("g", 64), strings.Repeat("a", 63), strings.Repeat("a", 66), strings.Repeat("a", 5000)} {
		if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := api.LoadOrCreateToken(dir); err == nil {
			t.Errorf("token %.20q accepted", bad)
		}
	}
	// A symlink to a token elsewhere is not followed.
	other := filepath.Join(t.TempDir(), "tok")
	os.WriteFile(other, []byte(tok), 0o600)
	os.Remove(path)
	if err := os.Symlink(other, path); err != nil {
		t.Fatal(err)
	}
	if _, err := api.LoadOrCreateToken(dir); err == nil {
		t.Fatal("a symlinked token accepted")
	}
}

// TestTokenRace: processes starting at once agree on one token.
func TestTokenRace(t *testing.T) {
	dir := t.TempDir()
	const n = 8
	toks := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			tok, err := api.LoadOrCreateToken(dir)
			if err != nil {
				t.Error(err)
			}
			toks[i] = tok
		})
	}
	wg.Wait()
	for _, tok := range toks {
		if tok != toks[0] {
			t.Fatalf("tokens differ: %q", toks)
		}
	}
}

func TestAddrFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := api.ReadAddr(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("no file: %v", err)
	}
	for _, a := range []string{"127.0.0.1:9091", "[::1]:9091"} {
		if err := api.WriteAddr(dir, a); err != nil {
			t.Fatal(err)
		}
		if got, err := api.ReadAddr(dir); err != nil || got != a {
			t.Fatalf("ReadAddr: %q, %v; want %q", got, err, a)
		}
	}
	if err := api.WriteAddr(dir, "evil.example:80"); err == nil {
		t.Fatal("WriteAddr took a name")
	}
	os.WriteFile(filepath.Join(dir, api.AddrFile), []byte("http://x\n"), 0o644)
	if _, err := api.ReadAddr(dir); err == nil {
		t.Fatal("ReadAddr took a URL")
	}
	os.WriteFile(filepath.Join(dir, api.AddrFile), []byte(strings.Repeat("1", 4096)), 0o644)
	if _, err := api.ReadAddr(dir); err == nil || !strings.Contains(err.Error(), "over") {
		t.Fatalf("ReadAddr of a big file: %v", err)
	}
	api.WriteAddr(dir, "127.0.0.1:1")
	os.Chmod(filepath.Join(dir, api.AddrFile), 0o666)
	if _, err := api.ReadAddr(dir); err == nil || !strings.Contains(err.Error(), "chmod 644") {
		t.Fatalf("ReadAddr of a file others may write: %v", err)
	}
	os.Chmod(filepath.Join(dir, api.AddrFile), 0o644)
	api.RemoveAddr(dir, "127.0.0.1:2") // another daemon's: kept
	if got, _ := api.ReadAddr(dir); got != "127.0.0.1:1" {
		t.Fatalf("RemoveAddr removed another's address")
	}
	if err := api.RemoveAddr(dir, "127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	if _, err := api.ReadAddr(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("after RemoveAddr: %v", err)
	}
}

// TestAddrFileUnspecified: a daemon listening on every address records
// the loopback of its family, which the commands can reach and use as
// Host, and removes it when it stops.
func TestAddrFileUnspecified(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ listen, want string }{
		{"0.0.0.0:9091", "127.0.0.1:9091"},
		{"[::]:9091", "[::1]:9091"},
		{"[::ffff:0.0.0.0]:9091", "127.0.0.1:9091"},
	} {
		if err := api.WriteAddr(dir, c.listen); err != nil {
			t.Fatal(err)
		}
		if got, err := api.ReadAddr(dir); err != nil || got != c.want {
			t.Fatalf("%s: ReadAddr %q, %v; want %q", c.listen, got, err, c.want)
		}
		if err := api.RemoveAddr(dir, c.listen); err != nil {
			t.Fatal(err)
		}
		if _, err := api.ReadAddr(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s: after RemoveAddr: %v", c.listen, err)
		}
	}
}

// TestAddrFileOwner: an api-addr another user owns is refused, unless
// root owns it or root reads it.
func TestAddrFileOwner(t *testing.T) {
	for _, c := range []struct {
		owner, me uint32
		ok        bool
	}{{1000, 1000, true}, {0, 1000, true}, {1001, 1000, false}, {1001, 0, true}} {
		if api.AddrOwnerOK(c.owner, c.me) != c.ok {
			t.Errorf("owner %d, me %d: want %v", c.owner, c.me, c.ok)
		}
	}
	dir := t.TempDir()
	api.WriteAddr(dir, "127.0.0.1:1")
	if os.Getuid() == 0 {
		// Root reads a service user's.
		if err := os.Chown(filepath.Join(dir, api.AddrFile), 4242, -1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := api.ReadAddr(dir); err != nil {
		t.Fatalf("ReadAddr: %v", err)
	}
}
