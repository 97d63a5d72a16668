// Package metrics exports node's figures to Prometheus: a collector of a
// DHT node's (DHT), read from dht.Node.Stats when scraped so the node
// does no work for metrics between scrapes, and lookups counted and timed
// through dht.Config.OnLookup; and a bounded HTTP server (Listen) that
// serves a registry at /metrics and nothing else. node dht --metrics uses
// both. node daemon registers the DHT collector and Daemon, its torrents'
// figures (bytes up and down, pieces verified and failed, connections
// and peers by transport, banned peers, torrents by state, incoming
// connections on the shared peer port by outcome), read from
// the daemon's own sampled counts when scraped, and serves them through
// its API server (Handler).
//
// Every name starts with node_dht_ or, the daemon's, node_ (the Go
// runtime's go_ and the process's process_ aside); counters end in
// _total, bytes are in bytes and durations in seconds, and label values
// come from closed sets: family (ipv4, ipv6: a dual-stack node's two
// sockets, BEP 32), method (ping, find_node, get_peers, announce_peer,
// sample_infohashes, other), reason, result, transport (tcp, utp),
// state (the API's torrent states) and outcome (IncomingOutcomes).
// What a stranger sends never becomes a label.
//
// The server is meant to be reachable by a scraper on another host, so
// it assumes a hostile client: ReadHeaderTimeout cuts off one that
// dawdles over its header (slowloris), MaxHeaderBytes bounds the header,
// MaxConns the connections and MaxScrapes the scrapes at once.
package metrics
