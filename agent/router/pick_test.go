package router

import (
	"testing"

	"gotest.tools/v3/assert"
)

func TestSmoothScheduleIsNginxOrder(t *testing.T) {
	// nginx's documented example: weights 5, 1, 1 give a a b a c a a.
	assert.DeepEqual(t, smoothSchedule([]int{5, 1, 1}), []uint32{0, 0, 1, 0, 2, 0, 0})
	// Common factors are reduced: 90/10 is a 10-step cycle with b in the middle.
	assert.DeepEqual(t, smoothSchedule([]int{90, 10}), []uint32{0, 0, 0, 0, 0, 1, 0, 0, 0, 0})
	assert.Equal(t, len(smoothSchedule(nil)), 0)
}

func TestSmoothScheduleCapsLength(t *testing.T) {
	order := smoothSchedule([]int{9999, 1, 7})
	assert.Assert(t, len(order) <= maxScheduleLen+2, "%d", len(order))
	counts := make([]int, 3)
	for _, i := range order {
		counts[i]++
	}
	assert.Assert(t, counts[1] >= 1 && counts[2] >= 1, "%v", counts)
}

func testBackends(n int) []*backend {
	r := New(Options{})
	out := make([]*backend, n)
	for i := range out {
		out[i] = newBackend(r, Backend{ID: string(rune('a' + i)), Address: "x:1"})
	}
	return out
}

func TestPickSkipsDownBackendsAndFailsOpen(t *testing.T) {
	bs := testBackends(3)
	p := newPicker(bs, []int{1, 1, 0})
	assert.Equal(t, len(p.backends), 2, "weight 0 is not eligible")
	counts := map[*backend]int{}
	for range 10 {
		counts[p.pick(0, nil)]++
	}
	assert.Equal(t, counts[bs[0]], 5)
	assert.Equal(t, counts[bs[1]], 5)

	bs[0].downUntil.Store(100)
	for range 4 {
		assert.Equal(t, p.pick(50, nil), bs[1])
	}
	assert.Equal(t, p.pick(50, bs[1:2]), bs[0], "all others down: fail open")
	bs[1].activeDown.Store(true)
	assert.Equal(t, p.pick(50, bs[:1]), (*backend)(nil), "an active failure is not failed open")
	assert.Equal(t, p.pick(200, nil), bs[0], "the passive mark expired")
	assert.Equal(t, newPicker(nil, nil).pick(0, nil), (*backend)(nil))
}
