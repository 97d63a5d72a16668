package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestURLCommand: node url prints a login URL of the daemon's address
// whose code logs in once; without a daemon it says so.
func TestURLCommand(t *testing.T) {
	_, dir := fakeDaemon(t)
	code, out, errOut := runCmd("url", "--state-dir", dir)
	if code != exitOK {
		t.Fatalf("url: %d %s", code, errOut)
	}
	m := regexp.MustCompile(`^(http://127\.0\.0\.1:\d+)/#login=([0-9a-f]{32})\n$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("node url printed %q, want one login URL", out)
	}
	if code := redeem(t, m[1], m[2]); code != http.StatusOK {
		t.Fatalf("the printed code: HTTP %d, want 200", code)
	}
	if code := redeem(t, m[1], m[2]); code != http.StatusUnauthorized {
		t.Fatalf("the printed code again: HTTP %d, want 401", code)
	}
	if code, _, _ := runCmd("url", "--state-dir", dir, "extra"); code != exitUsage {
		t.Errorf("url with an argument: exit %d, want %d", code, exitUsage)
	}
	empty := t.TempDir()
	code, _, errOut = runCmd("url", "--state-dir", empty)
	if code != exitFailure || !strings.Contains(errOut, "no daemon running") {
		t.Errorf("url without a daemon: exit %d, %q", code, errOut)
	}
}

// redeem trades a login code for a session as the page does, and returns
// the status.
func redeem(t *testing.T, base, code string) int {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"code": code})
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Post(base+"/api/v1/session", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
