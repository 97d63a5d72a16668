package magnet

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Limits that keep Parse's time and memory bounded on hostile input. Real
// magnet links are a few hundred bytes with a handful of trackers, so both
// are far above anything legitimate.
const (
	maxURILen = 64 << 10
	maxParams = 1024
)

var errNoInfoHash = errors.New("magnet: no xt=urn:btih or urn:btmh")

// Parse parses a magnet URI. See the package documentation for what is
// accepted; every rejection is an error naming the offending value.
func Parse(uri string) (Link, error) {
	if len(uri) > maxURILen {
		return Link{}, fmt.Errorf("magnet: link is %d bytes; the limit is %d", len(uri), maxURILen)
	}
	const scheme = "magnet:"
	if len(uri) < len(scheme) || !strings.EqualFold(uri[:len(scheme)], scheme) {
		return Link{}, fmt.Errorf("magnet: %s is not a magnet link: want scheme %q", quote(uri), scheme)
	}
	query, ok := strings.CutPrefix(uri[len(scheme):], "?")
	if !ok {
		return Link{}, fmt.Errorf("magnet: %s has no query: want %q after the scheme", quote(uri), "?")
	}

	var (
		l                             Link
		seenName, seenLen, seenSelect bool
		n                             int
	)
	for query != "" {
		var seg string
		seg, query, _ = strings.Cut(query, "&")
		if seg == "" {
			continue
		}
		if n++; n > maxParams {
			return Link{}, fmt.Errorf("magnet: more than %d parameters", maxParams)
		}
		rawKey, rawValue, _ := strings.Cut(seg, "=")
		key, err := url.QueryUnescape(rawKey)
		if err != nil {
			return Link{}, fmt.Errorf("magnet: parameter name %s: %v", quote(rawKey), err)
		}
		key = baseName(strings.ToLower(key))
		switch key {
		case "xt", "dn", "xl", "tr", "ws", "x.pe", "so":
		default:
			// Unknown parameters (as, xs, kt, mt, future ones) are skipped
			// without decoding so that their syntax can't fail the link.
			continue
		}
		value, err := url.QueryUnescape(rawValue)
		if err != nil {
			return Link{}, fmt.Errorf("magnet: %s: %v", key, err)
		}

		switch key {
		case "xt":
			if err := l.addExactTopic(value); err != nil {
				return Link{}, err
			}
		case "dn":
			// Later names are ignored rather than rejected: clients that
			// emit several disagree on which wins, and a name is cosmetic.
			if !seenName {
				l.Name, seenName = value, true
			}
		case "xl":
			length, err := parseLength(value)
			if err != nil {
				return Link{}, err
			}
			if !seenLen {
				l.Length, seenLen = length, true
			}
		case "tr":
			if value != "" {
				l.Trackers = append(l.Trackers, value)
			}
		case "ws":
			if value != "" {
				l.WebSeeds = append(l.WebSeeds, value)
			}
		case "x.pe":
			if err := checkPeer(value); err != nil {
				return Link{}, err
			}
			l.Peers = append(l.Peers, value)
		case "so":
			if !seenSelect {
				l.Select, seenSelect = value, true
			}
		}
	}
	if !l.HasV1 && !l.HasV2 {
		return Link{}, errNoInfoHash
	}
	// Escaping can make the canonical form up to three times longer than
	// the input. Refusing such links here keeps the promise that whatever
	// Parse returns, Parse accepts again once formatted.
	if c := len(l.String()); c > maxURILen {
		return Link{}, fmt.Errorf("magnet: link is %d bytes once escaped; the limit is %d", c, maxURILen)
	}
	return l, nil
}

// addExactTopic records one xt value. Exact topics in other namespaces
// (urn:sha1:, urn:ed2k: and the like, from non-BitTorrent magnet links) are
// ignored: they are not errors, but they cannot satisfy the btih/btmh
// requirement either.
func (l *Link) addExactTopic(value string) error {
	switch {
	case hasPrefixFold(value, btihPrefix):
		h, err := decodeBTIH(value[len(btihPrefix):])
		if err != nil {
			return fmt.Errorf("magnet: btih %w", err)
		}
		// The same hash written twice (even once in hex and once in
		// base32) is harmless; two different hashes make the link
		// ambiguous, so refuse to guess.
		if l.HasV1 && h != l.InfoHash {
			return fmt.Errorf("magnet: conflicting btih values %x and %x", l.InfoHash, h)
		}
		l.InfoHash, l.HasV1 = h, true
	case hasPrefixFold(value, btmhPrefix):
		h, err := decodeBTMH(value[len(btmhPrefix):])
		if err != nil {
			return fmt.Errorf("magnet: btmh %w", err)
		}
		if l.HasV2 && h != l.InfoHashV2 {
			return fmt.Errorf("magnet: conflicting btmh values %x and %x", l.InfoHashV2, h)
		}
		l.InfoHashV2, l.HasV2 = h, true
	}
	return nil
}

func parseLength(s string) (int64, error) {
	// Digits only: strconv would also take a sign, and "-0" or "+5" are
	// not what any client means to send.
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("magnet: xl %s must be a non-negative integer", quote(s))
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("magnet: xl %s is out of range", quote(s))
	}
	return n, nil
}

// baseName maps numbered parameters such as "tr.1" or "xt.2", which some
// clients emit to keep related values apart, to their base name.
func baseName(key string) string {
	i := strings.LastIndexByte(key, '.')
	if i <= 0 || i == len(key)-1 {
		return key
	}
	if strings.TrimLeft(key[i+1:], "0123456789") != "" {
		return key
	}
	return key[:i]
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// quote renders an untrusted value for an error message, truncated so that
// a hostile link cannot make the error itself huge.
func quote(s string) string {
	const max = 80
	if len(s) > max {
		return strconv.Quote(s[:max]) + "..."
	}
	return strconv.Quote(s)
}
