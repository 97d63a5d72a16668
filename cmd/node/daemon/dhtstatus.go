package daemon

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"time"

	"node/cmd/node/api"
	"node/dht"
	"node/krpc"
	"node/routing"
)

// DHT implements api.Backend: the shared node's figures, its routing
// tables bucket by bucket, and the latest traced lookups.
func (d *Daemon) DHT(ctx context.Context) (api.DHTStatus, error) {
	n := d.cfg.DHT
	s, err := n.Stats(ctx)
	if err != nil {
		return api.DHTStatus{}, err
	}
	es, err := n.Entries(ctx)
	if err != nil {
		return api.DHTStatus{}, err
	}
	st := api.DHTStatus{
		ID: s.ID.String(), Addr: s.Addr.String(), Nodes: s.Nodes, Good: s.Good,
		QueriesIn: map[string]uint64{}, QueriesOut: map[string]uint64{}, Drops: map[string]uint64{},
		StoreInfoHashes: s.InfoHashes, StorePeers: s.Peers,
		Buckets: []api.Bucket{}, Lookups: d.dht.latest(),
	}
	if s.External.IsValid() {
		st.External = s.External.String()
	}
	add := func(t *krpc.Stats) {
		for c := range krpc.MethodClass(krpc.NumMethodClasses) {
			st.QueriesIn[c.String()] += t.QueriesInByMethod[c]
			st.QueriesOut[c.String()] += t.QueriesOutByMethod[c]
		}
		st.Responses += t.ResponsesIn
		st.Timeouts += t.Timeouts
		st.Drops["rate_limited"] += t.RateLimited
		st.Drops["blocked"] += t.Blocked
		st.Drops["malformed"] += t.Malformed
		st.Drops["oversized"] += t.Oversized
		st.Drops["amplification"] += t.Amplification
		st.Drops["send_dropped"] += t.SendDropped
	}
	add(&s.Transport)
	v4ID, v4Buckets, v6ID, v6Buckets := s.ID, s.Buckets, routing.ID{}, 0
	if s.V6Only {
		v4Buckets, v6ID, v6Buckets = 0, s.ID, s.Buckets
	}
	if s.V6 != nil {
		st.Addr6 = s.V6.Addr.String()
		st.Nodes += s.V6.Nodes
		st.Good += s.V6.Good
		v6ID, v6Buckets = s.V6.ID, s.V6.Buckets
		add(&s.V6.Transport)
	}
	now := time.Now()
	type key struct {
		fam   string
		depth int
	}
	byBucket := make(map[key]*api.Bucket)
	for _, e := range es {
		fam, self, nb := "ipv4", v4ID, v4Buckets
		if a := e.Addr.Addr(); a.Is6() && !a.Is4In6() {
			fam, self, nb = "ipv6", v6ID, v6Buckets
		}
		depth := routing.CommonPrefixLen(self, e.ID)
		if nb > 0 {
			depth = min(depth, nb-1)
		}
		k := key{fam, depth}
		b := byBucket[k]
		if b == nil {
			b = &api.Bucket{Family: fam, Depth: depth}
			byBucket[k] = b
		}
		b.Nodes = append(b.Nodes, api.BucketNode{
			ID: e.ID.String(), Addr: e.Addr.String(), State: stateName(e.State(now, 0)),
			Dist: dht.LogDistance(self, e.ID),
		})
	}
	for _, b := range byBucket {
		slices.SortFunc(b.Nodes, func(x, y api.BucketNode) int { return cmp.Compare(x.Dist, y.Dist) })
		st.Buckets = append(st.Buckets, *b)
	}
	slices.SortFunc(st.Buckets, func(x, y api.Bucket) int {
		return cmp.Or(cmp.Compare(x.Family, y.Family), cmp.Compare(x.Depth, y.Depth))
	})
	return st, nil
}

func stateName(s routing.State) string {
	switch s {
	case routing.Good:
		return "good"
	case routing.Bad:
		return "bad"
	}
	return "questionable"
}

func jsonMarshal(v any) ([]byte, error) { return json.MarshalIndent(v, "", "\t") }
