package adversary

import (
	"bytes"
	"encoding/binary"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Gateway is a fake home router on one loopback address: a UPnP IGD
// (device description and SOAP control over HTTP) and a NAT-PMP server
// (UDP port 5351, RFC 6886). It records the mappings asked of it and
// answers honestly by default; its fields make it lie: about the lease,
// the external port, the external address, or with garbage, oversized or
// no answers at all. Set the fields in NewGateway's set, or later under
// Lock (a packet from the client is no synchronisation the race detector
// sees).
type Gateway struct {
	IP netip.Addr
	// RootURL is the device description's URL, for the client's
	// configuration (what SSDP would have found).
	RootURL string

	sync.Mutex
	// ExternalIP is what both protocols report as the external address
	// (UPnP as text, so it may be garbage; NAT-PMP as 4 bytes, so it
	// must parse). Default 198.51.100.7.
	ExternalIP string
	// IGDVersion is 1 or 2 (WANIPConnection:1 or :2); default 1. PPP
	// serves WANPPPConnection:1 instead.
	IGDVersion int
	PPP        bool
	// Lifetime is the NAT-PMP lease granted for the one asked; nil:
	// what was asked.
	Lifetime func(asked uint32) uint32
	// Port is the external port given for the one asked (NAT-PMP, and
	// UPnP v2's AddAnyPortMapping); nil: the one asked.
	Port func(asked uint16) uint16
	// UPnPError, when not 0, is the UPnP error code every AddPortMapping
	// fails with (718: conflict; 725: only permanent leases).
	UPnPError int
	// Description replaces the device description (garbage, a huge
	// one, control URLs on another host).
	Description []byte
	// SOAP replaces every SOAP answer's body (status 200).
	SOAP []byte
	// PMPReply replaces every NAT-PMP answer.
	PMPReply []byte
	// SSDPLocation replaces the LOCATION of SSDP answers (another
	// host's, garbage); SSDPStatus their status, 200 if 0.
	SSDPLocation string
	SSDPStatus   int
	// Silent makes both protocols never answer (HTTP requests hang
	// until the client gives up).
	Silent bool
	// LoseAddReplies maps what is asked but never answers an add (see
	// lostreplies.go); a refusal of an add is lost too.
	LoseAddReplies bool
	// Others are other LAN hosts' UPnP mappings, "tcp:6881" (protocol
	// and external port) → the host's address: an add of one is refused
	// as a conflict (718), and a delete removes it as a real gateway
	// would, counted in OthersDeleted (see othershost.go).
	Others        map[string]string
	OthersDeleted int
	// SSDPHold, if not nil, holds SSDP answers until it is closed.
	SSDPHold chan struct{}

	// Mappings are the live ones, "tcp:6881" → external port, and Adds
	// and Deletes count requests by key.
	Mappings map[string]uint16
	Adds     map[string]int
	Deletes  map[string]int
	// Leases are the leases asked, in seconds, in order.
	Leases []uint32
	// PMPTimes are when each NAT-PMP request came.
	PMPTimes []time.Time
	// Log is every add and delete of both protocols in the order they
	// came: "add tcp:6881", "delete udp:6881".
	Log []string

	clients map[string]string // by Mappings key: the internal client

	ln    net.Listener
	pc    net.PacketConn
	srv   *http.Server
	stop  chan struct{}
	epoch time.Time
}

// NewGateway starts a fake gateway on ip (a 127.x address): NAT-PMP on
// ip:5351, HTTP on an ephemeral port. set, if not nil, sets its fields
// before it serves.
func NewGateway(ip string, set func(*Gateway)) (*Gateway, error) {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return nil, err
	}
	g := &Gateway{IP: a, Mappings: map[string]uint16{}, Adds: map[string]int{}, Deletes: map[string]int{},
		stop: make(chan struct{}), epoch: time.Now()}
	if g.pc, err = net.ListenPacket("udp4", net.JoinHostPort(ip, "5351")); err != nil {
		return nil, err
	}
	if g.ln, err = net.Listen("tcp4", net.JoinHostPort(ip, "0")); err != nil {
		g.pc.Close()
		return nil, err
	}
	g.RootURL = "http://" + g.ln.Addr().String() + "/rootDesc.xml"
	if set != nil {
		set(g)
	}
	g.srv = &http.Server{Handler: http.HandlerFunc(g.serveHTTP), ReadHeaderTimeout: 5 * time.Second}
	go g.srv.Serve(g.ln)
	go g.servePMP()
	return g, nil
}

