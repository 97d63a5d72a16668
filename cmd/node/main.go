// Command node is a trackerless BitTorrent peer: a Mainline DHT node that
// finds peers without trackers.
//
//	node fetch  [flags] <magnet|file.torrent>  download, verify, then seed
//	node seed   [flags] <file.torrent|magnet>  serve existing data
//	node create [flags] <path>                 make a trackerless .torrent
//	node info   <file.torrent>                 describe a .torrent
//	node dht    [flags]                        run a long-lived DHT node
//	node peers  [flags] <infohash|magnet>      find (and optionally announce) peers
//
// Every subcommand that joins the DHT takes --listen and --bootstrap. The
// default bootstrap list is the public routers; --bootstrap replaces it.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	tuneGC()
	defer startProfile(stderr)()
	var err error
	switch args[0] {
	case "dht":
		err = runDHT(args[1:], stderr)
	case "peers":
		err = runPeers(args[1:], stdout, stderr)
	case "fetch":
		err = runFetch(args[1:], stdout, stderr)
	case "seed":
		err = runSeed(args[1:], stdout, stderr)
	case "create":
		err = runCreate(args[1:], stdout, stderr)
	case "info":
		err = runInfo(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		usage(stdout)
		return exitOK
	default:
		fmt.Fprintf(stderr, "node: unknown command %q\n", args[0])
		usage(stderr)
		return exitUsage
	}
	var ue usageError
	var ex exitError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "node %s: %s\n", args[0], printable(err.Error()))
		return exitUsage
	case errors.As(err, &ex):
		if ex.msg != "" {
			fmt.Fprintf(stderr, "node %s: %s\n", args[0], printable(ex.msg))
		}
		return ex.code
	default:
		fmt.Fprintf(stderr, "node %s: %s\n", args[0], printable(err.Error()))
		return exitFailure
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: node <command> [flags]

commands:
  fetch   download a magnet link or .torrent through the DHT, then seed it
  seed    serve existing data of a .torrent or magnet link
  create  make a .torrent
  info    describe a .torrent
  dht     run a long-lived Mainline DHT node until SIGINT/SIGTERM
  peers   find peers for an info-hash or magnet link through the DHT

Run "node <command> -h" for a command's flags.
`)
}
