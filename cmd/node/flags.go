package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"node/cmd/node/portmap"
	"node/dht"
	"node/krpc"
	"node/peer"
)

// dhtFlags are the flags of every subcommand that joins the DHT.
type dhtFlags struct {
	listen  string
	listen6 string
	// defaultListen is --listen's default, whose port the IPv6 socket
	// takes under --listen none.
	defaultListen string
	bootstrap     listFlag
	stateDir      string
	logJSON       bool
	logLevel      string

	// peerListen (fetch, seed): see registerPeerListen.
	peerListen multiFlag
	// noUTP (fetch, seed): see registerUTP.
	noUTP bool
	// encryption (fetch, seed): see registerEncryption.
	encryption peer.Encryption

	ratePerIP        float64
	burstPerIP       int
	blockFor         time.Duration
	sendRate         float64
	maxAmplification int

	portMapOffered bool // the subcommand has --no-port-mapping
	noPortMapping  bool
	portMapBase    portmap.Config // where the gateway is; zero: discovered (tests point it at fakes)
}

// register adds the DHT flags; the command's --log-level default is
// f.logLevel when the command set one before (fetch, seed and peers are
// quiet: warn), else info.
func (f *dhtFlags) register(fs *pflag.FlagSet, defaultListen string) {
	f.bootstrap.vals = dht.PublicRouters
	f.defaultListen = defaultListen
	logLevel := f.logLevel
	if logLevel == "" {
		logLevel = "info"
	}
	fs.StringVarP(&f.listen, "listen", "l", defaultListen, "UDP `address` to listen on (IPv4; \"none\": no IPv4 DHT socket, for dht and peers)")
	fs.StringVar(&f.listen6, "listen6", "", "UDP `address` of the IPv6 DHT socket (BEP 32); by default [::] when --listen is on all interfaces, [::1] when it is a loopback address, none when it is another address or IPv6 (then --listen is the IPv6 socket, and only none may be given here); on --listen's default port under --listen none; \"none\": no IPv6 socket")
	fs.VarP(&f.bootstrap, "bootstrap", "b", "comma-separated `host:port` list of DHT nodes to join through, or repeated (replaces the public routers; empty for none)")
	fs.StringVarP(&f.stateDir, "state-dir", "s", stateDirDefault(), "`directory` to keep the node ID, routing table and config.toml in, so a restart is warm (empty: keep nothing); one process at a time uses it")
	fs.BoolVar(&f.logJSON, "log-json", false, "log JSON lines instead of human-readable text")
	fs.StringVar(&f.logLevel, "log-level", logLevel, "log `level`: debug, info, warn, error")
	fs.Float64Var(&f.ratePerIP, "rate-per-ip", krpc.DefaultRatePerIP, "DHT packets per second accepted from one source IP (0: no per-source limit)")
	fs.IntVar(&f.burstPerIP, "burst-per-ip", krpc.DefaultBurstPerIP, "DHT packets one source IP may send in a burst (0: no per-source limit)")
	fs.DurationVar(&f.blockFor, "block-for", krpc.DefaultBlockFor, "how long a source IP that floods is ignored (0: never block; its excess is still dropped)")
	fs.Float64Var(&f.sendRate, "send-rate", krpc.DefaultSendRate, "DHT packets per second we send at most (0: no limit)")
	fs.IntVar(&f.maxAmplification, "max-amplification", krpc.DefaultMaxAmplification, "DHT answers stay within this multiple of the query's size, beyond BEP-sized node lists (0: no limit)")
	markGroup(fs, groupExpert, "listen6", "bootstrap", "log-json")
	markGroup(fs, groupDefence, "rate-per-ip", "burst-per-ip", "block-for", "send-rate", "max-amplification")
}

