package peer

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/anacrolix/torrent"

	"node/internal/bench/benchfmt"
	"node/internal/peertest"
	"node/internal/testutil/delayproxy"
	"node/metadata"
)

// BenchmarkDelayedSeeders fetches a torrent from anacrolix/torrent seeders
// (in this process), each behind a delayproxy that delays both directions
// by -pipebench.delay, once with the pipeline sized per peer (see
// pipeline.go) and once with the fixed 64 blocks it replaced, taking
// turns going first. Every piece is verified by its hash as usual. Run:
//
//	go test -run '^$' -bench DelayedSeeders -benchtime 1x -timeout 30m ./peer \
//		[-pipebench.size 1024] [-pipebench.delay 50ms] [-pipebench.seeders 4] [-pipebench.runs 1]
//		[-pipebench.alloc 16777216] [-pipebench.deep=true] [-pipebench.v]
//
// The seeders serve from a per-connection budget of -pipebench.alloc
// bytes (anacrolix's MaxAllocPeerRequestDataPerConn; fetchbench gives its
// seeders 16 MiB too): anacrolix's default, 1 MiB, stalls any pipeline
// deeper than 64 blocks, for good unless the Fast extension lets a
// cancel free it (see pipeline.go). Without Fast on our side the sized
// pipeline stays within 64 blocks; -pipebench.deep (the default) lets it
// grow as it will once Fast is negotiated. With NODE_BENCH_JSON=path the
// figures are also written there.
func BenchmarkDelayedSeeders(b *testing.B) {
	for range b.N {
		runDelayedSeeders(b)
	}
}

var (
	pipebenchSize    = flag.Int("pipebench.size", 1024, "MiB to fetch in BenchmarkDelayedSeeders")
	pipebenchDelay   = flag.Duration("pipebench.delay", 50*time.Millisecond, "delay added to each direction of each seeder's connection")
	pipebenchSeeders = flag.Int("pipebench.seeders", 4, "anacrolix seeders")
	pipebenchRuns    = flag.Int("pipebench.runs", 1, "fetches per pipeline")
	pipebenchAlloc   = flag.Int("pipebench.alloc", 16<<20, "the seeders' MaxAllocPeerRequestDataPerConn; 0: anacrolix's default")
	pipebenchDeep    = flag.Bool("pipebench.deep", true, "let pipelines grow past 64 blocks without the Fast extension (anacrolix answers cancels only with it)")
	pipebenchClient  = flag.String("pipebench.client", "anacrolix", "the seeders: anacrolix (in this process) or libtorrent (python3-libtorrent, with -tags interop)")
	pipebenchV       = flag.Bool("pipebench.v", false, "print each fetch's progress to stderr every 5 s")
)

func runDelayedSeeders(b *testing.B) {
	size := int64(*pipebenchSize) << 20
	src := b.TempDir()
	start := time.Now()
	mi := bigContent(b, src, size)
	b.Logf("content: %d MiB, %d pieces, made in %v", size>>20, mi.Info.NumPieces(), time.Since(start).Round(time.Millisecond))

	var seeders []netip.AddrPort
	uploaded := func() []int64 { return nil }
	switch *pipebenchClient {
	case "anacrolix":
		seeders, uploaded = anacrolixSeeders(b, src, mi)
	case "libtorrent":
		if startLibtorrentSeeders == nil {
			b.Skip("libtorrent seeders need -tags interop")
		}
		seeders = startLibtorrentSeeders(b, src, mi, *pipebenchSeeders)
	default:
		b.Fatalf("-pipebench.client %q: anacrolix or libtorrent", *pipebenchClient)
	}
	var peers []netip.AddrPort
	for i, a := range seeders {
		px, err := delayproxy.Listen(fmt.Sprintf("127.0.213.%d:0", 101+i), a, delayproxy.Options{Delay: *pipebenchDelay})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { px.Close() })
		peers = append(peers, px.Addr())
	}

	type result struct {
		secs   []float64
		stalls int
	}
	res := map[int]*result{0: {}, 64: {}}
	for run := range *pipebenchRuns {
		order := []int{64, 0}
		if run%2 == 1 {
			order = []int{0, 64}
		}
		for _, fixed := range order {
			before := uploaded()
			d, st := fetchOnce(b, mi, peers, fixed)
			var per []string
			for i, n := range uploaded() {
				per = append(per, fmt.Sprintf("%d", (n-before[i])>>20))
			}
			name := "bdp"
			if fixed > 0 {
				name = fmt.Sprintf("fixed %d", fixed)
			}
			b.Logf("%s: %v, %.1f MiB/s, stalls %d, wasted %d KiB, MiB per seeder %v", name, d.Round(time.Millisecond),
				float64(size>>20)/d.Seconds(), st.Stalls, st.Wasted>>10, per)
			res[fixed].secs = append(res[fixed].secs, d.Seconds())
			res[fixed].stalls += st.Stalls
		}
	}
	bdp, fixed := median(res[0].secs), median(res[64].secs)
	speedup := fixed / bdp
	b.ReportMetric(float64(size>>20)/bdp, "MiB/s-bdp")
	b.ReportMetric(float64(size>>20)/fixed, "MiB/s-fixed64")
	b.ReportMetric(speedup, "speedup")
	b.ReportMetric(float64(res[0].stalls), "stalls-bdp")
	if path := os.Getenv("NODE_BENCH_JSON"); path != "" {
		met, noStall := speedup >= 1.5, res[0].stalls == 0
		sec := benchfmt.Section{
			Name: fmt.Sprintf("fetch %d MiB from %d %s seeders behind %v each way: pipeline sized per peer vs fixed 64 blocks (median of %d)",
				size>>20, len(seeders), *pipebenchClient, *pipebenchDelay, *pipebenchRuns),
			Rows: []benchfmt.Row{
				{Metric: "time to complete, sized pipeline", Unit: "s", Ours: bdp, Better: "lower"},
				{Metric: "time to complete, fixed 64 blocks", Unit: "s", Ours: fixed, Better: "lower"},
				{Metric: "speed-up of the sized pipeline", Unit: "x", Ours: speedup, Better: "higher", Target: ">= 1.5", Met: &met},
				{Metric: "stalls, sized pipeline", Unit: "count", Ours: float64(res[0].stalls), Better: "lower", Target: "0", Met: &noStall},
			},
			Notes: []string{"no anacrolix counterpart: both rows are our leecher, the fixed one with the pipeline of 64 blocks it had before"},
		}
		if err := benchfmt.Merge(path, []benchfmt.Section{sec}); err != nil {
			b.Fatal(err)
		}
	}
}

