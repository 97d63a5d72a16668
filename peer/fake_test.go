package peer

import (
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"node/metadata"
	"node/peer/wire"
)

// fakePeer is a scripted peer on a loopback address: after the handshake
// it runs script, then waits to see whether we hang up on it.
type fakePeer struct {
	addr     netip.AddrPort
	hungUp   chan struct{} // closed when we closed the connection
	accepted chan struct{}
}

func startFakePeer(t *testing.T, ip string, ih metadata.InfoHash, script func(c net.Conn)) *fakePeer {
	t.Helper()
	ln, err := net.Listen("tcp4", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	fp := &fakePeer{addr: addrOf(ln.Addr()), hungUp: make(chan struct{}), accepted: make(chan struct{})}
	done := make(chan struct{})
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	go func() {
		defer close(done)
		// A plaintext peer: an MSE opening (a dial in prefer mode) is
		// hung up on, and the plaintext dial that follows served.
		var c net.Conn
		for {
			var err error
			if c, err = ln.Accept(); err != nil {
				return
			}
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			var buf [wire.HandshakeLen]byte
			if _, err := io.ReadFull(c, buf[:]); err != nil {
				c.Close()
				return
			}
			if isPlainHandshake(buf[:]) {
				break
			}
			c.Close()
		}
		defer c.Close()
		close(fp.accepted)
		hs := wire.Handshake{Reserved: wire.DefaultReserved().WithFast(false), InfoHash: ih}
		copy(hs.PeerID[:], "-FAKE0-0123456789abc")
		if _, err := c.Write(hs.Append(nil)); err != nil {
			return
		}
		script(c)
		// Drain until we are hung up on.
		_, err = io.Copy(io.Discard, c)
		if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			close(fp.hungUp)
		}
	}()
	return fp
}

func (fp *fakePeer) waitHungUp(t *testing.T) {
	t.Helper()
	select {
	case <-fp.hungUp:
	case <-time.After(10 * time.Second):
		t.Fatal("the misbehaving peer was not disconnected")
	}
}

func send(c net.Conn, m *wire.Message) { _, _ = c.Write(m.Append(nil)) }

func extHandshake(metaSize int) *wire.Message {
	h := wire.ExtendedHandshake{M: map[string]int{wire.ExtMetadataName: 3}, MetadataSize: metaSize}
	p, _ := h.Append(nil)
	return &wire.Message{Type: wire.Extended, ExtendedID: 0, Payload: p}
}

// readMsgs reads messages from c, calling f for each, until f returns
// false or the connection fails.
func readMsgs(c net.Conn, f func(wire.Message) bool) {
	var lb [4]byte
	for {
		if _, err := io.ReadFull(c, lb[:]); err != nil {
			return
		}
		b := make([]byte, binary.BigEndian.Uint32(lb[:]))
		if _, err := io.ReadFull(c, b); err != nil {
			return
		}
		m, err := wire.ParseMessage(b)
		if err != nil || !f(m) {
			return
		}
	}
}

// A peer that breaks the protocol (a bitfield of the wrong length, a
// request or piece out of bounds or unasked, an over-long message, and
// the rest below) is dropped, and the download goes on with an honest
// seeder.
func TestMisbehavingPeersAreDropped(t *testing.T) {
	src := t.TempDir()
	mi := makeContent(t, src, "content", map[string]int{"f": 200_000, "g/h": 50_000}, 16<<10)
	info := mi.Info
	n := info.NumPieces()
	honestLn, err := net.Listen("tcp4", "127.0.72.1:0")
	if err != nil {
		t.Fatal(err)
	}
	runTorrent(t, Config{InfoHash: info.InfoHash, Info: info, Dir: src, Listener: honestLn})
	honest := addrOf(honestLn.Addr())

	withInfo := func(c net.Conn, script func()) { script() }
	cases := []struct {
		name   string
		magnet bool
		script func(c net.Conn)
	}{
		{"bitfield of the wrong length", false, func(c net.Conn) {
			send(c, &wire.Message{Type: wire.Bitfield, Bitfield: make([]byte, (n+7)/8+1)})
		}},
		{"request beyond the torrent", false, func(c net.Conn) {
			send(c, &wire.Message{Type: wire.Request, Index: uint32(n + 3), Begin: 0, Length: 16384})
		}},
		{"piece we did not ask for", false, func(c net.Conn) {
			send(c, &wire.Message{Type: wire.Piece, Index: 0, Begin: 0, Block: make([]byte, 16384)})
		}},
		{"message longer than the limit", false, func(c net.Conn) {
			var lb [4]byte
			binary.BigEndian.PutUint32(lb[:], 1<<24)
			_, _ = c.Write(lb[:])
		}},
		{"extended message with an unknown id", false, func(c net.Conn) {
			send(c, &wire.Message{Type: wire.Extended, ExtendedID: 77, Payload: []byte("de")})
		}},
		{"metadata_size 0", true, func(c net.Conn) { send(c, extHandshake(0)) }},
		{"metadata_size absurdly large", true, func(c net.Conn) { send(c, extHandshake(1<<30)) }},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fp := startFakePeer(t, "127.0.72.10", info.InfoHash, func(c net.Conn) { withInfo(c, func() { tc.script(c) }) })
			cfg := Config{InfoHash: info.InfoHash, Dir: t.TempDir(), Peers: []netip.AddrPort{fp.addr}}
			if !tc.magnet {
				cfg.Info = info
			}
			tor, _ := runTorrent(t, cfg)
			<-fp.accepted
			fp.waitHungUp(t)
			// Now the honest seeder: the download must still complete.
			_ = i
			cfg2 := cfg
			cfg2.Dir = t.TempDir()
			cfg2.Peers = []netip.AddrPort{fp.addr, honest}
			tor2, _ := runTorrent(t, cfg2)
			_ = tor
			waitDone(t, tor2, 20*time.Second)
			sameTree(t, src, cfg2.Dir, "content")
		})
	}
}

