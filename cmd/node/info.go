package main

import (
	"fmt"
	"io"
	"path/filepath"
	"text/tabwriter"

	"node/peer/tracker"
)

func runInfo(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("info", stderr, "node info <file.torrent>")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() != 1 {
		return usagef("want one .torrent file")
	}
	tg, err := loadTarget(fs.Arg(0))
	if err != nil {
		return inputError(err)
	}
	if tg.info == nil {
		return usagef("node info takes a .torrent file, not a magnet link")
	}
	in := tg.info
	fmt.Fprintf(stdout, "name:       %s\n", printable(in.Name))
	fmt.Fprintf(stdout, "info-hash:  %s\n", in.InfoHash)
	fmt.Fprintf(stdout, "magnet:     %s\n", in.Magnet())
	fmt.Fprintf(stdout, "size:       %s (%d bytes)\n", size(in.Length), in.Length)
	fmt.Fprintf(stdout, "pieces:     %d × %s\n", in.NumPieces(), size(in.PieceLength))
	if in.Private {
		fmt.Fprintf(stdout, "private:    yes (BEP 27: a DHT-only client cannot find its peers)\n")
	}
	for _, n := range tg.nodes {
		fmt.Fprintf(stdout, "node:       %s\n", n)
	}
	for i, tier := range tg.trackers {
		for _, u := range tier {
			fmt.Fprintf(stdout, "tracker:    %s (tier %d)\n", printable(u), i+1)
		}
	}
	if tg.moreTrackers > 0 {
		fmt.Fprintf(stdout, "tracker:    %d more, not asked (at most %d)\n", tg.moreTrackers, tracker.MaxTrackers)
	}
	if tg.unusableTrackers > 0 {
		fmt.Fprintf(stdout, "tracker:    %d more, not asked (not http, https or udp, or malformed)\n", tg.unusableTrackers)
	}
	fmt.Fprintf(stdout, "files:\n")
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', tabwriter.AlignRight)
	for _, f := range in.Files {
		if f.Padding {
			continue
		}
		fmt.Fprintf(tw, "%d\t  %s\t\n", f.Length, printable(filepath.Join(f.Path...)))
	}
	return tw.Flush()
}