// limits checks the DHT-defence flags: each is off at 0, so a negative
// value is a mistake rather than another way to say off.
func (f *dhtFlags) limits() error {
	switch {
	case f.ratePerIP < 0:
		return usagef("--rate-per-ip %v: negative (0 turns the limit off)", f.ratePerIP)
	case f.burstPerIP < 0:
		return usagef("--burst-per-ip %d: negative (0 turns the limit off)", f.burstPerIP)
	case f.blockFor < 0:
		return usagef("--block-for %v: negative (0 never blocks)", f.blockFor)
	case f.sendRate < 0:
		return usagef("--send-rate %v: negative (0 turns the limit off)", f.sendRate)
	case f.maxAmplification < 0:
		return usagef("--max-amplification %d: negative (0 turns the bound off)", f.maxAmplification)
	}
	return nil
}

// open loads what fetch or seed is asked for (a magnet link or .torrent)
// and makes the logger and the reporter both use; the caller syncs the
// logger.
func (f *dhtFlags) open(arg string, stdout, stderr io.Writer, jsonOut bool) (*target, *zap.Logger, *reporter, error) {
	tg, err := loadTarget(arg)
	if err != nil {
		return nil, nil, nil, inputError(err)
	}
	log, err := f.logger(stderr)
	if err != nil {
		return nil, nil, nil, err
	}
	return tg, log, newReporter(stdout, stderr, jsonOut), nil
}

// untilStopped makes the logger of a command that runs until SIGINT or
// SIGTERM, and the context those signals end; done syncs the one and
// stops watching for the other.
func (f *dhtFlags) untilStopped(stderr io.Writer) (*zap.Logger, context.Context, func(), error) {
	log, err := f.logger(stderr)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	return log, ctx, func() { stop(); _ = log.Sync() }, nil
}

func (f *dhtFlags) logger(w io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(f.logLevel)
	if err != nil {
		return nil, usagef("--log-level: %v", err)
	}
	var enc zapcore.Encoder
	if f.logJSON {
		enc = zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	} else {
		c := zap.NewDevelopmentEncoderConfig()
		c.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
		enc = zapcore.NewConsoleEncoder(c)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), lvl)), nil
}

// noSocket is the --listen and --listen6 value that turns a family off.
const noSocket = "none"

// ipv6Listen is the address of the IPv6 DHT socket, "" for none. By
// default it follows --listen: all interfaces for all interfaces, ::1 for
// a loopback address (so a test or a local network on 127.x never binds a
// wildcard), and none for a specific address, which pins the node to one
// interface of the other family, or for an IPv6 --listen, whose one socket
// is then the IPv6 DHT (and an explicit --listen6 beside it a usage
// error). Under --listen none it is all interfaces on --listen's default
// port. Port 0 asks for the IPv4 socket's port when it is free.
func (f *dhtFlags) ipv6Listen() (string, error) {
	switch f.listen6 {
	case noSocket:
		return "", nil
	case "":
	default:
		ap, err := netip.ParseAddrPort(f.listen6)
		if err != nil || !ap.Addr().Is6() || ap.Addr().Is4In6() {
			return "", usagef("--listen6 %q: want [IPv6 address]:port", f.listen6)
		}
		if udpNet(f.listen) == "udp6" {
			return "", usagef("--listen %q is IPv6, so it is the IPv6 DHT socket: give --listen6 none, or an IPv4 --listen", f.listen)
		}
		return f.listen6, nil
	}
	if f.listen == noSocket {
		// All interfaces, on the port --listen would have had: the
		// node's well-known port for node dht.
		port := "0"
		if _, p, err := net.SplitHostPort(f.defaultListen); err == nil && p != "" {
			port = p
		}
		return net.JoinHostPort("::", port), nil
	}
	host, port, err := net.SplitHostPort(f.listen)
	if err != nil {
		return "", usagef("--listen %q: %v", f.listen, err)
	}
	if host == "" || host == "0.0.0.0" {
		return net.JoinHostPort("::", port), nil
	}
	a, err := netip.ParseAddr(host)
	if err == nil && a.Is6() && !a.Is4In6() {
		// --listen is itself an IPv6 address: its one socket is the
		// IPv6 DHT.
		return "", nil
	}
	if err == nil && a.IsLoopback() {
		return net.JoinHostPort("::1", port), nil
	}
	return "", nil
}

