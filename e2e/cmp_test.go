package e2e

import (
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// sortedCmp compares string slices ignoring order.
func sortedCmp() cmp.Option {
	return cmpopts.SortSlices(func(a, b string) bool { return a < b })
}
