// Package api is node daemon's HTTP JSON interface: the types it speaks,
// the Backend a daemon implements, the server that guards it, the client
// that node add, ls, rm, pause and resume use, and the files in the state
// directory through which they find the daemon (AddrFile, TokenFile).
//
// Routes (all but the session's under the token or a session secret; see
// Server):
//
//	GET    /api/v1/torrents                  {"torrents": [Torrent...]}
//	POST   /api/v1/torrents                  AddRequest -> 201 Torrent
//	GET    /api/v1/torrents/{infohash}       TorrentDetail (bounded: MaxDetailFiles, MaxPieceBuckets)
//	POST   /api/v1/torrents/{infohash}/pause  -> Torrent
//	POST   /api/v1/torrents/{infohash}/resume -> Torrent
//	DELETE /api/v1/torrents/{infohash}[?delete_data=true] -> 204
//	GET    /api/v1/dht                       DHTStatus
//	POST   /api/v1/login-code                (the token only) -> LoginCode
//	POST   /api/v1/session                   {"code": CODE} -> {"session": SECRET} (no token)
//
// Every error is {"error": "..."} with a 4xx or 5xx status, the server's
// own included (no such path 404, wrong method 405 with Allow, timeout
// 503). The guard answers, in this order: a Host header that is not a
// loopback IP or localhost, 403 (DNS rebinding); a target that is not a
// path (absolute-form, as to a proxy), 400; a request another site's page
// sent (Sec-Fetch-Site, Origin), 403; no "Authorization: Bearer TOKEN"
// (the scheme in any case) or session secret, or a wrong one, 401 (but
// for the page's files and /api/v1/session); a body not labelled Content-Type: application/json
// (what a form or a text/plain fetch, which browsers send without a
// preflight, would be), 415; a body over MaxBodyBytes, 413. It sends no
// CORS headers, so browsers let no other site read an answer or send a
// preflighted request. Every 4xx answer, each refusal of the guard
// included, closes its connection, so that a client without the token
// cannot keep connections idle. The listener bounds connections
// (MaxConns), headers, and the time a client may take to send its request
// or read its answer.
//
// The browser logs in without a cookie (a browser would send one to
// every port of 127.0.0.1, to other users' programs too). node daemon
// prints, and node url asks /api/v1/login-code for, a URL
// http://127.0.0.1:PORT/#login=CODE (LoginURL): CODE is random, good
// once, for LoginCodeTTL, at most MaxLoginCodes outstanding, and in the
// fragment, which no server, Referer or log sees. The page, served with
// no login, posts the code as JSON to /api/v1/session (which the Host,
// cross-origin and JSON checks guard, and which takes an Origin only of
// the page's own http origin) for a random session secret, held in memory
// (MaxSessions, ending after SessionIdle unused or SessionLifetime), which
// it keeps in sessionStorage (per origin, port included) and sends as
// "Authorization: Bearer SECRET". Secrets, codes and the token are
// compared in constant time. A restart forgets every session.
//
// The Client bounds what it reads too (MaxResponseBytes, MaxErrorBytes):
// a daemon that died may have left its port to another program. On Linux
// it sends the token only after checking, in /proc/net/tcp and tcp6
// (MaxProcNetBytes read at most), that every socket listening where it
// connected belongs to its user, root, or the token file's owner
// (TrustOwnerOf); otherwise it returns a ForeignListenerError, or an
// error saying it cannot tell, and sends nothing. Other systems do not
// list socket owners, and there it does not check. An api-addr with an
// unspecified IP (0.0.0.0, [::]) is written, and dialled, as the
// loopback of its family, and one that another user owns is refused
// (except by root). It maps 404, 409 and 400 back to ErrNotFound,
// ErrExists and BadRequest.
package api
