package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/pflag"

	"node/metadata"
	"node/peer"
	"node/peer/tracker"
)

func runFetch(args []string, stdout, stderr io.Writer) error {
	var f dhtFlags
	fs := newFlagSet("fetch", stderr, "node fetch [flags] <magnet|file.torrent>")
	f.logLevel = "warn" // the progress line is the output; logs are for trouble
	f.register(fs, ":0")
	f.registerPeerListen(fs)
	f.registerUTP(fs)
	f.registerEncryption(fs)
	dir := fs.StringP("dir", "d", ".", "download `directory`")
	seedRatio := fs.Float64("seed-ratio", 0, "after completing, seed until uploaded/size reaches this `ratio` (0: until interrupted)")
	noSeed := fs.Bool("no-seed", false, "exit as soon as the download is complete and verified")
	metaOnly := fs.Bool("metadata-only", false, "only fetch the info dictionary and write it as a .torrent (with -o)")
	outFile := fs.StringP("output", "o", "", "with --metadata-only: the .torrent `file` to write")
	jsonOut := fs.BoolP("json", "j", false, "print one JSON event per line on stdout instead of a progress line")
	timeout := fs.DurationP("timeout", "t", 10*time.Minute, "give up if there is no metadata, or no peer, after this long (0: never)")
	upRate, downRate := registerRateFlags(fs)
	f.registerPortMapping(fs)
	overwrite := fs.Bool("overwrite", false, "write over files already at the torrent's paths that hold other data (by default node stops, exit 7); data that verifies is kept. "+
		"A file holding the right data but sharing a piece with a missing neighbouring file is refused too (that piece cannot verify), and --overwrite loses nothing there")
	noTrackers := registerTrackerFlag(fs)
	osCache := fs.Bool("os-cache", false, "write through the page cache instead of direct I/O (direct I/O is used where the file system allows)")
	markGroup(fs, groupExpert, "os-cache")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() != 1 {
		return usagef("want one magnet link or .torrent file, got %d arguments", fs.NArg())
	}
	if *metaOnly && *outFile == "" {
		return usagef("--metadata-only needs -o/--output file.torrent")
	}
	if *seedRatio < 0 {
		return usagef("--seed-ratio must be positive")
	}
	bootstrapSet := flagSet(fs, "bootstrap")
	tg, log, out, err := f.open(fs.Arg(0), stdout, stderr, *jsonOut)
	if err != nil {
		return err
	}
	defer log.Sync()
	trackers := useTrackers(tg, *noTrackers, out)

	t, err := runSwarm(&f, bootstrapSet, tg, *dir, log, out, func(c *peer.Config) {
		c.Trackers = trackers
		c.MetadataOnly = *metaOnly
		c.OSCache = *osCache
		c.Overwrite = *overwrite
		c.MaxUploadRate, c.MaxDownloadRate = upRate.bytes, downRate.bytes
	}, superviseOpts{timeout: *timeout, noSeed: *noSeed, metaOnly: *metaOnly, ratio: *seedRatio})
	if *metaOnly && err == nil {
		return writeTorrent(t, *outFile, out)
	}
	return err
}

func writeTorrent(t *peer.Torrent, path string, out *reporter) error {
	info := t.Info()
	if info == nil {
		return exitError{exitNoPeers, "no metadata"}
	}
	b, err := (&metadata.MetaInfo{Info: info, CreatedBy: peer.ClientVersion}).Marshal()
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return exitError{exitDisk, err.Error()}
	}
	out.note("wrote " + path)
	return nil
}

// registerTrackerFlag adds --no-trackers to fetch or seed.
func registerTrackerFlag(fs *pflag.FlagSet) *bool {
	return fs.Bool("no-trackers", false, "contact none of the trackers the magnet link or .torrent names: find peers through the DHT (and x.pe) only")
}

// useTrackers is the tiers to announce to, and says so.
func useTrackers(tg *target, none bool, out *reporter) [][]string {
	n := tg.numTrackers()
	switch {
	case n == 0:
		return nil
	case none:
		out.note(fmt.Sprintf("ignoring %d tracker(s) (--no-trackers)", n))
		return nil
	}
	if tg.moreTrackers > 0 {
		out.note(fmt.Sprintf("asking %d tracker(s) as well as the DHT; %d more ignored (at most %d)", n, tg.moreTrackers, tracker.MaxTrackers))
	} else {
		out.note(fmt.Sprintf("asking %d tracker(s) as well as the DHT", n))
	}
	return tg.trackers
}
