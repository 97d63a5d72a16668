// Package utp runs uTP (BEP 29) beside the DHT on one UDP socket, as
// libtorrent and anacrolix do: a peer that learns our port from the DHT or
// a handshake reaches our TCP listener, our uTP listener and our DHT node
// at the same port number.
//
// The protocol is BitTorrent's reference libutp, through
// github.com/anacrolix/go-libutp (cgo). Datagrams that are not uTP are
// handed to the DHT through PacketConn; uTP connections come out of
// Listener and Dial as net.Conns, which the peer wire treats as it treats
// TCP. Without cgo the package builds but Listen fails with
// ErrUnavailable.
//
// The socket is shared: PacketConn is the DHT's view and Listener the
// torrent's, each closed by its owner. The DHT owns the socket: closing
// its view closes the socket, uTP connections included, and ends a read
// in progress. Closing the listener view refuses new uTP connections and
// leaves the DHT running; a torrent ends before its DHT node does.
//
// The UDP socket's kernel buffers are socketBuffer (4 MiB, as far as
// net.core.rmem_max allows): at the default the kernel dropped datagrams
// while go-libutp's reader crossed into C for each one, and every drop
// halves uTP's window. go-libutp (as patched) sends the datagrams libutp
// emits during one call into it together when the call returns: one
// sendmmsg, each run of equal-size datagrams to one peer cut by the
// kernel (UDP GSO) where it can, so the wire still carries ordinary
// datagrams of at most 1402 bytes, the size libtorrent reads. On
// receive the socket asks for UDP GRO: the kernel may hand over a run of
// one sender's equal-size datagrams (a GSO send over loopback arrives
// whole) as one message, which the reader cuts back into its datagrams,
// each passed to libutp or to the DHT as if it came alone; a message of
// more than 128 datagrams, or truncated, is dropped.
//
// Bounds against a flood of SYNs, which cost the sender one datagram from
// any spoofed address: at most MaxInbound incoming uTP connections are
// open at once (handed to the listener, or waiting for it in a queue of
// acceptQueue, and not yet closed), new ones are admitted at AcceptRate
// per second (a burst of AcceptBurst), from one source (an IPv4 /24 or
// IPv6 /64) at SourceAcceptRate per second (a burst of SourceAcceptBurst,
// MaxSourceBuckets sources tracked), so one flooding host leaves the
// rest of AcceptRate to the others; beyond these a SYN is dropped
// before libutp answers it or allocates anything, so a spoofed SYN is
// not reflected either.
//
// libutp is the patched copy in third_party/go-libutp (see its
// PATCHES.md): its asserts, which a remote peer could trip to abort the
// process, are compiled out, and the data a connection holds is bounded
// (upstream bounded neither): ReadBufferFactor (2) receive buffers for
// the reader, beyond which the connection fails with
// ErrReadBufferOverflow, and one receive buffer (UTP_RCVBUF, 1 MiB) of
// out-of-order data, beyond which packets are dropped. An honest peer
// keeps within the window libutp advertises and meets neither.
// libutp itself keeps at most 3000 uTP sockets per UDP socket, closed ones
// lingering included. Non-uTP datagrams wait for the DHT's reader in a
// queue of 100 (go-libutp's), beyond which they are dropped, as a full
// kernel buffer drops them.
package utp
