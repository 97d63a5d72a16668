package adversary

import (
	"strconv"
	"strings"
)

// Another host's mapping: UPnP's DeletePortMapping names an external port
// and protocol, not whose mapping it is, so a client that deletes a port
// it only may have mapped (its add's answer was lost) can remove another
// LAN host's. GetSpecificPortMappingEntry says whose a port is; Others
// holds the other hosts' mappings. The caller holds g's lock.

// setClient records the internal client of our mapping key.
func (g *Gateway) setClient(key, client string) {
	if g.clients == nil {
		g.clients = map[string]string{}
	}
	g.clients[key] = client
}

func (g *Gateway) othersHold(proto string, ext uint16) bool {
	_, ok := g.Others[strings.ToLower(proto)+":"+strconv.Itoa(int(ext))]
	return ok
}

func (g *Gateway) deleteOthers(proto string, ext uint16) {
	k := proto + ":" + strconv.Itoa(int(ext))
	if _, ok := g.Others[k]; ok {
		delete(g.Others, k)
		g.OthersDeleted++
		g.Log = append(g.Log, "delete other "+k)
	}
}

// specificEntry answers GetSpecificPortMappingEntry for proto and ext:
// another host's mapping, ours, or NoSuchEntryInArray (714).
func (g *Gateway) specificEntry(action, proto string, ext uint16) (int, []byte) {
	proto = strings.ToLower(proto)
	entry := func(internal, client string) (int, []byte) {
		return g.soapOK(action, "<NewInternalPort>"+internal+"</NewInternalPort><NewInternalClient>"+xmlEscape(client)+
			"</NewInternalClient><NewEnabled>1</NewEnabled><NewPortMappingDescription>x</NewPortMappingDescription><NewLeaseDuration>0</NewLeaseDuration>")
	}
	if c, ok := g.Others[proto+":"+strconv.Itoa(int(ext))]; ok {
		return entry(strconv.Itoa(int(ext)), c)
	}
	for k, v := range g.Mappings {
		if p, internal, _ := strings.Cut(k, ":"); p == proto && v == ext {
			return entry(internal, g.clients[k])
		}
	}
	return g.soapFault(714)
}
