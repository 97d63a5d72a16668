package main

import (
	"strings"
	"testing"
)

// A config file of any bytes is parsed, or refused with an error naming
// the file; never a panic. (The file is the user's, but a wrong --config
// may point at anything.)
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		"dir = \"/srv/dl\"\nlisten = \":6881\"\n[fetch]\nseed-ratio = 2\n",
		"[dht]\nrate-per-ip = 0\nblock-for = \"0\"\nbootstrap = [\"a:1\", \"b:2\"]\n",
		"no-such = 1\n", "[nope]\n", "state-dir = \"x\"\n", "a = 1979-05-27\n", "x = [[1]]\n", "=", "[[fetch]]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseConfig("fuzz.toml", b)
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.toml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for i := range commands {
			if fs := commandFlags(&commands[i]); fs != nil {
				if _, err := c.argsFor(commands[i].name, fs); err != nil && !strings.Contains(err.Error(), "fuzz.toml") {
					t.Fatalf("error does not name the file: %v", err)
				}
			}
		}
	})
}
