package modulepatch

// jsonschemaLazyDrafts makes jsonschema compile each draft's meta-schema the first time
// a schema of that draft is checked against it (compose-go compiles the compose-spec
// schema, a 2020-12 one, on its first load), instead of all five drafts in the package's
// init, which every process paid: about 7 ms and 21,000 allocations before main, for
// `docker lifecycle version` too (docs/benchmarks.md, section 28).
//
// The compiled vocabularies move to a map of their own (metaVocabs), written once inside
// the draft's sync.Once: allVocabs, whose keys getVocabs reads on any goroutine, is no
// longer written after init, so a lazy write cannot race with those reads.
var jsonschemaLazyDrafts = Patch{
	Module: "github.com/santhosh-tekuri/jsonschema/v6",
	Dir:    "jsonschema",
	File:   "draft.go",
	Apply: func(src []byte) ([]byte, error) {
		s, err := replaceOnce(string(src),
			upstreamDraftImports, lazyDraftImports,
			upstreamDraftFieldsEnd, lazyDraftFieldsEnd,
			upstreamDraftInit, lazyDraftCompile,
			upstreamGetSchemaStart, lazyGetSchemaStart,
			"sch := d.draft.allVocabs[vocab]", "sch := d.draft.metaVocabs[vocab]",
			`sch := d.draft.allVocabs["core"]`, `sch := d.draft.metaVocabs["core"]`,
		)
		return []byte(s), err
	},
}

// The texts below are jsonschema v6.0.3's draft.go, each followed by its replacement.

const upstreamDraftImports = `import (
	"fmt"
	"slices"
	"strings"
)`

const lazyDraftImports = `import (
	"fmt"
	"slices"
	"strings"
	"sync"
)`

const upstreamDraftFieldsEnd = `	defaultVocabs []string           // names of default vocabs
}`

const lazyDraftFieldsEnd = `	defaultVocabs []string           // names of default vocabs

	// Patched (docker lifecycle's internal/modulepatch): sch and metaVocabs are compiled
	// by compileMeta on first use, not in init.
	metaOnce   sync.Once
	metaVocabs map[string]*Schema // compiled vocabularies by name; allVocabs keeps the names
}`

const upstreamDraftInit = `func init() {
	c := NewCompiler()
	c.AssertFormat()
	for _, d := range []*Draft{Draft4, Draft6, Draft7, Draft2019, Draft2020} {
		d.sch = c.MustCompile(d.url)
		for name := range d.allVocabs {
			d.allVocabs[name] = c.MustCompile(strings.TrimSuffix(d.url, "schema") + "meta/" + name)
		}
	}
}`

const lazyDraftCompile = `// compileMeta compiles the draft's meta-schema and its vocabularies, once, the first
// time a schema of the draft is checked against them (patched: this was init's work,
// for all five drafts, in every process that imports the package).
func (d *Draft) compileMeta() {
	d.metaOnce.Do(func() {
		c := NewCompiler()
		c.AssertFormat()
		d.sch = c.MustCompile(d.url)
		d.metaVocabs = make(map[string]*Schema, len(d.allVocabs))
		for name := range d.allVocabs {
			d.metaVocabs[name] = c.MustCompile(strings.TrimSuffix(d.url, "schema") + "meta/" + name)
		}
	})
}`

const upstreamGetSchemaStart = `func (d *dialect) getSchema(assertVocabs bool, vocabularies map[string]*Vocabulary) *Schema {
	vocabs := d.activeVocabs(assertVocabs, vocabularies)`

const lazyGetSchemaStart = `func (d *dialect) getSchema(assertVocabs bool, vocabularies map[string]*Vocabulary) *Schema {
	d.draft.compileMeta()
	vocabs := d.activeVocabs(assertVocabs, vocabularies)`
