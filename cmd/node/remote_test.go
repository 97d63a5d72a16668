package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"node/cmd/node/api"
	"node/cmd/node/api/apitest"
	"node/magnet"
	"node/metadata"
)

// fakeDaemon serves a fake backend on loopback and leaves its address and
// token in a state directory, as node daemon does.
func fakeDaemon(t *testing.T, ts ...api.Torrent) (*apitest.Backend, string) {
	t.Helper()
	b := &apitest.Backend{}
	for _, tt := range ts {
		b.Put(tt)
	}
	dir := t.TempDir()
	tok, err := api.LoadOrCreateToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := api.Listen("127.0.0.1:0", api.ServerConfig{Backend: b, Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := api.WriteAddr(dir, s.Addr().String()); err != nil {
		t.Fatal(err)
	}
	return b, dir
}

func ihOf(t *testing.T, s string) metadata.InfoHash {
	t.Helper()
	h, err := magnet.ParseInfoHash(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestRemoteNoDaemon(t *testing.T) {
	dir := t.TempDir()
	for _, cmd := range [][]string{{"ls"}, {"add", "magnet:?xt=urn:btih:" + strings.Repeat("ab", 20)}, {"rm", "abcd"}, {"pause", "abcd"}, {"resume", "abcd"}} {
		code, _, errOut := runCmd(append(cmd, "--state-dir", dir)...)
		if code != exitFailure || !strings.Contains(errOut, "no daemon running: start one with node daemon") || !strings.Contains(errOut, api.AddrFile) {
			t.Errorf("%v without a daemon: exit %d, %q", cmd, code, errOut)
		}
	}
	// A daemon that died left its address behind.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	api.WriteAddr(dir, addr)
	api.LoadOrCreateToken(dir)
	code, _, errOut := runCmd("ls", "--state-dir", dir)
	if code != exitFailure || !strings.Contains(errOut, "no daemon running") || !strings.Contains(errOut, addr) {
		t.Errorf("ls with a stale address: exit %d, %q", code, errOut)
	}
	code, _, errOut = runCmd("add", "--state-dir", dir, "magnet:?xt=urn:btih:"+strings.Repeat("ab", 20), "magnet:?xt=urn:btih:"+strings.Repeat("cd", 20))
	if code != exitFailure || strings.Count(errOut, "no daemon running") != 1 {
		t.Errorf("add of two with a stale address: exit %d, %q", code, errOut)
	}
	// No state directory and no --api: a usage error.
	if code, _, errOut := runCmd("ls"); code != exitUsage || !strings.Contains(errOut, "--api") {
		t.Errorf("ls with no state directory: exit %d, %q", code, errOut)
	}
}

func TestRemoteAdd(t *testing.T) {
	b, dir := fakeDaemon(t)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "data"), []byte(strings.Repeat("x", 100000)), 0o644); err != nil {
		t.Fatal(err)
	}
	tor := filepath.Join(src, "data.torrent")
	code, out, errOut := runCmd("create", filepath.Join(src, "data"), "-o", tor)
	if code != exitOK {
		t.Fatalf("create: %d %s", code, errOut)
	}
	torIH := strings.Fields(out)[0]
	mag := "magnet:?xt=urn:btih:" + strings.Repeat("ab", 20) + "&dn=from%20a%20magnet"

	wd, _ := os.Getwd()
	code, out, errOut = runCmd("add", "--state-dir", dir, "--dir", "rel/dir", "--paused", "--seed-ratio", "1.5", mag, tor)
	if code != exitOK {
		t.Fatalf("add: exit %d, %s", code, errOut)
	}
	if !strings.Contains(out, "added "+strings.Repeat("ab", 20)+"  from a magnet") || !strings.Contains(out, "added "+torIH+"  data") {
		t.Fatalf("add said %q", out)
	}
	if len(b.Adds) != 2 {
		t.Fatalf("%d adds", len(b.Adds))
	}
	for _, r := range b.Adds {
		if r.Dir != filepath.Join(wd, "rel/dir") || !r.Paused || r.SeedRatio == nil || *r.SeedRatio != 1.5 {
			t.Fatalf("the daemon got %+v", r)
		}
	}
	if b.Adds[0].Magnet != mag || len(b.Adds[1].Torrent) == 0 {
		t.Fatalf("the daemon got %+v", b.Adds)
	}

	// Defaults: the daemon's directory and ratio, started.
	mag2 := "magnet:?xt=urn:btih:" + strings.Repeat("cd", 20)
	if code, _, errOut := runCmd("add", mag2, "--state-dir", dir); code != exitOK {
		t.Fatalf("add with defaults: exit %d, %s", code, errOut)
	}
	if r := b.Adds[2]; r.Dir != "" || r.Paused || r.SeedRatio != nil {
		t.Fatalf("defaults sent as %+v", r)
	}

	// A duplicate, a bad magnet, a missing file: each said, the good
	// one still added, the exit code the last failure's.
	mag3 := "magnet:?xt=urn:btih:" + strings.Repeat("ef", 20)
	code, out, errOut = runCmd("add", "--state-dir", dir, mag, mag3, "magnet:?xt=urn:btih:zz", filepath.Join(src, "missing.torrent"))
	if code != exitBadInput {
		t.Fatalf("add of bad ones: exit %d, %s", code, errOut)
	}
	for _, want := range []string{"already added", "magnet:?xt=urn:btih:zz: magnet", "missing.torrent: open"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr %q does not say %q", errOut, want)
		}
	}
	if _, ok := b.Torrent(ihOf(t, strings.Repeat("ef", 20))); !ok || !strings.Contains(out, "added "+strings.Repeat("ef", 20)) {
		t.Fatalf("the good magnet among bad ones was not added: %q", out)
	}

	for _, bad := range [][]string{{"add"}, {"add", "--seed-ratio", "-1", mag}, {"add", "--seed-ratio", "NaN", mag}, {"add", "--seed-ratio", "x", mag}} {
		if code, _, _ := runCmd(append(bad, "--state-dir", dir)...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", bad, code, exitUsage)
		}
	}
}

// TestRemoteToken: the token comes from --token-file, is refused when
// others can read it, and a wrong one is said to be wrong.
func TestRemoteToken(t *testing.T) {
	_, dir := fakeDaemon(t)
	addr, _ := api.ReadAddr(dir)
	tf := filepath.Join(dir, api.TokenFile)
	if code, _, errOut := runCmd("ls", "--api", addr, "--token-file", tf); code != exitOK {
		t.Fatalf("ls --api --token-file: %d %s", code, errOut)
	}
	wrong := filepath.Join(t.TempDir(), "tok")
	os.WriteFile(wrong, []byte(strings.Repeat("0", 64)), 0o600)
	code, _, errOut := runCmd("ls", "--state-dir", dir, "--token-file", wrong)
	if code != exitFailure || !strings.Contains(errOut, "refused the token") {
		t.Fatalf("a wrong token: exit %d, %q", code, errOut)
	}
	os.Chmod(wrong, 0o644)
	code, _, errOut = runCmd("ls", "--state-dir", dir, "--token-file", wrong)
	if code != exitFailure || !strings.Contains(errOut, "chmod 600") {
		t.Fatalf("a token others can read: exit %d, %q", code, errOut)
	}
}

func lsTorrents() []api.Torrent {
	added := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return []api.Torrent{
		{InfoHash: "abcd" + strings.Repeat("1", 36), Name: "first.iso", State: api.StateDownloading, AddedAt: added,
			Length: 4 << 20, Done: 1 << 20, DownRate: 2048, UpRate: 512, Peers: 3},
		{InfoHash: "abcd" + strings.Repeat("2", 36), Name: "evil\x1b]0;pwned\x07\u202ename\tx", State: api.StateSeeding, AddedAt: added.Add(time.Hour),
			Length: 1 << 20, Done: 1 << 20, Peers: 1},
		{InfoHash: "ef01" + strings.Repeat("3", 36), Name: "magnet only", State: api.StateMetadata, AddedAt: added.Add(2 * time.Hour)},
		{InfoHash: "ef02" + strings.Repeat("4", 36), Name: "broken", State: api.StateError, Error: "disk full\x1b[2J", AddedAt: added.Add(3 * time.Hour),
			Length: 100, Done: 99},
	}
}

func TestRemoteLs(t *testing.T) {
	_, dir := fakeDaemon(t, lsTorrents()...)
	code, out, errOut := runCmd("ls", "--state-dir", dir)
	if code != exitOK {
		t.Fatalf("ls: %d %s", code, errOut)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 7 {
		t.Fatalf("ls printed %d lines:\n%s", len(lines), out)
	}
	for i, want := range [][]string{
		{"ID", "Done", "Have", "Size", "Down", "Up", "Peers", "State", "Name"},
		{"abcd1111", "25%", "1.0 MiB", "4.0 MiB", "2.0 KiB/s", "512 B/s", "3", "downloading", "first.iso"},
		{"abcd2222", "100%", "1.0 MiB", "1.0 MiB", "-", "-", "1", "seeding", `evil\x1b]0;pwned\a\u202ename\tx`},
		{"ef013333", "n/a", "0 B", "?", "-", "-", "0", "metadata", "magnet only"},
		{"ef024444", "99%", "99 B", "100 B", "-", "-", "0", "error", "broken"},
		{"Sum:", "2.0 MiB", "5.0 MiB", "2.0 KiB/s", "512 B/s", "4 torrents"},
		{"ef024444:", `disk full\x1b[2J`},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("line %d %q lacks %q", i, lines[i], w)
			}
		}
	}
	if strings.ContainsAny(out, "\x1b\x07\u202e\t") {
		t.Fatalf("ls printed a control character: %q", out)
	}

	code, out, _ = runCmd("ls", "--json", "--state-dir", dir)
	var l struct{ Torrents []api.Torrent }
	if code != exitOK || json.Unmarshal([]byte(out), &l) != nil || len(l.Torrents) != 4 {
		t.Fatalf("ls --json: %d %q", code, out)
	}

	_, empty := fakeDaemon(t)
	code, out, _ = runCmd("ls", "--state-dir", empty)
	if code != exitOK || !strings.Contains(out, "0 torrents") {
		t.Fatalf("ls of none: %d %q", code, out)
	}
	code, out, _ = runCmd("ls", "--json", "--state-dir", empty)
	if code != exitOK || strings.TrimSpace(out) != `{"torrents":[]}` {
		t.Fatalf("ls --json of none: %d %q", code, out)
	}
}

