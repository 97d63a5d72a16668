// Package storage is the disk layer of the client: it maps a torrent's byte
// stream onto the files it describes, reads and writes blocks, verifies
// pieces and remembers across restarts which pieces are complete.
//
// # Terms
//
// The torrent's content is one byte stream, the concatenation of its files in
// torrent order. A piece is a PieceLength-sized slice of that stream (the last
// one may be shorter) whose SHA-1 is listed in the info dictionary; pieces are
// the unit of verification. A block is a piece-relative range, usually 16 KiB,
// the unit peers request and send; ReadBlock and WriteBlock address blocks,
// ReadAt and WriteAt address the stream directly and split accesses that cross
// file boundaries.
//
// The resume file, dir/.node/<info-hash hex>.resume, is a bencoded snapshot of
// the completion bitfield together with every file's size and modification
// time at the moment it was saved. Recover trusts it only if everything still
// matches (including a checksum over its contents); on any doubt it re-hashes
// the pieces on disk instead, because a wrongly "complete" piece would be
// served to peers and never re-downloaded; RecoverContext gives that up
// between two pieces when its context is done. It is written atomically (temporary
// file, fsync, rename, fsync of the directory), so a crash leaves either the
// old or the new version.
//
// # Path safety
//
// Torrent file names come from strangers. Open refuses (with an error
// wrapping metadata.ErrUnsafePath) any path with an empty, "." or ".."
// component, a component containing a separator ('/' or '\\') or NUL, a
// joined path that would not stay strictly inside the download directory,
// and any existing component under the directory that is a symlink resolving
// outside of it (or not resolving at all: a dangling link would be followed
// when the file is created). The first component ".node" is also refused: it is where
// resume files live. All paths are checked before anything is created, so a
// refused torrent leaves no trace on disk.
//
// # Files on disk
//
// Files are created lazily on the first write (directories 0o755, files
// 0o644) and brought to their final length: on Linux with fallocate, which
// gives them their blocks (direct writes then need no allocation, and the
// file lies in one piece); where that fails (no support, or no room),
// with truncate, which leaves them sparse. Running out of disk surfaces
// as an error from WriteAt/WriteBlock that still satisfies
// errors.Is(err, syscall.ENOSPC).
// Empty files are created by Open, since no piece would ever trigger it (by
// Recover, if a file may be someone else's, once it has found none is).
// Padding files (BEP 47) are never created: they read as zeros, and writes to
// them are accepted only if the data is all zeros.
//
// At most maxOpenFiles (40) files are open at once, in an LRU pool, so a
// torrent of thousands of files stays within the descriptor limit; a file
// evicted while a read or write uses it is closed when that returns. A
// symlink in a file's last component is followed only if it resolves inside
// the download directory (O_NOFOLLOW otherwise), even if it appeared after
// Open.
//
// # Existing files
//
// The files are the torrent's if its resume file exists; the first write
// saves one before it creates anything. A file found at one of the paths
// when there is none may be anyone's (a torrent named .bashrc fetched into
// a home directory): Open leaves it as it is, and Recover hashes what is
// there like on any resume. If every byte of it outside the pieces that
// verify is zero (a hole, or not written yet), it is the torrent's from then
// on and nothing is lost. Otherwise it is never written to, and Recover
// returns an error wrapping ErrForeignData that names it, unless
// SetOverwrite(true) was called; the pieces that verified are kept either
// way. While such a file is there, SaveResume writes no record, since that
// would make it the torrent's on the next run. A piece that spans the end of a partial file, or a file that is
// missing, cannot verify, so a partial copy that does not end on a piece
// boundary counts as other data.
//
// # Direct I/O
//
// With SetDirectIO(true) (the client's default), writes go to disk with
// O_DIRECT on Linux where the file system takes it: the aligned middle of
// each write by a second, direct descriptor, its unaligned head and tail
// (within the pages a file starts and ends in) through the page cache, so
// that the two never share a page. A download is not read back while it
// runs; copying it through fresh page-cache pages is most of the CPU a fast
// download costs and evicts what the machine had cached. Reads always use
// the page cache, which the kernel keeps coherent with direct writes.
// BufferOffset tells a caller where to start a piece's buffer so that its
// direct writes need no copy. A file system that refuses O_DIRECT (EINVAL)
// gets page-cache writes from then on.
//
// # Removing a torrent's data
//
// RemoveFiles deletes what the torrent claimed: only with a whole resume
// record of it in the directory (written only once no file there is
// someone else's) does it delete the regular files at the torrent's
// paths, then the record, then the directories of its paths left empty.
// Without one it deletes nothing of the data and names the files it left
// (ErrNotClaimed): a file Recover refused as ErrForeignData stays. It
// walks from the directory one real directory at a time through handles
// (os.Root) and unlinks by name in the directory it holds, so a component
// that is, or becomes, a symlink is never followed: a path with one, or
// that is not a regular file, is left and reported.
//
// Opening a file, to write or to read, and creating its directories walk
// too: Open checks the paths once; before each later open the directory
// that holds the file, as far as it exists, must still resolve inside
// the download directory (which names what is wrong), and then the open
// itself goes from the download directory one component at a time
// (os.Root), following a symlink only while it stays inside and never an
// absolute one, so a directory swapped for a symlink out after the check
// is not followed either. The direct-I/O descriptor is opened the same
// way (non-blocking, in case the name is a FIFO by then) and must be the
// same file as the handle it goes with. The resume record under .node is
// written (atomicfile.WriteIn) and read through the same root, and the
// files' sizes and mtimes it records are taken through it (a .node that
// is a link the walk will not follow makes the first write fail; only a
// regular file there counts as a record; Open deletes the temporary
// files a crash left beside this torrent's record). Open asks the same root about
// each symlink on the torrent's paths and refuses one the walk would not
// follow (an absolute one, or one that climbs out of the directory), so
// what Open accepts the writes do too.
package storage
