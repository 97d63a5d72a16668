// Package nodeid is the name of a Mainline DHT node as the wire writes it
// (BEP 5): the 160-bit ID, which also names info-hashes, and the contact,
// an ID with the UDP address it answers on.
//
// It is the leaf under both the wire and the table: package krpc encodes
// IDs and contacts into messages and package routing files them into
// k-buckets, and each imports this package rather than the other, so the
// wire knows nothing of the table and the table nothing of the transport.
// It imports nothing of ours. The XOR metric is here because the ID's
// order is part of what an ID is and both the table and the lookups in
// package dht compare by it; what only the table needs (common prefixes,
// buckets, BEP 42's tie between an ID and an address) stays in routing.
package nodeid
