package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/pflag"

	"node/cmd/node/api"
	"node/metadata"
)

// The commands here talk to a running node daemon through its API:
// node add, ls, rm, pause and resume.

// minPrefix is the fewest hex digits that name a torrent, as git's
// abbreviated hashes.
const minPrefix = 4

// shortHash is how many hex digits of an info-hash node ls shows.
const shortHash = 8

// errNoDaemon is what the commands say when no daemon answers.
var errNoDaemon = errors.New("no daemon running: start one with node daemon")

// apiFlags find the daemon: its state directory's api-addr and
// api-token, or --api and --token-file.
type apiFlags struct {
	stateDir, addr, tokenFile *string
}

func registerAPIFlags(fs *pflag.FlagSet) apiFlags {
	return apiFlags{
		stateDir:  fs.String("state-dir", stateDirDefault(), "`directory` of the daemon, holding its api-addr and api-token"),
		addr:      fs.String("api", "", "`address` of the daemon's API (default: the state directory's api-addr)"),
		tokenFile: fs.String("token-file", "", "`file` holding the API token (default: the state directory's api-token)"),
	}
}

// remoteDaemon is a client of the daemon the flags name.
type remoteDaemon struct {
	*api.Client
	addr string
}

func (f apiFlags) connect() (*remoteDaemon, error) {
	addr := *f.addr
	if addr == "" {
		if *f.stateDir == "" {
			return nil, usagef("no state directory: give --state-dir or --api")
		}
		a, err := api.ReadAddr(*f.stateDir)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w (no %s in %s)", errNoDaemon, api.AddrFile, *f.stateDir)
		}
		if err != nil {
			return nil, err
		}
		addr = a
	}
	tf := *f.tokenFile
	if tf == "" {
		if *f.stateDir == "" {
			return nil, usagef("no state directory: give --state-dir or --token-file")
		}
		tf = filepath.Join(*f.stateDir, api.TokenFile)
	}
	tok, err := api.ReadToken(tf)
	if err != nil {
		return nil, fmt.Errorf("API token: %w", err)
	}
	// The token file's owner has the token already: root, reading a
	// service's state directory, may send it to the service's daemon.
	return &remoteDaemon{api.NewClient(addr, tok, api.TrustOwnerOf(tf)), addr}, nil
}

// connectList connects to the daemon and lists its torrents; the caller
// closes d.
func (f apiFlags) connectList() (*remoteDaemon, []api.Torrent, error) {
	d, err := f.connect()
	if err != nil {
		return nil, nil, err
	}
	ts, err := d.List(context.Background())
	if err != nil {
		err = d.explain(err)
		d.Close()
		return nil, nil, err
	}
	return d, ts, nil
}

// explain makes an error of the API's client say what to do about it.
func (d *remoteDaemon) explain(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w (nothing answers at %s)", errNoDaemon, d.addr)
	}
	var ae *api.Error
	if errors.As(err, &ae) && ae.Status == 401 {
		return fmt.Errorf("the daemon at %s refused the token: %s (is --token-file the daemon's?)", d.addr, ae.Message)
	}
	return err
}

func runAdd(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("add", stderr, "node add [flags] <magnet|file.torrent>...")
	af := registerAPIFlags(fs)
	dir := fs.String("dir", "", "download `directory` (default: the daemon's)")
	paused := fs.Bool("paused", false, "add without starting")
	var ratio optFloat
	fs.Var(&ratio, "seed-ratio", "stop seeding at this upload/size `ratio` (0: never; default: the daemon's)")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() == 0 {
		return usagef("want at least one magnet link or .torrent file")
	}
	if ratio.set && (ratio.v < 0 || math.IsNaN(ratio.v) || math.IsInf(ratio.v, 0)) {
		return usagef("--seed-ratio %v: want a number of 0 or more", ratio.v)
	}
	d, err := af.connect()
	if err != nil {
		return err
	}
	defer d.Close()
	base := api.AddRequest{Paused: *paused}
	if *dir != "" {
		// The daemon runs elsewhere: a relative directory is the user's.
		if base.Dir, err = filepath.Abs(*dir); err != nil {
			return err
		}
	}
	if ratio.set {
		base.SeedRatio = &ratio.v
	}
	return eachArg("add", fs.Args(), stderr, func(arg string) error {
		req := base
		if strings.HasPrefix(strings.ToLower(arg), "magnet:") {
			req.Magnet = arg
		} else {
			b, err := readTorrent(arg)
			if err != nil {
				return exitError{exitBadInput, err.Error()}
			}
			req.Torrent = b
		}
		t, err := d.Add(context.Background(), req)
		var br api.BadRequest
		switch {
		case errors.As(err, &br):
			return exitError{exitBadInput, err.Error()}
		case err != nil:
			return d.explain(err)
		}
		fmt.Fprintf(stdout, "added %s  %s\n", t.InfoHash, printable(t.Name))
		return nil
	})
}