// Close stops both servers, ending requests left hanging by Silent.
func (g *Gateway) Close() {
	close(g.stop)
	g.pc.Close()
	g.srv.Close()
}

// Count returns the number of adds and deletes of key ("tcp:6881").
func (g *Gateway) Count(key string) (adds, deletes int) {
	g.Lock()
	defer g.Unlock()
	return g.Adds[key], g.Deletes[key]
}

// Mapped returns the external port key is mapped to, or 0.
func (g *Gateway) Mapped(key string) uint16 {
	g.Lock()
	defer g.Unlock()
	return g.Mappings[key]
}

func (g *Gateway) external() string {
	if g.ExternalIP == "" {
		return "198.51.100.7"
	}
	return g.ExternalIP
}

func (g *Gateway) port(asked uint16) uint16 {
	if g.Port != nil {
		return g.Port(asked)
	}
	return asked
}

func (g *Gateway) servePMP() {
	buf := make([]byte, 1500)
	for {
		n, from, err := g.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		if reply := g.pmp(buf[:n]); reply != nil {
			_, _ = g.pc.WriteTo(reply, from)
		}
	}
}

// pmp answers one NAT-PMP request, or returns nil to say nothing.
func (g *Gateway) pmp(req []byte) []byte {
	g.Lock()
	defer g.Unlock()
	g.PMPTimes = append(g.PMPTimes, time.Now())
	if g.Silent {
		return nil
	}
	if g.PMPReply != nil {
		return g.PMPReply
	}
	if len(req) < 2 || req[0] != 0 {
		return nil
	}
	secs := uint32(time.Since(g.epoch) / time.Second)
	switch op := req[1]; {
	case op == 0 && len(req) == 2:
		out := []byte{0, 128, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(out[4:], secs)
		ip, err := netip.ParseAddr(g.external())
		if err == nil && ip.Is4() {
			a := ip.As4()
			copy(out[8:], a[:])
		}
		return out
	case (op == 1 || op == 2) && len(req) == 12:
		proto := map[byte]string{1: "udp", 2: "tcp"}[op]
		internal := binary.BigEndian.Uint16(req[4:])
		asked := binary.BigEndian.Uint16(req[6:])
		life := binary.BigEndian.Uint32(req[8:])
		key := proto + ":" + strconv.Itoa(int(internal))
		out := make([]byte, 16)
		out[1] = 128 + op
		binary.BigEndian.PutUint32(out[4:], secs)
		binary.BigEndian.PutUint16(out[8:], internal)
		if life == 0 {
			g.Deletes[key]++
			g.Log = append(g.Log, "delete "+key)
			delete(g.Mappings, key)
			return out
		}
		g.Adds[key]++
		g.Log = append(g.Log, "add "+key)
		g.Leases = append(g.Leases, life)
		ext := g.port(asked)
		if g.Lifetime != nil {
			life = g.Lifetime(life)
		}
		g.Mappings[key] = ext
		if g.LoseAddReplies {
			return nil
		}
		binary.BigEndian.PutUint16(out[10:], ext)
		binary.BigEndian.PutUint32(out[12:], life)
		return out
	}
	return []byte{0, 128 + req[1], 0, 5, 0, 0, 0, 0} // unsupported opcode
}

func (g *Gateway) serveHTTP(w http.ResponseWriter, r *http.Request) {
	g.Lock()
	silent := g.Silent
	g.Unlock()
	if silent {
		select {
		case <-r.Context().Done():
		case <-g.stop:
		}
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/rootDesc.xml":
		g.Lock()
		desc := g.Description
		if desc == nil {
			desc = g.description()
		}
		g.Unlock()
		w.Header().Set("Content-Type", "text/xml")
		_, _ = w.Write(desc)
	case r.Method == http.MethodPost && r.URL.Path == "/ctl":
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err != nil {
			return
		}
		status, out := g.soap(r.Header.Get("SOAPACTION"), body)
		if g.loseReply(r, out) {
			return
		}
		w.Header().Set("Content-Type", `text/xml; charset="utf-8"`)
		w.WriteHeader(status)
		_, _ = w.Write(out)
	default:
		http.NotFound(w, r)
	}
}

func (g *Gateway) service() string {
	switch {
	case g.PPP:
		return "urn:schemas-upnp-org:service:WANPPPConnection:1"
	case g.IGDVersion == 2:
		return "urn:schemas-upnp-org:service:WANIPConnection:2"
	}
	return "urn:schemas-upnp-org:service:WANIPConnection:1"
}

func (g *Gateway) description() []byte {
	v := 1
	if g.IGDVersion == 2 {
		v = 2
	}
	return fmt.Appendf(nil, `<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0">
<specVersion><major>1</major><minor>0</minor></specVersion>
<device>
<deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:%[1]d</deviceType>
<friendlyName>fake gateway</friendlyName><UDN>uuid:00000000-0000-0000-0000-000000000001</UDN>
<deviceList><device>
<deviceType>urn:schemas-upnp-org:device:WANDevice:%[1]d</deviceType><UDN>uuid:00000000-0000-0000-0000-000000000002</UDN>
<deviceList><device>
<deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:%[1]d</deviceType><UDN>uuid:00000000-0000-0000-0000-000000000003</UDN>
<serviceList><service>
<serviceType>%[2]s</serviceType><serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId>
<SCPDURL>/scpd.xml</SCPDURL><controlURL>/ctl</controlURL><eventSubURL>/evt</eventSubURL>
</service></serviceList>
</device></deviceList>
</device></deviceList>
</device>
</root>`, v, g.service())
}

// soap answers one control request.
func (g *Gateway) soap(action string, body []byte) (int, []byte) {
	g.Lock()
	defer g.Unlock()
	if g.SOAP != nil {
		return http.StatusOK, g.SOAP
	}
	action = strings.Trim(action, `"`)
	name := action[strings.LastIndexByte(action, '#')+1:]
	args := soapArgs(body)
	key := strings.ToLower(args["NewProtocol"]) + ":" + args["NewInternalPort"]
	ext, _ := strconv.Atoi(args["NewExternalPort"])
	switch name {
	case "GetExternalIPAddress":
		return g.soapOK(name, "<NewExternalIPAddress>"+xmlEscape(g.external())+"</NewExternalIPAddress>")
	case "AddPortMapping", "AddAnyPortMapping":
		lease, _ := strconv.Atoi(args["NewLeaseDuration"])
		g.Adds[key]++
		g.Log = append(g.Log, "add "+key)
		g.Leases = append(g.Leases, uint32(lease))
		if g.othersHold(args["NewProtocol"], uint16(ext)) && name == "AddPortMapping" {
			return g.soapFault(718)
		}
		g.setClient(key, args["NewInternalClient"])
		if g.UPnPError != 0 && name == "AddPortMapping" && !(g.UPnPError == 725 && lease == 0) {
			return g.soapFault(g.UPnPError)
		}
		if name == "AddAnyPortMapping" {
			port := g.port(uint16(ext))
			g.Mappings[key] = port
			return g.soapOK(name, "<NewReservedPort>"+strconv.Itoa(int(port))+"</NewReservedPort>")
		}
		g.Mappings[key] = uint16(ext)
		return g.soapOK(name, "")
	case "GetSpecificPortMappingEntry":
		return g.specificEntry(name, args["NewProtocol"], uint16(ext))
	case "DeletePortMapping":
		proto := strings.ToLower(args["NewProtocol"])
		g.deleteOthers(proto, uint16(ext))
		for k, v := range g.Mappings {
			if strings.HasPrefix(k, proto+":") && int(v) == ext {
				g.Deletes[k]++
				g.Log = append(g.Log, "delete "+k)
				delete(g.Mappings, k)
			}
		}
		return g.soapOK(name, "")
	}
	return g.soapFault(401)
}

func (g *Gateway) soapOK(action, inner string) (int, []byte) {
	return http.StatusOK, []byte(`<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" ` +
		`s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><u:` + action + `Response xmlns:u="` +
		g.service() + `">` + inner + `</u:` + action + `Response></s:Body></s:Envelope>`)
}

func (g *Gateway) soapFault(code int) (int, []byte) {
	return http.StatusInternalServerError, []byte(`<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" ` +
		`s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><s:Fault><faultcode>s:Client</faultcode>` +
		`<faultstring>UPnPError</faultstring><detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>` +
		strconv.Itoa(code) + `</errorCode><errorDescription>refused</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>`)
}

// soapArgs collects the leaf elements of a SOAP request: its arguments.
func soapArgs(body []byte) map[string]string {
	args := map[string]string{}
	d := xml.NewDecoder(bytes.NewReader(body))
	var name string
	for {
		tok, err := d.Token()
		if err != nil {
			return args // the end, or garbage: what was read so far
		}
		switch t := tok.(type) {
		case xml.StartElement:
			name = t.Name.Local
		case xml.CharData:
			if name != "" {
				args[name] = strings.TrimSpace(string(t))
			}
		case xml.EndElement:
			name = ""
		}
	}
}

func xmlEscape(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// ServeSSDP starts an SSDP responder on the gateway's address and an
// ephemeral port, answering each M-SEARCH for a gateway as a router on
// the LAN would: the search a client would multicast is sent here
// instead. It stops with Close.
func (g *Gateway) ServeSSDP() (netip.AddrPort, error) {
	pc, err := net.ListenPacket("udp4", net.JoinHostPort(g.IP.String(), "0"))
	if err != nil {
		return netip.AddrPort{}, err
	}
	go func() {
		<-g.stop
		pc.Close()
	}()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			req := string(buf[:n])
			if !strings.HasPrefix(req, "M-SEARCH") {
				continue
			}
			st := ""
			for _, line := range strings.Split(req, "\r\n") {
				if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "ST") {
					st = strings.TrimSpace(v)
				}
			}
			g.Lock()
			loc, status, silent := g.SSDPLocation, g.SSDPStatus, g.Silent
			g.Unlock()
			if silent || !strings.Contains(st, "InternetGatewayDevice") {
				continue
			}
			g.Lock()
			hold := g.SSDPHold
			g.Unlock()
			if hold != nil {
				select {
				case <-hold:
				case <-g.stop:
					return
				}
			}
			if loc == "" {
				loc = g.RootURL
			}
			if status == 0 {
				status = 200
			}
			reply := fmt.Sprintf("HTTP/1.1 %d OK\r\nCACHE-CONTROL: max-age=120\r\nST: %s\r\nUSN: uuid:00000000-0000-0000-0000-000000000001::%s\r\n"+
				"EXT:\r\nSERVER: fake UPnP/1.1\r\nLOCATION: %s\r\n\r\n", status, st, st, loc)
			_, _ = pc.WriteTo([]byte(reply), from)
		}
	}()
	return pc.LocalAddr().(*net.UDPAddr).AddrPort(), nil
}
