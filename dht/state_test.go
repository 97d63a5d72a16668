package dht

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"node/routing"
)

func TestStateWarmRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	const saverIdx = 3
	i := 0
	nodes := startOurs(t, 32, 10, nil, func(c *Config) {
		if i == saverIdx {
			c.StateDir = dir
		}
		i++
	})
	bootstrapAll(t, ctx, nodes)
	saver := nodes[saverIdx]
	id := saver.ID()
	if es, err := saver.Entries(ctx); err != nil || len(es) < 5 {
		t.Fatalf("before saving: %d entries (%v); the network is too small for this test", len(es), err)
	}
	if _, err := os.Stat(filepath.Join(dir, stateFile)); err == nil {
		t.Fatal("state saved before Close or the save interval")
	}
	if err := saver.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	if _, err := os.Stat(filepath.Join(dir, stateFile)); err != nil {
		t.Fatalf("no state file after Close: %v", err)
	}
	st, err := loadState(dir)
	if err != nil || st == nil {
		t.Fatalf("loadState: %v, %v", st, err)
	}
	if st.ID != id {
		t.Fatalf("saved ID %v, want %v", st.ID, id)
	}
	known := map[routing.Contact]bool{}
	for _, n := range nodes {
		known[routing.Contact{ID: n.ID(), Addr: n.Addr()}] = true
	}
	cs := st.contacts()
	if len(cs) < 5 {
		t.Fatalf("saved %d nodes, want at least 5", len(cs))
	}
	for _, c := range cs {
		if !known[c] || c.ID == id {
			t.Fatalf("saved contact %v is not one of the other nodes", c)
		}
	}
	if len(st.Nodes6) != 0 {
		t.Fatalf("IPv6 nodes saved from an IPv4 network: %v", st.Nodes6)
	}

	n2, err := New(Config{Conn: listenLoopback(t, 32, 20), StateDir: dir, QueryTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n2.Close() })
	if n2.ID() != id {
		t.Fatalf("restarted with ID %v, want the saved %v", n2.ID(), id)
	}
	got, err := n2.Bootstrap(ctx)
	if err != nil {
		t.Fatalf("bootstrap from saved nodes only: %v", err)
	}
	if got < 5 {
		t.Fatalf("table of %d nodes after a warm bootstrap, want at least 5", got)
	}
	s, err := n2.Stats(ctx)
	if err != nil || s.Nodes < 5 {
		t.Fatalf("stats %+v, %v", s, err)
	}
}

func TestStateSaveSkipsBadAndKeepsFamilies(t *testing.T) {
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(32, 1))
	self := routing.RandomID(r)
	now := time.Now()
	c4 := routing.Contact{ID: routing.RandomID(r), Addr: netip.MustParseAddrPort("127.0.32.50:6881")}
	c6 := routing.Contact{ID: routing.RandomID(r), Addr: netip.MustParseAddrPort("[2001:db8::1]:6882")}
	mapped := routing.Contact{ID: routing.RandomID(r), Addr: netip.AddrPortFrom(netip.AddrFrom16(netip.MustParseAddr("127.0.32.51").As16()), 6883)}
	bad := routing.Contact{ID: routing.RandomID(r), Addr: netip.MustParseAddrPort("127.0.32.52:6884")}
	es := []routing.Entry{
		{Contact: c4, LastResponse: now},
		{Contact: c6, LastResponse: now},
		{Contact: mapped}, // questionable: never answered, still worth keeping
		{Contact: bad, LastResponse: now, Failures: 5},
	}
	if err := saveState(dir, newSavedState(self, es, time.Now())); err != nil {
		t.Fatal(err)
	}
	st, err := loadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.ID != self {
		t.Fatalf("ID %v, want %v", st.ID, self)
	}
	want4 := []routing.Contact{c4, {ID: mapped.ID, Addr: netip.AddrPortFrom(mapped.Addr.Addr().Unmap(), mapped.Addr.Port())}}
	if !slices.Equal([]routing.Contact(st.Nodes), want4) {
		t.Fatalf("nodes %v, want %v", st.Nodes, want4)
	}
	if !slices.Equal([]routing.Contact(st.Nodes6), []routing.Contact{c6}) {
		t.Fatalf("nodes6 %v, want %v", st.Nodes6, c6)
	}
	// No temporary file is left behind.
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != stateFile {
		t.Fatalf("directory holds %v, want only %s", ents, stateFile)
	}

	if st, err := loadState(t.TempDir()); st != nil || err != nil {
		t.Fatalf("missing file: %v, %v; want nil, nil", st, err)
	}
	if st, err := loadState(""); st != nil || err != nil {
		t.Fatalf("no directory: %v, %v; want nil, nil", st, err)
	}
	n := startNode(t, 32, 21, nil)
	if err := n.Save(); err == nil {
		t.Fatal("Save without a StateDir succeeded")
	}
}

