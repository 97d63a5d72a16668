// Package web is node daemon's web page: the torrents (progress, rates,
// peers, add by magnet, pause, resume, remove, one torrent's files, peers
// and piece map) and the DHT (the routing table drawn by bucket and
// distance, and the last lookups drawn as they converged).
//
// The page is three static files embedded in the binary: no CDN, no
// build step, no script but its own (the Content-Security-Policy allows
// nothing else). It holds no secret, and the API serves it without a
// login: it logs itself in with the one-time code in its URL's fragment
// (#login=CODE, which node daemon and node url print), trades it for a
// session secret kept in sessionStorage, and polls the API (see package
// api) once a second with that secret as a bearer token. It inserts what
// the API says as text, never as HTML: torrent, file and peer names come
// from peers. It draws at most MAX_ROWS files and peers and the piece map
// as the API's buckets (api.MaxPieceBuckets at most).
package web