// readTorrent reads a .torrent file, refusing one the API would not carry
// before reading it whole.
func readTorrent(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, api.MaxTorrentBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > api.MaxTorrentBytes {
		return nil, fmt.Errorf("%s: over %d bytes, more than the API carries", path, api.MaxTorrentBytes)
	}
	return b, nil
}

// eachArg runs do for each argument, reporting each failure, and fails at
// the end if any did; a daemon that cannot be reached ends it at once.
func eachArg(cmd string, args []string, stderr io.Writer, do func(string) error) error {
	var last error
	for _, a := range args {
		err := do(a)
		if err == nil {
			continue
		}
		if errors.Is(err, errNoDaemon) {
			return err
		}
		msg := err.Error()
		if e, ok := err.(exitError); ok {
			msg = e.msg
		}
		fmt.Fprintf(stderr, "node %s: %s: %s\n", cmd, printable(a), printable(msg))
		last = err
	}
	if last == nil {
		return nil
	}
	code := exitFailure
	if e, ok := last.(exitError); ok {
		code = e.code
	}
	return exitError{code: code}
}

// optFloat is a float flag that knows whether it was given.
type optFloat struct {
	v   float64
	set bool
}

func (o *optFloat) String() string {
	if !o.set {
		return ""
	}
	return strconv.FormatFloat(o.v, 'g', -1, 64)
}

func (o *optFloat) Set(s string) error {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return errors.New("want a number")
	}
	o.v, o.set = v, true
	return nil
}

func (o *optFloat) Type() string { return "float" }

func runLs(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ls", stderr, "node ls [flags]")
	af := registerAPIFlags(fs)
	jsonOut := fs.Bool("json", false, "print the daemon's list as JSON")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() != 0 {
		return usagef("node ls takes no arguments")
	}
	d, ts, err := af.connectList()
	if err != nil {
		return err
	}
	defer d.Close()
	if ts == nil {
		ts = []api.Torrent{}
	}
	if *jsonOut {
		return json.NewEncoder(stdout).Encode(struct {
			Torrents []api.Torrent `json:"torrents"`
		}{ts})
	}
	writeTable(stdout, ts)
	return nil
}

// writeTable lists torrents as transmission-remote -l does, oldest first,
// with a line of totals. Everything in it came from the daemon, or
// whatever answered in its place, and names from strangers: text is
// escaped, numbers are shown whatever they are.
func writeTable(w io.Writer, ts []api.Torrent) {
	slices.SortStableFunc(ts, func(a, b api.Torrent) int {
		if c := a.AddedAt.Compare(b.AddedAt); c != 0 {
			return c
		}
		return strings.Compare(a.InfoHash, b.InfoHash)
	})
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tDone\tHave\tSize\tDown\tUp\tPeers\tState\tName")
	var have, length int64
	var down, up float64
	var failed []api.Torrent
	for _, t := range ts {
		id := printable(t.InfoHash)
		if len(id) > shortHash {
			id = id[:shortHash]
		}
		sz := "?"
		if t.Length > 0 {
			sz = size(t.Length)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", id, donePercent(t), size(t.Done), sz,
			rateText(t.DownRate), rateText(t.UpRate), t.Peers, printable(t.State), printable(t.Name))
		have += t.Done
		length += t.Length
		down += t.DownRate
		up += t.UpRate
		if t.Error != "" {
			failed = append(failed, t)
		}
	}
	fmt.Fprintf(tw, "Sum:\t\t%s\t%s\t%s\t%s\t\t\t%d torrents\n", size(have), size(length), rateText(down), rateText(up), len(ts))
	tw.Flush()
	for _, t := range failed {
		id := printable(t.InfoHash)
		if len(id) > shortHash {
			id = id[:shortHash]
		}
		fmt.Fprintf(w, "%s: %s\n", id, printable(t.Error))
	}
}

// donePercent is how much of t is verified, rounded down so that 100%
// means complete; "n/a" before the metadata.
func donePercent(t api.Torrent) string {
	if t.Length <= 0 {
		return "n/a"
	}
	p := math.Floor(float64(t.Done) / float64(t.Length) * 100)
	return fmt.Sprintf("%.0f%%", max(0, min(p, 100)))
}

// rateText is a rate in bytes per second for people; "-" for none.
func rateText(r float64) string {
	if !(r >= 1) || r > math.MaxInt64/2 {
		return "-"
	}
	return size(int64(r)) + "/s"
}

