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
// The socket is shared: PacketConn and Listener are views, each closed
// by its owner (the DHT node, the torrent), and the UDP socket closes
// when the last view does. Closing the listener view refuses new uTP
// connections and leaves the DHT running.
//
// Bounds against a flood of SYNs, which cost the sender one datagram from
// any spoofed address: at most MaxInbound incoming uTP connections are
// open at once (handed to the listener and not yet closed), new ones are
// admitted at AcceptRate per second (a burst of AcceptBurst), and beyond
// these a SYN is dropped before libutp answers it or allocates anything.
// libutp itself keeps at most 3000 uTP sockets per UDP socket, closed ones
// lingering included. Non-uTP datagrams wait for the DHT's reader in a
// queue of 100 (go-libutp's), beyond which they are dropped, as a full
// kernel buffer drops them.
package utp
