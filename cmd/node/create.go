package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"node/metadata"
	"node/peer"
	"node/peer/tracker"
)

func runCreate(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("create", stderr, "node create [flags] <path> -o file.torrent")
	out := fs.String("o", "", "the .torrent `file` to write (required)")
	pieceLen := fs.Int64("piece-length", 0, "piece length in `bytes`, a power of two ≥ 16384 (0: chosen from the size)")
	var nodes multiFlag
	fs.Var(&nodes, "node", "`host:port` of a DHT node to put in the torrent's nodes key (repeatable, or comma-separated)")
	var trackers tierFlag
	fs.Var(&trackers, "tracker", "announce `URL` (http, https or udp) to put in the torrent; each --tracker is a tier of its own, comma-separated URLs share one (BEP 12)")
	if err := fs.Parse(reorder(fs, args)); err != nil {
		return usageError{err}
	}
	if fs.NArg() != 1 || *out == "" {
		return usagef("want one path and -o file.torrent")
	}
	if pl := *pieceLen; pl != 0 && (pl < 16<<10 || pl&(pl-1) != 0 || pl > metadata.MaxPieceLength) {
		return usagef("--piece-length %d: want a power of two from 16384 to %d", pl, metadata.MaxPieceLength)
	}
	for _, tier := range trackers {
		for _, u := range tier {
			if err := tracker.CheckURL(u); err != nil {
				return usagef("--tracker %q: %v", u, err)
			}
		}
	}
	mi, err := metadata.Create(fs.Arg(0), metadata.CreateOptions{PieceLength: *pieceLen, Nodes: nodes,
		Trackers: trackers, CreatedBy: peer.ClientVersion})
	if err != nil {
		return err
	}
	b, err := mi.Marshal()
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		return exitError{exitDisk, err.Error()}
	}
	fmt.Fprintf(stdout, "%s\n%s\n", mi.Info.InfoHash, mi.Magnet())
	return nil
}

// reorder moves flags after the first positional argument to the front,
// so "node create DIR -o x.torrent" works as users type it. A flag takes
// the next argument as its value, as package flag parses it, unless it
// has one after "=" or is boolean.
func reorder(fs *flag.FlagSet, args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			pos = append(pos, args[i+1:]...)
			return append(flags, pos...)
		case len(a) > 1 && a[0] == '-':
			flags = append(flags, a)
			if !strings.Contains(a, "=") && !isBool(fs, a) && i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
		default:
			pos = append(pos, a)
		}
	}
	return append(flags, pos...)
}

// isBool reports whether arg ("-name" or "--name") is a boolean flag of
// fs, which package flag lets stand without a value.
func isBool(fs *flag.FlagSet, arg string) bool {
	f := fs.Lookup(strings.TrimLeft(arg, "-"))
	if f == nil {
		return false
	}
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}