// udpNet is the network a DHT socket on addr binds: udp6 (IPv6 only) for
// an IPv6 host, else udp4. Never "udp": on a wildcard that is one socket
// for both families, which would serve IPv6 queriers from the IPv4
// table, and IPv6 would stay on under --listen6 none (or IPv4 under
// --listen none).
func udpNet(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "udp4"
	}
	if a, err := netip.ParseAddr(host); err == nil && a.Is6() && !a.Is4In6() {
		return "udp6"
	}
	return "udp4"
}

// startNode binds the DHT sockets (see bindDHT) and starts the node of
// node dht and node peers; mod, if not nil, adjusts the configuration
// first.
func (f *dhtFlags) startNode(log *zap.Logger, mod func(*dht.Config)) (*dht.Node, dht.Config, error) {
	cfg, err := f.config(log)
	if err != nil {
		return nil, cfg, err
	}
	if mod != nil {
		mod(&cfg)
	}
	if err := bindDHT(&cfg, log); err != nil {
		return nil, cfg, err
	}
	n, err := dht.New(cfg) // owns Conn and Conn6, even when it fails
	return n, cfg, err
}

// bindDHT binds the sockets cfg.Listen and Listen6 name, each of its
// family alone (udpNet; the IPv6 one on the IPv4 one's port when its own
// is 0 and that is free), and hands them to the node as Conn and Conn6.
// Like dht.New, it runs on one family when the other's socket cannot be
// bound, and fails when neither binds.
func bindDHT(cfg *dht.Config, log *zap.Logger) error {
	l4, l6 := cfg.Listen, cfg.Listen6
	conn, err := net.ListenPacket(udpNet(l4), l4)
	if l6 == "" {
		if err != nil {
			return fmt.Errorf("DHT: listen %s: %w", l4, err)
		}
		cfg.Conn = conn
		return nil
	}
	port := 0
	if err == nil {
		port = localPort(conn)
	}
	conn6, err6 := listenUDP6(l6, port)
	switch {
	case err != nil && err6 != nil:
		return fmt.Errorf("DHT: listen %s: %w; listen6 %s: %w", l4, err, l6, err6)
	case err != nil:
		log.Warn("no IPv4 DHT socket; running on IPv6 alone", zap.String("listen", l4), zap.Error(err))
		cfg.Conn = conn6
	case err6 != nil:
		log.Warn("no IPv6 DHT socket; running on IPv4 alone", zap.String("listen6", l6), zap.Error(err6))
		cfg.Conn = conn
	default:
		cfg.Conn, cfg.Conn6 = conn, conn6
	}
	cfg.Listen6 = ""
	return nil
}

// config is the DHT's configuration: the IPv4 socket on --listen and the
// IPv6 one on ipv6Listen, either of which may be "none".
func (f *dhtFlags) config(log *zap.Logger) (dht.Config, error) {
	l6, err := f.ipv6Listen()
	if err != nil {
		return dht.Config{}, err
	}
	l4 := f.listen
	switch {
	case l4 == noSocket && l6 == "":
		return dht.Config{}, usagef("--listen and --listen6 are both %s", noSocket)
	case l4 == noSocket:
		l4, l6 = l6, ""
	}
	if err := f.limits(); err != nil {
		return dht.Config{}, err
	}
	// On the command line 0 turns each limit off. krpc reads a zero
	// BurstPerIP as twice the rate and a zero BlockFor as
	// krpc.DefaultBlockFor (defaults for a bare Config), so those two
	// offs are spelled the way krpc takes them: no per-source rate, and a
	// negative block.
	ratePerIP, blockFor := f.ratePerIP, f.blockFor
	if f.burstPerIP == 0 {
		ratePerIP = 0
	}
	if blockFor == 0 {
		blockFor = -1
	}
	return dht.Config{
		Listen:    l4,
		Listen6:   l6,
		Bootstrap: f.bootstrap.vals,
		// The public routers are for joining; a node with a saved table
		// rejoins through that. Addresses the user gave are always used.
		BootstrapFallback: !f.bootstrap.set,
		StateDir:          f.stateDir,
		Logger:            log,

		RatePerIP:        ratePerIP,
		BurstPerIP:       f.burstPerIP,
		BlockFor:         blockFor,
		SendRate:         f.sendRate,
		MaxAmplification: f.maxAmplification,
	}, nil
}

