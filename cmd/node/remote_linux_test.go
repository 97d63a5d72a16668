package main

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"node/cmd/node/api"
)

// foreignListener is the program of another user (uid 4242) that took the
// port of a daemon that was killed: it prints what it is sent.
const foreignListener = `
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(1)
print(s.getsockname()[1], flush=True)
s.settimeout(30)
c, _ = s.accept()
c.settimeout(5)
got = b""
try:
    while True:
        b = c.recv(65536)
        if not b:
            break
        got += b
except OSError:
    pass
print(repr(got), flush=True)
`

// TestRemoteForeignListener: node ls refuses to send the token to a
// program another user runs on the address in api-addr. It takes root,
// to run that program as another user.
func TestRemoteForeignListener(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root, to listen as another user")
	}
	py, err := exec.LookPath("/usr/bin/python3")
	if err != nil {
		t.Skip("needs /usr/bin/python3, which another user can run")
	}
	cmd := exec.Command(py, "-c", foreignListener)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 4242, Gid: 4242}}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() { once.Do(func() { cmd.Process.Kill(); cmd.Wait() }) }
	defer stop()
	lines := make(chan string, 2)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var port string
	select {
	case port = <-lines:
	case <-time.After(20 * time.Second):
		t.Fatalf("the listener did not start: %s", stderr.String())
	}
	if port == "" {
		t.Fatalf("the listener did not start: %s", stderr.String())
	}
	dir := t.TempDir()
	tok, err := api.LoadOrCreateToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", port)
	if err := api.WriteAddr(dir, addr); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCmd("ls", "--state-dir", dir)
	if code != exitFailure || !strings.Contains(errOut, "the program at "+addr+" is not run by you") || !strings.Contains(errOut, "not sending it the token") {
		t.Errorf("ls with another user's program on the port: exit %d, %q", code, errOut)
	}
	// The client connected, then hung up unheard: the listener got nothing.
	select {
	case got := <-lines:
		if got != "b''" || strings.Contains(got, tok) {
			t.Fatalf("the listener was sent %s", got)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the listener did not see the client hang up")
	}
}
