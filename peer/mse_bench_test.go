package peer

import (
	"bytes"
	"context"
	"crypto/rc4"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/anacrolix/torrent/mse"

	"node/metadata"
)

var msebenchSize = flag.Int("msebench.size", 256, "MiB moved per mode in BenchmarkEncryptionCPU")

// BenchmarkEncryptionCPU moves -msebench.size MiB from one of our seeders
// to one of our leechers over loopback TCP, both in this process, once in
// plaintext (both EncryptOff) and once RC4-encrypted (both
// EncryptRequire), and reports the CPU time the process spent (user +
// system, getrusage) per GiB moved, and the rate, for each; the
// difference is what encryption costs both ends together (each end both
// encrypts and decrypts once per byte: the seeder encrypts, the leecher
// decrypts). Hashing and writing the pieces costs the same in both runs.
// Run:
//
//	go test -run '^$' -bench EncryptionCPU -benchtime 1x -timeout 20m ./peer [-msebench.size 256]
func BenchmarkEncryptionCPU(b *testing.B) {
	size := int64(*msebenchSize) << 20
	src := b.TempDir()
	mi := bigContent(b, src, size)
	gib := float64(size) / (1 << 30)
	// RC4 alone, for scale: one pass over size bytes.
	c, _ := rc4.NewCipher(make([]byte, 20))
	buf := make([]byte, 1<<20)
	u0 := cpuTime(b)
	for range size / int64(len(buf)) {
		c.XORKeyStream(buf, buf)
	}
	b.Logf("crypto/rc4 alone: %.3f CPU-s per GiB per pass", (cpuTime(b)-u0).Seconds()/gib)
	for range b.N {
		var cpu, rate [2]float64
		for i, mode := range []Encryption{EncryptOff, EncryptRequire} {
			took, used := encryptedFetch(b, src, mi.Info, mode, i)
			cpu[i] = used.Seconds() / gib
			rate[i] = float64(size) / (1 << 20) / took.Seconds()
			b.Logf("%-7s %d MiB in %v: %.3f CPU-s/GiB, %.0f MiB/s", mode, size>>20, took.Round(time.Millisecond), cpu[i], rate[i])
		}
		b.ReportMetric(cpu[0], "plain-CPU-s/GiB")
		b.ReportMetric(cpu[1], "rc4-CPU-s/GiB")
		b.ReportMetric(cpu[1]-cpu[0], "extra-CPU-s/GiB")
		b.ReportMetric(rate[0], "plain-MiB/s")
		b.ReportMetric(rate[1], "rc4-MiB/s")
	}
}

// encryptedFetch runs one seeder and one leecher in mode until the
// leecher is complete, and returns how long that took and the CPU time
// the process used meanwhile.
func encryptedFetch(b *testing.B, src string, info *metadata.Info, mode Encryption, run int) (time.Duration, time.Duration) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ih := info.InfoHash
	var plain atomic.Bool
	seedIP := fmt.Sprintf("127.0.128.%d", 1+2*run)
	leechIP := fmt.Sprintf("127.0.128.%d", 2+2*run)
	ln := listen4(b, seedIP)
	seeder, err := New(Config{InfoHash: ih, Info: info, Dir: src, Listener: ln, NoDownload: true, Dial: refuseDial, Encryption: mode})
	if err != nil {
		b.Fatal(err)
	}
	leecher, err := New(Config{InfoHash: ih, Info: info, Dir: b.TempDir(), Listener: listen4(b, leechIP),
		Peers: []netip.AddrPort{addrOf(ln.Addr())}, Dial: sniffDial(leechIP, &plain), Encryption: mode})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 2)
	go func() { done <- seeder.Run(ctx) }()
	// The seeder verifies its data before serving: start the clock once
	// it has.
	select {
	case <-seeder.Done():
	case <-time.After(5 * time.Minute):
		b.Fatal("the seeder did not verify its data")
	}
	start, u0 := time.Now(), cpuTime(b)
	go func() { done <- leecher.Run(ctx) }()
	select {
	case <-leecher.Done():
	case <-time.After(10 * time.Minute):
		b.Fatal("the leecher is not complete after 10 minutes")
	}
	took, used := time.Since(start), cpuTime(b)-u0
	if plain.Load() != (mode == EncryptOff) {
		b.Fatalf("%v: a plaintext handshake went out: %v", mode, plain.Load())
	}
	cancel()
	<-done
	<-done
	return took, used
}

// sniffDial dials from ip and sets plain when a connection's first write
// is a plaintext BitTorrent handshake.
func sniffDial(ip string, plain *atomic.Bool) func(ctx context.Context, a netip.AddrPort) (net.Conn, error) {
	d := boundDial(ip)
	return func(ctx context.Context, a netip.AddrPort) (net.Conn, error) {
		nc, err := d(ctx, a)
		if err != nil {
			return nil, err
		}
		return &firstWrite{Conn: nc, plain: plain}, nil
	}
}

type firstWrite struct {
	net.Conn
	plain *atomic.Bool
	seen  bool
}

func (c *firstWrite) Write(b []byte) (int, error) {
	if !c.seen {
		c.seen = true
		if isPlainHandshake(b) {
			c.plain.Store(true)
		}
	}
	return c.Conn.Write(b)
}

// cpuTime is the user and system CPU time this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkMuxMSEKeys is an MSE handshake received the way a Mux does,
// with one registered torrent and with 2000, the initiator's key the
// last one tried: what the per-torrent SHA-1 of the secret-key search
// costs next to the Diffie-Hellman exchange.
func BenchmarkMuxMSEKeys(b *testing.B) {
	for _, n := range []int{1, 2000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			ihs := make([]metadata.InfoHash, n)
			for i := range ihs {
				ihs[i] = metadata.InfoHash{byte(i), byte(i >> 8), 3}
			}
			keys := func() []metadata.InfoHash { return ihs }
			want := ihs[n-1]
			b.ReportAllocs()
			for b.Loop() {
				a, c := net.Pipe()
				go func() {
					defer a.Close()
					_, _, _ = mse.InitiateHandshake(a, want[:], nil, mse.CryptoMethodRC4)
				}()
				_, _, skey, err := receiveCrypto(context.Background(), c, EncryptPrefer, keys)
				if err != nil || !bytes.Equal(skey, want[:]) {
					b.Fatalf("skey %x, %v", skey, err)
				}
				c.Close()
			}
		})
	}
}
