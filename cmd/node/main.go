// Command node is a BitTorrent peer that needs no tracker: a Mainline DHT
// node (IPv4 and IPv6) that finds peers through the DHT, through its
// peers (PEX), and through the trackers a link names unless --no-trackers.
//
//	node fetch  [flags] <magnet|file.torrent>  download, verify, then seed
//	node seed   [flags] <file.torrent|magnet>  serve existing data
//	node create [flags] <path>                 make a .torrent (trackerless unless --tracker)
//	node info   <file.torrent>                 describe a .torrent
//	node dht    [flags]                        run a long-lived DHT node
//	node peers  [flags] <infohash|magnet>      find (and optionally announce) peers
//	node daemon [flags]                        run many torrents behind an HTTP API and a web page
//	node add|ls|rm|pause|resume|url ...        talk to a running daemon
//	node help [command], node version, node completion bash|zsh
//
// Every subcommand that joins the DHT takes --listen, --listen6 and
// --bootstrap. The default bootstrap list is the public routers;
// --bootstrap replaces it and serves both families. Each runs an IPv4 and
// an IPv6 socket (BEP 32), each taking its own family alone: --listen is
// the IPv4 one, --listen6 the IPv6 one; by default --listen6 follows
// --listen ([::] for all interfaces, [::1] for a loopback address, none
// for another address or an IPv6 --listen, which is then itself the IPv6
// socket and takes no --listen6 but none), and none turns either off
// (--listen none for dht and peers only; the IPv6 socket keeps --listen's
// default port). A BEP 5 port message tells each peer the DHT port of its
// family. With an entry point of one family only, the other family joins
// through BEP 32 want.
//
// fetch and seed accept peers on --listen's address (the default, all
// interfaces, takes IPv4 and IPv6 peers on one port), on each
// --peer-listen address at the same port, and beside a specific IPv6 DHT
// address. Outgoing peer connections leave from the listen IP of their
// family when it is a specific address.
//
// fetch, seed and dht map their ports on the home router by default
// (package portmap: NAT-PMP, then UPnP IGD), renew the mapping and remove
// it on exit, show the mapped address on the status line (a port_mapping
// event with --json), and pass the gateway's reported external address to
// the DHT's BEP 42 vote as one voter; --no-port-mapping turns this off.
// fetch and seed announce the external TCP port the gateway gives when it
// differs from the listener's; dht maps only its UDP port.
//
// fetch and seed run uTP on the DHT's sockets, which share the TCP
// listener's port number, so a peer reaches TCP, uTP and the DHT at the
// port it learns; --no-utp keeps peers on TCP. Progress lines count uTP
// peers, and --json progress events list each peer with its transport.
//
// Every command that runs a DHT keeps its node ID and routing table in a
// state directory ($XDG_STATE_HOME/node, else ~/.local/state/node;
// --state-dir, empty for none), used by one process at a time. node dht
// --metrics serves Prometheus metrics (package metrics). peers --trace
// draws the lookup from the dht.Trace it records (tracesvg.go):
// hand-written SVG, escaped text, written atomically.
//
// node daemon runs many torrents on one DHT node until SIGINT/SIGTERM
// (package daemon), serving the HTTP API (package api), the web page
// (package web) and /metrics on --api (127.0.0.1:9180), with the token
// in the state directory's api-token (0600, made once) and the bound
// address in api-addr while it runs; without a state directory the token
// is printed on stderr. Torrents, saved info dictionaries and counts are
// kept in the state directory and survive a kill. It takes every
// torrent's peers on one port, --listen's, over TCP and uTP (the DHT's
// UDP socket): a peer.Mux reads each incoming handshake and routes it to
// its torrent; --max-upload-rate and --max-download-rate are one limit
// each over all torrents. node add, ls, rm, pause
// and resume talk to it through the API (remote.go), found through
// api-addr and api-token, or --api and --token-file; node url asks it
// for a one-time login URL of its web page.
//
// Flags are GNU-style (package pflag): --long or a short form, before or
// after the arguments, -- ends them; Go's single-dash long form (-listen)
// is still taken (goStyleLong). The command table (commands) is where
// run, node help, completion and the config file learn each command's
// flags: each command, run with --help and a flagCapture, hands over its
// flag set. Defaults for any flag may come from config.toml in the state
// directory (--config overrides the path); the command line wins. On the
// command line 0 turns every limit off.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// commands are node's subcommands, in the order usage lists them. Each
// makes its flags with newFlagSet before anything else, which is how run
// (goStyleLong, the config file), help and completion learn them.
var commands = []command{
	{"fetch", "download a magnet link or .torrent through the DHT, then seed it", runFetch},
	{"seed", "serve existing data of a .torrent or magnet link", runSeed},
	{"create", "make a .torrent", runCreate},
	{"info", "describe a .torrent", runInfo},
	{"dht", "run a long-lived Mainline DHT node until SIGINT/SIGTERM", func(args []string, _, stderr io.Writer) error { return runDHT(args, stderr) }},
	{"peers", "find peers for an info-hash or magnet link through the DHT", runPeers},
	{"daemon", "run many torrents behind an HTTP API and a web page until SIGINT/SIGTERM", func(args []string, _, stderr io.Writer) error { return runDaemon(args, stderr) }},
	{"add", "add magnet links or .torrent files to a running daemon", runAdd},
	{"ls", "list a running daemon's torrents", runLs},
	{"rm", "remove torrents from a running daemon (--delete-data: their files too)", runRm},
	{"pause", "stop torrents of a running daemon", runPause},
	{"resume", "start paused torrents of a running daemon", runResume},
	{"url", "print a one-time URL that opens a running daemon's web page and logs it in", runURL},
}

// builtins are the commands run itself answers, which have no flags.
var builtins = []command{
	{"help", "show the commands, or one command's flags: node help <command>", nil},
	{"version", "show the version and the commit it was built from", nil},
	{"completion", "print a bash or zsh completion script: node completion bash|zsh", nil},
}

type command struct {
	name, summary string
	run           func(args []string, stdout, stderr io.Writer) error
}

func lookupCommand(name string) *command {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "--help":
		return runHelp(args[1:], stdout, stderr)
	case "version", "--version", "-V":
		fmt.Fprint(stdout, versionText())
		return exitOK
	case "completion":
		return runCompletion(args[1:], stdout, stderr)
	}
	c := lookupCommand(args[0])
	if c == nil {
		fmt.Fprintf(stderr, "node: unknown command %q\n", printable(args[0]))
		usage(stderr)
		return exitUsage
	}
	tuneGC()
	defer startProfile(stderr)()
	args, err := prepareArgs(c, args[1:])
	if err == nil {
		err = c.run(args, stdout, stderr)
	}
	var ue usageError
	var ex exitError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, pflag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "node %s: %s\n", c.name, printable(err.Error()))
		return exitUsage
	case errors.As(err, &ex):
		if ex.msg != "" {
			fmt.Fprintf(stderr, "node %s: %s\n", c.name, printable(ex.msg))
		}
		return ex.code
	default:
		fmt.Fprintf(stderr, "node %s: %s\n", c.name, printable(err.Error()))
		return exitFailure
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, "usage: node <command> [flags] [arguments]\n\ncommands:\n")
	for _, cs := range [][]command{commands, builtins} {
		for _, c := range cs {
			fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
		}
	}
	fmt.Fprint(w, `
Flags go before or after the arguments; -- ends them. Defaults for any
flag can be kept in config.toml in the state directory.
Run "node help <command>" or "node <command> -h" for a command's flags,
"node --version" for the version.
`)
}
