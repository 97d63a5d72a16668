package tracker

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"
)

// Bounds on what a tracker may cost us. A tracker is named by whoever
// made the link, so each one is a stranger: it gets its own retries and
// nothing more.
const (
	// MaxBodySize caps an HTTP tracker's answer. An honest answer with
	// MaxPeersPerAnswer peers in the non-compact form (the largest) is
	// under 20 KiB.
	MaxBodySize = 64 << 10
	// MaxPeersPerAnswer caps the peers taken from one answer; the rest
	// are dropped and counted. We ask for DefaultNumWant.
	MaxPeersPerAnswer = 200
	// DefaultNumWant is the numwant we send.
	DefaultNumWant = 50
	// MaxRedirects caps the HTTP redirects followed for one request; a
	// redirect back to a URL already visited is refused at once.
	MaxRedirects = 3
	// HTTPTimeout bounds one HTTP announce or scrape, redirects included.
	HTTPTimeout = 15 * time.Second
	// MaxAddrsPerTracker caps the addresses of a tracker's name that are
	// tried, both families together.
	MaxAddrsPerTracker = 8
	// MinAnnounceInterval and MaxAnnounceInterval bound the interval
	// (and min interval) a tracker asks for: one that asks for 0 would
	// have us announce in a loop, one that asks for a year would keep
	// us from ever coming back. DefaultAnnounceInterval is used when an
	// answer names none.
	MinAnnounceInterval     = time.Minute
	MaxAnnounceInterval     = time.Hour
	DefaultAnnounceInterval = 30 * time.Minute
	// NeedPeersInterval replaces a longer interval while the torrent is
	// short of peers, unless the tracker's min interval forbids it: an
	// empty swarm at the first announce must not mean half an hour
	// without the tracker. libtorrent's min_announce_interval.
	NeedPeersInterval = 5 * time.Minute
	// UDPTimeoutBase and UDPMaxAttempts are BEP 15's retry schedule,
	// bounded: an attempt waits UDPTimeoutBase·2^n for n = 0 up to
	// UDPMaxAttempts-1 (15 s, 30 s, 60 s), where the BEP goes on to
	// n = 8 (over an hour for one answer).
	UDPTimeoutBase = 15 * time.Second
	UDPMaxAttempts = 3
	// UDPConnectionIDLifetime is how long a BEP 15 connection ID is
	// reused: the BEP's one minute.
	UDPConnectionIDLifetime = time.Minute
	// MaxUDPPacket caps a UDP tracker's answer: an announce answer
	// with MaxPeersPerAnswer IPv6 peers is 3,620 bytes.
	MaxUDPPacket = 8 << 10
	// RetryBase and MaxRetry back a tier off when every tracker in it
	// failed: RetryBase·2^k after the k-th round in a row, at most
	// MaxRetry.
	RetryBase = 30 * time.Second
	MaxRetry  = 30 * time.Minute
	// StopTimeout bounds the stopped announces sent on exit.
	StopTimeout = 3 * time.Second
	// MaxMessageLen caps the failure and warning texts kept from an
	// answer.
	MaxMessageLen = 256
	// MaxTrackers caps the tracker URLs an Announcer keeps, across its
	// tiers: a magnet link's tr are a tier each, and each tier runs at
	// once, so a link naming a thousand would otherwise cost a thousand
	// goroutines and sockets. The rest are dropped, logged and counted.
	MaxTrackers = 32
	// MaxAnnouncesInFlight caps the requests one Client has under way
	// at once, announces and scrapes alike; the others wait for a
	// place. Each holds a socket for up to HTTPTimeout or a UDP attempt.
	MaxAnnouncesInFlight = 8
	// maxTrackerIDLen caps the BEP 3 "tracker id" kept and sent back;
	// a longer one is ignored.
	maxTrackerIDLen = 128
)

// Event is an announce's event (BEP 3); the values are BEP 15's.
type Event int32

const (
	None Event = iota
	Completed
	Started
	Stopped
)

func (e Event) String() string {
	switch e {
	case Completed:
		return "completed"
	case Started:
		return "started"
	case Stopped:
		return "stopped"
	}
	return ""
}

