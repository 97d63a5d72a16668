// Package simnet is a simulated network of UDP endpoints, in process, at
// the net.PacketConn level, so that the real DHT code (ours and anacrolix's)
// runs on it unmodified: nodes placed on a sphere, a one-way delay of the
// great-circle distance at the speed of light in fibre plus each end's
// heavy-tailed access delay, per-packet loss, and endpoints that never
// answer. Addresses are synthetic (10.0.0.0/8 from Listen, any from
// ListenAt); nothing reaches the operating system's network. One scheduler goroutine and one timer
// deliver every packet, so a network of 100,000 endpoints costs no
// goroutine or timer per packet. Test support only: never linked into
// the product.
package simnet

import (
	"container/heap"
	"errors"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// DefaultQueueLen bounds each endpoint's inbound queue, in packets;
	// more are dropped and counted (Stats.DroppedFull), as a socket's
	// receive buffer would.
	DefaultQueueLen = 256
	// earthRadiusKm and fibreKmPerSec give the propagation part of a
	// delay: light in fibre covers about 200 km per millisecond.
	earthRadiusKm = 6371.0
	fibreKmPerSec = 200_000.0
	// maxPacket is the largest datagram carried; larger writes fail, as
	// UDP's would past 64 KiB.
	maxPacket = 65507
)

// Config is the network model. The zero value is a lossless network with
// no access delay (propagation alone).
type Config struct {
	// Seed makes placement, delays and losses repeatable.
	Seed uint64
	// Loss is the share of packets lost in flight, each on its own.
	Loss float64
	// AccessMedian and AccessSigma are the log-normal one-way access delay
	// drawn once per endpoint (its last mile, queues, a slow host): the
	// heavy tail of real round trips.
	AccessMedian time.Duration
	AccessSigma  float64
	// QueueLen bounds each endpoint's inbound queue; 0 means
	// DefaultQueueLen.
	QueueLen int
	// Count, if set, picks the packets each endpoint counts, sent and
	// delivered (Conn.Counted): say, queries.
	Count func(b []byte) bool
	// RadiusKm is the sphere's radius; 0 means the Earth's. Endpoints are
	// spread uniformly over it, where real ones crowd into a few
	// continents: a smaller sphere gives the shorter typical distances.
	RadiusKm float64
}

// Internet is the model the simulations use: a median round trip of
// about 100 ms (a sphere of radius 3,000 km, so the median pair is 4,700
// km apart, 24 ms one way; plus a log-normal access delay at each end of
// median 10 ms whose tail reaches seconds), and 1% loss.
func Internet(seed uint64) Config {
	return Config{
		Seed:         seed,
		Loss:         0.01,
		AccessMedian: 10 * time.Millisecond,
		AccessSigma:  1,
		RadiusKm:     3000,
	}
}

// Stats counts packets over the network's life.
type Stats struct {
	Sent        uint64 // writes accepted
	Delivered   uint64 // put in an inbound queue
	Lost        uint64 // to Config.Loss
	Silent      uint64 // sent to an endpoint that never answers
	NoRoute     uint64 // sent to an address with no open endpoint
	DroppedFull uint64 // the receiver's queue was full
}

// Network is one simulated network.
type Network struct {
	cfg   Config
	start time.Time

	mu     sync.Mutex
	eps    map[netip.AddrPort]*Conn
	rng    *rand.Rand
	q      packetHeap
	seq    uint64
	next   uint32 // the next address handed out
	closed bool
	wake   chan struct{}
	done   chan struct{}

	sent, delivered, lost, silent, noRoute, full atomic.Uint64
	ideal                                        atomic.Bool
}

// SetIdeal turns the model's delays and loss off (on) or back on (off):
// for setting a network up, as a long-running one would have been, before
// measuring it. Silent endpoints stay silent.
func (n *Network) SetIdeal(on bool) { n.ideal.Store(on) }

type packet struct {
	due     time.Duration // since start
	seq     uint64        // ties go in send order
	from    netip.AddrPort
	to      netip.AddrPort
	b       []byte
	counted bool // by Config.Count
}

type packetHeap []*packet

