// Package adversary is test support: misbehaving BitTorrent peers and DHT
// nodes, so that each attack on node is a few lines of test and a new one
// is cheap to add. It speaks the wire through node's own codecs
// (peer/wire, krpc, metadata) but imports neither peer nor dht, so the
// tests of those packages can use it. The node binary never links it.
//
// A Peer is one raw peer connection, dialled (DialPeer) or accepted
// (ServePeers), that sends whatever its script says. A Node is one raw
// KRPC socket (NewNode) that sends hand-made queries and answers queries
// with hand-made replies. A BadTracker is an HTTP and UDP tracker that
// attacks every announce one way (silence, garbage, redirect loops, peer
// floods...), speaking both protocols by hand; a RedirectTracker
// (trackerredirect.go) redirects every announce where it is told, to a
// page of our router or of this host. Behaviours built on them live in
// files named after the attack.
// A Gateway (liargateway.go) is a fake home router on a loopback
// address, UPnP IGD and NAT-PMP, that lies about leases, ports and its
// external address, or answers garbage or nothing. A BlackHole
// (blackhole.go, Linux) is a TCP address whose connects hang, a dead
// host or route. A Slowloris (slowloris.go) holds an HTTP server's
// connections open by sending request headers a line at a time; a
// HandshakeDrip (handshakedrip.go) does the same to a BitTorrent
// listener with a BEP 3 handshake sent a byte at a time; a
// HandshakeHold (handshakehold.go) keeps a listener's whole handshake
// budget taken from many addresses, silent or dripping, connecting again
// whenever one is closed.
// MSEOpening and MSEInitiate (msejunk.go) open
// connections as a Message Stream Encryption initiator would, with junk
// for a key, endless padding, silence, a torrent the victim does not
// serve or a crypto method it refuses.
// CloserLiar (closerliar.go) answers every find_node and
// get_peers with fabricated nodes nearer the target than any real one and
// fabricated peers; ServeConn runs such a reply function on any
// PacketConn, a simulated one included.
// A UTPConn (utpdelayabort.go) is a
// raw uTP initiator that sends the headers and data it is told:
// timestamp differences that overflow libutp's delay average
// (UTPDelayAbort), or data past the window, in order or not
// (utpwindowflood.go).
package adversary
