package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"node/metadata"
	"node/peer"
)

func runCreate(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("create", stderr, "node create [flags] <path> -o file.torrent")
	out := fs.String("o", "", "the .torrent `file` to write (required)")
	pieceLen := fs.Int64("piece-length", 0, "piece length in `bytes`, a power of two ≥ 16384 (0: chosen from the size)")
	var nodes multiFlag
	fs.Var(&nodes, "node", "`host:port` of a DHT node to put in the torrent's nodes key (repeatable, or comma-separated)")
	if err := fs.Parse(reorder(args)); err != nil {
		return usageError{err}
	}
	if fs.NArg() != 1 || *out == "" {
		return usagef("want one path and -o file.torrent")
	}
	if pl := *pieceLen; pl != 0 && (pl < 16<<10 || pl&(pl-1) != 0 || pl > metadata.MaxPieceLength) {
		return usagef("--piece-length %d: want a power of two from 16384 to %d", pl, metadata.MaxPieceLength)
	}
	mi, err := metadata.Create(fs.Arg(0), metadata.CreateOptions{PieceLength: *pieceLen, Nodes: nodes, CreatedBy: peer.ClientVersion})
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
// so "node create DIR -o x.torrent" works as users type it.
func reorder(args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			pos = append(pos, args[i+1:]...)
			return append(flags, pos...)
		case len(a) > 1 && a[0] == '-':
			flags = append(flags, a)
			if !hasValue(a) && i+1 < len(args) && !isBoolFlag(a) {
				flags = append(flags, args[i+1])
				i++
			}
		default:
			pos = append(pos, a)
		}
	}
	return append(flags, pos...)
}

func hasValue(a string) bool {
	for _, c := range a {
		if c == '=' {
			return true
		}
	}
	return false
}

func isBoolFlag(string) bool { return false } // create has no boolean flags

// multiFlag collects every value of a repeatable flag.
type multiFlag []string

func (m *multiFlag) String() string { return strings.Join(*m, ",") }

func (m *multiFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*m = append(*m, v)
		}
	}
	return nil
}