func (h packetHeap) Len() int { return len(h) }
func (h packetHeap) Less(i, j int) bool {
	return h[i].due < h[j].due || (h[i].due == h[j].due && h[i].seq < h[j].seq)
}
func (h packetHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *packetHeap) Push(x any)   { *h = append(*h, x.(*packet)) }
func (h *packetHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return p
}

// New starts a network; Close stops its scheduler.
func New(cfg Config) *Network {
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = DefaultQueueLen
	}
	if cfg.RadiusKm <= 0 {
		cfg.RadiusKm = earthRadiusKm
	}
	n := &Network{
		cfg:   cfg,
		start: time.Now(),
		eps:   make(map[netip.AddrPort]*Conn),
		rng:   rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		next:  1,
		wake:  make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
	go n.run()
	return n
}

// Stats is a snapshot of the counters.
func (n *Network) Stats() Stats {
	return Stats{
		Sent: n.sent.Load(), Delivered: n.delivered.Load(), Lost: n.lost.Load(),
		Silent: n.silent.Load(), NoRoute: n.noRoute.Load(), DroppedFull: n.full.Load(),
	}
}

// Close stops delivery; packets in flight are dropped. Endpoints stay
// open until closed themselves.
func (n *Network) Close() {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	n.closed = true
	n.q = nil
	n.mu.Unlock()
	close(n.done)
}

// NextAddr is the address the next Listen will take: 10.0.0.0/8 in order,
// port 6881, never reused, so a departed endpoint's address stays dead.
func (n *Network) NextAddr() netip.AddrPort {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.addrOf(n.next)
}

func (n *Network) addrOf(i uint32) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 6881)
}

// Listen opens an endpoint at the next address, placed uniformly on the
// sphere with its own access delay. A silent endpoint drops everything
// sent to it (a node behind a NAT, or one that has gone): it can still
// send.
func (n *Network) Listen(silent bool) (*Conn, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, net.ErrClosed
	}
	if n.next >= 1<<24 {
		return nil, errors.New("simnet: addresses exhausted")
	}
	a := n.addrOf(n.next)
	n.next++
	return n.open(a, silent), nil
}

// ListenAt opens an endpoint at a, which must be free, placed and delayed
// as Listen's are: for a simulation that chooses its own addresses (public
// ones, whose BEP 42 IDs mean something, or many in one block). The
// addresses Listen hands out are 10.0.0.0/8's; ListenAt and Listen are not
// to be mixed in one block.
func (n *Network) ListenAt(a netip.AddrPort, silent bool) (*Conn, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, net.ErrClosed
	}
	a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	if !a.IsValid() || n.eps[a] != nil {
		return nil, errors.New("simnet: address in use or invalid")
	}
	return n.open(a, silent), nil
}

// open makes the endpoint at a; n.mu is held.
func (n *Network) open(a netip.AddrPort, silent bool) *Conn {
	c := &Conn{
		nw:     n,
		addr:   a,
		silent: silent,
		pos:    randomPoint(n.rng),
		access: n.accessDelay(),
		notify: make(chan struct{}, 1),
		closed: make(chan struct{}),
	}
	n.eps[a] = c
	return c
}

// randomPoint is a uniform point on the unit sphere.
func randomPoint(r *rand.Rand) [3]float64 {
	z := 2*r.Float64() - 1
	phi := 2 * math.Pi * r.Float64()
	s := math.Sqrt(1 - z*z)
	return [3]float64{s * math.Cos(phi), s * math.Sin(phi), z}
}

func (n *Network) accessDelay() time.Duration {
	if n.cfg.AccessMedian <= 0 {
		return 0
	}
	return time.Duration(float64(n.cfg.AccessMedian) * math.Exp(n.cfg.AccessSigma*n.rng.NormFloat64()))
}

// Delay is the one-way delay from a to b, endpoints of one network.
func Delay(a, b *Conn) time.Duration {
	dot := a.pos[0]*b.pos[0] + a.pos[1]*b.pos[1] + a.pos[2]*b.pos[2]
	km := a.nw.cfg.RadiusKm * math.Acos(max(-1, min(1, dot)))
	return time.Duration(km/fibreKmPerSec*float64(time.Second)) + a.access + b.access
}

