package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/bencode"

	"node/dht"
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

	router, err := net.ListenPacket("udp4", "127.0.73.200:0")
	if err != nil {
		t.Fatal(err)
	}
	defer router.Close()
	// The router counts what it reads until a marker from the test
	// itself: the socket's queue is in arrival order, so by the marker
	// it has read everything the run sent it.
	marker, err := net.ListenPacket("udp4", "127.0.73.201:0")
	if err != nil {
		t.Fatal(err)
	}
	defer marker.Close()
	heard := make(chan int, 1)
	go func() {
		n := 0
		buf := make([]byte, 2048)
		for {
			_, from, err := router.ReadFrom(buf)
			if err != nil {
				return
			}
			if from.String() == marker.LocalAddr().String() {
				heard <- n
				return
			}
			n++
		}
	}()
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
	if _, err := marker.WriteTo([]byte("end"), router.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if n := <-heard; n != 0 {
		t.Fatalf("a warm run sent the default routers %d packets", n)
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
