package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/bencode"

	"node/dht"
	"node/metadata"
)

func TestDefaultStateDir(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", "/var/xdg")
	t.Setenv("HOME", "/home/u")
	if got := defaultStateDir(); got != "/var/xdg/node" {
		t.Fatalf("with XDG_STATE_HOME: %q", got)
	}
	// The XDG rules: a relative path is ignored.
	t.Setenv("XDG_STATE_HOME", "rel")
	if got := defaultStateDir(); got != "/home/u/.local/state/node" {
		t.Fatalf("with a relative XDG_STATE_HOME: %q", got)
	}
	t.Setenv("XDG_STATE_HOME", "")
	t.Setenv("HOME", "")
	if got := defaultStateDir(); got != "" {
		t.Fatalf("with no home: %q", got)
	}
}

// A second run on the same state directory keeps its node ID and rejoins
// through the nodes it saved: the default routers (a mute socket here,
// standing in for the public ones) hear nothing from it.
func TestSecondRunIsWarm(t *testing.T) {
	boot := startNetwork(t, 73, 20)
	dir := t.TempDir()
	ih := strings.Repeat("ef", 20)
	if code, _, errOut := runCmd("peers", "--state-dir", dir, "--listen", "127.0.73.100:0", "--listen6", "none",
		"--bootstrap", boot, "--announce", "7300", "--timeout", "20s", ih); code != exitOK {
		t.Fatalf("first run: exit %d\n%s", code, errOut)
	}
	id := savedID(t, dir)

	router, heard := muteSocket(t, "127.0.73.200")
	defer func(old []string) { dht.PublicRouters = old }(dht.PublicRouters)
	dht.PublicRouters = []string{router.LocalAddr().String()}

	code, out, errOut := runCmd("peers", "--state-dir", dir, "--listen", "127.0.73.101:0", "--listen6", "none",
		"--timeout", "20s", ih)
	if code != exitOK || strings.TrimSpace(out) != "127.0.73.100:7300" {
		t.Fatalf("second run: exit %d, stdout %q\n%s", code, out, errOut)
	}
	if got := savedID(t, dir); got != id {
		t.Fatalf("the second run saved ID %x, want the first's %x", got, id)
	}
	if n := heard(); n != 0 {
		t.Fatalf("a warm run sent the default routers %d packets", n)
	}
}

// A .torrent's nodes may be the only way to its swarm: a warm start asks
// them all the same, where it leaves the public routers alone.
func TestWarmFetchAsksTorrentNodes(t *testing.T) {
	boot := startNetwork(t, 74, 20)
	dir := t.TempDir()
	ih := strings.Repeat("ab", 20)
	if code, _, errOut := runCmd("peers", "--state-dir", dir, "--listen", "127.0.74.100:0", "--listen6", "none",
		"--bootstrap", boot, "--timeout", "20s", ih); code != exitNoPeers {
		t.Fatalf("first run: exit %d\n%s", code, errOut)
	}
	node, heard := muteSocket(t, "127.0.74.200")
	src := t.TempDir()
	writeContent(t, filepath.Join(src, "x"), map[string]int{"a": 1000})
	mi, err := metadata.Create(filepath.Join(src, "x"), metadata.CreateOptions{PieceLength: 16 << 10,
		Nodes: []string{node.LocalAddr().String()}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := mi.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	tor := filepath.Join(t.TempDir(), "x.torrent")
	if err := os.WriteFile(tor, b, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCmd("fetch", "--no-port-mapping", "--state-dir", dir, "--no-utp", "--no-seed",
		"--listen", "127.0.74.101:0", "--listen6", "none", "--dir", t.TempDir(), "--timeout", "3s", tor)
	if code != exitNoPeers {
		t.Fatalf("fetch: exit %d, want %d (nobody has it)\n%s", code, exitNoPeers, errOut)
	}
	if n := heard(); n == 0 {
		t.Fatal("a warm fetch never asked the torrent's own node")
	}
}

// muteSocket is a UDP socket that reads and never answers. heard says how
// many datagrams it read from others, once it has read a marker of the
// test's own: the socket's queue is in arrival order, so by then it has
// read everything sent before the call.
func muteSocket(t *testing.T, ip string) (net.PacketConn, func() int) {
	t.Helper()
	pc, err := net.ListenPacket("udp4", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	marker, err := net.ListenPacket("udp4", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { marker.Close() })
	count := make(chan int, 1)
	go func() {
		n := 0
		buf := make([]byte, 2048)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if from.String() == marker.LocalAddr().String() {
				count <- n
				return
			}
			n++
		}
	}()
	return pc, func() int {
		if _, err := marker.WriteTo([]byte("end"), pc.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		return <-count
	}
}

func savedID(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "dht.dat"))
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		ID string `bencode:"id"`
	}
	if err := bencode.Unmarshal(b, &st); err != nil || len(st.ID) != 20 {
		t.Fatalf("state file: %v (id %q)", err, st.ID)
	}
	return st.ID
}
