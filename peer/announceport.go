package peer

import "time"

// SetAnnouncePort tells the torrent the port peers on the Internet reach
// it on, when it is not the first listener's: a gateway forwarding our
// port may give another external one. The DHT is told at once (a new
// announce), the trackers at their next announce, and peers in the
// extended handshake of each new connection. 0 is the listener's port
// again. It does nothing once the torrent has stopped, and nothing
// without a listener: nobody could be reached there.
func (t *Torrent) SetAnnouncePort(port uint16) {
	t.post(loopFunc(func(t *Torrent) { t.setAnnouncePort(port, time.Now()) }))
}

func (t *Torrent) setAnnouncePort(port uint16, now time.Time) {
	if port == t.annPort {
		return
	}
	t.annPort = port
	if t.ann != nil {
		t.ann.SetPort(uint16(t.announcePort()))
	}
	// The DHT still points at the old port: announce again now rather
	// than in announceEvery. A lookup in flight announces the old one;
	// its end starts the next (lookupDoneEvent).
	t.announced, t.nextLook = time.Time{}, now
	t.discover(now)
}

// announcePort is the port we announce: the one SetAnnouncePort gave,
// or the first listener's; 0 without a listener.
func (t *Torrent) announcePort() int {
	if t.annPort != 0 && t.listenPort() != 0 {
		return int(t.annPort)
	}
	return t.listenPort()
}
