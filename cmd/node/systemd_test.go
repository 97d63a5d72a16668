package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const unitPath = "systemd/node-dht.service"

// maxUnitExposure is the highest systemd-analyze security exposure the
// unit may score (the unit scores 1.6).
const maxUnitExposure = 2.0

// unitExecStart is the unit's ExecStart command line, split into words.
func unitExecStart(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "ExecStart="); ok {
			return strings.Fields(v)
		}
	}
	t.Fatal("no ExecStart in " + unitPath)
	return nil
}

// The unit's command line is one node dht accepts.
func TestSystemdUnitCommandLine(t *testing.T) {
	words := unitExecStart(t)
	if words[0] != "/usr/local/bin/node" || words[1] != "dht" {
		t.Fatalf("ExecStart runs %q", words[:2])
	}
	args := make([]string, 0, len(words))
	for _, w := range words[1:] {
		args = append(args, strings.ReplaceAll(w, "${STATE_DIRECTORY}", t.TempDir()))
	}
	// -h last: every flag before it is parsed, an unknown one refused.
	if code, _, errOut := runCmd(append(args, "-h")...); code != exitOK {
		t.Fatalf("node %q: exit %d: %s", args, code, errOut)
	}
}

// systemd-analyze verify finds nothing to say about the unit, run on a
// copy whose ExecStart is a built binary (verify wants it executable).
func TestSystemdUnitVerifies(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (Debian: systemd): the unit is not verified")
	}
	b, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	unit := strings.Replace(string(b), "ExecStart=/usr/local/bin/node ", "ExecStart="+nodeBinary(t)+" ", 1)
	path := filepath.Join(t.TempDir(), "node-dht.service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", "--man=no", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) != 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	// systemd's own score of the sandbox (0 is tightest, 10 none); 1.6
	// when written, "OK" up to 3.9.
	out, err = exec.Command(sa, "security", "--offline=true", "--no-pager", path).CombinedOutput()
	if err == nil {
		_, level, ok := strings.Cut(string(out), "Overall exposure level for node-dht.service: ")
		var score float64
		if _, serr := fmt.Sscanf(level, "%g", &score); !ok || serr != nil || score > maxUnitExposure {
			t.Errorf("systemd-analyze security: exposure %q, want at most %.1f\n%s", level, maxUnitExposure, out)
		}
	} else {
		t.Logf("systemd-analyze security --offline: %v (older systemd): the exposure score is not checked", err)
	}
	for _, want := range []string{"DynamicUser=yes", "StateDirectory=node", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
		"NoNewPrivileges=yes", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "CapabilityBoundingSet=\n",
		"SystemCallFilter=@system-service", "LimitNOFILE=", "Restart=on-failure"} {
		if !strings.Contains(unit, want) {
			t.Errorf("the unit lacks %q", want)
		}
	}
}
