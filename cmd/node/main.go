// Command node is a trackerless BitTorrent peer: a Mainline DHT node that
// finds peers without trackers.
//
//	node dht   [flags]                      run a long-lived DHT node
//	node peers [flags] <infohash|magnet>    find (and optionally announce) peers
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

// Exit codes, documented in the README.
const (
	exitOK      = 0
	exitFailure = 1 // the work could not be done (no peers, no DHT node answered, I/O)
	exitUsage   = 2 // bad arguments
	exitSignal  = 130
)

// usageError marks errors caused by the command line, so they exit with
// exitUsage rather than exitFailure.
type usageError struct{ error }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	var err error
	switch args[0] {
	case "dht":
		err = runDHT(args[1:], stderr)
	case "peers":
		err = runPeers(args[1:], stdout, stderr)
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
		fmt.Fprintf(stderr, "node %s: %v\n", args[0], err)
		return exitUsage
	case errors.As(err, &ex):
		if ex.msg != "" {
			fmt.Fprintf(stderr, "node %s: %s\n", args[0], ex.msg)
		}
		return ex.code
	default:
		fmt.Fprintf(stderr, "node %s: %v\n", args[0], err)
		return exitFailure
	}
}

// exitError ends a command with a specific code.
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return e.msg }

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: node <command> [flags]

commands:
  dht     run a long-lived Mainline DHT node until SIGINT/SIGTERM
  peers   find peers for an info-hash or magnet link through the DHT

Run "node <command> -h" for a command's flags.
`)
}
