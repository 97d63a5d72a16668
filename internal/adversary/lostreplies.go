package adversary

import (
	"bytes"
	"net/http"
	"strings"
)

// Lost replies: a gateway (or the LAN between) that carries out an add
// but whose answer never reaches the client. The client then does not
// know that the port is mapped, and unless it removes what it asked for
// all the same, the mapping outlives it by a whole lease. NAT-PMP
// answers are dropped in pmp; a UPnP answer is held here until the
// client gives up.

// loseReply reports whether the SOAP answer out to r is to be lost, and
// if so holds the request until the client gives up or the gateway
// closes.
func (g *Gateway) loseReply(r *http.Request, out []byte) bool {
	g.Lock()
	lose := g.LoseAddReplies
	g.Unlock()
	action := r.Header.Get("SOAPACTION")
	isAdd := strings.Contains(action, "#AddPortMapping") || strings.Contains(action, "#AddAnyPortMapping")
	if !lose || !isAdd && (!bytes.Contains(out, []byte("PortMappingResponse")) || bytes.Contains(out, []byte("DeletePortMapping"))) {
		return false
	}
	select {
	case <-r.Context().Done():
	case <-g.stop:
	}
	return true
}
