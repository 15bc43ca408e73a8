package modulepatch

// The function below is compiled and tested here, and its source text is what Apply
// writes into compose-go's tree/path.go: the bytes that ship are the bytes tested.
// Path, pathSeparator and PathMatchAll mirror compose-go's tree package so the text
// compiles unchanged in both places.

// Path mirrors compose-go's tree.Path.
type Path string

const (
	pathSeparator = "."
	// PathMatchAll mirrors compose-go's tree.PathMatchAll.
	PathMatchAll = "*"
)

// Matches walks the path and the pattern segment by segment without allocating;
// compose-go's original splits both strings on every call, and the loader calls it once
// per value of the file per pattern of its tables.
func (p Path) Matches(pattern Path) bool {
	ps, qs := string(p), string(pattern)
	i, j := 0, 0
	for {
		qe := j
		for qe < len(qs) && qs[qe] != pathSeparator[0] {
			qe++
		}
		pe := i
		if seg := qs[j:qe]; seg == PathMatchAll {
			for pe < len(ps) && ps[pe] != pathSeparator[0] {
				pe++
			}
		} else {
			pe = i + len(seg)
			if pe > len(ps) || ps[i:pe] != seg || (pe < len(ps) && ps[pe] != pathSeparator[0]) {
				return false
			}
		}
		if qe == len(qs) || pe == len(ps) {
			return qe == len(qs) && pe == len(ps)
		}
		i, j = pe+1, qe+1
	}
}