// A peer that serves metadata pieces which do not hash to the info-hash
// is banned; the metadata then comes from an honest peer.
func TestBadMetadataPeerIsBanned(t *testing.T) {
	src := t.TempDir()
	mi := makeContent(t, src, "content", map[string]int{"f": 100_000}, 16<<10)
	info := mi.Info
	liar := startFakePeer(t, "127.0.73.10", info.InfoHash, func(c net.Conn) {
		send(c, extHandshake(len(info.Raw)))
		readMsgs(c, func(m wire.Message) bool {
			if m.Type == wire.Extended && m.ExtendedID == 3 {
				mm, _, err := metadata.ParseMetadataMsg(m.Payload)
				if err == nil && mm.Type == 0 {
					size := min(metadata.MetadataPieceSize, len(info.Raw)-mm.Piece*metadata.MetadataPieceSize)
					p, _ := metadata.MetadataMsg{Type: 1, Piece: mm.Piece, TotalSize: len(info.Raw)}.Append(nil, make([]byte, size))
					send(c, &wire.Message{Type: wire.Extended, ExtendedID: extMetadataID, Payload: p})
				}
			}
			return true
		})
	})
	tor, _ := runTorrent(t, Config{InfoHash: info.InfoHash, Dir: t.TempDir(), Peers: []netip.AddrPort{liar.addr}})
	liar.waitHungUp(t)
	s, _ := tor.Stats(t.Context())
	if s.Banned != 1 || s.HaveInfo {
		t.Fatalf("after bad metadata: %+v", s)
	}
}

