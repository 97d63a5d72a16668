package tracker

// SetPort changes the port the next announces report: where peers reach
// us from outside, when a gateway forwards another port than ours. 0:
// Config.Port again. It is safe to call while Run runs.
func (a *Announcer) SetPort(port uint16) { a.port.Store(uint32(port)) }

func (a *Announcer) currentPort() uint16 {
	if p := a.port.Load(); p != 0 {
		return uint16(p)
	}
	return a.cfg.Port
}
