package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"node/cmd/node/api"
	tu "node/internal/testutil"
	"node/metadata"
)

// daemonProc is node daemon run as a program, and its API.
type daemonProc struct {
	*tu.Proc
	t     *testing.T
	state string
	url   string
	token string
}

func startDaemonProc(t *testing.T, bin, state string, args ...string) *daemonProc {
	t.Helper()
	os.Remove(filepath.Join(state, api.AddrFile)) // a kill leaves the last run's
	cmd := exec.Command(bin, append([]string{"daemon", "--no-port-mapping", "--state-dir", state, "--api", "127.0.0.1:0"}, args...)...)
	p := &daemonProc{Proc: tu.StartProc(t, "node daemon", cmd, tu.ProcOptions{}), t: t, state: state}
	tu.WaitFor(t, 20*time.Second, "the daemon's API address", func() bool {
		b, err := os.ReadFile(filepath.Join(state, api.AddrFile))
		if err != nil {
			select {
			case <-p.Done():
				t.Fatalf("the daemon exited: %v", p.Err())
			default:
			}
			return false
		}
		p.url = "http://" + strings.TrimSpace(string(b))
		return true
	})
	b, err := os.ReadFile(filepath.Join(state, api.TokenFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(state, api.TokenFile)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v", fi.Mode())
	}
	p.token = strings.TrimSpace(string(b))
	return p
}

// call sends a request to the API and decodes its JSON answer into out.
func (p *daemonProc) call(method, path string, in, out any) int {
	p.t.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, p.url+path, body)
	req.Header.Set("Authorization", "Bearer "+p.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

func (p *daemonProc) torrent(ih metadata.InfoHash) api.TorrentDetail {
	p.t.Helper()
	var td api.TorrentDetail
	if code := p.call("GET", "/api/v1/torrents/"+hex.EncodeToString(ih[:]), nil, &td); code != http.StatusOK {
		p.t.Fatalf("GET torrent: %d", code)
	}
	return td
}

// stop ends the daemon with SIGTERM and wants it to exit cleanly.
func (p *daemonProc) stop() {
	p.t.Helper()
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	p.ExitsOK(p.t, 30*time.Second)
	if _, err := os.Stat(filepath.Join(p.state, api.AddrFile)); !os.IsNotExist(err) {
		p.t.Fatalf("%s stays after a clean stop: %v", api.AddrFile, err)
	}
}

// node daemon killed with SIGKILL half-way through a download comes back
// with its torrent, the same DHT node ID, and fetches only what was not
// verified before the kill.
func TestDaemonSurvivesSIGKILL(t *testing.T) {
	bin := nodeBinary(t)
	boot := startNetwork(t, 179, 6)
	src := t.TempDir()
	writeContent(t, filepath.Join(src, "big"), map[string]int{"a.bin": 5 << 20, "sub/b.bin": 3<<20 + 12345})
	mi, err := metadata.Create(filepath.Join(src, "big"), metadata.CreateOptions{PieceLength: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	seedInProcess(t, "127.0.179.50", boot, mi, src, 2<<20)
	state, dst := t.TempDir(), t.TempDir()
	args := []string{"--listen", "127.0.179.100:0", "--bootstrap", boot, "--dir", dst}
	ih := mi.Info.InfoHash

	p := startDaemonProc(t, bin, state, args...)
	var added api.Torrent
	if code := p.call("POST", "/api/v1/torrents", api.AddRequest{Magnet: mi.Info.Magnet()}, &added); code != http.StatusCreated {
		t.Fatalf("add: %d %+v", code, added)
	}
	var st api.DHTStatus
	if code := p.call("GET", "/api/v1/dht", nil, &st); code != http.StatusOK || len(st.ID) != 40 {
		t.Fatalf("dht: %d %+v", code, st)
	}
	var before api.TorrentDetail
	tu.WaitFor(t, 60*time.Second, "a third of the download", func() bool {
		before = p.torrent(ih)
		return before.Length > 0 && before.Done*3 >= before.Length
	})
	if before.Done == before.Length {
		t.Fatalf("complete before the kill: %+v", before.Torrent)
	}
	p.Stop(nil, 0) // SIGKILL
	if id := hex.EncodeToString([]byte(savedID(t, state))); id != st.ID {
		t.Fatalf("saved DHT ID %s, the daemon ran as %s", id, st.ID)
	}
	if _, err := os.Stat(filepath.Join(state, "torrents", hex.EncodeToString(ih[:])+".torrent")); err != nil {
		t.Fatalf("the metadata was not kept: %v", err)
	}
	base := savedDownloaded(t, state, ih)

	p = startDaemonProc(t, bin, state, args...)
	var st2 api.DHTStatus
	if p.call("GET", "/api/v1/dht", nil, &st2); st2.ID != st.ID {
		t.Fatalf("DHT ID %s after the restart, was %s", st2.ID, st.ID)
	}
	after := p.torrent(ih)
	if after.Dir != dst || !after.AddedAt.Equal(added.AddedAt) || after.Length != mi.Info.Length {
		t.Fatalf("after the restart %+v", after.Torrent)
	}
	var done api.TorrentDetail
	tu.WaitFor(t, 60*time.Second, "the download to complete", func() bool {
		done = p.torrent(ih)
		return done.State == api.StateSeeding && done.Downloaded >= base
	})
	sameFiles(t, filepath.Join(src, "big"), filepath.Join(dst, "big"))
	// The second session's bytes: the totals less those saved before the
	// kill (saved counts may lag, which only makes this larger).
	session := done.Downloaded - base
	missing := mi.Info.Length - before.Done
	if session > missing+2*mi.Info.PieceLength {
		t.Fatalf("after the restart, fetched %d bytes for at most %d missing", session, missing)
	}
	t.Logf("killed at %d of %d bytes verified; the restart fetched %d bytes", before.Done, mi.Info.Length, session)
	p.stop()
	if id := hex.EncodeToString([]byte(savedID(t, state))); id != st.ID {
		t.Fatalf("saved DHT ID %s after the second run, want %s", id, st.ID)
	}
}

// savedDownloaded is the torrents file's download total for ih.
func savedDownloaded(t *testing.T, state string, ih metadata.InfoHash) int64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(state, "torrents.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sf struct {
		Torrents []struct {
			InfoHash   string `json:"info_hash"`
			Downloaded int64  `json:"downloaded"`
		} `json:"torrents"`
	}
	if err := json.Unmarshal(b, &sf); err != nil {
		t.Fatal(err)
	}
	for _, r := range sf.Torrents {
		if r.InfoHash == hex.EncodeToString(ih[:]) {
			return r.Downloaded
		}
	}
	t.Fatalf("%s not in the torrents file:\n%s", ih, b)
	return 0
}

// Without a state directory the token is printed, and bad flags are
// usage errors.
func TestDaemonFlags(t *testing.T) {
	for _, args := range [][]string{
		{"daemon", "--max-active-downloads", "0"},
		{"daemon", "--seed-ratio", "-1"},
		{"daemon", "--listen", "none"},
		{"daemon", "extra"},
	} {
		if code, _, _ := runCmd(args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
	if tok := newToken(); len(tok) != 2*api.TokenBytes || tok == newToken() {
		t.Fatalf("token %q", tok)
	}
}
