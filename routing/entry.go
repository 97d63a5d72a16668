package routing

import (
	"strconv"
	"time"
)

// K is the bucket size of BEP 5.
const K = 8

// Timings (BEP 5).
const (
	QuestionableAfter = 15 * time.Minute // a node silent this long is questionable
	RefreshAfter      = 15 * time.Minute // a bucket unchanged this long needs a refresh
)

// defaultMaxFailures tolerates one lost UDP packet before a node is declared
// bad.
const defaultMaxFailures = 2

// State is how much the table trusts a node at a given time.
type State int

const (
	Good State = iota
	Questionable
	Bad
)

func (s State) String() string {
	switch s {
	case Good:
		return "good"
	case Questionable:
		return "questionable"
	case Bad:
		return "bad"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Entry is a contact with the bookkeeping the table keeps about it.
type Entry struct {
	Contact
	LastResponse time.Time // last time it answered one of our queries (zero: never)
	LastQuery    time.Time // last time it sent us a query
	Failures     int       // consecutive failed queries
}

// State classifies e at now. maxFailures <= 0 means the default (2).
// Failures take precedence: a node that stopped answering is bad even if it
// keeps querying us, since it is useless for lookups.
func (e Entry) State(now time.Time, maxFailures int) State {
	if maxFailures <= 0 {
		maxFailures = defaultMaxFailures
	}
	if e.Failures >= maxFailures {
		return Bad
	}
	if e.LastResponse.IsZero() {
		// Only a node that has proven it answers can be good; incoming
		// queries alone are cheap to forge.
		return Questionable
	}
	if now.Sub(e.LastResponse) < QuestionableAfter {
		return Good
	}
	if !e.LastQuery.IsZero() && now.Sub(e.LastQuery) < QuestionableAfter {
		return Good
	}
	return Questionable
}
