package main

import (
	"io"

	"node/peer"
)

func runSeed(args []string, stdout, stderr io.Writer) error {
	var f dhtFlags
	fs := newFlagSet("seed", stderr, "node seed [flags] <file.torrent|magnet>")
	f.logLevel = "warn"
	f.register(fs, ":0")
	f.registerPeerListen(fs)
	f.registerUTP(fs)
	f.registerEncryption(fs)
	dir := fs.StringP("dir", "d", ".", "`directory` holding the data")
	jsonOut := fs.BoolP("json", "j", false, "print one JSON event per line on stdout")
	upRate, downRate := registerRateFlags(fs)
	noTrackers := registerTrackerFlag(fs)
	f.registerPortMapping(fs)
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() != 1 {
		return usagef("want one .torrent file or magnet link, got %d arguments", fs.NArg())
	}
	tg, log, out, err := f.open(fs.Arg(0), stdout, stderr, *jsonOut)
	if err != nil {
		return err
	}
	defer log.Sync()
	trackers := useTrackers(tg, *noTrackers, out)
	_, err = runSwarm(&f, flagSet(fs, "bootstrap"), tg, *dir, log, out, func(c *peer.Config) {
		c.Trackers = trackers
		c.NoDownload = true
		c.MaxUploadRate, c.MaxDownloadRate = upRate.bytes, downRate.bytes
	}, superviseOpts{seedOnly: true})
	if e, ok := err.(exitError); ok && e.code == exitSignal {
		return nil // stopping a seed is the normal way to end it
	}
	return err
}
