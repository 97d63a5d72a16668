package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"node/cmd/node/api"
	"node/dht"
	"node/internal/peertest"
	tu "node/internal/testutil"
	"node/internal/testutil/promtest"
	"node/internal/testutil/swarmtest"
	"node/metadata"
	"node/peer"
	"node/peer/utp"
	"node/peer/wire"
)

// Two torrents added to one node daemon are announced on one port, the
// DHT's, and peers that find it there fetch both from the daemon's
// seeding: one over TCP, the other over uTP when the binary has it. The
// metrics count the connections the port routed, and the page's login
// URL printed at start logs a browser in.
func TestDaemonOnePortManyTorrents(t *testing.T) {
	bin := nodeBinary(t)
	boot := startNetwork(t, 184, 6)
	dir := t.TempDir()
	writeContent(t, filepath.Join(dir, "one"), map[string]int{"a.bin": 1<<20 + 7})
	writeContent(t, filepath.Join(dir, "two"), map[string]int{"b.bin": 900 << 10, "c/d.bin": 3000})
	var mis []*metadata.MetaInfo
	for _, name := range []string{"one", "two"} {
		mi, err := metadata.Create(filepath.Join(dir, name), metadata.CreateOptions{PieceLength: 64 << 10})
		if err != nil {
			t.Fatal(err)
		}
		mis = append(mis, mi)
	}
	state := t.TempDir()
	p := startDaemonProc(t, bin, state, "--listen", "127.0.184.100:0", "--bootstrap", boot, "--dir", dir)
	checkLogin(t, p)
	for _, mi := range mis {
		b, err := mi.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		var added api.Torrent
		if code := p.call("POST", "/api/v1/torrents", api.AddRequest{Torrent: b}, &added); code != http.StatusCreated {
			t.Fatalf("add: %d %+v", code, added)
		}
	}
	for _, mi := range mis {
		tu.WaitFor(t, 30*time.Second, "seeding", func() bool { return p.torrent(mi.Info.InfoHash).State == api.StateSeeding })
	}
	var st api.DHTStatus
	if code := p.call("GET", "/api/v1/dht", nil, &st); code != http.StatusOK {
		t.Fatalf("dht: %d", code)
	}
	dhtAddr := netip.MustParseAddrPort(st.Addr)

	// What a peer learns from the DHT: the daemon at its DHT port, for
	// both torrents.
	pc, err := net.ListenPacket("udp4", "127.0.184.60:0")
	if err != nil {
		t.Fatal(err)
	}
	n, err := dht.New(dht.Config{Conn: pc, Bootstrap: []string{boot}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := n.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	for _, mi := range mis {
		if seen, err := peertest.WaitAnnounced(ctx, n, mi.Info.InfoHash, dhtAddr, 20*time.Second); err != nil {
			t.Fatalf("%v (seen %v)\n%s", err, seen, p.Stderr.String())
		}
	}

	// Strangers on the port: junk, and a handshake for a torrent the
	// daemon does not have. Each is turned away and counted; the
	// torrents' peers below are served all the same.
	junk, err := net.Dial("tcp4", dhtAddr.String())
	if err != nil {
		t.Fatal(err)
	}
	_, _ = junk.Write(bytes.Repeat([]byte{0xff}, 600))
	junk.Close()
	stranger, err := net.Dial("tcp4", dhtAddr.String())
	if err != nil {
		t.Fatal(err)
	}
	hs := wire.Handshake{Reserved: wire.DefaultReserved(), InfoHash: [20]byte{1, 2, 3}, PeerID: [20]byte{'-', 'X', 'X'}}
	_, _ = stranger.Write(hs.Append(nil))
	if _, err := io.ReadAll(stranger); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the stranger's connection: %v", err)
	}
	stranger.Close()
	tu.WaitFor(t, 20*time.Second, "the strangers counted", func() bool {
		m := promtest.Scrape(t, p.url+"/metrics", p.token)
		return m.Value("node_incoming_connections_total", "outcome=handshake_failed") >= 1 && m.Value("node_incoming_connections_total", "outcome=unknown_torrent") >= 1
	})

	refuse := func(context.Context, netip.AddrPort) (net.Conn, error) {
		return nil, errors.New("TCP is off in this test")
	}
	var leeches []*peer.Torrent
	var dsts []string
	for i, mi := range mis {
		dsts = append(dsts, t.TempDir())
		cfg := peer.Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: dsts[i], Peers: []netip.AddrPort{dhtAddr}}
		if i == 1 && utp.Available {
			s, err := utp.Listen("udp4", "127.0.184.61:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			cfg.UTPDial, cfg.Dial = s.Dial, refuse
		}
		leeches = append(leeches, swarmtest.Run(t, cfg))
	}
	for i, l := range leeches {
		select {
		case <-l.Done():
		case <-time.After(60 * time.Second):
			t.Fatalf("leecher %d did not complete\n%s", i, p.Stderr.String())
		}
		sameFiles(t, filepath.Join(dir, mis[i].Info.Name), filepath.Join(dsts[i], mis[i].Info.Name))
	}
	if utp.Available {
		s, err := leeches[1].Stats(ctx)
		if err != nil || s.UTPConns == 0 || s.TCPConns != 0 {
			t.Fatalf("the uTP leecher's connections: tcp %d utp %d (%v)", s.TCPConns, s.UTPConns, err)
		}
	}
	m := promtest.Scrape(t, p.url+"/metrics", p.token)
	if routed := m.Value("node_incoming_connections_total", "outcome=routed"); routed < 2 {
		t.Fatalf("routed %v incoming connections, want 2 or more", routed)
	}
	if acc := m.Value("node_incoming_connections_accepted_total"); acc < 2 {
		t.Fatalf("accepted %v incoming connections", acc)
	}
	p.stop()
}

// checkLogin: the daemon prints the page's one-time login URL (on
// stderr, not in its log: the code is there once) and the metrics URL,
// never the token; the page loads without a login, and the URL's code
// buys one session, once.
func checkLogin(t *testing.T, p *daemonProc) {
	t.Helper()
	re := regexp.MustCompile(`web page: ` + regexp.QuoteMeta(p.url) + `/#login=([0-9a-f]+) \(`)
	var code string
	tu.WaitFor(t, 10*time.Second, "the login URL on stderr", func() bool {
		m := re.FindStringSubmatch(p.Stderr.String())
		if m != nil {
			code = m[1]
		}
		return m != nil
	})
	out := p.Stderr.String()
	if want := "metrics: " + p.url + "/metrics (Authorization: Bearer token)"; !strings.Contains(out, want) {
		t.Fatalf("no %q on stderr:\n%s", want, out)
	}
	if n := strings.Count(out, code); n != 1 {
		t.Errorf("the login code is %d times on stderr, want once (the printed URL, not the log):\n%s", n, out)
	}
	if strings.Contains(out, p.token) {
		t.Errorf("the token is on stderr:\n%s", out)
	}
	resp, err := http.Get(p.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("the page: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	body, _ := json.Marshal(map[string]string{"code": code})
	resp, err = http.Post(p.url+api.SessionPath, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var sess struct{ Session string }
	err = json.NewDecoder(resp.Body).Decode(&sess)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err != nil || sess.Session == "" {
		t.Fatalf("login: %s, %v", resp.Status, err)
	}
	req, _ := http.NewRequest("GET", p.url+"/api/v1/torrents", nil)
	req.Header.Set("Authorization", "Bearer "+sess.Session)
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the API with the session: %s", resp.Status)
	}
	if code := redeem(t, p.url, code); code != http.StatusUnauthorized {
		t.Fatalf("the login code a second time: HTTP %d, want 401", code)
	}
}
