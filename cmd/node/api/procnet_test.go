package api_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"node/cmd/node/api"
)

const procHeader = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"

// procLine is a line of /proc/net/tcp (or tcp6, for an IPv6 ap) as a
// machine of byte order order writes it.
func procLine(ap netip.AddrPort, state uint8, uid uint32, order binary.ByteOrder) string {
	var words []byte
	if ap.Addr().Is4() {
		a := ap.Addr().As4()
		words = a[:]
	} else {
		a := ap.Addr().As16()
		words = a[:]
	}
	var hex strings.Builder
	for i := 0; i < len(words); i += 4 {
		fmt.Fprintf(&hex, "%08X", order.Uint32(words[i:]))
	}
	return fmt.Sprintf("   0: %s:%04X 00000000:0000 %02X 00000000:00000000 00:00000000 00000000 %5d        0 4242 1 0000000000000000 100 0 0 10 0\n",
		hex.String(), ap.Port(), state, uid)
}

// procTables serves tcp and tcp6 (nil for a table that does not exist).
func procTables(tcp, tcp6 []string) func(string) (io.ReadCloser, error) {
	return func(name string) (io.ReadCloser, error) {
		var lines []string
		switch name {
		case "/proc/net/tcp":
			lines = tcp
		case "/proc/net/tcp6":
			lines = tcp6
		default:
			return nil, fmt.Errorf("unexpected %s", name)
		}
		if lines == nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		return io.NopCloser(strings.NewReader(procHeader + strings.Join(lines, ""))), nil
	}
}