func TestRemoteRmPauseResume(t *testing.T) {
	b, dir := fakeDaemon(t, lsTorrents()...)
	first, second := ihOf(t, "abcd"+strings.Repeat("1", 36)), ihOf(t, "abcd"+strings.Repeat("2", 36))
	third, fourth := ihOf(t, "ef01"+strings.Repeat("3", 36)), ihOf(t, "ef02"+strings.Repeat("4", 36))

	// Ambiguous: both matches listed, nothing done, even to the
	// unambiguous argument beside it.
	code, _, errOut := runCmd("pause", "--state-dir", dir, "ef01", "abcd")
	if code != exitFailure || !strings.Contains(errOut, "abcd is ambiguous") || !strings.Contains(errOut, first.String()) ||
		!strings.Contains(errOut, second.String()) || !strings.Contains(errOut, "first.iso") {
		t.Fatalf("ambiguous pause: exit %d, %q", code, errOut)
	}
	if tt, _ := b.Torrent(third); tt.State == api.StatePaused {
		t.Fatal("a pause with an ambiguous argument paused another")
	}
	for _, bad := range []string{"abc", "xyz1", strings.Repeat("a", 41), "-1"} {
		if code, _, _ := runCmd("pause", "--state-dir", dir, bad); code != exitUsage {
			t.Errorf("pause %q: exit %d, want %d", bad, code, exitUsage)
		}
	}
	if code, _, errOut := runCmd("pause", "--state-dir", dir, "ffff"); code != exitFailure || !strings.Contains(errOut, "ffff: no such torrent") {
		t.Fatalf("pause of none: exit %d, %q", code, errOut)
	}

	code, out, errOut := runCmd("pause", "--state-dir", dir, "ABCD1", "ef01"+strings.Repeat("3", 36))
	if code != exitOK || !strings.Contains(out, first.String()+"  first.iso  paused") {
		t.Fatalf("pause: exit %d, %q %q", code, out, errOut)
	}
	for _, ih := range []metadata.InfoHash{first, third} {
		if tt, _ := b.Torrent(ih); tt.State != api.StatePaused {
			t.Fatalf("%s is %s", ih, tt.State)
		}
	}
	if code, out, errOut := runCmd("resume", "abcd1", "--state-dir", dir); code != exitOK || !strings.Contains(out, "resumed") {
		t.Fatalf("resume: exit %d, %q %q", code, out, errOut)
	}
	if tt, _ := b.Torrent(first); tt.State != api.StateDownloading {
		t.Fatalf("after resume: %s", tt.State)
	}

	if code, out, errOut := runCmd("rm", "--state-dir", dir, "abcd2"); code != exitOK || !strings.Contains(out, "data kept") {
		t.Fatalf("rm: exit %d, %q %q", code, out, errOut)
	}
	if code, out, errOut := runCmd("rm", "ef02", "--delete-data", "--state-dir", dir); code != exitOK || !strings.Contains(out, "deleted its data") {
		t.Fatalf("rm --delete-data: exit %d, %q %q", code, out, errOut)
	}
	if del, ok := b.Removed[second]; !ok || del {
		t.Fatalf("rm: %v", b.Removed)
	}
	if del, ok := b.Removed[fourth]; !ok || !del {
		t.Fatalf("rm --delete-data: %v", b.Removed)
	}
	// Now unambiguous.
	if code, _, errOut := runCmd("rm", "--state-dir", dir, "abcd"); code != exitOK {
		t.Fatalf("rm abcd: exit %d, %q", code, errOut)
	}
	if code, _, errOut := runCmd("rm", "--state-dir", dir, "abcd"); code != exitFailure || !strings.Contains(errOut, "no such torrent") {
		t.Fatalf("rm of a removed one: exit %d, %q", code, errOut)
	}
}

