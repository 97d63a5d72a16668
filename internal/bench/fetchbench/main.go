// Command fetchbench measures fetching a torrent by magnet link from
// anacrolix/torrent seeders, or from our own `node seed`, by our client
// (node fetch) and by an anacrolix/torrent leecher, each leecher in its
// own process, in the scenarios of `make bench`:
//
//	1g       fetch 1 GiB, 20 files, 1 anacrolix seeder (the targets apply)
//	1g-ours  fetch 1 GiB, 20 files, 1 seeder: node seed (the same targets)
//	64m      fetch 64 MiB, 1 file, 1 anacrolix seeder
//	1g4      fetch 1 GiB, 20 files, 4 anacrolix seeders
//	utp      fetch 128 MiB over uTP alone from node seed: ours vs libtorrent
//	rc4      fetch 1 GiB over RC4-encrypted TCP from node seed: ours vs libtorrent
//
// The issue lets the one seeder be either program, as long as both
// leechers get the same one; the two seed at very different CPU costs, so
// both are measured.
//
// In 1g and 1g-ours a third leecher runs too, libtorrent-rasterbar, when
// a python3 that imports libtorrent is found (Debian's python3-libtorrent;
// otherwise the section says it was not available, and -no-libtorrent
// leaves it out): ltleech.py, embedded, fetches the same magnet link
// through the same DHT and prints the same JSON events, with libtorrent's
// defaults except uTP (off, as for the other leechers) and whatever could
// reach beyond loopback (LSD, UPnP, NAT-PMP, the IP notifier and public
// DHT routers, all off). The schema has two columns, so its figures are a
// row "time to complete vs libtorrent" (ours over its median) and a note.
//
// It generates each content once (pseudo-random bytes; 20 files in nested
// folders, or one file) and makes its .torrent (1 MiB pieces) with
// node/metadata. It starts eight of our DHT nodes and, in this process,
// the anacrolix seeders a scenario needs (one client per loopback IP; the
// same program serves every leecher), waits until each has verified its
// data and announced itself to our DHT, then runs each leecher -runs times
// (taking turns going first), each time into an empty directory. The
// magnet link has no x.pe: leechers find the seeders through the DHT.
//
// For 1g-ours the seeder is the -node binary's `node seed`, its own
// process on 127.0.91.11, serving a copy of the 1 GiB made of hard links
// under another name: another info-hash, so that the leechers cannot find
// the anacrolix seeder of 1g through the DHT as well. It is stopped at the
// end of the scenario.
//
// For each run it records, from just before the leecher process starts:
// time to metadata, time to complete, MiB/s (size over time to complete),
// the process's CPU time (user+sys) and peak RSS (ru_maxrss; each leecher
// is started through a tiny launcher, internal/bench/benchkit/spawn, so
// that this program's own RSS does not leak into the figure), and how many
// peers it used; and the CPU time the seeders used meanwhile (node seed's
// from /proc/PID/stat; the anacrolix seeders', with the rest of this
// process, from getrusage). Every download is checked against the
// source's SHA-256 sums. It prints each scenario's medians side by side as
// soon as it is done and, with -json, writes them in the shared bench
// schema (see internal/bench/driver) with every run's raw figures under
// "raw".
//
// utp runs at most 3 times, libtorrent's leecher in the first only, and
// rc4 once (-runs caps both; see maxRuns), each with their own
// node seed on 127.0.91.11 and their own hard-linked copy (their own
// info-hash), and two leechers: ours and libtorrent's, each set up so
// that only that transport can carry the data (our fetch dials uTP
// first and could fall back to TCP, so each run also checks, from the
// peer lists of its events, what carried the data, and fails if it was
// anything else). Their sections have libtorrent's figures in the
// schema's second column, CPU per GiB for leecher and seeder, and, when
// 1g-ours ran in the same invocation, comparisons with plain TCP: uTP's
// throughput over TCP's, and encryption's extra CPU per GiB. utp also
// runs our leecher over plain TCP (ours-tcp: --no-utp) on the same
// content from the same seeder, and judges uTP's throughput against that:
// 1g-ours moves eight times as much, over which a fetch's start weighs
// less.
//
// Everything runs on loopback (127.0.0.0/8): our DHT nodes on 127.0.90.x,
// the seeders on 127.0.91.1-4 and 127.0.91.11, our leechers on
// 127.0.92.x, anacrolix leechers on 127.0.93.x, libtorrent leechers on
// 127.0.94.x. Nothing contacts any other address: no public DHT routers,
// no trackers, no web seeds, no UPnP/NAT-PMP/LSD, no IPv6.
//
// Usage:
//
//	go run ./internal/bench/fetchbench [-only 1g,1g-ours,64m,1g4,utp,rc4] [-runs 3] [-json out.json] [-node bin/node] [-keep]
//		[-first ours|anacrolix] [-limit 60s] [-no-libtorrent] [-serve]
//	go run ./internal/bench/fetchbench -size 256 [-files 20] [-seeders 1] ...   (one custom scenario instead)
//
// A scenario that fails is reported as failed (in the JSON too) and the
// others still run; the exit status is then 1.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"node/dht"
	"node/internal/bench/benchfmt"
	"node/internal/bench/benchkit"
	"node/metadata"
)