func TestStateCorruptFileIgnored(t *testing.T) {
	r := rand.New(rand.NewPCG(32, 2))
	savedID := routing.RandomID(r)
	goodDir := t.TempDir()
	if err := saveState(goodDir, newSavedState(savedID, []routing.Entry{{Contact: routing.Contact{ID: routing.RandomID(r), Addr: netip.MustParseAddrPort("127.0.32.60:1")}}}, time.Now())); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join(goodDir, stateFile))
	if err != nil {
		t.Fatal(err)
	}
	garbage := make([]byte, 4096)
	for i := range garbage {
		garbage[i] = byte(r.Uint32())
	}
	cases := map[string][]byte{
		"garbage":        garbage,
		"empty":          nil,
		"truncated":      good[:len(good)-3],
		"trailing bytes": append(append([]byte(nil), good...), "xyz"...),
		"short id":       []byte("d2:id19:" + strings.Repeat("a", 19) + "e"),
		"bad nodes":      []byte("d2:id20:" + strings.Repeat("a", 20) + "5:nodes25:" + strings.Repeat("b", 25) + "e"),
		"list":           []byte("li1ei2ee"),
		"deep":           []byte(strings.Repeat("l", 10000) + strings.Repeat("e", 10000)),
		"huge string":    []byte("d2:id20:" + strings.Repeat("a", 20) + "5:nodes999999999:e"),
	}
	host := 30
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, stateFile), b, 0o644); err != nil {
				t.Fatal(err)
			}
			if st, err := loadState(dir); err == nil {
				t.Fatalf("loadState accepted it: %+v", st)
			}
			host++
			n, err := New(Config{Conn: listenLoopback(t, 32, host), StateDir: dir})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { n.Close() })
			if n.ID().IsZero() || n.ID() == savedID {
				t.Fatalf("ID %v, want a fresh random one", n.ID())
			}
			if len(n.seedsCopy()) != 0 {
				t.Fatalf("seeds from a corrupt file: %v", n.seedsCopy())
			}
			// Close replaces the corrupt file with a good one.
			if err := n.Close(); err != nil {
				t.Fatal(err)
			}
			st, err := loadState(dir)
			if err != nil || st == nil || st.ID != n.ID() {
				t.Fatalf("after Close: %+v, %v; want the new ID %v", st, err, n.ID())
			}
		})
	}
}

func TestStateTooLarge(t *testing.T) {
	r := rand.New(rand.NewPCG(32, 3))
	// Valid files just under and just over 1 MiB.
	mk := func(count int) (string, routing.ID) {
		t.Helper()
		dir := t.TempDir()
		id := routing.RandomID(r)
		es := make([]routing.Entry, count)
		for i := range es {
			es[i] = routing.Entry{Contact: routing.Contact{
				ID:   routing.RandomID(r),
				Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 6881),
			}}
		}
		if err := saveState(dir, newSavedState(id, es, time.Now())); err != nil {
			t.Fatal(err)
		}
		return dir, id
	}
	under, underID := mk(40000) // ~1.04 MB
	over, overID := mk(41000)   // ~1.07 MB
	fi, err := os.Stat(filepath.Join(over, stateFile))
	if err != nil || fi.Size() <= maxStateSize {
		t.Fatalf("test setup: %v, %v", fi, err)
	}
	if st, err := loadState(under); err != nil || st.ID != underID || len(st.Nodes) != 40000 {
		t.Fatalf("file under the limit: %v", err)
	}
	st, err := loadState(over)
	if err == nil {
		t.Fatalf("a %d-byte file was accepted (%d nodes)", fi.Size(), len(st.Nodes))
	}
	if !strings.Contains(err.Error(), "too large") {
		t.Errorf("error %q does not say why", err)
	}
	n, err := New(Config{Conn: listenLoopback(t, 32, 22), StateDir: over})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if n.ID() == overID || n.ID().IsZero() {
		t.Fatalf("ID %v taken from an oversized file", n.ID())
	}
	if len(n.seedsCopy()) != 0 {
		t.Fatal("seeds taken from an oversized file")
	}
}