// TestRemoteAddTooBig: a .torrent the API would not carry is refused
// before it is read whole.
func TestRemoteAddTooBig(t *testing.T) {
	b, dir := fakeDaemon(t)
	big := filepath.Join(t.TempDir(), "big.torrent")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(api.MaxTorrentBytes + 1); err != nil { // sparse
		t.Fatal(err)
	}
	f.Close()
	code, _, errOut := runCmd("add", "--state-dir", dir, big)
	if code != exitBadInput || !strings.Contains(errOut, "more than the API carries") || len(b.Adds) != 0 {
		t.Fatalf("add of a big .torrent: exit %d, %q", code, errOut)
	}
}

// FuzzLsTable: whatever an impostor on the daemon's port lists, node ls
// prints it without a control character reaching the terminal.
func FuzzLsTable(f *testing.F) {
	b, _ := json.Marshal(lsTorrents())
	f.Add(b)
	f.Add([]byte(`[{"info_hash":"\u001b[2J","name":"\u202e","length":-5,"done":9223372036854775807,"down_rate":1e308,"up_rate":-1,"peers":-3,"state":"\u0007","error":"\u0000"}]`))
	f.Add([]byte(`[{"length":1,"done":-9223372036854775808,"added_at":"0001-01-01T00:00:00Z"}]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var ts []api.Torrent
		if json.Unmarshal(body, &ts) != nil {
			return
		}
		var out strings.Builder
		writeTable(&out, ts)
		for _, r := range out.String() {
			if r != '\n' && unsafeRune(r) {
				t.Fatalf("ls printed %q", r)
			}
		}
	})
}

// TestRemoteUnspecifiedAddr: a daemon started with --api 0.0.0.0:PORT
// records 127.0.0.1:PORT, and node ls reaches it; an older api-addr that
// still says 0.0.0.0, or --api 0.0.0.0:PORT, works too.
func TestRemoteUnspecifiedAddr(t *testing.T) {
	_, dir := fakeDaemon(t, api.Torrent{InfoHash: strings.Repeat("ab", 20), Name: "one"})
	addr, err := api.ReadAddr(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(addr)
	unspec := net.JoinHostPort("0.0.0.0", port)
	if err := api.WriteAddr(dir, unspec); err != nil {
		t.Fatal(err)
	}
	if got, _ := api.ReadAddr(dir); got != addr {
		t.Fatalf("api-addr for %s: %q, want %q", unspec, got, addr)
	}
	if code, out, errOut := runCmd("ls", "--state-dir", dir); code != exitOK || !strings.Contains(out, "one") {
		t.Fatalf("ls: exit %d, %q, %q", code, out, errOut)
	}
	if err := os.WriteFile(filepath.Join(dir, api.AddrFile), []byte(unspec+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCmd("ls", "--state-dir", dir); code != exitOK || !strings.Contains(out, "one") {
		t.Fatalf("ls with %s in api-addr: exit %d, %q, %q", unspec, code, out, errOut)
	}
	if code, out, errOut := runCmd("ls", "--state-dir", dir, "--api", unspec); code != exitOK || !strings.Contains(out, "one") {
		t.Fatalf("ls --api %s: exit %d, %q, %q", unspec, code, out, errOut)
	}
}