// Request is one announce.
type Request struct {
	InfoHash [20]byte
	PeerID   [20]byte
	Port     uint16
	// Uploaded and Downloaded are bytes this session; Left is what we
	// still miss.
	Uploaded, Downloaded, Left int64
	Event                      Event
	NumWant                    int32 // 0: DefaultNumWant; a stopped announce asks for none
	Key                        uint32
	// TrackerID is the "tracker id" the tracker gave in an earlier
	// answer (BEP 3), sent back over HTTP.
	TrackerID string
}

// Response is a tracker's answer to an announce.
type Response struct {
	// Interval is the tracker's interval, MinInterval its min interval,
	// as it gave them (0: none); the Announcer bounds them (see
	// MinAnnounceInterval).
	Interval, MinInterval time.Duration
	Seeders, Leechers     int
	Peers                 []netip.AddrPort
	// Dropped counts peers beyond MaxPeersPerAnswer and entries that
	// were no peer address.
	Dropped int
	// Warning is an HTTP tracker's "warning message".
	Warning string
	// TrackerID is an HTTP tracker's "tracker id", to send back.
	TrackerID string
	// From is the address of the tracker that answered: the source of
	// Peers. After redirects it is the least local of the addresses
	// the request went through, so a redirect can never make an answer
	// more trusted than its first hop (see the package doc).
	From netip.AddrPort
}

// ScrapeResult is what a scrape says of one torrent.
type ScrapeResult struct {
	Seeders, Completed, Leechers int
}

// Found is the peers of one answer, with the address of the tracker
// that named them (Response.From): one message per answer, however many
// peers it names.
type Found struct {
	Peers []netip.AddrPort
	From  netip.AddrPort
}

// Error is a tracker's own refusal: an HTTP "failure reason", or a BEP 15
// error action.
type Error struct{ Msg string }

func (e *Error) Error() string { return "tracker says: " + e.Msg }

var (
	// ErrBadAnswer is wrapped by every error about an answer we could
	// not use: garbage, truncated, oversized, wrong lengths.
	ErrBadAnswer = errors.New("bad tracker answer")
	// ErrTimeout is wrapped when a tracker did not answer in time.
	ErrTimeout = errors.New("tracker timed out")
	// ErrUnsupported is wrapped for URLs we cannot use (unknown scheme,
	// no scrape convention).
	ErrUnsupported = errors.New("unsupported tracker URL")
	// ErrLocal is wrapped when a request would reach a loopback or
	// private address it may not (see the package doc).
	ErrLocal = errors.New("tracker on a local address refused")
)

func badAnswer(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadAnswer, fmt.Sprintf(format, args...))
}

// Stats counts what trackers did. Every field only grows.
type Stats struct {
	Announces      uint64 // answered announces
	AnnounceErrors uint64 // announces that failed, for any reason
	Scrapes        uint64
	ScrapeErrors   uint64
	Timeouts       uint64 // requests that got no answer in time
	BadAnswers     uint64 // answers that were garbage, truncated, oversized or of wrong lengths
	Refusals       uint64 // failure reasons and BEP 15 errors
	WrongTxID      uint64 // UDP packets with a transaction ID or action we did not expect
	Redirects      uint64 // HTTP redirects refused (loops, too many, bad scheme)
	Local          uint64 // requests refused for reaching a loopback or private address (ErrLocal)
	PeersFound     uint64
	PeersDropped   uint64 // beyond MaxPeersPerAnswer, or not a peer address
}

type counters struct {
	announces, announceErrors, scrapes, scrapeErrors atomic.Uint64
	timeouts, badAnswers, refusals, wrongTxID        atomic.Uint64
	redirects, peersFound, peersDropped, local       atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Announces: c.announces.Load(), AnnounceErrors: c.announceErrors.Load(),
		Scrapes: c.scrapes.Load(), ScrapeErrors: c.scrapeErrors.Load(),
		Timeouts: c.timeouts.Load(), BadAnswers: c.badAnswers.Load(),
		Refusals: c.refusals.Load(), WrongTxID: c.wrongTxID.Load(),
		Redirects: c.redirects.Load(), PeersFound: c.peersFound.Load(),
		PeersDropped: c.peersDropped.Load(), Local: c.local.Load(),
	}
}

