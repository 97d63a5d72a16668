package main

import (
	"flag"
	"io"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"node/dht"
)

// dhtFlags are the flags of every subcommand that joins the DHT.
type dhtFlags struct {
	listen    string
	bootstrap listFlag
	stateDir  string
	logJSON   bool
	logLevel  string
}

func (f *dhtFlags) register(fs *flag.FlagSet, defaultListen string) {
	f.bootstrap.vals = dht.PublicRouters
	fs.StringVar(&f.listen, "listen", defaultListen, "UDP `address` to listen on")
	fs.Var(&f.bootstrap, "bootstrap", "comma-separated `host:port` list of DHT nodes to join through (replaces the public routers; empty for none)")
	fs.StringVar(&f.stateDir, "state-dir", "", "`directory` to save the routing table in, so a restart is warm")
	fs.BoolVar(&f.logJSON, "log-json", false, "log JSON lines instead of human-readable text")
	fs.StringVar(&f.logLevel, "log-level", "info", "log `level`: debug, info, warn, error")
}

func (f *dhtFlags) logger(w io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(f.logLevel)
	if err != nil {
		return nil, usagef("--log-level: %v", err)
	}
	var enc zapcore.Encoder
	if f.logJSON {
		enc = zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	} else {
		c := zap.NewDevelopmentEncoderConfig()
		c.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
		enc = zapcore.NewConsoleEncoder(c)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), lvl)), nil
}

func (f *dhtFlags) config(log *zap.Logger) dht.Config {
	return dht.Config{
		Listen:    f.listen,
		Bootstrap: f.bootstrap.vals,
		StateDir:  f.stateDir,
		Logger:    log,
	}
}

// listFlag is a comma-separated list whose default is replaced, not
// appended to, when the flag is given.
type listFlag struct{ vals []string }

func (l *listFlag) String() string { return strings.Join(l.vals, ",") }

func (l *listFlag) Set(s string) error {
	l.vals = nil
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			l.vals = append(l.vals, v)
		}
	}
	return nil
}

func newFlagSet(name string, w io.Writer, usageLine string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {
		io.WriteString(w, "usage: "+usageLine+"\n\nflags:\n")
		fs.PrintDefaults()
	}
	return fs
}

// flagSet reports whether the named flag was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
