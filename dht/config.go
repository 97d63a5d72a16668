package dht

import (
	"net"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"node/routing"
)

// Defaults for Config fields left zero.
const (
	DefaultAlpha     = 3  // queries in flight per lookup (BEP 5 / Kademlia)
	DefaultMaxValues = 50 // peers per get_peers answer: keeps it in one MTU
	// Version is our "v": two client letters and two version bytes.
	Version = "ND\x00\x01"
)

// Config configures a Node. The zero value is valid: it listens on an
// ephemeral port on all interfaces, picks a random ID, and knows no other
// node until Bootstrap is given addresses.
type Config struct {
	// Conn is the UDP socket; the Node owns it. If nil, Listen is bound.
	Conn net.PacketConn
	// Listen is the UDP address bound when Conn is nil; default ":0".
	Listen string
	// Conn6 and Listen6, when either is set, give the node a second
	// socket, for IPv6, beside an IPv4 one (Conn, or Listen bound as
	// IPv4): a BEP 32 dual-stack node, with a routing table per family.
	// A socket that cannot be bound is logged and left out, and the node
	// runs on the other; New fails only when neither binds. For IPv6
	// alone, give an IPv6 address as Listen (or Conn) and leave these
	// unset.
	Conn6   net.PacketConn
	Listen6 string
	// ID is our node ID. Zero means the one saved in StateDir, else random.
	ID routing.ID
	// Bootstrap lists host:port addresses to join through. Nothing is
	// contacted by default: callers pass the public routers explicitly.
	Bootstrap []string
	// StateDir, if set, is where the routing table is saved (periodically
	// and on Close) and loaded from on start, so a restart is warm. One
	// process at a time uses it: a node that finds it locked by another
	// runs without it (neither loads nor saves) and logs a warning.
	StateDir string
	// BootstrapFallback says Bootstrap is only a fallback (the public
	// routers, not addresses the user chose): when the saved state holds
	// at least K nodes of a family, that family's lookups start from them
	// alone, and the bootstrap addresses are asked only once Bootstrap
	// finds that none of the saved nodes answers.
	BootstrapFallback bool
	// WarmState, if set, is a saved state (as EncodeState makes it, the
	// state file's format) to start from in place of StateDir's; its
	// nodes go straight into the routing table as if they had just
	// answered, where a restart from StateDir takes them only as seeds for
	// a bootstrap lookup. It is for simulations that start a network of
	// long-running nodes at once, without a bootstrap each.
	WarmState []byte
	// InsecureIDs accepts nodes whose IDs do not match their IP (BEP 42
	// off). By default such nodes are kept out of the routing table, except
	// on local and private addresses, which BEP 42 exempts.
	InsecureIDs bool
	// ReadOnly makes the node a BEP 43 read-only node: it flags its queries
	// with ro=1 and answers no queries.
	ReadOnly bool
	// QueryTimeout bounds each KRPC query; 0 means about 2 s.
	QueryTimeout time.Duration
	// Alpha is the number of queries in flight per lookup; 0 means 3.
	Alpha int
	// NodeCacheSize bounds the cache of nodes heard of in lookups, which
	// later lookups start from (see DefaultNodeCacheSize); 0 means the
	// default, negative turns the cache off.
	NodeCacheSize int
	// Peer store bounds; 0 means the Default* constants.
	MaxInfoHashes       int
	MaxPeersPerInfoHash int
	PeerTTL             time.Duration
	// MaxValues bounds the peers returned in one get_peers answer.
	MaxValues int
	// Abuse limits, passed to the transport as krpc.Config takes them:
	// a zero RatePerIP, SendRate or MaxAmplification turns that limit
	// off, a zero BurstPerIP is twice RatePerIP, a zero BlockFor is
	// krpc.DefaultBlockFor and a negative one never blocks. A node on a
	// public address wants the krpc.Default* values, which the command
	// line sets (where 0 turns each off). SendRate is one budget for the
	// node: the two sockets of a dual-stack node share it.
	RatePerIP        float64
	BurstPerIP       int
	BlockFor         time.Duration
	SendRate         float64
	MaxAmplification int
	Logger           *zap.Logger
	// Now is the clock; nil means time.Now. Tests move time forward with it.
	Now func() time.Time
	// TickInterval is how often maintenance runs (token rotation, bucket
	// refresh, pings, saving); 0 means one second.
	TickInterval time.Duration
	// OnLookup, if set, hears of each lookup as it ends: bootstrap's and
	// refresh's too, and on a dual-stack node each socket's half of one
	// apart. It runs on the lookup's goroutine, so must be quick and must
	// not block (metrics: a counter and a histogram).
	OnLookup func(LookupDone)

	// sendLim is the send budget both sockets of a dual-stack node share
	// (krpc.Config.SendLimiter), made from SendRate.
	sendLim *rate.Limiter

	// afterTick, set by tests only, hears on the loop what each tick saw
	// and started, so a test can wait for the tick it is about instead of
	// taking a quiet spell for one. It must not block.
	afterTick func(tickReport)
}

func (c *Config) setDefaults() {
	if c.Listen == "" {
		c.Listen = ":0"
	}
	if c.Alpha <= 0 {
		c.Alpha = DefaultAlpha
	}
	if c.NodeCacheSize == 0 {
		c.NodeCacheSize = DefaultNodeCacheSize
	}
	if c.MaxInfoHashes <= 0 {
		c.MaxInfoHashes = DefaultMaxInfoHashes
	}
	if c.MaxPeersPerInfoHash <= 0 {
		c.MaxPeersPerInfoHash = DefaultMaxPeersPerInfoHash
	}
	if c.PeerTTL <= 0 {
		c.PeerTTL = DefaultPeerTTL
	}
	if c.MaxValues <= 0 {
		c.MaxValues = DefaultMaxValues
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.TickInterval <= 0 {
		c.TickInterval = time.Second
	}
}