// count files err under its kind.
func (c *counters) count(err error) {
	var te *Error
	switch {
	case err == nil:
	case errors.As(err, &te):
		c.refusals.Add(1)
	case errors.Is(err, ErrBadAnswer):
		c.badAnswers.Add(1)
	case errors.Is(err, ErrTimeout):
		c.timeouts.Add(1)
	case errors.Is(err, ErrLocal):
		c.local.Add(1)
	case errors.Is(err, errRedirect):
		c.redirects.Add(1)
	}
}

// seconds reads a tracker's interval: negative is none, and anything
// beyond a 32-bit count of seconds (BEP 15's field) is that much.
func seconds(n int64) time.Duration {
	return time.Duration(min(max(n, 0), 1<<32-1)) * time.Second
}

// clean bounds a tracker's text to MaxMessageLen bytes, cut between
// characters, and replaces with '_' what a terminal would obey or what
// would reorder the text around it: C0 and C1 controls, DEL, bidi
// overrides and isolates, and bytes that are not UTF-8.
func clean(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			r = '_'
		}
		if b.Len()+utf8.RuneLen(r) > MaxMessageLen {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

// locality is how close to us an address is: a request may go to a
// more local one only where the package doc says.
type locality int

const (
	localLoopback locality = iota
	localPrivate
	localPublic
)

var (
	thisNet4  = netip.MustParsePrefix("0.0.0.0/8")
	cgnat4    = netip.MustParsePrefix("100.64.0.0/10")
	reserved4 = netip.MustParsePrefix("240.0.0.0/4")
	siteLocal = netip.MustParsePrefix("fec0::/10")
)

// IPv6 ranges whose addresses carry an IPv4 address, which a translator
// or relay on the way may deliver to: such an address is as local as the
// IPv4 address it carries.
var (
	nat64    = netip.MustParsePrefix("64:ff9b::/96")    // RFC 6052, bytes 12-15
	nat64Loc = netip.MustParsePrefix("64:ff9b:1::/48")  // RFC 8215, local use
	sixTo4   = netip.MustParsePrefix("2002::/16")       // RFC 3056, bytes 2-5
	compat4  = netip.MustParsePrefix("::/96")           // IPv4-compatible, bytes 12-15
	siit4    = netip.MustParsePrefix("::ffff:0:0:0/96") // IPv4-translated, bytes 12-15
)

// embedded4 is the IPv4 address a carries in the ranges above.
func embedded4(a netip.Addr) (netip.Addr, bool) {
	b := a.As16()
	switch {
	case nat64.Contains(a), compat4.Contains(a), siit4.Contains(a):
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case sixTo4.Contains(a):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}

// localityOf places a: 0.0.0.0 and :: reach this host, as loopback does;
// the ranges that cannot be routed on the Internet are private.
func localityOf(a netip.Addr) locality {
	a = a.Unmap()
	if a.Is6() && !a.IsLoopback() && !a.IsUnspecified() {
		if v4, ok := embedded4(a); ok {
			return localityOf(v4)
		}
		if nat64Loc.Contains(a) {
			// Not routed on the Internet, so private at least; the IPv4
			// address sits where the operator's prefix length puts it
			// (RFC 6052: /48, /56, /64 or /96 here, skipping byte 8), and
			// if any place holds a loopback address, it is taken as one.
			b := a.As16()
			for _, p := range [][4]byte{{b[6], b[7], b[9], b[10]}, {b[7], b[9], b[10], b[11]}, [4]byte(b[9:13]), [4]byte(b[12:16])} {
				if netip.AddrFrom4(p).IsLoopback() {
					return localLoopback
				}
			}
			return localPrivate
		}
	}
	switch {
	case !a.IsValid() || a.IsLoopback() || a.IsUnspecified() || thisNet4.Contains(a):
		return localLoopback
	case a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsMulticast() || cgnat4.Contains(a) ||
		reserved4.Contains(a) || siteLocal.Contains(a):
		return localPrivate
	}
	return localPublic
}