// A torrent whose file names try to leave the download directory is
// refused, and nothing is written anywhere.
func TestUnsafeMetadataIsRefused(t *testing.T) {
	for _, path := range [][]string{{"..", "evil"}, {"/etc", "passwd"}, {"a", "..", "..", "b"}} {
		raw := rawInfo(t, "x", path)
		ih := metadata.InfoHash(sha1.Sum(raw))
		fp := startFakePeer(t, "127.0.74.10", ih, func(c net.Conn) {
			send(c, extHandshake(len(raw)))
			readMsgs(c, func(m wire.Message) bool {
				if m.Type == wire.Extended && m.ExtendedID == 3 {
					if mm, _, err := metadata.ParseMetadataMsg(m.Payload); err == nil && mm.Type == 0 {
						send(c, &wire.Message{Type: wire.Extended, ExtendedID: extMetadataID, Payload: metadata.ServeMetadata(raw, mm.Piece)})
					}
				}
				return true
			})
		})
		parent := t.TempDir()
		dir := filepath.Join(parent, "dl")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		tor, done := runTorrent(t, Config{InfoHash: ih, Dir: dir, Peers: []netip.AddrPort{fp.addr}})
		select {
		case err := <-done:
			if !errors.Is(err, metadata.ErrUnsafePath) || !errors.Is(err, ErrBadMetadata) {
				t.Fatalf("%q: Run returned %v, want an unsafe-path error", path, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%q: the torrent was not refused", path)
		}
		_ = tor
		entries := 0
		_ = filepath.Walk(parent, func(p string, fi os.FileInfo, err error) error {
			if p != parent && p != dir {
				entries++
				t.Errorf("%q: %s was created", path, p)
			}
			return nil
		})
		if entries != 0 {
			t.Fatal("files were written")
		}
	}
}

// rawInfo bencodes a multi-file info dict with one file at path.
func rawInfo(t *testing.T, name string, path []string) []byte {
	t.Helper()
	mi := struct {
		Files []struct {
			Length int64    `bencode:"length"`
			Path   []string `bencode:"path"`
		} `bencode:"files"`
		Name        string `bencode:"name"`
		PieceLength int64  `bencode:"piece length"`
		Pieces      string `bencode:"pieces"`
	}{Name: name, PieceLength: 16384, Pieces: string(make([]byte, 20))}
	mi.Files = append(mi.Files, struct {
		Length int64    `bencode:"length"`
		Path   []string `bencode:"path"`
	}{10, path})
	b, err := bencodeMarshal(mi)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A seeder that serves corrupt blocks next to an honest one: we complete
// with the right bytes, the liar is banned, and nothing it sent is kept.
func TestCorruptSeederIsBanned(t *testing.T) {
	src := t.TempDir()
	mi := makeContent(t, src, "content", map[string]int{"f": 600_000}, 32<<10)
	info := mi.Info
	data, err := os.ReadFile(filepath.Join(src, "content", "f"))
	if err != nil {
		t.Fatal(err)
	}
	liar := startFakePeer(t, "127.0.75.10", info.InfoHash, func(c net.Conn) {
		all := wire.NewBits(info.NumPieces())
		for i := 0; i < info.NumPieces(); i++ {
			all.Set(i)
		}
		send(c, &wire.Message{Type: wire.Bitfield, Bitfield: all})
		send(c, &wire.Message{Type: wire.Unchoke}) // before the honest seeder's choker runs
		readMsgs(c, func(m wire.Message) bool {
			if m.Type == wire.Request {
				off := int64(m.Index)*info.PieceLength + int64(m.Begin)
				block := append([]byte(nil), data[off:off+int64(m.Length)]...)
				block[len(block)/2] ^= 0xff
				send(c, &wire.Message{Type: wire.Piece, Index: m.Index, Begin: m.Begin, Block: block})
			}
			return true
		})
	})
	honestLn, err := net.Listen("tcp4", "127.0.75.1:0")
	if err != nil {
		t.Fatal(err)
	}
	runTorrent(t, Config{InfoHash: info.InfoHash, Info: info, Dir: src, Listener: honestLn})

	dst := t.TempDir()
	tor, _ := runTorrent(t, Config{InfoHash: info.InfoHash, Info: info, Dir: dst,
		Peers: []netip.AddrPort{liar.addr, addrOf(honestLn.Addr())}})
	waitDone(t, tor, 30*time.Second)
	sameTree(t, src, dst, "content")
	s, err := tor.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if s.Banned != 1 || s.HashFails == 0 {
		t.Fatalf("want the liar banned after failed pieces: %+v", s)
	}
	liar.waitHungUp(t)
}

// A seeder that serves fast, then sits on a full pipeline (as
// anacrolix/torrent v1.59.1 seeders now and then do until the requests
// are cancelled) costs a few seconds, not the 30 s request timeout: the
// requests are cancelled after 10 times its usual answer time (at least
// minRequestTimeout) and asked again.
func TestStalledSeederIsAskedAgain(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	mi := makeContent(t, src, "content", map[string]int{"f": 2 << 20}, 64<<10)
	info := mi.Info
	data, err := os.ReadFile(filepath.Join(src, "content", "f"))
	if err != nil {
		t.Fatal(err)
	}
	cancels := make(chan struct{}, 1024)
	staller := startFakePeer(t, "127.0.75.20", info.InfoHash, func(c net.Conn) {
		all := wire.NewBits(info.NumPieces())
		for i := 0; i < info.NumPieces(); i++ {
			all.Set(i)
		}
		send(c, &wire.Message{Type: wire.Bitfield, Bitfield: all})
		send(c, &wire.Message{Type: wire.Unchoke})
		served, stalled := 0, false
		readMsgs(c, func(m wire.Message) bool {
			switch m.Type {
			case wire.Cancel:
				cancels <- struct{}{}
				stalled = false // what is asked from now on is served
			case wire.Request:
				if stalled {
					return true
				}
				off := int64(m.Index)*info.PieceLength + int64(m.Begin)
				send(c, &wire.Message{Type: wire.Piece, Index: m.Index, Begin: m.Begin, Block: data[off : off+int64(m.Length)]})
				if served++; served == 40 {
					stalled = true
				}
			}
			return true
		})
	})
	tor, _ := runTorrent(t, Config{InfoHash: info.InfoHash, Info: info, Dir: t.TempDir(),
		Peers: []netip.AddrPort{staller.addr}})
	waitDone(t, tor, minRequestTimeout+10*time.Second)
	if len(cancels) == 0 {
		t.Fatal("completed without cancelling the stalled requests")
	}
}
