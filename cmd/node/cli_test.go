package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"node/metadata"
)

// node help CMD and node CMD -h print the same help; the everyday flags
// come first, the DHT defence last, and each default is the command's own.
func TestHelp(t *testing.T) {
	code, out, _ := runCmd("help", "fetch")
	if code != exitOK {
		t.Fatalf("help fetch: exit %d", code)
	}
	code, _, errOut := runCmd("fetch", "-h")
	if code != exitOK || errOut != out {
		t.Fatalf("fetch -h: exit %d, and not help fetch's text:\n%s", code, errOut)
	}
	everyday, expert, defence := strings.Index(out, "\nflags:\n"), strings.Index(out, "\nexpert flags:\n"), strings.Index(out, "\nDHT defence")
	if everyday < 0 || expert < everyday || defence < expert {
		t.Fatalf("help fetch: groups out of order (%d, %d, %d):\n%s", everyday, expert, defence, out)
	}
	for _, f := range []string{"--rate-per-ip", "--burst-per-ip", "--block-for", "--send-rate", "--max-amplification"} {
		if i := strings.Index(out, f); i < defence {
			t.Errorf("help fetch: %s not under the DHT defence heading", f)
		}
	}
	if i := strings.Index(out, "-d, --dir"); i < 0 || i > expert {
		t.Errorf("help fetch: -d, --dir not among the everyday flags")
	}
	for cmd, level := range map[string]string{"fetch": "warn", "seed": "warn", "peers": "warn", "dht": "info"} {
		_, out, _ := runCmd("help", cmd)
		if !strings.Contains(out, `(default "`+level+`")`) {
			t.Errorf("help %s: --log-level default is not %s:\n%s", cmd, level, out)
		}
	}
	for _, args := range [][]string{{"help", "frobnicate"}, {"help", "fetch", "seed"}, {"frobnicate"}} {
		if code, _, _ := runCmd(args...); code != exitUsage {
			t.Errorf("node %q: exit %d, want %d", args, code, exitUsage)
		}
	}
	if code, out, _ := runCmd("help", "completion"); code != exitOK || !strings.Contains(out, "completion") {
		t.Errorf("help completion: exit %d, %q", code, out)
	}
}

func TestVersion(t *testing.T) {
	for _, arg := range []string{"version", "--version", "-V"} {
		code, out, _ := runCmd(arg)
		if code != exitOK || !strings.HasPrefix(out, "node ") || !strings.Contains(out, runtime.Version()) {
			t.Errorf("node %s: exit %d, %q", arg, code, out)
		}
	}
}

