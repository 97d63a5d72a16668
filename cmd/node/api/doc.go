// Package api is node daemon's HTTP JSON interface: the types it speaks,
// the Backend a daemon implements, the server that guards it, the client
// that node add, ls, rm, pause and resume use, and the files in the state
// directory through which they find the daemon (AddrFile, TokenFile).
//
// Routes (all under one token; see Server):
//
//	GET    /api/v1/torrents                  {"torrents": [Torrent...]}
//	POST   /api/v1/torrents                  AddRequest -> 201 Torrent
//	GET    /api/v1/torrents/{infohash}       TorrentDetail
//	POST   /api/v1/torrents/{infohash}/pause  -> Torrent
//	POST   /api/v1/torrents/{infohash}/resume -> Torrent
//	DELETE /api/v1/torrents/{infohash}[?delete_data=true] -> 204
//	GET    /api/v1/dht                       DHTStatus
//
// Every error is {"error": "..."} with a 4xx or 5xx status, the server's
// own included (no such path 404, wrong method 405 with Allow, timeout
// 503). The guard answers, in this order: a Host header that is not a
// loopback IP or localhost, 403 (DNS rebinding); a target that is not a
// path (absolute-form, as to a proxy), 400; a request another site's page
// sent (Sec-Fetch-Site, Origin), 403; no "Authorization: Bearer TOKEN" or
// a wrong one, 401; a body not labelled Content-Type: application/json
// (what a form or a text/plain fetch, which browsers send without a
// preflight, would be), 415; a body over MaxBodyBytes, 413. It sends no
// CORS headers, so browsers let no other site read an answer or send a
// preflighted request. The listener bounds connections (MaxConns),
// headers, and the time a client may take to send its request or read
// its answer.
//
// A browser logs in with GET /login?token=TOKEN (LoginURL builds it): the
// right token gets a cookie (HttpOnly, SameSite=Strict, an HMAC of the
// token) and a redirect to /; the guard takes that cookie as well as the
// bearer header, but a request that changes state with it must be JSON
// and, where the browser says where it comes from (Origin,
// Sec-Fetch-Site), from the same origin.
//
// The Client bounds what it reads too (MaxResponseBytes, MaxErrorBytes):
// a daemon that died may have left its port to another program. It maps
// 404, 409 and 400 back to ErrNotFound, ErrExists and BadRequest.
package api
