package main

import (
	"fmt"
	"io"
	"os"

	"node/metadata"
	"node/peer"
	"node/peer/tracker"
)

func runCreate(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("create", stderr, "node create [flags] <path> -o file.torrent")
	out := fs.StringP("output", "o", "", "the .torrent `file` to write (required)")
	pieceLen := fs.Int64("piece-length", 0, "piece length in `bytes`, a power of two ≥ 16384 (0: chosen from the size)")
	var nodes multiFlag
	fs.Var(&nodes, "node", "`host:port` of a DHT node to put in the torrent's nodes key (repeatable, or comma-separated)")
	var trackers tierFlag
	fs.Var(&trackers, "tracker", "announce `URL` (http, https or udp) to put in the torrent; each --tracker is a tier of its own, comma-separated URLs share one (BEP 12)")
	if err := fs.Parse(args); err != nil {
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
