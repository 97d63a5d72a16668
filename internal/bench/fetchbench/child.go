package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"node/internal/bench/benchkit"
)

// runResult is what one leecher process did, measured from outside.
type runResult struct {
	Client    string  `json:"client"`
	Run       int     `json:"run"`
	Metadata  float64 `json:"metadata_s"`  // process start → metadata event
	Complete  float64 `json:"complete_s"`  // process start → complete event
	Exited    float64 `json:"exited_s"`    // process start → exit
	MiBps     float64 `json:"mib_per_s"`   // size / Complete
	DataMiBps float64 `json:"data_mib_s"`  // size / (Complete − Metadata)
	CPU       float64 `json:"cpu_s"`       // user + sys of the leecher process
	UserCPU   float64 `json:"user_cpu_s"`  //
	SysCPU    float64 `json:"sys_cpu_s"`   //
	MaxRSSMiB float64 `json:"max_rss_mib"` // ru_maxrss
	// SeederCPU is the user+sys CPU time the seeders used from just
	// before the launcher started to its exit (see makeSection's notes).
	SeederCPU float64 `json:"seeder_cpu_s"`
	// Peers is how many peers the leecher used: for anacrolix those that
	// delivered useful data (its "complete" event), for ours the most it
	// had connected in a "progress" event (one a second) or that
	// delivered data (its "complete" event's data_conns); -1 if no event
	// said.
	Peers int `json:"peers"`
	// Links are the distinct "transport/encryption" pairs (tcp or utp;
	// none, header or rc4) of the peers that delivered data: for ours
	// from its "complete" event (and its "progress" events' peer lists),
	// for libtorrent from its "complete" event; empty for anacrolix.
	Links []string `json:"links,omitempty"`
	// Events are the JSON lines the child printed (progress lines omitted).
	Events []map[string]any `json:"events"`
}

func (r *runResult) addLink(l string) {
	if !slices.Contains(r.Links, l) {
		r.Links = append(r.Links, l)
		slices.Sort(r.Links)
	}
}

// Leechers are started through a small launcher, built at start (see
// benchkit.BuildLauncher): ru_maxrss of a child that Go starts directly
// includes this program's own peak RSS.

// measure runs one leecher process through the launcher, at most limit
// long (then the launcher kills it by its PID; the launcher itself is
// killed a little later if it hangs), and times its "metadata" and
// "complete" JSON events from just before it started.
func measure(ctx context.Context, client string, run int, limit time.Duration, sizeMiB float64, env []string, launcher, name string, args ...string) (runResult, error) {
	res := runResult{Client: client, Run: run}
	cmd, ctx, cancel := benchkit.Launch(ctx, launcher, limit, name, args...)
	defer cancel()
	cmd.Env = env
	var tail benchkit.Tail
	cmd.Stderr = &tail
	out, err := cmd.StdoutPipe()
	if err != nil {
		return res, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return res, err
	}
	res.Peers = -1
	completed := false
	got := benchkit.ReadEvents(out, &start, func(ev map[string]any) { res.take(ev, &completed) })
	metaAt, doneAt, usage := got.Metadata, got.Complete, got.Usage
	werr := cmd.Wait()
	res.Exited = time.Since(start).Seconds()
	if usage != nil {
		res.UserCPU, res.SysCPU = usage.UserCPU(), usage.SysCPU()
		res.CPU = res.UserCPU + res.SysCPU
		res.MaxRSSMiB = usage.MaxRSSMiB()
	}
	switch {
	case ctx.Err() == context.DeadlineExceeded || usage != nil && usage.Killed:
		return res, fmt.Errorf("%s run %d: killed after %v (metadata at %v, complete at %v); stderr: %s", client, run, limit, metaAt, doneAt, tail.String())
	case werr != nil:
		return res, fmt.Errorf("%s run %d: launcher: %v; stderr: %s", client, run, werr, tail.String())
	case usage == nil:
		return res, fmt.Errorf("%s run %d: launcher reported no rusage; stderr: %s", client, run, tail.String())
	case usage.Exit != 0:
		return res, fmt.Errorf("%s run %d: exit %d %s; stderr: %s", client, run, usage.Exit, usage.Signaled, tail.String())
	case metaAt == 0 || doneAt == 0:
		return res, fmt.Errorf("%s run %d: exited without metadata and complete events; stderr: %s", client, run, tail.String())
	}
	res.Metadata = metaAt.Seconds()
	res.Complete = doneAt.Seconds()
	res.MiBps = sizeMiB / res.Complete
	if d := res.Complete - res.Metadata; d > 0 {
		res.DataMiBps = sizeMiB / d
	}
	return res, nil
}

// take reads what the leecher used from one of its JSON events, and
// keeps the event unless it is a progress line. *completed is set once
// the "complete" event came: peers counted after it are not the
// download's. Our "complete" event names the links that carried the
// data itself, as a fetch that took under a second has no progress
// event, and by then its peers have left.
func (r *runResult) take(ev map[string]any, completed *bool) {
	switch ev["event"] {
	case "complete":
		*completed = true
		for _, k := range []string{"peers", "data_conns"} {
			if n, ok := ev[k].(float64); ok {
				r.Peers = max(r.Peers, int(n))
			}
		}
		if ls, ok := ev["links"].([]any); ok {
			for _, l := range ls {
				if l, ok := l.(string); ok {
					r.addLink(l)
				}
			}
		}
	case "progress":
		if n, ok := ev["peers"].(float64); ok && !*completed {
			r.Peers = max(r.Peers, int(n))
		}
		ps, _ := ev["peer_list"].([]any)
		for _, p := range ps {
			p, _ := p.(map[string]any)
			if d, _ := p["downloaded"].(float64); d > 0 {
				tr, _ := p["transport"].(string)
				enc, _ := p["encryption"].(string)
				r.addLink(tr + "/" + enc)
			}
		}
		return
	}
	r.Events = append(r.Events, ev)
}
