package metadata

import (
	"encoding/hex"
	"net/url"
)

// String is the info-hash in lowercase hex, as magnet links and logs show it.
func (h InfoHash) String() string { return hex.EncodeToString(h[:]) }

// Magnet returns a BEP 9 magnet link: the info-hash and the name, nothing
// else (the trackers are the .torrent's, see MetaInfo.Magnet).
func (i *Info) Magnet() string {
	return "magnet:?xt=urn:btih:" + i.InfoHash.String() + "&dn=" + url.QueryEscape(i.Name)
}
