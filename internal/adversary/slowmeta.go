package adversary

import (
	"time"

	"node/metadata"
)

// Peers around turnover before the metadata is known: a metadata source
// on a slow link, which must keep its slot while it serves (the squatters
// beside it claim a metadata_size and answer with SilentMetadata).

// SlowMetadata serves raw as an honest peer does, but waits every before
// each answer (for ServeMetadata): a source on a slow or busy link.
func SlowMetadata(raw []byte, every time.Duration) MetadataServer {
	return func(piece int) []byte {
		time.Sleep(every)
		return metadata.ServeMetadata(raw, piece)
	}
}
