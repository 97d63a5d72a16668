package api_test

import (
	"context"
	"encoding/binary"
	"os"
	"strconv"
	"strings"
	"testing"

	"node/cmd/node/api"
)

// TestClientChecksRealListener: on Linux the kernel's own table lists our
// server's socket, listening, under our uid, and the client, which reads
// it, talks to the server.
func TestClientChecksRealListener(t *testing.T) {
	s := start(t, fakeWithOne())
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	socks, err := api.ScanProcNet(f, binary.NativeEndian)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	want := s.Addr().String() + " 0A "
	found := false
	for _, l := range socks {
		if strings.HasPrefix(l, want) {
			found = true
			if l != want+strconv.Itoa(os.Getuid()) {
				t.Fatalf("our listener is %q, want uid %d", l, os.Getuid())
			}
		}
	}
	if !found {
		t.Fatalf("no %q among %d sockets", want, len(socks))
	}
	c := client(s, testToken)
	defer c.Close()
	if _, err := c.List(context.Background()); err != nil {
		t.Fatal(err)
	}
}
