package tracker

import (
	"encoding/binary"
	"errors"
	"testing"
	"unicode/utf8"
)

// FuzzParseAnnounce: any body gives a usable answer within the bounds or
// a clear error, never a panic.
func FuzzParseAnnounce(f *testing.F) {
	for _, s := range []string{
		"d8:intervali1800e5:peers6:\x7f\x00\x00\x02\x1a\xe1e",
		"d8:completei1e10:incompletei2e8:intervali900e12:min intervali60e5:peers0:6:peers618:\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x1a\xe1e",
		"d8:intervali900e5:peersld2:ip9:127.0.0.24:porti6881eeee",
		"d14:failure reason7:go awaye",
		"d8:intervali1e5:peers0:10:tracker id3:abc15:warning message6:\xe2\x80\xaeab\xc2e",
		"d15:warning message3:hm!8:intervali1e5:peers0:e",
		"d8:intervali1e5:peers7:\x01\x02\x03\x04\x05\x06\x07e",
		"d8:intervali1e5:peers99999999999:e",
		"d1:xlllllllllleeeeeeeeeee",
		"<html>",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseAnnounce(b)
		if err != nil {
			var te *Error
			if !errors.Is(err, ErrBadAnswer) && !errors.As(err, &te) {
				t.Fatalf("error of no kind: %v", err)
			}
			return
		}
		if len(r.Peers) > MaxPeersPerAnswer || r.Interval < 0 || len(r.Warning) > MaxMessageLen ||
			!utf8.ValidString(r.Warning) || len(r.TrackerID) > maxTrackerIDLen {
			t.Fatalf("answer out of bounds: %+v", r)
		}
		for _, p := range r.Peers {
			if p.Port() == 0 || !p.Addr().IsValid() || p.Addr().Is4In6() {
				t.Fatalf("peer %v", p)
			}
		}
	})
}

func FuzzParseScrape(f *testing.F) {
	f.Add([]byte("d5:filesd20:aaaaaaaaaaaaaaaaaaaad8:completei3e10:downloadedi7e10:incompletei5eeee"))
	f.Add([]byte("d5:filesdee"))
	f.Add([]byte("d5:filesd3:abcdeee"))
	f.Add([]byte("d14:failure reason3:no!e"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseScrape(b)
		if err != nil {
			return
		}
		for _, r := range m {
			if r.Seeders < 0 || r.Leechers < 0 || r.Completed < 0 {
				t.Fatalf("negative count: %+v", r)
			}
		}
	})
}

// FuzzParseUDP feeds one packet to each BEP 15 answer reader, as the
// answer to transaction 7.
func FuzzParseUDP(f *testing.F) {
	hdr := func(action uint32) []byte {
		return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, action), 7)
	}
	f.Add(binary.BigEndian.AppendUint64(hdr(actionConnect), 0x1234), false)
	f.Add(append(hdr(actionAnnounce), 0, 0, 7, 8, 0, 0, 0, 1, 0, 0, 0, 2, 127, 0, 0, 1, 0x1a, 0xe1), false)
	f.Add(append(hdr(actionAnnounce), make([]byte, 12+18)...), true)
	f.Add(append(hdr(actionAnnounce), 0, 0, 7, 8, 0, 0, 0, 1, 0, 0, 0, 2, 127, 0, 0), false)
	f.Add(append(hdr(actionScrape), make([]byte, 24)...), false)
	f.Add(append(hdr(actionError), "go away"...), false)
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 8}, false)
	f.Fuzz(func(t *testing.T, b []byte, v6 bool) {
		if _, err := parseConnect(b, 7); err != nil && !isKnown(err) {
			t.Fatalf("connect: %v", err)
		}
		r, err := parseUDPAnnounce(b, 7, v6)
		if err != nil && !isKnown(err) {
			t.Fatalf("announce: %v", err)
		}
		if len(r.Peers) > MaxPeersPerAnswer {
			t.Fatalf("%d peers", len(r.Peers))
		}
		if _, err := parseUDPScrape(b, 7, 2); err != nil && !isKnown(err) {
			t.Fatalf("scrape: %v", err)
		}
	})
}

func isKnown(err error) bool {
	var te *Error
	return errors.Is(err, ErrBadAnswer) || errors.As(err, &te)
}