func runRm(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("rm", stderr, "node rm [flags] <infohash|prefix>...")
	af := registerAPIFlags(fs)
	deleteData := fs.Bool("delete-data", false, "delete the downloaded files too")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	return onEach("rm", af, fs, stdout, stderr, func(d *remoteDaemon, t api.Torrent, ih metadata.InfoHash) (string, error) {
		if err := d.Remove(context.Background(), ih, *deleteData); err != nil {
			return "", err
		}
		if *deleteData {
			return "removed (and deleted its data)", nil
		}
		return "removed (its data kept)", nil
	})
}

func runPause(args []string, stdout, stderr io.Writer) error {
	return runSetState("pause", "paused", (*remoteDaemon).Pause, args, stdout, stderr)
}

func runResume(args []string, stdout, stderr io.Writer) error {
	return runSetState("resume", "resumed", (*remoteDaemon).Resume, args, stdout, stderr)
}

// runSetState is pause and resume: set asks the daemon, done says it.
func runSetState(cmd, done string, set func(*remoteDaemon, context.Context, metadata.InfoHash) (api.Torrent, error), args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(cmd, stderr, "node "+cmd+" [flags] <infohash|prefix>...")
	af := registerAPIFlags(fs)
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	return onEach(cmd, af, fs, stdout, stderr, func(d *remoteDaemon, _ api.Torrent, ih metadata.InfoHash) (string, error) {
		t, err := set(d, context.Background(), ih)
		return done + ": " + printable(t.State), err
	})
}

// onEach resolves every argument to a torrent, then does what was asked
// to each: nothing at all if any argument is ambiguous or matches none.
func onEach(cmd string, af apiFlags, fs *pflag.FlagSet, stdout, stderr io.Writer, do func(*remoteDaemon, api.Torrent, metadata.InfoHash) (string, error)) error {
	if fs.NArg() == 0 {
		return usagef("want at least one info-hash or a prefix of one (%d hex digits or more)", minPrefix)
	}
	for _, a := range fs.Args() {
		if err := checkPrefix(a); err != nil {
			return err
		}
	}
	d, ts, err := af.connectList()
	if err != nil {
		return err
	}
	defer d.Close()
	targets := make([]api.Torrent, len(fs.Args()))
	failed := false
	for i, a := range fs.Args() {
		var matches []api.Torrent
		targets[i], matches = resolve(ts, a)
		switch len(matches) {
		case 1:
			continue
		case 0:
			fmt.Fprintf(stderr, "node %s: %s: no such torrent\n", cmd, a)
		default:
			fmt.Fprintf(stderr, "node %s: %s is ambiguous: it starts %d info-hashes; give more digits:\n", cmd, a, len(matches))
			for _, t := range matches {
				fmt.Fprintf(stderr, "  %s  %s\n", printable(t.InfoHash), printable(t.Name))
			}
		}
		failed = true
	}
	if failed {
		return exitError{exitFailure, ""}
	}
	i := 0
	return eachArg(cmd, fs.Args(), stderr, func(string) error {
		t := targets[i]
		i++
		ih, err := hex.DecodeString(t.InfoHash)
		if err != nil || len(ih) != len(metadata.InfoHash{}) {
			return fmt.Errorf("the daemon lists a bad info-hash %q", printable(t.InfoHash))
		}
		what, err := do(d, t, metadata.InfoHash(ih))
		if err != nil {
			return d.explain(err)
		}
		fmt.Fprintf(stdout, "%s  %s  %s\n", t.InfoHash, printable(t.Name), what)
		return nil
	})
}

// checkPrefix refuses an argument that cannot name a torrent.
func checkPrefix(a string) error {
	hexDigits := strings.Trim(strings.ToLower(a), "0123456789abcdef") == ""
	if !hexDigits || len(a) < minPrefix || len(a) > 2*len(metadata.InfoHash{}) {
		return usagef("%q: want an info-hash (40 hex digits) or a prefix of one, of %d digits or more", printable(a), minPrefix)
	}
	return nil
}

// resolve is the listed torrent whose info-hash starts with prefix, and
// every match: resolved only when there is exactly one.
func resolve(ts []api.Torrent, prefix string) (api.Torrent, []api.Torrent) {
	prefix = strings.ToLower(prefix)
	var matches []api.Torrent
	for _, t := range ts {
		if strings.HasPrefix(strings.ToLower(t.InfoHash), prefix) {
			matches = append(matches, t)
		}
	}
	if len(matches) != 1 {
		return api.Torrent{}, matches
	}
	return matches[0], matches
}
