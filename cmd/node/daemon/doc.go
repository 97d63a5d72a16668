// Package daemon is node daemon's engine: many torrents on one DHT node,
// kept across restarts, behind the api.Backend the HTTP API serves.
//
// Each torrent is a peer.Torrent, as node fetch and node seed run one,
// with the listener Config.Listen gives it or, in node daemon, a virtual
// listener of Config.Mux (one port, TCP and uTP, for every torrent; each
// session registers anew, since a stopped torrent closes its listener),
// the shared DHT node (whose lookups for torrents are traced; DHT shows
// the latest MaxLookups), the global upload and download limits (one
// peer.RateLimit each, shared by every torrent), and the trackers its
// link or .torrent names when Config.Trackers allows.
// At most MaxActiveDownloads downloads and MaxActiveSeeds seeds run at
// once; the others wait queued, first added first, and a running torrent
// keeps its slot, except a download that has made no progress (payload,
// metadata) for Config.StalledAfter: it runs on, shown as before, outside
// the limit, so the next queued one starts. A seed stops in state done
// at its seed ratio. Pause, Remove and Close wait until a session has
// stopped (a check of existing data stops between two pieces); Close
// stops them all together, and Remove keeps the info-hash, refusing an
// Add of it, until it is done. A saved .torrent that cannot be read
// (other than missing) leaves its torrent in state error, kept. A sampler
// reads the running torrents' figures every SampleEvery, so that List
// costs a lock and a copy, whatever the number of torrents. Get asks the
// one torrent for its piece map and per-file progress (peer.Progress);
// a stopped torrent shows the last one read in this process (packed, a
// bit per piece), a complete one that has not run since shows every
// piece, and any other an empty map.
//
// In the state directory, torrents.json holds each torrent's info-hash,
// its magnet link or trackers, directory, pause flag, time added, seed
// ratio, byte totals over all sessions and whether it is complete or
// done; it is replaced atomically (temporary file, fsync, rename,
// directory fsync) on every change and every SaveEvery for the counts;
// temporary files a crash left are deleted at the next start.
// Each known info dictionary is saved once as torrents/<infohash>.torrent,
// so a restart does not fetch it again. Piece progress is the storage
// resume record each torrent keeps in its directory (storage.Recover
// checks the files against it, or hashes them, after a kill), and the DHT
// node keeps its ID and table in the same directory, whose lock it holds.
//
// Remove with data deletes through storage.RemoveFiles: only the files
// the torrent claimed (its resume record is in its directory, which
// storage writes only once no file there is someone else's), regular
// files only, never through a symlink, then the directories of its paths
// left empty. A file storage refused as someone else's (a torrent in
// state error with ErrForeignData) is left; Remove still removes the
// torrent, and its error and the log name what was left.
package daemon
