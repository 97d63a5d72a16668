package main

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// ltLeechScript is the libtorrent leecher: a Python script run by an
// interpreter that imports libtorrent (Debian's python3-libtorrent).
//
//go:embed ltleech.py
var ltLeechScript []byte

// libtorrent is how to run the libtorrent leecher, or why it is not run.
type libtorrent struct {
	python  string // the interpreter; "" when not run
	script  string // ltLeechScript, written out
	version string // libtorrent.__version__
	why     string // why it is not run, when python is ""
}

// findLibtorrent looks for a python3 that imports libtorrent (Debian's
// first: that is where python3-libtorrent installs) and writes the leecher
// script into dir. Not finding one is no error: the scenarios then run
// without it and say why.
func findLibtorrent(ctx context.Context, dir string) libtorrent {
	candidates := []string{"/usr/bin/python3"}
	if p, err := exec.LookPath("python3"); err == nil && !slices.Contains(candidates, p) {
		candidates = append(candidates, p)
	}
	var whys []string
	for _, py := range candidates {
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		out, err := exec.CommandContext(cctx, py, "-c", "import libtorrent; print(libtorrent.__version__)").CombinedOutput()
		cancel()
		if err != nil {
			last := strings.TrimSpace(string(out))
			if i := strings.LastIndexByte(last, '\n'); i >= 0 {
				last = last[i+1:]
			}
			whys = append(whys, fmt.Sprintf("%s: %v %s", py, err, last))
			continue
		}
		script := filepath.Join(dir, "ltleech.py")
		if err := os.WriteFile(script, ltLeechScript, 0o644); err != nil {
			return libtorrent{why: err.Error()}
		}
		return libtorrent{python: py, script: script, version: strings.TrimSpace(string(out))}
	}
	if len(whys) == 0 {
		return libtorrent{why: "no python3"}
	}
	return libtorrent{why: "python3 with libtorrent not available (" + strings.Join(whys, "; ") + ")"}
}

// args is the command line of the libtorrent leecher (after the
// interpreter): fetch magnet into dir, listening and connecting on ip,
// its DHT bootstrapped from boot, giving up after timeout, over
// transport (see scenario.transport; "" is plain TCP).
func (l libtorrent) args(magnet, dir, ip string, boot []string, timeout time.Duration, transport string) ([]string, error) {
	if l.python == "" {
		return nil, errors.New("libtorrent is not available")
	}
	mode := transport
	if mode == "" {
		mode = "tcp"
	}
	return []string{l.script, magnet, dir, ip, strings.Join(boot, ","),
		fmt.Sprintf("%.0f", timeout.Seconds()), mode}, nil
}
