package main

import (
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"node/peer"
)

// fetch --encryption require from a seed that requires it too: the
// transfer completes, and the --json progress events count the seed as
// an encrypted peer. With --encryption off the same seed gives nothing.
func TestFetchEncryptionRequire(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	mi := makeTorrent(t, filepath.Join(src, "enc"))
	ln, err := net.Listen("tcp4", "127.0.127.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Slow, so that several progress events see the connection.
	runPeer(t, peer.Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: src, Listener: ln, NoDownload: true,
		Encryption: peer.EncryptRequire, MaxUploadRate: 100_000})
	link := magnetWithPeer(mi, ln.Addr())

	code, _, errOut := runCmd("fetch", "--no-port-mapping", "--no-seed", "--encryption", "off", "--listen", "127.0.127.99:0",
		"--bootstrap", "", "--dir", t.TempDir(), "--timeout", "3s", link)
	if code == exitOK {
		t.Fatalf("fetch --encryption off from a seed that requires encryption succeeded: %s", errOut)
	}

	code, out, errOut := runCmd("fetch", "--no-port-mapping", "--no-seed", "--json", "--encryption", "require",
		"--listen", "127.0.127.100:0", "--bootstrap", "", "--dir", dst, "--timeout", "30s", link)
	if code != exitOK {
		t.Fatalf("fetch: exit %d\n%s", code, errOut)
	}
	sameFiles(t, filepath.Join(src, "enc"), filepath.Join(dst, "enc"))
	encrypted := false
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var ev struct {
			Event          string `json:"event"`
			Peers          int    `json:"peers"`
			EncryptedPeers *int   `json:"encrypted_peers"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if ev.Event == "progress" && ev.EncryptedPeers == nil {
			t.Fatalf("progress event without encrypted_peers: %s", line)
		}
		if ev.EncryptedPeers != nil && *ev.EncryptedPeers == 1 && ev.Peers == 1 {
			encrypted = true
		}
	}
	if !encrypted {
		t.Fatalf("no event counts the seed as an encrypted peer:\n%s", out)
	}
}

func TestEncryptionFlagUsage(t *testing.T) {
	code, _, errOut := runCmd("fetch", "--encryption", "always", "magnet:?xt=urn:btih:"+strings.Repeat("ab", 20))
	if code != exitUsage || !strings.Contains(errOut, "prefer, require or off") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}