const (
	pieceLength = 1 << 20
	runLimit    = 60 * time.Second // each leecher process is killed after this
	dhtNodes    = 8
)

// scenario is one fetch measurement.
type scenario struct {
	key     string // for -only
	sizeMiB int
	files   int
	single  bool // a single-file torrent (files = 1)
	seeders int
	targets bool // the targets for the 1 GiB fetch apply
	// ourSeeder: the one seeder is our node seed, not anacrolix's client.
	ourSeeder bool
	// libtorrent: a libtorrent leecher runs too, when available.
	libtorrent bool
	// transport, with ourSeeder, is what carries the data instead of
	// plain TCP: "utp" (uTP alone) or "rc4" (TCP, RC4-encrypted both
	// ways). Its leechers are ours and libtorrent's, each set up so that
	// nothing else can carry it, and each run checks what did.
	transport string
	// maxRuns, if set, caps -runs: libtorrent's uTP is slow enough that
	// more runs would not fit make bench's time.
	maxRuns int
	// libtorrentRuns, if set, caps libtorrent's runs below the others'
	// (the first ones).
	libtorrentRuns int
}

// runs is how many times each leecher runs s.
func (s scenario) runs(o options) int {
	if s.maxRuns > 0 {
		return min(o.runs, s.maxRuns)
	}
	return o.runs
}

// scenarios run in this order. Seeders stay up once started, so a
// scenario never has fewer seeders than the one before it.
var scenarios = []scenario{
	{key: "1g", sizeMiB: 1024, files: 20, seeders: 1, targets: true, libtorrent: true},
	{key: "1g-ours", sizeMiB: 1024, files: 20, seeders: 1, targets: true, ourSeeder: true, libtorrent: true},
	{key: "64m", sizeMiB: 64, files: 1, single: true, seeders: 1},
	{key: "1g4", sizeMiB: 1024, files: 20, seeders: 4},
	{key: "utp", sizeMiB: utpMiB, files: 20, seeders: 1, ourSeeder: true, libtorrent: true, transport: "utp", maxRuns: 3, libtorrentRuns: 1},
	{key: "rc4", sizeMiB: 1024, files: 20, seeders: 1, ourSeeder: true, libtorrent: true, transport: "rc4", maxRuns: 1},
}

// oursTCP is, in the utp scenario, our leecher over plain TCP (--no-utp).
const oursTCP = "ours-tcp"

// utpMiB is the uTP scenario's size: libtorrent's uTP leecher moved 5–11
// MiB/s here, so 1 GiB would take it minutes, past make bench's time;
// the section gives per-GiB figures too.
const utpMiB = 128

// transportNames are the scenarios' transports as their titles say them.
var transportNames = map[string]string{"utp": "over uTP", "rc4": "over RC4-encrypted TCP"}

