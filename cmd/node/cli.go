package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/pflag"
)

// flagCapture, passed to a command as its output, makes it hand its flag
// set over (newFlagSet) and stop: it is run with --help, whose usage text
// the capture discards. That is how run, help and completion learn a
// command's flags without a second list of them.
type flagCapture struct{ fs *pflag.FlagSet }

func (*flagCapture) Write(p []byte) (int, error) { return len(p), nil }

// commandFlags is c's flag set, fresh and unparsed; nil for a command
// that has none.
func commandFlags(c *command) *pflag.FlagSet {
	var fc flagCapture
	_ = c.run([]string{"--help"}, &fc, &fc)
	if fc.fs == nil {
		return nil
	}
	fs := fc.fs
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// prepareArgs is what run hands c: the Go-style single-dash long flags
// spelled GNU-style, and the config file's values for the flags the
// command line does not give, before the command line's own.
func prepareArgs(c *command, args []string) ([]string, error) {
	fs := commandFlags(c)
	if fs == nil {
		return args, nil
	}
	args = goStyleLong(fs, args)
	if err := fs.Parse(args); err != nil {
		return args, nil // the command says what is wrong, or shows its help
	}
	cfg, err := loadConfig(fs)
	if err != nil || cfg == nil {
		return args, err
	}
	pre, err := cfg.argsFor(c.name, fs)
	if err != nil {
		return args, err
	}
	return append(pre, args...), nil
}

// goStyleLong rewrites -name and -name=value, where name is one of fs's
// long flags of two letters or more, to --name: node's flags were Go's
// flag package's, which takes one dash as well as two, and scripts and
// habits use both. A single dash followed by anything else stays a
// cluster of short flags (-jd DIR), and nothing after -- or in a flag's
// value changes.
func goStyleLong(fs *pflag.FlagSet, args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		out = append(out, a)
		if a == "--" {
			return append(out, args[i+1:]...)
		}
		if len(a) < 2 || a[0] != '-' {
			continue
		}
		var f *pflag.Flag
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch {
		case a[1] == '-':
			f = fs.Lookup(name)
		case len(name) > 1 && fs.Lookup(name) != nil:
			f = fs.Lookup(name)
			out[len(out)-1] = "-" + a
		default:
			// A cluster of short flags: the last one may take the next
			// argument as its value, unless the cluster holds it.
			if hasValue {
				continue
			}
			for j := 1; j < len(a); j++ {
				sf := fs.ShorthandLookup(a[j : j+1])
				if sf == nil {
					break
				}
				if sf.NoOptDefVal == "" {
					if j == len(a)-1 {
						f = sf
					}
					break
				}
			}
		}
		if f != nil && !hasValue && f.NoOptDefVal == "" && i+1 < len(args) {
			i++
			out = append(out, args[i])
		}
	}
	return out
}

// Help groups: a flag annotated with one is listed under its heading
// after the everyday flags.
const (
	flagGroupKey = "node-group"
	groupExpert  = "expert"
	groupDefence = "defence"
)

var groupHeadings = []struct{ group, heading string }{
	{"", "flags"},
	{groupExpert, "expert flags"},
	{groupDefence, "DHT defence (per source and per node; 0 turns each limit off)"},
}

// markGroup files the named flags of fs under group in the help.
func markGroup(fs *pflag.FlagSet, group string, names ...string) {
	for _, n := range names {
		if err := fs.SetAnnotation(n, flagGroupKey, []string{group}); err != nil {
			panic(err) // a flag name mistyped in the source
		}
	}
}

func flagGroup(f *pflag.Flag) string {
	if g := f.Annotations[flagGroupKey]; len(g) > 0 {
		return g[0]
	}
	return ""
}

// printFlags prints fs's flags under groupHeadings, each with its
// default, Go's flag package's layout: the flag, then its text indented
// below it.
func printFlags(w io.Writer, fs *pflag.FlagSet) {
	for _, g := range groupHeadings {
		heading := false
		fs.VisitAll(func(f *pflag.Flag) {
			if flagGroup(f) != g.group || f.Hidden {
				return
			}
			if !heading {
				fmt.Fprintf(w, "\n%s:\n", g.heading)
				heading = true
			}
			line := "      --" + f.Name
			if f.Shorthand != "" {
				line = "  -" + f.Shorthand + ", --" + f.Name
			}
			name, text := pflag.UnquoteUsage(f)
			if f.NoOptDefVal == "" && name != "" {
				line += " " + name
			}
			switch f.DefValue {
			case "", "0", "0s", "false", "[]":
			default:
				if f.Value.Type() == "string" {
					text += fmt.Sprintf(" (default %q)", f.DefValue)
				} else {
					text += " (default " + f.DefValue + ")"
				}
			}
			fmt.Fprintf(w, "%s\n%s", line, wrapText(text, "        ", helpWidth))
		})
	}
}

// helpWidth is the column the help's text wraps at.
const helpWidth = 80

// wrapText breaks s into lines of at most width columns where it can,
// each starting with indent.
func wrapText(s, indent string, width int) string {
	var b strings.Builder
	line := indent
	for _, word := range strings.Fields(s) {
		if len(line) > len(indent) && len(line)+1+len(word) > width {
			b.WriteString(line + "\n")
			line = indent
		}
		if len(line) > len(indent) {
			line += " "
		}
		line += word
	}
	b.WriteString(line + "\n")
	return b.String()
}

func runHelp(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stdout)
		return exitOK
	}
	if len(args) > 1 {
		fmt.Fprintf(stderr, "node help: want one command, got %d arguments\n", len(args))
		return exitUsage
	}
	if c := lookupCommand(args[0]); c != nil {
		_ = c.run([]string{"--help"}, stdout, stdout)
		return exitOK
	}
	for _, b := range builtins {
		if b.name == args[0] {
			fmt.Fprintf(stdout, "usage: node %s\n\n%s\n", b.name, b.summary)
			return exitOK
		}
	}
	fmt.Fprintf(stderr, "node help: unknown command %q\n", printable(args[0]))
	usage(stderr)
	return exitUsage
}

// versionText is node's version from the build information: the main
// module's version ("(devel)" for a build in a checkout without a tag)
// and, where the build stamped them (go build in a git checkout), the
// commit, its time and whether the tree had changes. (Go stamps a build
// in a clone, not in a git worktree, whose .git is a file.)
func versionText() string {
	bi, _ := debug.ReadBuildInfo()
	return formatVersion(bi)
}

// formatVersion is versionText for bi, which may be nil.
func formatVersion(bi *debug.BuildInfo) string {
	var b strings.Builder
	version, rev, at, modified := "(unknown)", "", "", false
	if bi != nil {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	fmt.Fprintf(&b, "node %s\n", version)
	if rev != "" {
		fmt.Fprintf(&b, "commit %s", rev)
		if at != "" {
			fmt.Fprintf(&b, " (%s)", at)
		}
		if modified {
			b.WriteString(", with uncommitted changes")
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "%s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return b.String()
}