// The version names the commit, its time and uncommitted changes when the
// build stamped them.
func TestVersionFormat(t *testing.T) {
	bi := &debug.BuildInfo{Main: debug.Module{Path: "node", Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
		{Key: "vcs.time", Value: "2026-12-06T17:00:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}}
	want := "node v1.2.3\ncommit 0123456789abcdef0123456789abcdef01234567 (2026-12-06T17:00:00Z), with uncommitted changes\n"
	if got := formatVersion(bi); !strings.HasPrefix(got, want) {
		t.Errorf("formatVersion = %q, want it to start %q", got, want)
	}
	bi.Settings = bi.Settings[:3]
	if got := formatVersion(bi); strings.Contains(got, "uncommitted") {
		t.Errorf("formatVersion without vcs.modified = %q", got)
	}
	if got := formatVersion(nil); !strings.HasPrefix(got, "node (unknown)\n") {
		t.Errorf("formatVersion(nil) = %q", got)
	}
}

// A binary go build makes in a git clone says which commit it is.
func TestVersionNamesCommit(t *testing.T) {
	rev, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not in a git checkout (or no git): %v", err)
	}
	out, err := exec.Command(nodeBinary(t), "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "commit ") {
		t.Skipf("the build was not stamped with its commit (GOFLAGS=%q; a git worktree, whose .git is a file, is not stamped either):\n%s", os.Getenv("GOFLAGS"), out)
	}
	if !strings.Contains(string(out), "commit "+strings.TrimSpace(string(rev))) {
		t.Fatalf("node version:\n%s\nwant commit %s", out, rev)
	}
}

func TestCompletion(t *testing.T) {
	code, script, _ := runCmd("completion", "bash")
	if code != exitOK || !strings.Contains(script, "complete -o filenames -F _node node") {
		t.Fatalf("completion bash: exit %d\n%s", code, script)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "node.bash")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash to check the script with")
	}
	if out, err := exec.Command(bash, "-n", path).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	// The script completes as bash would call it: COMP_WORDS and
	// COMP_CWORD set, the answer in COMPREPLY.
	complete := func(words ...string) string {
		t.Helper()
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = "'" + w + "'"
		}
		prog := `source "$1"; COMP_WORDS=(` + strings.Join(quoted, " ") + `); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); _node; echo "${COMPREPLY[*]}"`
		cmd := exec.Command(bash, "--norc", "--noprofile", "-c", prog, "bash", path)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("completing %q: %v\n%s", words, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	for _, c := range []struct {
		words []string
		want  string
	}{
		{[]string{"node", "fe"}, "fetch"},
		{[]string{"node", "fetch", "--di"}, "--dir"},
		{[]string{"node", "dht", "--rate-p"}, "--rate-per-ip"},
		{[]string{"node", "create", "x", "--piece-l"}, "--piece-length"},
		{[]string{"node", "help", "pe"}, "peers"},
		{[]string{"node", "completion", "z"}, "zsh"},
		{[]string{"node", "fetch", "--dir", "node.b"}, "node.bash"}, // a value: file names
	} {
		if got := complete(c.words...); got != c.want {
			t.Errorf("completing %q: %q, want %q", c.words, got, c.want)
		}
	}
	if got := complete("node", "info", "--di"); got != "" {
		t.Errorf("info has no --dir, yet completion offers %q", got)
	}

	code, script, _ = runCmd("completion", "zsh")
	if code != exitOK || !strings.HasPrefix(script, "#compdef node\n") || !strings.Contains(script, "fetch) flags=(") {
		t.Fatalf("completion zsh: exit %d\n%s", code, script)
	}
	if zsh, err := exec.LookPath("zsh"); err == nil {
		zpath := filepath.Join(dir, "_node")
		if err := os.WriteFile(zpath, []byte(script), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(zsh, "-n", zpath).CombinedOutput(); err != nil {
			t.Fatalf("zsh -n: %v\n%s", err, out)
		}
	} else {
		t.Log("no zsh: the zsh script's syntax is not checked")
	}
	if code, _, _ := runCmd("completion", "fish"); code != exitUsage {
		t.Errorf("completion fish: exit %d, want %d", code, exitUsage)
	}
}

// pieceLength is the piece length of the .torrent at path.
func pieceLength(t *testing.T, path string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	mi, err := metadata.ParseMetaInfo(b)
	if err != nil {
		t.Fatal(err)
	}
	return mi.Info.PieceLength
}

// The config file's top level sets a flag for every command that has it,
// a command's table overrides that, and the command line overrides both.
func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.WriteFile(data, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "config.toml")
	torrent := filepath.Join(dir, "x.torrent")
	for _, c := range []struct {
		config string
		args   []string
		want   int64
	}{
		{"piece-length = 65536\ndir = \"/srv/dl\"\n", nil, 65536},
		{"piece-length = 65536\n[create]\npiece-length = 32768\n[fetch]\nseed-ratio = 2\n", nil, 32768},
		{"piece-length = 65536\n[create]\npiece-length = 32768\n", []string{"--piece-length", "16384"}, 16384},
		{"piece-length = 65536\n", []string{"-piece-length=131072"}, 131072},
	} {
		if err := os.WriteFile(conf, []byte(c.config), 0o644); err != nil {
			t.Fatal(err)
		}
		args := append([]string{"create", data, "-o", torrent, "--config", conf}, c.args...)
		if code, _, errOut := runCmd(args...); code != exitOK {
			t.Fatalf("%q with %q: exit %d: %s", args, c.config, code, errOut)
		}
		if got := pieceLength(t, torrent); got != c.want {
			t.Errorf("%q with %q: piece length %d, want %d", args, c.config, got, c.want)
		}
	}
	// --config '' reads none.
	if err := os.WriteFile(conf, []byte("piece-length = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCmd("create", data, "-o", torrent, "--config", ""); code != exitOK {
		t.Fatalf("--config '': exit %d: %s", code, errOut)
	}
}

// Without --config, the file is config.toml in --state-dir: here one that
// makes node peers refuse its --announce port, which the command line
// then overrides.
func TestConfigInStateDir(t *testing.T) {
	state := t.TempDir()
	if err := os.WriteFile(filepath.Join(state, configFile), []byte("[peers]\nannounce = 70000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ih := strings.Repeat("ab", 20)
	base := []string{"peers", "--state-dir", state, "--listen", "127.0.188.1:0", "--listen6", "none", "--bootstrap", "", "--timeout", "2s", ih}
	code, _, errOut := runCmd(base...)
	if code != exitUsage || !strings.Contains(errOut, "--announce: port 70000") {
		t.Fatalf("config from --state-dir: exit %d: %s", code, errOut)
	}
	if code, _, errOut := runCmd(append(base, "--announce", "-1")...); code == exitUsage {
		t.Fatalf("the command line's --announce did not win: exit %d: %s", code, errOut)
	}
	if code, _, errOut := runCmd(append(base, "--config", "")...); code == exitUsage {
		t.Fatalf("--config '' still read the state directory's: exit %d: %s", code, errOut)
	}
}

// A key that is no flag, a table that is no command, a key the state
// directory's own flag, a value of the wrong type: each an error naming
// the file and the key, exit 64.
func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "config.toml")
	for _, c := range []struct{ config, want string }{
		{"no-such-flag = 1\n", "no-such-flag: unknown key"},
		{"[create]\ndir = \"x\"\n", "[create] dir: unknown key"},
		{"[fetchh]\ndir = \"x\"\n", "[fetchh]: no such command"},
		{"state-dir = \"/tmp\"\n", "state-dir: the state directory cannot be set"},
		{"[dht]\nstate-dir = \"/tmp\"\n", "[dht] state-dir: the state directory cannot be set"},
		{"config = \"/tmp/x\"\n", "config: the config file cannot name another"},
		{"[create]\npiece-length = \"big\"\n", "[create] piece-length: invalid argument"},
		{"piece-length = 1979-05-27\n", "piece-length: want a string, number or boolean, not a date"},
		{"piece-length = [[1]]\n", "piece-length: want a string"},
		{"piece-length = \n", "config " + conf},
	} {
		if err := os.WriteFile(conf, []byte(c.config), 0o644); err != nil {
			t.Fatal(err)
		}
		code, _, errOut := runCmd("create", dir, "-o", filepath.Join(dir, "x.torrent"), "--config", conf)
		if code != exitUsage || !strings.Contains(errOut, c.want) || !strings.Contains(errOut, conf) {
			t.Errorf("config %q: exit %d, %q; want exit %d naming %s and %q", c.config, code, errOut, exitUsage, conf, c.want)
		}
	}
	if code, _, errOut := runCmd("create", dir, "-o", "x", "--config", filepath.Join(dir, "missing.toml")); code != exitUsage || !strings.Contains(errOut, "missing.toml") {
		t.Errorf("a missing --config file: exit %d, %q", code, errOut)
	}
	big := make([]byte, maxConfigSize+1)
	for i := range big {
		big[i] = '#'
	}
	if err := os.WriteFile(conf, big, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCmd("create", dir, "-o", "x", "--config", conf); code != exitUsage || !strings.Contains(errOut, "too large") {
		t.Errorf("a config file over maxConfigSize: exit %d, %q", code, errOut)
	}
	// Help works whatever the config holds.
	if err := os.WriteFile(conf, []byte("bogus = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := runCmd("create", "-h", "--config", conf); code != exitOK {
		t.Errorf("create -h with a bad config: exit %d", code)
	}
}
