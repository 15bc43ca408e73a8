package segments

import (
	"fmt"
	"net/netip"
	"sort"
)

// DefaultPool and DefaultSize are where segment subnets come from when the project sets
// no x-lifecycle.network.pool / size: /28 subnets (13 containers each) of a /16 that
// the engine's default address pools do not use.
const (
	DefaultPool = "10.213.0.0/16"
	DefaultSize = 28
)

// Allocate gives each network in names a subnet of the given size from pool,
// deterministically: names are taken in sorted order and each gets the lowest free
// subnet. A network that exists on the engine keeps the subnet it has (existing), and
// no subnet overlapping one in use (used: every engine network's subnets) is given.
func Allocate(names []string, pool netip.Prefix, size int, used []netip.Prefix, existing map[string]netip.Prefix) (map[string]netip.Prefix, error) {
	pool = pool.Masked()
	if !pool.Addr().Is4() {
		return nil, fmt.Errorf("subnet pool %s: only IPv4 pools are supported", pool)
	}
	if pool.Bits() < 8 {
		return nil, fmt.Errorf("subnet pool %s is too large: use a /8 or smaller range", pool)
	}
	if size < pool.Bits() || size > 30 {
		return nil, fmt.Errorf("subnet size /%d does not fit pool %s (want /%d to /30)", size, pool, pool.Bits())
	}
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	out := map[string]netip.Prefix{}
	taken := append([]netip.Prefix(nil), used...)
	next := netip.PrefixFrom(pool.Addr(), size)
	step := uint32(1) << (32 - size)
	for _, name := range sorted {
		if p, ok := existing[name]; ok && p.IsValid() {
			out[name] = p
			continue
		}
		for {
			if !pool.Contains(next.Addr()) {
				return nil, fmt.Errorf("subnet pool %s is exhausted: %d networks need /%d subnets and the engine uses part of the pool; set x-lifecycle.network.pool to a larger or other range",
					pool, len(names), size)
			}
			candidate := next
			a := candidate.Addr().As4()
			v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
			v += step
			next = netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), size)
			if v == 0 { // wrapped past 255.255.255.255
				next = netip.PrefixFrom(netip.AddrFrom4([4]byte{}), 0)
			}
			if !overlapsAny(candidate, taken) {
				out[name] = candidate
				taken = append(taken, candidate)
				break
			}
		}
	}
	return out, nil
}

func overlapsAny(p netip.Prefix, list []netip.Prefix) bool {
	for _, q := range list {
		if q.IsValid() && p.Overlaps(q) {
			return true
		}
	}
	return false
}
