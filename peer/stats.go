package peer

import (
	"context"
	"net/netip"
	"slices"
	"time"

	"github.com/anacrolix/torrent/mse"

	"node/metadata"
	"node/peer/tracker"
)

// Stats is a snapshot of a torrent's progress.
type Stats struct {
	HaveInfo     bool
	Name         string
	Pieces, Have int
	Length, Done int64 // bytes in the torrent, bytes verified on disk
	Downloaded   int64 // piece payload received this session, wasted included
	Uploaded     int64
	Wasted       int64 // duplicates, and pieces that failed their hash
	HashFails    int
	// Verified counts the pieces downloaded this session that passed
	// their hash (pieces found on disk aside).
	Verified     int
	Peers, Known int
	Dialing      int
	Banned       int
	// DroppedAddrFields counts the address fields of peers' extended
	// handshakes (yourip, BEP 7 ipv4 and ipv6) ignored for a wrong
	// length.
	DroppedAddrFields int
	MetadataAfter     time.Duration // since Run started; 0 until known
	CompleteAfter     time.Duration
	// Peer exchange: ut_pex messages sent and taken in, the contacts
	// taken as candidates and those ignored (beyond a bound, refused by
	// the source rules, already known contacts aside), the messages
	// ignored for coming too soon, and the malformed ones.
	PexSent, PexReceived, PexAdded, PexIgnored, PexEarly, PexBad int
	// FastPeers are the connected peers with the Fast extension (BEP 6)
	// on both sides; FastSent and FastReceived count its messages.
	FastPeers int
	// EncryptedPeers are the connected peers whose stream is RC4 after
	// an MSE handshake (see mse.go).
	EncryptedPeers         int
	FastSent, FastReceived FastCounts
	// Rejected counts our requests a peer rejected (BEP 6), TimedOut
	// those we gave up waiting for.
	Rejected, TimedOut int
	// Trackers counts the announces and what went wrong with them;
	// zero without trackers.
	Trackers tracker.Stats

	// Stalls counts the times a peer sat on our requests until they were
	// cancelled and asked of others (see pipeline.go).
	Stalls int
	// SourceReplaced counts candidates dropped for a newer one from the
	// same full source (see maxAddrsPerSource); SourceFull the candidates
	// refused because none of their source's had failed a dial (or each
	// that had is connected or being dialled).
	SourceReplaced, SourceFull int

	// PeerList is one entry per connected peer; UTPPeers counts those
	// over uTP.
	PeerList []PeerStat
	UTPPeers int
	// TCPConns and UTPConns count the connections that joined the peers
	// since Run started, by transport.
	TCPConns, UTPConns int
	// DownloadedBy is the piece payload received since Run started by
	// the link that carried it, "transport/encryption" (as "utp/none";
	// see PeerStat), departed peers included: at most the six pairs.
	// DataConns counts the connections, open or closed, that delivered
	// any. A fetch that ends with its peers gone still says what
	// carried its data.
	DownloadedBy map[string]int64
	DataConns    int
}

// PeerStat is one connected peer.
type PeerStat struct {
	Addr     netip.AddrPort
	Outgoing bool // we dialled it
	// Transport is TransportTCP or TransportUTP.
	Transport string
	// Encryption is what MSE set up: "none" (a plaintext handshake),
	// "header" (obfuscated handshake, plaintext after) or "rc4".
	Encryption string
	// Downloaded and Uploaded are the piece payload exchanged with it.
	Downloaded, Uploaded int64
}

// link is c's "transport/encryption", as Stats.DownloadedBy keys it.
func (c *conn) link() string { return c.transport + "/" + cryptoName(c.crypto) }

// Info is the info dictionary once Metadata is closed, nil before.
func (t *Torrent) Info() *metadata.Info {
	select {
	case <-t.metaCh:
		return t.info // written before metaCh was closed
	default:
		return nil
	}
}

// Stats returns a snapshot; cheap enough for a progress line.
func (t *Torrent) Stats(ctx context.Context) (Stats, error) {
	ch := make(chan Stats, 1)
	select {
	case t.events <- statsEvent{reply: ch}:
	case <-ctx.Done():
		return Stats{}, ctx.Err()
	case <-t.ctx.Done():
		return Stats{}, context.Canceled
	}
	select {
	case s := <-ch:
		return s, nil
	case <-ctx.Done():
		return Stats{}, ctx.Err()
	case <-t.ctx.Done():
		return Stats{}, context.Canceled
	}
}

func (t *Torrent) snapshot(time.Time) Stats {
	s := Stats{
		Downloaded: t.stats.downloaded, Uploaded: t.stats.uploaded, Wasted: t.stats.wasted,
		HashFails: t.stats.hashFails, Verified: t.stats.verified, Stalls: t.stats.stalls, SourceReplaced: t.stats.sourceReplaced, SourceFull: t.stats.sourceFull, Peers: len(t.peers), Known: len(t.known), Banned: len(t.banned),
		Dialing: t.dialing, DroppedAddrFields: t.stats.droppedAddrFields,
		PexSent: t.stats.pexSent, PexReceived: t.stats.pexReceived, PexAdded: t.stats.pexAdded,
		PexIgnored: t.stats.pexIgnored, PexEarly: t.stats.pexEarly, PexBad: t.stats.pexBad,
		MetadataAfter: t.stats.metadataAt, CompleteAfter: t.stats.completeAt,
		FastSent: t.stats.fastSent, FastReceived: t.stats.fastReceived,
		Rejected: t.stats.rejected, TimedOut: t.stats.timedOut,
		TCPConns: t.stats.tcpConns, UTPConns: t.stats.utpConns,
	}
	s.DownloadedBy = make(map[string]int64, len(t.downBy)+1)
	for l, d := range t.downBy {
		s.DownloadedBy[l] = d
	}
	s.DataConns = t.stats.dataConns
	s.PeerList = make([]PeerStat, 0, len(t.peers))
	for c, ps := range t.peers {
		if ps.fast {
			s.FastPeers++
		}
		if c.transport == TransportUTP {
			s.UTPPeers++
		}
		s.PeerList = append(s.PeerList, PeerStat{
			Addr: c.addr, Outgoing: c.outgoing, Transport: c.transport, Encryption: cryptoName(c.crypto),
			Downloaded: c.down.Load(), Uploaded: c.up.Load(),
		})
		if d := c.down.Load(); d > 0 {
			s.DownloadedBy[c.link()] += d
			s.DataConns++
		}
		if ps.c.crypto == mse.CryptoMethodRC4 {
			s.EncryptedPeers++
		}
	}
	slices.SortFunc(s.PeerList, func(a, b PeerStat) int { return a.Addr.Compare(b.Addr) })
	if t.ann != nil {
		s.Trackers = t.ann.Stats()
	}
	if t.info != nil {
		s.HaveInfo, s.Name = true, t.info.Name
		s.Pieces, s.Length = t.info.NumPieces(), t.info.Length
		if t.st != nil {
			s.Have, s.Done = t.st.NumComplete(), t.st.BytesComplete()
		}
	}
	return s
}