// seedFlags are node seed's flags for the transport, fetchFlags node
// fetch's: only that transport can carry the data between them.
func (s scenario) seedFlags() []string {
	switch s.transport {
	case "utp":
		return []string{"--encryption", "off"}
	case "rc4":
		return []string{"--no-utp", "--encryption", "require"}
	}
	return nil // benchkit.StartSeed's plain TCP
}

func (s scenario) fetchFlags() []string {
	switch s.transport {
	case "utp":
		return []string{"--encryption", "off"}
	case "rc4":
		return []string{"--no-utp", "--encryption", "require"}
	}
	return []string{"--no-utp", "--encryption", "off"}
}

// carried reports whether link ("transport/encryption", see
// runResult.Links) is what the scenario measures.
func (s scenario) carried(link string) bool {
	tr, enc, _ := strings.Cut(link, "/")
	switch s.transport {
	case "utp":
		return tr == "utp"
	case "rc4":
		return tr == "tcp" && enc == "rc4"
	}
	return tr == "tcp"
}

func (s scenario) title(runs int) string {
	size := fmt.Sprintf("%d MiB", s.sizeMiB)
	if s.sizeMiB%1024 == 0 {
		size = fmt.Sprintf("%d GiB", s.sizeMiB/1024)
	}
	seeders := plural(s.seeders, "seeder")
	if s.ourSeeder {
		seeders += ": node seed"
	}
	if s.transport != "" {
		return fmt.Sprintf("fetch %s %s, %s, %s; ours vs libtorrent (median of %d)",
			size, transportNames[s.transport], plural(s.files, "file"), seeders, runs)
	}
	return fmt.Sprintf("fetch %s, %s, %s (median of %d)", size, plural(s.files, "file"), seeders, runs)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// contentKey names s's content: our seeder's is a copy of the same
// bytes under another name, with its own torrent.
func (s scenario) contentKey() string {
	return fmt.Sprintf("%d-%d-%v-%v-%s", s.sizeMiB, s.files, s.single, s.ourSeeder, s.transport)
}

// contentName is the torrent's name (its file or top folder).
func (s scenario) contentName() string {
	if s.single {
		if s.ourSeeder {
			return fmt.Sprintf("fetchbench-%dMiB-ours.bin", s.sizeMiB)
		}
		return fmt.Sprintf("fetchbench-%dMiB.bin", s.sizeMiB)
	}
	name := fmt.Sprintf("fetchbench-%dMiB-%dfiles", s.sizeMiB, s.files)
	if s.ourSeeder {
		name += "-ours"
	}
	if s.transport != "" {
		name += "-" + s.transport
	}
	return name
}

func main() {
	// anacrolix reads its file I/O mode in an init function: start again
	// with it set (children inherit it).
	if os.Getenv(fileIOEnv) != "classic" {
		os.Setenv(fileIOEnv, "classic")
		if exe, err := os.Executable(); err == nil {
			err = syscall.Exec(exe, os.Args, os.Environ())
			fmt.Fprintf(os.Stderr, "fetchbench: re-exec with %s=classic: %v\n", fileIOEnv, err)
		}
		os.Exit(1)
	}
	if len(os.Args) > 1 && os.Args[1] == "leech-anacrolix" {
		if err := runLeech(os.Args[2:], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "leech-anacrolix:", err)
			os.Exit(1)
		}
		return
	}
	if err := bench(); err != nil {
		fmt.Fprintln(os.Stderr, "fetchbench:", err)
		os.Exit(1)
	}
}

