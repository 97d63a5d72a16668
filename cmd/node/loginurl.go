package main

import (
	"context"
	"fmt"
	"io"
)

// runURL prints a URL that logs a browser in to the daemon's page: a
// one-time code, good for api.LoginCodeTTL, minted with the token.
func runURL(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("url", stderr, "node url [flags]")
	af := registerAPIFlags(fs)
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() != 0 {
		return usagef("node url takes no arguments")
	}
	d, err := af.connect()
	if err != nil {
		return err
	}
	defer d.Close()
	lc, err := d.NewLoginURL(context.Background())
	if err != nil {
		return d.explain(err)
	}
	fmt.Fprintln(stdout, lc.URL)
	fmt.Fprintf(stderr, "node url: the URL logs one browser tab in, once, until %s\n", lc.Expires.Local().Format("15:04:05"))
	return nil
}
