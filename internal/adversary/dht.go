package adversary

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"node/krpc"
)

// Node is one raw KRPC socket on a loopback address: it sends hand-made
// queries and, once Serve runs, answers queries with hand-made replies.
type Node struct {
	Conn *net.UDPConn
	Addr netip.AddrPort
	wg   sync.WaitGroup
}

// NewNode opens a UDP socket on ip:0 (or ip:port when port is given).
func NewNode(ip string, port ...int) (*Node, error) {
	p := 0
	if len(port) > 0 {
		p = port[0]
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return nil, err
	}
	uc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, uint16(p))))
	if err != nil {
		return nil, err
	}
	ap := uc.LocalAddr().(*net.UDPAddr).AddrPort()
	return &Node{Conn: uc, Addr: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())}, nil
}

// Send encodes m and sends it to to.
func (n *Node) Send(to netip.AddrPort, m *krpc.Msg) error {
	b := m.Append(nil)
	return n.SendRaw(to, b)
}

// SendRaw sends b as it is.
func (n *Node) SendRaw(to netip.AddrPort, b []byte) error {
	_, err := n.Conn.WriteToUDPAddrPort(b, to)
	return err
}

// Query sends a query with transaction ID tid.
func (n *Node) Query(to netip.AddrPort, tid, method string, a *krpc.Args) error {
	return n.Send(to, &krpc.Msg{T: tid, Y: krpc.KindQuery, Q: method, A: a})
}

// Recv reads one datagram and parses it, waiting at most d.
func (n *Node) Recv(d time.Duration) (krpc.Msg, netip.AddrPort, error) {
	buf := make([]byte, 64<<10)
	_ = n.Conn.SetReadDeadline(time.Now().Add(d))
	defer n.Conn.SetReadDeadline(time.Time{})
	k, from, err := n.Conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		return krpc.Msg{}, from, err
	}
	m, err := krpc.Parse(buf[:k])
	return m, netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), err
}

// Serve answers every query with what reply returns (nil: no answer),
// echoing the transaction ID, until Close. Other datagrams are passed to
// reply too, with their parse error as a nil message.
func (n *Node) Serve(reply func(q *krpc.Msg, from netip.AddrPort) *krpc.Msg) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		buf := make([]byte, 64<<10)
		for {
			k, from, err := n.Conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
			m, err := krpc.Parse(buf[:k])
			if err != nil || m.Y != krpc.KindQuery {
				continue
			}
			r := reply(&m, from)
			if r == nil {
				continue
			}
			r.T = m.T
			if r.Y == "" {
				r.Y = krpc.KindResponse
			}
			_ = n.Send(from, r)
		}
	}()
}

// Close closes the socket and waits for Serve to return.
func (n *Node) Close() error {
	err := n.Conn.Close()
	n.wg.Wait()
	return err
}