// startLibtorrentSeeders starts n libtorrent seeders of mi, whose data is
// under src, and returns their addresses; set by the interop build.
var startLibtorrentSeeders func(b *testing.B, src string, mi *metadata.MetaInfo, n int) []netip.AddrPort

// anacrolixSeeders starts the anacrolix seeders of mi, whose data is
// under src, and returns their addresses and a reader of the piece bytes
// each has sent.
func anacrolixSeeders(b *testing.B, src string, mi *metadata.MetaInfo) ([]netip.AddrPort, func() []int64) {
	var addrs []netip.AddrPort
	var seeds []*torrent.Torrent
	for i := range *pipebenchSeeders {
		ip := fmt.Sprintf("127.0.213.%d", 1+i)
		cfg, err := peertest.ClientConfig(ip, src, true, nil)
		if err != nil {
			b.Fatal(err)
		}
		cfg.NoDHT = true
		if *pipebenchAlloc > 0 {
			cfg.MaxAllocPeerRequestDataPerConn = *pipebenchAlloc
		}
		cfg.DefaultStorage = plainStorage{dir: src, complete: true}
		cl, err := torrent.NewClient(cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			cl.Close()
			<-cl.Closed()
			waitAnacrolixGone(5 * time.Second)
		})
		tr, err := cl.AddTorrent(toAnacrolix(b, mi))
		if err != nil {
			b.Fatal(err)
		}
		waitAnacrolixComplete(b, tr, time.Minute)
		seeds = append(seeds, tr)
		addrs = append(addrs, anacrolixPeerAddr(b, cl, ip))
	}
	return addrs, func() []int64 {
		var out []int64
		for _, s := range seeds {
			st := s.Stats()
			out = append(out, st.BytesWrittenData.Int64())
		}
		return out
	}
}

// fetchOnce fetches mi from peers into a fresh directory, with the
// pipeline fixed at fixed blocks (0: sized), and removes the copy.
func fetchOnce(b *testing.B, mi *metadata.MetaInfo, peers []netip.AddrPort, fixed int) (time.Duration, Stats) {
	dst, err := os.MkdirTemp(b.TempDir(), "fetch")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dst)
	tor, err := New(Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: dst, Peers: peers, fixedPipeline: fixed, deepWithoutFast: *pipebenchDeep})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	finished := make(chan error, 1)
	start := time.Now()
	go func() { finished <- tor.Run(ctx) }()
	defer func() {
		cancel()
		<-finished
	}()
	progress := time.NewTicker(5 * time.Second)
	defer progress.Stop()
wait:
	select {
	case <-progress.C:
		if *pipebenchV {
			if st, err := tor.Stats(ctx); err == nil {
				fmt.Fprintf(os.Stderr, "%v fixed=%d: %d/%d pieces, stalls %d, wasted %d KiB\n",
					time.Since(start).Round(time.Second), fixed, st.Have, st.Pieces, st.Stalls, st.Wasted>>10)
			}
		}
		goto wait
	case <-tor.Done():
	case err := <-finished:
		finished <- err
		b.Fatalf("stopped: %v", err)
	case <-time.After(20 * time.Minute):
		b.Fatal("not complete after 20 minutes")
	}
	d := time.Since(start)
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	st, err := tor.Stats(sctx)
	if err != nil {
		b.Fatal(err)
	}
	return d, st
}

// bigContent writes size pseudo-random bytes to dir/content/f, streaming,
// and makes its .torrent with 1 MiB pieces.
func bigContent(b *testing.B, dir string, size int64) *metadata.MetaInfo {
	name := filepath.Join(dir, "content", "f")
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		b.Fatal(err)
	}
	f, err := os.Create(name)
	if err != nil {
		b.Fatal(err)
	}
	r := rand.NewChaCha8([32]byte{7})
	buf := make([]byte, 4<<20)
	for left := size; left > 0; left -= int64(len(buf)) {
		k := min(int64(len(buf)), left)
		_, _ = r.Read(buf[:k])
		if _, err := f.Write(buf[:k]); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	mi, err := metadata.Create(filepath.Join(dir, "content"), metadata.CreateOptions{PieceLength: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	return mi
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}
