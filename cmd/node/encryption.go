package main

import (
	"github.com/spf13/pflag"

	"node/peer"
)

// registerEncryption adds --encryption, for the subcommands that connect
// to peers (fetch, seed).
func (f *dhtFlags) registerEncryption(fs *pflag.FlagSet) {
	fs.Var(encryptionFlag{&f.encryption}, "encryption", "Message Stream Encryption (MSE/PE) with peers: `mode` prefer (accept both; dial encrypted first, "+
		"plaintext if the peer refuses), require (RC4-encrypted connections only, both ways) or off (plaintext only)")
	markGroup(fs, groupExpert, "encryption")
}

// encryptionFlag is --encryption, parsed by peer.ParseEncryption.
type encryptionFlag struct{ e *peer.Encryption }

func (f encryptionFlag) String() string {
	if f.e == nil {
		return peer.EncryptPrefer.String()
	}
	return f.e.String()
}

func (encryptionFlag) Type() string { return "mode" }

func (f encryptionFlag) Set(s string) error {
	e, err := peer.ParseEncryption(s)
	if err != nil {
		return err
	}
	*f.e = e
	return nil
}
