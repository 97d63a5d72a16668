package api

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"node/metadata"
)

// Bounds on what a Client accepts. Whatever answers on the daemon's port
// may not be the daemon (it may have died and another program taken the
// port), so its answers are bounded like any stranger's.
const (
	// ClientTimeout bounds one call, answer included; above
	// RequestTimeout, so that the daemon's own timeout error arrives first.
	ClientTimeout = RequestTimeout + 15*time.Second
	// MaxResponseBytes bounds an answer: a TorrentDetail of a torrent
	// whose info dictionary fits metadata.MaxMetadataSize (its paths in
	// JSON, a piece map of a character per piece) fits unless its names
	// are mostly escaped control characters.
	MaxResponseBytes = 64 << 20
	// MaxErrorBytes bounds an error answer.
	MaxErrorBytes = 64 << 10
	// MaxTorrentBytes is the largest .torrent an AddRequest carries: its
	// base64 and the rest of the request fit in MaxBodyBytes.
	MaxTorrentBytes = (MaxBodyBytes - 64<<10) / 4 * 3
)

// Client calls a daemon's API. It implements Backend, so that an error
// the daemon's Backend returned (ErrNotFound, ErrExists, BadRequest) is
// one here too: errors.Is and errors.As see through the wire.
type Client struct {
	base  string
	token string
	hc    *http.Client
	// procNet opens /proc/net/tcp and tcp6, in which the client checks,
	// on each connection, that one of trusted runs the program listening
	// at its other end; nil where the system has no such tables.
	procNet func(string) (io.ReadCloser, error)
	order   binary.ByteOrder
	trusted []uint32
}

var _ Backend = (*Client)(nil)

// A ClientOption changes what NewClient makes.
type ClientOption func(*Client)

// TrustOwnerOf lets the client send the token to a program run by the
// owner of path, the token file: a user who owns the file can read it
// already. (That is another user than the caller only for root, who reads
// a service's state directory.)
func TrustOwnerOf(path string) ClientOption {
	return func(c *Client) {
		if fi, err := os.Stat(path); err == nil {
			if uid, ok := fileOwner(fi); ok {
				c.trusted = append(c.trusted, uid)
			}
		}
	}
}

// NewClient calls the API at addr (host:port; an unspecified IP stands for
// the loopback of its family) with token. On Linux it sends the token only
// to a program that the caller, root or a user TrustOwnerOf names runs:
// the daemon may have died and left its port to anyone.
func NewClient(addr, token string, opts ...ClientOption) *Client {
	c := &Client{
		base:    "http://" + loopbackFor(addr),
		token:   token,
		procNet: defaultProcNet(),
		order:   binary.NativeEndian,
		trusted: []uint32{uint32(os.Getuid()), 0},
	}
	for _, o := range opts {
		o(c)
	}
	var d net.Dialer
	c.hc = &http.Client{
		Timeout: ClientTimeout,
		Transport: &http.Transport{
			// The token goes to the daemon alone, never to a proxy
			// the environment names.
			Proxy:               nil,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     IdleTimeout / 2,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				conn, err := d.DialContext(ctx, network, addr)
				if err != nil || c.procNet == nil {
					return conn, err
				}
				if err := c.checkPeer(conn); err != nil {
					conn.Close()
					return nil, &withheld{err}
				}
				return conn, nil
			},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c
}

// checkPeer refuses a connection unless a trusted user runs the program
// listening at its other end. It checks after connecting, so that it
// judges the address the connection reached, whatever name was dialled.
func (c *Client) checkPeer(conn net.Conn) error {
	ta, ok := conn.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return fmt.Errorf("not a TCP connection: %v", conn.RemoteAddr())
	}
	return checkListener(c.procNet, c.order, ta.AddrPort(), c.trusted)
}

// withheld is checkPeer's refusal, which call returns bare: it is the
// whole story, not a failure of the request it stopped.
type withheld struct{ err error }

