package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/spf13/pflag"

	"node/storage/atomicfile"
)

// configFile is the name of the config file in the state directory.
const configFile = "config.toml"

// configFlag names the config file; --state-dir cannot come from it,
// since it says where the file is.
const (
	configFlag   = "config"
	stateDirFlag = "state-dir"
)

// maxConfigSize bounds the config file read: it holds flag values, a few
// hundred bytes; a bigger one is a mistake (a wrong --config path).
const maxConfigSize = 1 << 20

// config is a parsed config file: top-level keys are defaults for every
// command that has a flag of that name, a table per command ([fetch])
// for that command alone, overriding the top level.
type config struct {
	path     string
	shared   map[string]any
	commands map[string]map[string]any
}

// loadConfig reads the config file fs's command line names: --config, or
// config.toml in --state-dir (or in the default state directory for the
// commands without one). A missing default file is no config; a missing
// --config file is an error.
func loadConfig(fs *pflag.FlagSet) (*config, error) {
	path, explicit := "", false
	switch {
	case fs.Changed(configFlag):
		path, _ = fs.GetString(configFlag)
		explicit = true
	case fs.Lookup(stateDirFlag) != nil:
		if dir := fs.Lookup(stateDirFlag).Value.String(); dir != "" {
			path = filepath.Join(dir, configFile)
		}
	default:
		if dir := stateDirDefault(); dir != "" {
			path = filepath.Join(dir, configFile)
		}
	}
	if path == "" {
		return nil, nil
	}
	b, err := atomicfile.ReadFile(path, maxConfigSize)
	if errors.Is(err, os.ErrNotExist) && !explicit {
		return nil, nil
	}
	if err != nil {
		return nil, usagef("config: %v", err)
	}
	return parseConfig(path, b)
}

// parseConfig checks every key against the flags of the commands: an
// unknown key, or a table that is no command, is an error naming it and
// the file, so that a typo does not pass for a setting.
func parseConfig(path string, b []byte) (*config, error) {
	var raw map[string]any
	if _, err := toml.Decode(string(b), &raw); err != nil {
		return nil, usagef("config %s: %v", path, err)
	}
	c := &config{path: path, shared: map[string]any{}, commands: map[string]map[string]any{}}
	known := map[string]*pflag.FlagSet{}
	for i := range commands {
		if fs := commandFlags(&commands[i]); fs != nil {
			known[commands[i].name] = fs
		}
	}
	for _, k := range sortedKeys(raw) {
		v := raw[k]
		if tbl, ok := v.(map[string]any); ok {
			fs, ok := known[k]
			if !ok {
				return nil, usagef("config %s: [%s]: no such command", path, k)
			}
			for _, name := range sortedKeys(tbl) {
				if err := checkKey(fs, name); err != nil {
					return nil, usagef("config %s: [%s] %s: %v", path, k, name, err)
				}
			}
			c.commands[k] = tbl
			continue
		}
		var err error
		found := false
		for _, fs := range known {
			if err = checkKey(fs, k); err == nil {
				found = true
				break
			}
		}
		if !found {
			return nil, usagef("config %s: %s: %v", path, k, err)
		}
		c.shared[k] = v
	}
	return c, nil
}

// checkKey reports whether name may be set in a config file for fs's
// command.
func checkKey(fs *pflag.FlagSet, name string) error {
	switch {
	case name == stateDirFlag:
		return errors.New("the state directory cannot be set in the config file, which is in it: use --state-dir")
	case name == configFlag:
		return errors.New("the config file cannot name another: use --config")
	case fs.Lookup(name) == nil:
		return errors.New("unknown key (not a flag of the command)")
	}
	return nil
}

// argsFor is the command line the config gives command name, for the
// flags of fs that its command line does not set: --flag=value for each,
// checked here so that a bad value names the file and the key.
func (c *config) argsFor(name string, fs *pflag.FlagSet) ([]string, error) {
	vals := map[string]any{}
	where := map[string]string{}
	for k, v := range c.shared {
		if fs.Lookup(k) != nil {
			vals[k], where[k] = v, k
		}
	}
	for k, v := range c.commands[name] {
		vals[k], where[k] = v, "["+name+"] "+k
	}
	var out []string
	for _, k := range sortedKeys(vals) {
		if fs.Changed(k) {
			continue // the command line wins
		}
		strs, err := configValues(vals[k])
		if err == nil {
			for _, s := range strs {
				if err = fs.Set(k, s); err != nil {
					break
				}
			}
		}
		if err != nil {
			return nil, usagef("config %s: %s: %v", c.path, where[k], err)
		}
		for _, s := range strs {
			out = append(out, "--"+k+"="+s)
		}
	}
	return out, nil
}

// configValues is a TOML value as flag values: a string, number or
// boolean is one, an array (for the list flags) one per element.
func configValues(v any) ([]string, error) {
	switch v := v.(type) {
	case string:
		return []string{v}, nil
	case int64:
		return []string{strconv.FormatInt(v, 10)}, nil
	case float64:
		return []string{strconv.FormatFloat(v, 'g', -1, 64)}, nil
	case bool:
		return []string{strconv.FormatBool(v)}, nil
	case []any:
		out := []string{}
		for _, e := range v {
			if _, ok := e.([]any); ok {
				return nil, errors.New("want a string, number or boolean in the array, not another array")
			}
			s, err := configValues(e)
			if err != nil {
				return nil, err
			}
			out = append(out, s...)
		}
		return out, nil
	case time.Time:
		return nil, errors.New("want a string, number or boolean, not a date (a duration is a string: \"5m\")")
	}
	return nil, fmt.Errorf("want a string, number, boolean or array, not %T", v)
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
