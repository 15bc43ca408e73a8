package alerting

import "time"

// Window keeps the samples of a cumulative value (a counter, or a vector of them) over
// a sliding span, so a rule can read the increase over its window.
type Window[T any] struct {
	Span   time.Duration
	points []point[T]
}

type point[T any] struct {
	t time.Time
	v T
}

// Add records the value at t (times must not go back).
func (w *Window[T]) Add(t time.Time, v T) {
	w.points = append(w.points, point[T]{t, v})
	// Keep one point at or before t-Span (the base), drop the older ones.
	cut := t.Add(-w.Span)
	i := 0
	for i+1 < len(w.points) && !w.points[i+1].t.After(cut) {
		i++
	}
	w.points = w.points[i:]
}

// Ends returns the base (the newest sample at or before the window's start, else the
// oldest kept: the window is not full yet) and the latest sample; ok is false before
// the first Add.
func (w *Window[T]) Ends() (base, latest T, ok bool) {
	if len(w.points) == 0 {
		return base, latest, false
	}
	return w.points[0].v, w.points[len(w.points)-1].v, true
}

// Increase is latest − base of a counter; a counter that went back (its source
// restarted) counts from zero: latest.
func Increase(base, latest uint64) uint64 {
	if latest < base {
		return latest
	}
	return latest - base
}