// stateDirDefault is --state-dir's default; tests of the commands run
// in-process replace it, so that they leave nothing in the user's home.
var stateDirDefault = defaultStateDir

// defaultStateDir is $XDG_STATE_HOME/node, else ~/.local/state/node (the
// XDG base directory rules: a relative XDG_STATE_HOME is ignored), else
// none when there is no home.
func defaultStateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "node")
	}
	if h, err := os.UserHomeDir(); err == nil && filepath.IsAbs(h) {
		return filepath.Join(h, ".local", "state", "node")
	}
	return ""
}

// listFlag is a comma-separated list whose default is replaced, not
// appended to, when the flag is given; given again, it appends.
type listFlag struct {
	vals []string
	set  bool // given on the command line
}

func (l *listFlag) String() string { return strings.Join(l.vals, ",") }
func (l *listFlag) Type() string   { return "list" }

func (l *listFlag) Set(s string) error {
	if !l.set {
		l.vals = nil
	}
	l.vals, l.set = append(l.vals, splitList(s)...), true
	return nil
}

// multiFlag collects every value of a repeatable flag.
type multiFlag []string

func (m *multiFlag) String() string { return strings.Join(*m, ",") }
func (m *multiFlag) Type() string   { return "list" }

func (m *multiFlag) Set(s string) error {
	*m = append(*m, splitList(s)...)
	return nil
}

// tierFlag collects BEP 12 tiers: each value is a tier, its
// comma-separated URLs the tier's trackers (as mktorrent's -a).
type tierFlag [][]string

func (t *tierFlag) String() string {
	var s []string
	for _, tier := range *t {
		s = append(s, strings.Join(tier, ","))
	}
	return strings.Join(s, " ")
}

func (t *tierFlag) Type() string { return "tier" }

func (t *tierFlag) Set(s string) error {
	if tier := splitList(s); len(tier) > 0 {
		*t = append(*t, tier)
	}
	return nil
}

// splitList splits a comma-separated flag value, dropping blanks around
// and between commas: "a, b,,c" is a, b and c.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// newFlagSet makes a command's flag set: GNU-style (--long, -s short
// forms, flags before or after the arguments, -- ends them), with --config
// and a help that puts the everyday flags first (see printFlags). The
// Go-style single-dash long form (-listen) is taken too, by run
// (goStyleLong). Run with a *flagCapture as w, a command hands its flag
// set over for run, help and completion instead of running.
func newFlagSet(name string, w io.Writer, usageLine string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(w)
	fs.String(configFlag, "", "TOML `file` of flag defaults (default: config.toml in --state-dir, or the default state directory; empty: none)")
	markGroup(fs, groupExpert, configFlag)
	fs.Usage = func() {
		io.WriteString(w, "usage: "+usageLine+"\n")
		printFlags(w, fs)
	}
	if c, ok := w.(*flagCapture); ok {
		c.fs = fs
	}
	return fs
}

// flagSet reports whether the named flag was given on the command line
// (or in the config file).
func flagSet(fs *pflag.FlagSet, name string) bool {
	return fs.Changed(name)
}