func (w *withheld) Error() string { return w.err.Error() }
func (w *withheld) Unwrap() error { return w.err }

// Close drops the client's idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// Error is an error answer from the API: its status and message. It
// unwraps to ErrNotFound (404), ErrExists (409) or a BadRequest (400).
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

func (e *Error) Unwrap() error {
	switch e.Status {
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusConflict:
		return ErrExists
	case http.StatusBadRequest:
		return BadRequest{errors.New(e.Message)}
	}
	return nil
}

func (c *Client) Add(ctx context.Context, req AddRequest) (Torrent, error) {
	var t Torrent
	return t, c.call(ctx, http.MethodPost, "/api/v1/torrents", req, http.StatusCreated, &t)
}

func (c *Client) List(ctx context.Context) ([]Torrent, error) {
	var l struct {
		Torrents []Torrent `json:"torrents"`
	}
	err := c.call(ctx, http.MethodGet, "/api/v1/torrents", nil, http.StatusOK, &l)
	return l.Torrents, err
}

func (c *Client) Get(ctx context.Context, ih metadata.InfoHash) (TorrentDetail, error) {
	var d TorrentDetail
	return d, c.call(ctx, http.MethodGet, "/api/v1/torrents/"+ih.String(), nil, http.StatusOK, &d)
}

func (c *Client) Pause(ctx context.Context, ih metadata.InfoHash) (Torrent, error) {
	var t Torrent
	return t, c.call(ctx, http.MethodPost, "/api/v1/torrents/"+ih.String()+"/pause", nil, http.StatusOK, &t)
}

func (c *Client) Resume(ctx context.Context, ih metadata.InfoHash) (Torrent, error) {
	var t Torrent
	return t, c.call(ctx, http.MethodPost, "/api/v1/torrents/"+ih.String()+"/resume", nil, http.StatusOK, &t)
}

func (c *Client) Remove(ctx context.Context, ih metadata.InfoHash, deleteData bool) error {
	path := "/api/v1/torrents/" + ih.String()
	if deleteData {
		path += "?delete_data=true"
	}
	return c.call(ctx, http.MethodDelete, path, nil, http.StatusNoContent, nil)
}

func (c *Client) DHT(ctx context.Context) (DHTStatus, error) {
	var s DHTStatus
	return s, c.call(ctx, http.MethodGet, "/api/v1/dht", nil, http.StatusOK, &s)
}

// call sends in (if not nil) as JSON and decodes a want answer into out
// (if not nil).
func (c *Client) call(ctx context.Context, method, path string, in any, want int, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		if len(b) > MaxBodyBytes {
			return fmt.Errorf("request of %d bytes is over the API's %d", len(b), MaxBodyBytes)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if w, ok := errors.AsType[*withheld](err); ok {
			return w.err
		}
		return err
	}
	defer resp.Body.Close()
	limit := int64(MaxResponseBytes)
	if resp.StatusCode != want {
		limit = MaxErrorBytes
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	return decodeAnswer(resp.StatusCode, want, b, limit, out)
}

// decodeAnswer turns an answer's status and body (read up to limit+1
// bytes) into out or an error.
func decodeAnswer(status, want int, b []byte, limit int64, out any) error {
	if int64(len(b)) > limit {
		return fmt.Errorf("the answer (HTTP %d) is over %d bytes: is a node daemon on this address?", status, limit)
	}
	if status != want {
		var e struct {
			Error *string `json:"error"`
		}
		if err := json.Unmarshal(b, &e); err != nil || e.Error == nil {
			return &Error{Status: status, Message: fmt.Sprintf("HTTP %d %s, not an API answer: is a node daemon on this address?", status, http.StatusText(status))}
		}
		msg := strings.TrimSpace(*e.Error)
		if msg == "" {
			msg = fmt.Sprintf("HTTP %d %s", status, http.StatusText(status))
		}
		return &Error{Status: status, Message: msg}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("the answer is not the API's JSON (is a node daemon on this address?): %w", err)
	}
	return nil
}