// MedianRTT is the median round trip between endpoints placed as Listen
// places them, from samples pairs: what the model's parameters come to.
func MedianRTT(cfg Config, samples int) time.Duration {
	nw := &Network{cfg: cfg}
	if nw.cfg.RadiusKm <= 0 {
		nw.cfg.RadiusKm = earthRadiusKm
	}
	r := rand.New(rand.NewPCG(cfg.Seed, 1))
	nw.rng = r
	rtts := make([]time.Duration, samples)
	for i := range rtts {
		a := &Conn{nw: nw, pos: randomPoint(r), access: nw.accessDelay()}
		b := &Conn{nw: nw, pos: randomPoint(r), access: nw.accessDelay()}
		rtts[i] = 2 * Delay(a, b)
	}
	slices.Sort(rtts)
	return rtts[len(rtts)/2]
}

func (n *Network) send(from *Conn, b []byte, to netip.AddrPort) error {
	if len(b) > maxPacket {
		return errors.New("simnet: message too long")
	}
	to = netip.AddrPortFrom(to.Addr().Unmap(), to.Port())
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return net.ErrClosed
	}
	n.sent.Add(1)
	counted := n.cfg.Count != nil && n.cfg.Count(b)
	if counted {
		from.countedOut.Add(1)
	}
	dst := n.eps[to]
	switch {
	case dst == nil:
		n.noRoute.Add(1)
		return nil
	case dst.silent:
		n.silent.Add(1)
		return nil
	}
	ideal := n.ideal.Load()
	if !ideal && n.cfg.Loss > 0 && n.rng.Float64() < n.cfg.Loss {
		n.lost.Add(1)
		return nil
	}
	due := time.Since(n.start)
	if !ideal {
		due += Delay(from, dst)
	}
	p := &packet{
		due:  due,
		seq:  n.seq,
		from: from.addr,
		to:   to,
		b:    append([]byte(nil), b...),

		counted: counted,
	}
	n.seq++
	heap.Push(&n.q, p)
	if n.q[0] == p {
		select {
		case n.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// run is the scheduler: it sleeps until the earliest packet is due and
// delivers every packet that is.
func (n *Network) run() {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	var due []*packet
	for {
		n.mu.Lock()
		now := time.Since(n.start)
		for len(n.q) > 0 && n.q[0].due <= now {
			due = append(due, heap.Pop(&n.q).(*packet))
		}
		wait := time.Hour
		if len(n.q) > 0 {
			wait = n.q[0].due - now
		}
		for i, p := range due {
			// The receiver is looked up at delivery: one that left while
			// the packet flew does not get it.
			if dst := n.eps[p.to]; dst != nil {
				dst.deliver(p)
			} else {
				n.noRoute.Add(1)
			}
			due[i] = nil
		}
		due = due[:0]
		n.mu.Unlock()
		t.Reset(wait)
		select {
		case <-n.done:
			return
		case <-n.wake:
		case <-t.C:
		}
	}
}

// Conn is one endpoint: a net.PacketConn (and krpc.AddrPortConn).
type Conn struct {
	nw     *Network
	addr   netip.AddrPort
	silent bool
	pos    [3]float64
	access time.Duration

	mu       sync.Mutex
	queue    []*packet
	head     int
	deadline time.Time
	dlChange chan struct{} // closed when the read deadline changes
	notify   chan struct{} // a packet arrived
	closed   chan struct{}
	isClosed bool

	received              atomic.Uint64
	countedIn, countedOut atomic.Uint32
}

// Counted is how many packets Config.Count picked that this endpoint sent
// and was delivered.
func (c *Conn) Counted() (in, out uint32) { return c.countedIn.Load(), c.countedOut.Load() }

// deliver is called by the scheduler with the network's lock held.
func (c *Conn) deliver(p *packet) {
	c.mu.Lock()
	if c.isClosed || len(c.queue)-c.head >= c.nw.cfg.QueueLen {
		c.mu.Unlock()
		c.nw.full.Add(1)
		return
	}
	if c.head > 0 && c.head == len(c.queue) {
		c.queue, c.head = c.queue[:0], 0
	}
	c.queue = append(c.queue, p)
	c.mu.Unlock()
	c.nw.delivered.Add(1)
	c.received.Add(1)
	if p.counted {
		c.countedIn.Add(1)
	}
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// Received is how many packets were put in this endpoint's queue.
func (c *Conn) Received() uint64 { return c.received.Load() }

// Silent reports whether the endpoint drops all it is sent.
func (c *Conn) Silent() bool { return c.silent }

// AddrPort is the endpoint's address.
func (c *Conn) AddrPort() netip.AddrPort { return c.addr }

// ReadFromAddrPort blocks until a packet arrives, the read deadline
// passes (an error whose Timeout() is true) or the Conn is closed.
func (c *Conn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		c.mu.Lock()
		if c.isClosed {
			c.mu.Unlock()
			return 0, netip.AddrPort{}, net.ErrClosed
		}
		if c.head < len(c.queue) {
			p := c.queue[c.head]
			c.queue[c.head] = nil
			c.head++
			if c.head < len(c.queue) {
				// More are waiting: keep the next reader from blocking.
				select {
				case c.notify <- struct{}{}:
				default:
				}
			}
			c.mu.Unlock()
			return copy(b, p.b), p.from, nil
		}
		dl, dlc := c.deadline, c.dlChanged()
		c.mu.Unlock()
		var tc <-chan time.Time
		if !dl.IsZero() {
			d := time.Until(dl)
			if d <= 0 {
				return 0, netip.AddrPort{}, os.ErrDeadlineExceeded
			}
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			tc = timer.C
		}
		select {
		case <-c.notify:
		case <-c.closed:
		case <-dlc:
		case <-tc:
		}
	}
}

// dlChanged is the channel closed at the next deadline change; c.mu held.
func (c *Conn) dlChanged() chan struct{} {
	if c.dlChange == nil {
		c.dlChange = make(chan struct{})
	}
	return c.dlChange
}

// ReadFrom is ReadFromAddrPort for net.PacketConn.
func (c *Conn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, ap, err := c.ReadFromAddrPort(b)
	if err != nil {
		return 0, nil, err
	}
	return n, net.UDPAddrFromAddrPort(ap), nil
}

// WriteToAddrPort sends b to addr; it never blocks.
func (c *Conn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	c.mu.Lock()
	closed := c.isClosed
	c.mu.Unlock()
	if closed {
		return 0, net.ErrClosed
	}
	if err := c.nw.send(c, b, addr); err != nil {
		return 0, err
	}
	return len(b), nil
}

// WriteTo sends b to a *net.UDPAddr (or any address that parses as one).
func (c *Conn) WriteTo(b []byte, addr net.Addr) (int, error) {
	var ap netip.AddrPort
	if ua, ok := addr.(*net.UDPAddr); ok {
		ap = ua.AddrPort()
	} else {
		var err error
		if ap, err = netip.ParseAddrPort(addr.String()); err != nil {
			return 0, err
		}
	}
	return c.WriteToAddrPort(b, ap)
}

// LocalAddr is the endpoint's address, as a *net.UDPAddr.
func (c *Conn) LocalAddr() net.Addr { return net.UDPAddrFromAddrPort(c.addr) }

// SetDeadline sets the read deadline; writes never block.
func (c *Conn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

// SetWriteDeadline is accepted and ignored: writes never block.
func (c *Conn) SetWriteDeadline(time.Time) error { return nil }

// SetReadDeadline sets when blocked and future reads fail with a timeout;
// the zero time means never.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	if c.dlChange != nil {
		close(c.dlChange)
		c.dlChange = nil
	}
	return nil
}

// Close takes the endpoint off the network and unblocks its readers.
// Packets later sent to its address are dropped (Stats.NoRoute).
func (c *Conn) Close() error {
	c.nw.mu.Lock()
	if c.nw.eps[c.addr] == c {
		delete(c.nw.eps, c.addr)
	}
	c.nw.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.isClosed {
		return net.ErrClosed
	}
	c.isClosed = true
	c.queue, c.head = nil, 0
	close(c.closed)
	return nil
}
