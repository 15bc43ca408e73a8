package router

import "sync/atomic"

// MaxWeight bounds a backend's weight; weights are relative, so 0..MaxWeight is plenty
// for percentages with a decimal or two.
const MaxWeight = 10000

// maxScheduleLen caps the precomputed schedule: larger weight sums are scaled down
// (keeping every non-zero weight at least 1), which costs at most ~0.1 % precision.
const maxScheduleLen = 1024

// picker chooses backends by smooth weighted round-robin (the nginx algorithm). The
// order is precomputed once per routing table, so picking is one atomic add and a
// slice index: no lock on the request path, and the split is exact over each cycle
// (90/10 gives exactly 9:1 every 10 picks, interleaved rather than bursty).
type picker struct {
	backends []*backend // eligible: weight > 0 and not failing an active check
	order    []uint32   // indexes into backends, one cycle of the schedule
	next     atomic.Uint64
}

func newPicker(backends []*backend, weights []int) *picker {
	p := &picker{}
	var ws []int
	for i, b := range backends {
		if weights[i] > 0 {
			p.backends = append(p.backends, b)
			ws = append(ws, weights[i])
		}
	}
	p.order = smoothSchedule(ws)
	return p
}

// smoothSchedule returns one cycle of nginx's smooth weighted round-robin over weights
// (all > 0): each step every entry gains its weight, the largest current value wins
// (first on ties) and pays back the total.
func smoothSchedule(weights []int) []uint32 {
	if len(weights) == 0 {
		return nil
	}
	g := 0
	for _, w := range weights {
		g = gcd(g, w)
	}
	total := 0
	reduced := make([]int, len(weights))
	for i, w := range weights {
		reduced[i] = w / g
		total += reduced[i]
	}
	if total > maxScheduleLen {
		scaled := 0
		for i, w := range reduced {
			reduced[i] = max(1, w*maxScheduleLen/total)
			scaled += reduced[i]
		}
		total = scaled
	}
	order := make([]uint32, total)
	current := make([]int, len(reduced))
	for step := range order {
		best := 0
		for i, w := range reduced {
			current[i] += w
			if current[i] > current[best] {
				best = i
			}
		}
		current[best] -= total
		order[step] = uint32(best)
	}
	return order
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// pick returns the next backend in the schedule that is usable at now (nanoseconds on
// the router clock) and is not in exclude (the backends a request already failed on). Backends marked down by a passive check are
// skipped; their share flows to the next entries of the cycle. If every eligible
// backend is marked down, pick fails open and ignores the passive marks: they are a
// guess from one failed dial, and a 503 for everyone is worse than one more try.
func (p *picker) pick(now int64, exclude []*backend) *backend {
	n := uint64(len(p.order))
	if n == 0 {
		return nil
	}
	start := (p.next.Add(1) - 1) % n
	i := start
	for range n {
		if b := p.backends[p.order[i]]; b.usable(now) && !excluded(exclude, b) {
			return b
		}
		if i++; i == n {
			i = 0
		}
	}
	for _, b := range p.backends {
		if !b.activeDown.Load() && !excluded(exclude, b) {
			return b
		}
	}
	return nil
}

// excluded reports whether b is in exclude (at most a few entries: no map).
func excluded(exclude []*backend, b *backend) bool {
	for _, e := range exclude {
		if e == b {
			return true
		}
	}
	return false
}
