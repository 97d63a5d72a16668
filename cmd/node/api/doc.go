// Package api is node daemon's HTTP JSON interface: the types it speaks,
// the Backend a daemon implements, the server that guards it (a token, a
// Host check, bounded bodies, JSON errors) and the client that node add,
// ls, rm, pause and resume use.
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
// Every error is {"error": "..."} with a 4xx or 5xx status.
package api
