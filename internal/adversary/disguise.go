package adversary

import (
	"strconv"

	"node/routing"
)

// DisguisedQuery returns a ping from id that a reader judging by a first
// look takes for the reply to our transaction tid, while a lenient
// decoder reads a query: "y" comes twice, first as "r", then as a
// one-element list holding "q", and the decoder keeps the last value and
// unwraps the list. Sent by a node we are querying, under the ID of our
// query to it, it would be answered as a query without paying the rate
// limit that replies to us are spared.
func DisguisedQuery(tid string, id routing.ID) []byte {
	return []byte("d1:ad2:id20:" + string(id[:]) + "e1:q4:ping1:t" +
		strconv.Itoa(len(tid)) + ":" + tid + "1:y1:r1:yl1:qee")
}