type options struct {
	runs              int
	jsonPath, nodeBin string
	tmp               string // the run's temp directory
	keep, serve       bool
	noLibtorrent      bool
	lt                libtorrent // set once the selected scenarios need it
	first             string
	limit             time.Duration
	selected          []scenario
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

func parseFlags() (options, error) {
	var o options
	var only string
	var custom scenario
	flag.StringVar(&only, "only", "", "comma-separated scenarios to run, of 1g, 1g-ours, 64m, 1g4, utp, rc4 (default all)")
	flag.IntVar(&custom.sizeMiB, "size", 0, "run one custom scenario of this many `MiB` instead")
	flag.IntVar(&custom.files, "files", 20, "files in the custom scenario (1: a single-file torrent)")
	flag.IntVar(&custom.seeders, "seeders", 1, "seeders in the custom scenario (1 to 4)")
	flag.IntVar(&o.runs, "runs", 3, "runs per client and scenario (the median is reported)")
	flag.StringVar(&o.jsonPath, "json", "", "write results as JSON to this `file`")
	flag.StringVar(&o.nodeBin, "node", "", "our node `binary` (default: go build ./cmd/node into the temp dir)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temp directory")
	flag.BoolVar(&o.serve, "serve", false, "set up the DHT and the first scenario's seeders, print how to fetch, and wait for Ctrl-C (for profiling by hand)")
	flag.StringVar(&o.first, "first", "ours", "which client goes first in odd runs: ours or anacrolix")
	flag.DurationVar(&o.limit, "limit", runLimit, "kill a leecher process after this long")
	flag.BoolVar(&o.noLibtorrent, "no-libtorrent", false, "do not run the libtorrent leecher in 1g, 1g-ours, utp and rc4")
	flag.Parse()
	if flag.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	if o.runs < 1 || o.runs > 50 || o.limit <= 10*time.Second {
		return o, errors.New("want 1 ≤ -runs ≤ 50, -limit > 10s")
	}
	if o.first != "ours" && o.first != "anacrolix" {
		return o, errors.New("-first: want ours or anacrolix")
	}
	switch {
	case custom.sizeMiB != 0:
		if only != "" {
			return o, errors.New("-size and -only exclude each other")
		}
		if custom.sizeMiB < 1 || custom.files < 1 || custom.seeders < 1 || custom.seeders > 4 {
			return o, errors.New("want -size ≥ 1, -files ≥ 1, 1 ≤ -seeders ≤ 4")
		}
		custom.key, custom.single = "custom", custom.files == 1
		o.selected = []scenario{custom}
	case only == "":
		o.selected = scenarios
	default:
		keys := strings.Split(only, ",")
		for _, k := range keys {
			if !slices.ContainsFunc(scenarios, func(s scenario) bool { return s.key == k }) {
				return o, fmt.Errorf("-only: unknown scenario %q", k)
			}
		}
		for _, s := range scenarios {
			if slices.Contains(keys, s.key) {
				o.selected = append(o.selected, s)
			}
		}
	}
	return o, nil
}

// content is one generated content and its torrent.
type content struct {
	name   string // the torrent's name
	files  []benchkit.SourceFile
	total  int64
	mi     *metadata.MetaInfo
	ami    *metainfo.MetaInfo // the same torrent, for the seeders
	magnet string
}

// makeContent generates the content of s under src and makes its torrent.
func makeContent(src string, s scenario) (*content, error) {
	name := s.contentName()
	total := int64(s.sizeMiB) << 20
	logf("generating %d MiB in %s", s.sizeMiB, plural(s.files, "file"))
	files, err := generate(src, name, total, s.files, pieceLength, s.single)
	if err != nil {
		return nil, err
	}
	return makeTorrent(src, name, files, total)
}

// makeOursContent makes our seeder's content for s: base (the anacrolix
// seeders' content of the same size) hard-linked under s's name.
func makeOursContent(src string, s scenario, base *content) (*content, error) {
	files, err := benchkit.LinkCopy(src, base.name, s.contentName(), base.files)
	if err != nil {
		return nil, fmt.Errorf("hard-linking a copy of %s: %w", base.name, err)
	}
	return makeTorrent(src, s.contentName(), files, base.total)
}

// makeTorrent makes the torrent of src/name, which holds files.
func makeTorrent(src, name string, files []benchkit.SourceFile, total int64) (*content, error) {
	mi, b, err := benchkit.CreateTorrent(src, name, pieceLength)
	if err != nil {
		return nil, err
	}
	ami, err := metainfo.Load(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	if ami.HashInfoBytes() != metainfo.Hash(mi.Info.InfoHash) {
		return nil, fmt.Errorf("anacrolix hashes our info to %v, we to %v", ami.HashInfoBytes(), mi.Info.InfoHash)
	}
	c := &content{name: name, files: files, total: total, mi: mi, ami: ami, magnet: mi.Magnet()}
	logf("torrent %s: %d pieces of %d bytes; %s", mi.Info.InfoHash, mi.Info.NumPieces(), mi.Info.PieceLength, c.magnet)
	return c, nil
}

func bench() error {
	o, err := parseFlags()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	began := time.Now()

	tmp, err := os.MkdirTemp("", "fetchbench-")
	if err != nil {
		return err
	}
	o.tmp = tmp
	if o.keep {
		defer logf("kept %s", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}

	self, err := os.Executable()
	if err != nil {
		return err
	}
	if o.nodeBin == "" {
		logf("building node/cmd/node into %s", filepath.Join(tmp, "node"))
	}
	if o.nodeBin, err = benchkit.NodeBinary(ctx, tmp, o.nodeBin, "fetchbench"); err != nil {
		return err
	}
	launcher, err := benchkit.BuildLauncher(ctx, tmp)
	if err != nil {
		return err
	}
	switch {
	case !slices.ContainsFunc(o.selected, func(s scenario) bool { return s.libtorrent }):
	case o.noLibtorrent:
		o.lt.why = "left out by -no-libtorrent"
	default:
		if o.lt = findLibtorrent(ctx, tmp); o.lt.python != "" {
			logf("libtorrent %s (%s)", o.lt.version, o.lt.python)
		} else {
			logf("no libtorrent leecher: %s", o.lt.why)
		}
	}

	// Every content once, before anything is timed.
	src := filepath.Join(tmp, "src")
	contents := map[string]*content{}
	for _, s := range o.selected {
		base := s
		base.ourSeeder, base.transport = false, ""
		if contents[base.contentKey()] == nil {
			c, err := makeContent(src, base)
			if err != nil {
				return err
			}
			contents[base.contentKey()] = c
		}
		if s.ourSeeder && contents[s.contentKey()] == nil {
			c, err := makeOursContent(src, s, contents[base.contentKey()])
			if err != nil {
				return err
			}
			contents[s.contentKey()] = c
		}
	}

	// Our DHT.
	nodes, err := startDHT(ctx)
	defer func() {
		for _, n := range nodes {
			n.Close()
		}
	}()
	if err != nil {
		return err
	}
	var boot []netip.AddrPort
	var bootStr []string
	for _, n := range nodes {
		boot = append(boot, n.Addr())
		bootStr = append(bootStr, n.Addr().String())
	}
	logf("%d DHT nodes: %s", len(nodes), strings.Join(bootStr, " "))

	seeders := &seederPool{dir: src, boot: boot, node: nodes[dhtNodes-2]}
	defer seeders.close()

	if o.serve {
		s := o.selected[0]
		c := contents[s.contentKey()]
		if s.ourSeeder {
			// For profiling by hand: an hour, or until Ctrl-C.
			ours, err := startOurSeeder(ctx, o.nodeBin, src, filepath.Join(tmp, s.key+".torrent"), c,
				bootStr[len(bootStr)-1], seeders.node, time.Hour, s.seedFlags()...)
			if err != nil {
				return err
			}
			defer ours.stop()
			logf("node seed: pid %d", ours.Cmd.Process.Pid)
		} else if _, err := seeders.ensure(ctx, s.seeders, c); err != nil {
			return err
		}
		logf("serving %s; try: %s fetch --json --no-seed %s --listen 127.0.92.200:0 --bootstrap %s --dir DIR '%s'",
			s.key, o.nodeBin, strings.Join(s.fetchFlags(), " "), bootStr[0], c.magnet)
		logf("or: %s leech-anacrolix -magnet '%s' -listen 127.0.93.200 -boot %s -dir DIR", self, c.magnet, strings.Join(bootStr, ","))
		if args, err := o.lt.args(c.magnet, "DIR", "127.0.94.200", bootStr, time.Minute, s.transport); err == nil {
			logf("or: %s '%s'", o.lt.python, strings.Join(args, "' '"))
		}
		<-ctx.Done()
		return nil
	}

	out := benchFile{Raw: map[string][]runResult{}}
	var failed []string
	for si, s := range o.selected {
		c := contents[s.contentKey()]
		title := s.title(s.runs(o))
		sec, raw, err := runScenario(ctx, o, si, s, c, seeders, launcher, self, bootStr, out.Raw["1g-ours"])
		if err != nil {
			logf("%s: FAILED: %v", title, err)
			failed = append(failed, s.key)
			sec.Notes = append(sec.Notes, "FAILED: "+err.Error())
		}
		out.Sections = append(out.Sections, sec)
		out.Raw[s.key] = raw
		benchkit.PrintSection(os.Stdout, sec, "ours", "anacrolix", 9)
		if o.jsonPath != "" {
			// After every scenario, so that what was measured survives a
			// later failure or kill.
			if err := benchkit.WriteJSON(o.jsonPath, out); err != nil {
				return err
			}
		}
		if ctx.Err() != nil {
			break
		}
	}
	logf("total %v", time.Since(began).Round(time.Second))
	if o.jsonPath != "" {
		logf("wrote %s", o.jsonPath)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("scenarios failed: %s", strings.Join(failed, ", "))
	}
	return nil
}

// runScenario starts the seeders s needs and runs both leechers o.runs
// times. It returns the section even on error, with what was measured.
func runScenario(ctx context.Context, o options, si int, s scenario, c *content, seeders *seederPool,
	launcher, self string, bootStr []string, plain []runResult) (benchfmt.Section, []runResult, error) {
	title := s.title(s.runs(o))
	logf("== %s", title)
	var seedAddrs []netip.AddrPort
	// seederCPU is the CPU time the seeders have used so far.
	seederCPU := selfCPU
	var ours *ourSeeder
	var err error
	if s.ourSeeder {
		// Long enough for every run at its limit; stopped when the
		// scenario ends.
		life := time.Duration(2*s.runs(o))*(o.limit+20*time.Second) + 3*time.Minute
		ours, err = startOurSeeder(ctx, o.nodeBin, seeders.dir, filepath.Join(o.tmp, s.key+".torrent"), c,
			bootStr[len(bootStr)-1], seeders.node, life, s.seedFlags()...)
		if err != nil {
			return benchfmt.Section{Name: title}, nil, err
		}
		defer ours.stop()
		seedAddrs = []netip.AddrPort{ours.Addr}
		seederCPU = ours.CPU
	} else if seedAddrs, err = seeders.ensure(ctx, s.seeders, c); err != nil {
		return benchfmt.Section{Name: title}, nil, err
	}
	var all []runResult
	sizeMiB := float64(c.total) / (1 << 20)
	env := os.Environ()
	clients := []string{"ours", "anacrolix"}
	if s.transport != "" {
		// The anacrolix leecher has neither uTP nor encryption set up.
		clients = []string{"ours"}
	}
	if s.transport == "utp" {
		// Ours over plain TCP too, the same content from the same
		// seeder: uTP's throughput over TCP's at one size, as 1g-ours
		// moves eight times as much and amortizes the start over it.
		clients = append(clients, oursTCP)
	}
	if o.first == "anacrolix" {
		slices.Reverse(clients)
	}
	lt := o.lt
	if !s.libtorrent {
		lt = libtorrent{}
	}
	if lt.python != "" {
		clients = append(clients, "libtorrent")
	}
	section := func() benchfmt.Section { return makeSection(title, s, c, seedAddrs, all, lt, plain) }
	for run := 1; run <= s.runs(o); run++ {
		// Each run starts with the next client, so that none always goes
		// first (with two: the order reverses every other run).
		k := (run - 1) % len(clients)
		order := append(slices.Clone(clients[k:]), clients[:k]...)
		// Distinct leecher IPs across scenarios: announces of the
		// leechers of earlier runs stay in the DHT.
		ipLast := (si*50+run-1)%250 + 1
		for _, client := range order {
			if err := ctx.Err(); err != nil {
				return section(), all, err
			}
			if client == "libtorrent" && s.libtorrentRuns > 0 && run > s.libtorrentRuns {
				continue
			}
			dst := filepath.Join(o.tmp, fmt.Sprintf("%s-run%d-%s", s.key, run, client))
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return section(), all, err
			}
			if ours != nil {
				if err := ours.Exited(); err != nil {
					return section(), all, err
				}
			}
			var res runResult
			cpu0, cerr0 := seederCPU()
			switch client {
			case "ours", oursTCP:
				flags := s.fetchFlags()
				if client == oursTCP {
					flags = scenario{}.fetchFlags()
				}
				args := append([]string{"fetch", "--no-port-mapping", "--state-dir="}, flags...)
				args = append(args, "--json", "--no-seed",
					"--listen", fmt.Sprintf("127.0.92.%d:0", ipLast),
					"--bootstrap", bootStr[(run-1)%len(bootStr)],
					"--dir", dst, "--timeout", (o.limit - 5*time.Second).String(), c.magnet)
				res, err = measure(ctx, client, run, o.limit, sizeMiB, env, launcher, o.nodeBin, args...)
			case "anacrolix":
				res, err = measure(ctx, client, run, o.limit, sizeMiB, env, launcher, self,
					"leech-anacrolix", "-magnet", c.magnet, "-dir", dst, "-timeout", (o.limit - 5*time.Second).String(),
					"-listen", fmt.Sprintf("127.0.93.%d", ipLast),
					"-boot", strings.Join(bootStr, ","))
			case "libtorrent":
				var args []string
				if args, err = lt.args(c.magnet, dst, fmt.Sprintf("127.0.94.%d", ipLast), bootStr, o.limit-5*time.Second, s.transport); err == nil {
					res, err = measure(ctx, client, run, o.limit, sizeMiB, env, launcher, lt.python, args...)
				}
			}
			cpu1, cerr1 := seederCPU()
			if err == nil {
				if cerr := errors.Join(cerr0, cerr1); cerr != nil {
					err = fmt.Errorf("%s run %d: the seeder's CPU time: %w", client, run, cerr)
				}
				res.SeederCPU = cpu1 - cpu0
			}
			if err == nil && s.transport != "" {
				// The leecher could not use anything else; this shows it.
				want, what := s, transportNames[s.transport]
				if client == oursTCP {
					want, what = scenario{}, "plain TCP"
				}
				if len(res.Links) == 0 || slices.ContainsFunc(res.Links, func(l string) bool { return !want.carried(l) }) {
					err = fmt.Errorf("%s run %d: data came over %v, not only %s", client, run, res.Links, what)
				}
			}
			if err == nil {
				if verr := benchkit.Verify(dst, c.files); verr != nil {
					err = fmt.Errorf("%s run %d: download differs from the source: %w", client, run, verr)
				}
			}
			if !o.keep {
				os.RemoveAll(dst)
			}
			if err != nil {
				return section(), all, err
			}
			logf("%-10s run %d: metadata %.2fs  complete %.2fs  exit %.2fs  %.1f MiB/s  cpu %.2fs (user %.2f sys %.2f)  rss %.1f MiB  peers %d %v  seeder cpu %.2fs  [verified]",
				client, run, res.Metadata, res.Complete, res.Exited, res.MiBps, res.CPU, res.UserCPU, res.SysCPU, res.MaxRSSMiB, res.Peers, res.Links, res.SeederCPU)
			if s.seeders > 1 && res.Peers >= 0 && res.Peers < s.seeders {
				logf("%-10s run %d: used %d of the %d seeders", client, run, res.Peers, s.seeders)
			}
			all = append(all, res)
		}
	}
	return section(), all, nil
}

// startDHT starts dhtNodes of our DHT nodes on 127.0.90.1.. that know each
// other. It returns the nodes started even on error, for closing.
func startDHT(ctx context.Context) ([]*dht.Node, error) {
	bctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return benchkit.StartDHT(bctx, dhtNodes, func(i int) string { return fmt.Sprintf("127.0.90.%d", i) }, dht.Config{})
}