func TestScanProcNet(t *testing.T) {
	// Lines as Linux on x86 writes them.
	table := procHeader +
		"   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 12345 1 0000000000000000 100 0 0 10 0\n" +
		"   1: 00000000:07E8 0100007F:B46F 01 00000000:00000000 00:00000000 00000000     0        0 312 1 0000000000000000 100 0 0 10 0\n" +
		"   2: 00000000000000000000000001000000:1F91 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000    33        0 7 1\n" +
		"   3: 0000000000000000FFFF00000100007F:1F92 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000 4294967295 0 7 1\n"
	got, err := api.ScanProcNet(strings.NewReader(table), binary.LittleEndian)
	want := []string{"127.0.0.1:8080 0A 1000", "0.0.0.0:2024 01 0", "[::1]:8081 0A 33", "[::ffff:127.0.0.1]:8082 0A 4294967295"}
	if err != nil || strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q, %v; want %q", got, err, want)
	}
	// A big-endian machine writes the words the other way round.
	ap := netip.MustParseAddrPort("[2001:db8::1]:443")
	got, err = api.ScanProcNet(strings.NewReader(procHeader+procLine(ap, 0x0A, 7, binary.BigEndian)), binary.BigEndian)
	if err != nil || len(got) != 1 || got[0] != "[2001:db8::1]:443 0A 7" {
		t.Fatalf("big-endian: %q, %v", got, err)
	}
	for name, bad := range map[string]string{
		"few fields":  "   0: 0100007F:1F90 00000000:0000 0A\n",
		"short addr":  "   0: 0100007:1F90 00000000:0000 0A 0:0 0:0 0 1000\n",
		"no port":     "   0: 0100007F 00000000:0000 0A 0:0 0:0 0 1000\n",
		"bad port":    "   0: 0100007F:1G90 00000000:0000 0A 0:0 0:0 0 1000\n",
		"bad state":   "   0: 0100007F:1F90 00000000:0000 0AB 0:0 0:0 0 1000\n",
		"bad uid":     "   0: 0100007F:1F90 00000000:0000 0A 0:0 0:0 0 -1\n",
		"huge uid":    "   0: 0100007F:1F90 00000000:0000 0A 0:0 0:0 0 4294967296\n",
		"signed addr": "   0: +100007F:1F90 00000000:0000 0A 0:0 0:0 0 1000\n",
		"long line":   "   0: " + strings.Repeat("0", 600) + "\n",
	} {
		if _, err := api.ScanProcNet(strings.NewReader(procHeader+bad), binary.LittleEndian); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// endless is a /proc/net/tcp that never ends.
type endless struct{ line []byte }

func (e endless) Read(p []byte) (int, error) {
	n := 0
	for n+len(e.line) <= len(p) {
		n += copy(p[n:], e.line)
	}
	if n == 0 {
		n = copy(p, e.line)
	}
	return n, nil
}

// TestScanProcNetBound: a table that does not end is cut at
// MaxProcNetBytes.
func TestScanProcNetBound(t *testing.T) {
	line := procLine(netip.MustParseAddrPort("127.0.0.1:1"), 0x0A, 0, binary.LittleEndian)
	var n int
	r := io.MultiReader(strings.NewReader(procHeader), endless{[]byte(line)})
	got, err := api.ScanProcNet(r, binary.LittleEndian)
	n = len(got)
	if err == nil || !strings.Contains(err.Error(), "over") {
		t.Fatalf("endless table: %v", err)
	}
	if max := api.MaxProcNetBytes/len(line) + 1; n > max {
		t.Fatalf("%d sockets from %d bytes", n, api.MaxProcNetBytes)
	}
}

// recorder is an HTTP server that records what it was sent.
type recorder struct {
	addr netip.AddrPort
	mu   sync.Mutex
	reqs int
	auth []string
}

func startRecorder(t *testing.T) *recorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{addr: ln.Addr().(*net.TCPAddr).AddrPort()}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.reqs++
		if a := r.Header.Get("Authorization"); a != "" {
			rec.auth = append(rec.auth, a)
		}
		rec.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"torrents":[]}`)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return rec
}

func (r *recorder) seen() (int, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reqs, r.auth
}

// TestClientRefusesForeignListener: the daemon died and another user's
// program took its port. The socket tables (a fixture here, as on another
// machine) say whose program listens; the client sends it nothing unless
// the user, root or the token file's owner runs it.
func TestClientRefusesForeignListener(t *testing.T) {
	me := uint32(os.Getuid())
	foreign := uint32(4242)
	if me == foreign {
		foreign++
	}
	order := binary.LittleEndian
	for _, c := range []struct {
		name      string
		tcp, tcp6 func(ap netip.AddrPort) []string
		trust     bool   // trust a token file owned by foreign
		want      string // "" for sent
	}{
		{"ours", func(ap netip.AddrPort) []string { return []string{procLine(ap, 0x0A, me, order)} }, nil, false, ""},
		{"root's", func(ap netip.AddrPort) []string { return []string{procLine(ap, 0x0A, 0, order)} }, nil, false, ""},
		{"another user's", func(ap netip.AddrPort) []string { return []string{procLine(ap, 0x0A, foreign, order)} }, nil, false, "is not run by you"},
		{"another user's, who owns the token file", func(ap netip.AddrPort) []string { return []string{procLine(ap, 0x0A, foreign, order)} }, nil, true, ""},
		{"ours, and another's on 0.0.0.0", func(ap netip.AddrPort) []string {
			return []string{procLine(ap, 0x0A, me, order), procLine(netip.AddrPortFrom(netip.IPv4Unspecified(), ap.Port()), 0x0A, foreign, order)}
		}, nil, false, "is not run by you"},
		{"ours, and another's on [::]", func(ap netip.AddrPort) []string { return []string{procLine(ap, 0x0A, me, order)} },
			func(ap netip.AddrPort) []string {
				return []string{procLine(netip.AddrPortFrom(netip.IPv6Unspecified(), ap.Port()), 0x0A, foreign, order)}
			}, false, "is not run by you"},
		{"another's, mapped into IPv6", func(ap netip.AddrPort) []string { return []string{} },
			func(ap netip.AddrPort) []string {
				return []string{procLine(netip.AddrPortFrom(netip.AddrFrom16(ap.Addr().As16()), ap.Port()), 0x0A, foreign, order)}
			}, false, "is not run by you"},
		{"another's, not listening", func(ap netip.AddrPort) []string {
			return []string{procLine(ap, 0x01, foreign, order), procLine(ap, 0x0A, me, order)}
		}, nil, false, ""},
		{"another's on another port or address", func(ap netip.AddrPort) []string {
			return []string{procLine(ap, 0x0A, me, order), procLine(netip.AddrPortFrom(ap.Addr(), ap.Port()+1), 0x0A, foreign, order),
				procLine(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), ap.Port()), 0x0A, foreign, order)}
		}, func(ap netip.AddrPort) []string {
			return []string{procLine(netip.AddrPortFrom(netip.IPv6Loopback(), ap.Port()), 0x0A, foreign, order)}
		}, false, ""},
		{"nobody's", func(ap netip.AddrPort) []string { return []string{} }, nil, false, "cannot find the program"},
		{"an unreadable table", func(ap netip.AddrPort) []string { return nil }, nil, false, "cannot tell who runs"},
		{"a bad table", func(ap netip.AddrPort) []string { return []string{"garbage\n"} }, nil, false, "cannot tell who runs"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := startRecorder(t)
			tcp := c.tcp(rec.addr)
			var tcp6 []string
			if c.tcp6 != nil {
				tcp6 = c.tcp6(rec.addr)
			}
			opts := []api.ClientOption{api.WithProcNet(procTables(tcp, tcp6), order)}
			if c.trust {
				tf := filepath.Join(t.TempDir(), "token")
				os.WriteFile(tf, nil, 0o600)
				if err := os.Chown(tf, int(foreign), -1); err != nil {
					t.Skipf("cannot give a file to another user: %v", err)
				}
				opts = append(opts, api.TrustOwnerOf(tf))
			}
			cl := api.NewClient(rec.addr.String(), testToken, opts...)
			defer cl.Close()
			_, err := cl.List(context.Background())
			reqs, auth := rec.seen()
			if c.want == "" {
				if err != nil || reqs != 1 || len(auth) != 1 {
					t.Fatalf("%v; %d requests, %d with a token", err, reqs, len(auth))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "not sending it the token") {
				t.Fatalf("%v, want %q", err, c.want)
			}
			if strings.HasPrefix(err.Error(), "Get ") {
				t.Fatalf("the refusal is wrapped in the request's failure: %v", err)
			}
			var fe *api.ForeignListenerError
			if c.want == "is not run by you" && (!errors.As(err, &fe) || fe.UID != foreign) {
				t.Fatalf("%v is not a ForeignListenerError of uid %d", err, foreign)
			}
			if reqs != 0 || len(auth) != 0 {
				t.Fatalf("the listener got %d requests, %d tokens", reqs, len(auth))
			}
		})
	}
}

// FuzzProcNet: whatever /proc/net/tcp holds, scanning it ends with
// sockets or an error, never a panic.
func FuzzProcNet(f *testing.F) {
	ap4, ap6 := netip.MustParseAddrPort("127.0.0.1:9180"), netip.MustParseAddrPort("[::1]:9180")
	for _, s := range []string{
		procHeader + procLine(ap4, 0x0A, 1000, binary.LittleEndian) + procLine(ap6, 0x01, 0, binary.LittleEndian),
		procHeader, "", "\n\n", procHeader + "   0: 0100007F:1F90\n", procHeader + strings.Repeat("0", 1000),
		procHeader + "   0: 0100007F:1F90 00000000:0000 0A 0:0 0:0 0 99999999999999999999\n",
		procHeader + "   0: :1F90 00000000:0000 0A 0:0 0:0 0 0\n",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, b []byte, big bool) {
		var order binary.ByteOrder = binary.LittleEndian
		if big {
			order = binary.BigEndian
		}
		got, err := api.ScanProcNet(bytes.NewReader(b), order)
		if err != nil && err.Error() == "" {
			t.Fatal("an empty error")
		}
		if len(got) > bytes.Count(b, []byte("\n"))+1 {
			t.Fatalf("%d sockets from %d lines", len(got), bytes.Count(b, []byte("\n"))+1)
		}
	})
}
