package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"node/cmd/node/portmap"
	"node/peer"
)

// reporter prints progress: a live line on a terminal, a plain line every
// few seconds otherwise, or JSON events with --json.
type reporter struct {
	stdout, stderr io.Writer
	json, tty      bool
	lastLine       time.Time
	lastDone       int64
	lastAt         time.Time
	live           bool
	mapped         string // the port mapping's external address, shown on progress lines
}

func newReporter(stdout, stderr io.Writer, jsonOut bool) *reporter {
	return &reporter{stdout: stdout, stderr: stderr, json: jsonOut, tty: isTerminal(stderr)}
}

func (r *reporter) event(kind string, fields map[string]any) {
	fields["event"] = kind
	fields["time"] = time.Now().UTC().Format(time.RFC3339Nano)
	b, _ := json.Marshal(fields)
	fmt.Fprintf(r.stdout, "%s\n", b)
}

func (r *reporter) note(msg string) {
	if r.json {
		r.event("note", map[string]any{"message": msg})
		return
	}
	r.end()
	fmt.Fprintln(r.stderr, msg)
}

func (r *reporter) metadata(s peer.Stats) {
	if r.json {
		r.event("metadata", map[string]any{"name": s.Name, "bytes": s.Length, "pieces": s.Pieces, "have": s.Have, "after_ms": s.MetadataAfter.Milliseconds()})
		return
	}
	r.note(fmt.Sprintf("metadata: %q, %s in %d pieces (%d already on disk)", s.Name, size(s.Length), s.Pieces, s.Have))
}

func (r *reporter) complete(s peer.Stats) {
	if r.json {
		r.event("complete", map[string]any{"name": s.Name, "bytes": s.Length, "after_ms": s.CompleteAfter.Milliseconds(),
			"downloaded": s.Downloaded, "wasted": s.Wasted, "hash_fails": s.HashFails, "peers": s.Peers, "encrypted_peers": s.EncryptedPeers,
			"data_conns": s.DataConns, "links": links(s.DownloadedBy), "downloaded_by": s.DownloadedBy})
		return
	}
	r.note(fmt.Sprintf("complete: %q, %s, every piece verified", s.Name, size(s.Length)))
}

func (r *reporter) progress(s peer.Stats, elapsed time.Duration) {
	now := time.Now()
	rate := 0.0
	if !r.lastAt.IsZero() {
		rate = float64(s.Done-r.lastDone) / now.Sub(r.lastAt).Seconds()
	}
	r.lastDone, r.lastAt = s.Done, now
	if r.json {
		ev := map[string]any{"have": s.Have, "pieces": s.Pieces, "bytes_done": s.Done, "bytes": s.Length,
			"rate": int64(rate), "peers": s.Peers, "utp_peers": s.UTPPeers, "encrypted_peers": s.EncryptedPeers, "uploaded": s.Uploaded,
			"peer_list": peerList(s.PeerList)}
		if r.mapped != "" {
			ev["mapped"] = r.mapped
		}
		r.event("progress", ev)
		return
	}
	var line string
	switch {
	case !s.HaveInfo:
		line = fmt.Sprintf("fetching metadata: %s peers, %d known, %v", peerCount(s), s.Known, elapsed.Round(time.Second))
	default:
		pct := 100 * float64(s.Done) / float64(max(s.Length, 1))
		line = fmt.Sprintf("%5.1f%% %s/%s  %s/s  ETA %s  peers %s  up %s", pct, size(s.Done), size(s.Length), size(int64(rate)),
			eta(s.Length-s.Done, rate), peerCount(s), size(s.Uploaded))
	}
	if r.mapped != "" {
		line += "  mapped " + r.mapped
	}
	if r.tty {
		fmt.Fprintf(r.stderr, "\r\033[K%s", line)
		r.live = true
		return
	}
	if now.Sub(r.lastLine) >= 5*time.Second {
		r.lastLine = now
		fmt.Fprintln(r.stderr, line)
	}
}

// links are the "transport/encryption" pairs that delivered data,
// sorted: the complete event's, as libtorrent's is in the benchmarks.
func links(by map[string]int64) []string {
	out := make([]string, 0, len(by))
	for l, d := range by {
		if d > 0 {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return out
}

// peerList is the progress event's list of connected peers.
func peerList(ps []peer.PeerStat) []map[string]any {
	out := make([]map[string]any, 0, len(ps))
	for _, p := range ps {
		out = append(out, map[string]any{"addr": p.Addr.String(), "transport": p.Transport, "encryption": p.Encryption,
			"outgoing": p.Outgoing, "downloaded": p.Downloaded, "uploaded": p.Uploaded})
	}
	return out
}

// portMapping follows the port mapping: a line (a "port_mapping" event
// with --json) when what is mapped changes, and the mapped address on
// every progress line. Failures are not shown: most hosts have no
// gateway to ask, and the log says why at debug level.
func (r *reporter) portMapping(st portmap.Status) {
	text := mappedText(st)
	if text == r.mapped {
		return
	}
	r.mapped = text
	if r.json {
		ev := map[string]any{"mapped": st.Mapped(), "method": st.Method, "tcp": st.TCP, "udp": st.UDP}
		if st.ExternalIP.IsValid() {
			ev["external_ip"] = st.ExternalIP.String()
		}
		if st.Gateway.IsValid() {
			ev["gateway"] = st.Gateway.String()
		}
		r.event("port_mapping", ev)
		return
	}
	if text == "" {
		r.note("port mapping lost")
		return
	}
	r.note("port mapped: " + text)
}

// end finishes a live line so that the next output starts on its own.
func (r *reporter) end() {
	if r.live {
		fmt.Fprintln(r.stderr)
		r.live = false
	}
}

// eta is how long left bytes take at rate bytes per second, to the
// second; "--" when nothing is left or nothing is arriving.
func eta(left int64, rate float64) string {
	if rate <= 0 || left <= 0 {
		return "--"
	}
	return time.Duration(float64(left) / rate * float64(time.Second)).Round(time.Second).String()
}

// size is n bytes for people: 1.5 MiB.
func size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// isTerminal reports whether w is a terminal, where progress is one line
// rewritten in place rather than a new line every few seconds.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// peerCount is the connected peers, with how many are over uTP and how
// many encrypted (RC4) when any are.
func peerCount(s peer.Stats) string {
	var of []string
	if s.UTPPeers > 0 {
		of = append(of, fmt.Sprintf("%d uTP", s.UTPPeers))
	}
	if s.EncryptedPeers > 0 {
		of = append(of, fmt.Sprintf("%d encrypted", s.EncryptedPeers))
	}
	if len(of) == 0 {
		return strconv.Itoa(s.Peers)
	}
	return fmt.Sprintf("%d (%s)", s.Peers, strings.Join(of, ", "))
}
