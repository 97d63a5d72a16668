// Package web is node daemon's web page: the torrents (progress, rates,
// peers, add by magnet, pause, resume, remove, one torrent's files, peers
// and piece map) and the DHT (the routing table drawn by bucket and
// distance, and the last lookups drawn as they converged).
//
// The page is three static files embedded in the binary: no CDN, no
// build step, no script but its own (the Content-Security-Policy allows
// nothing else). It polls the API (see package api) once a second, with
// the cookie that api's login sets, and inserts what the API says as
// text, never as HTML: torrent, file and peer names come from peers.
package web
