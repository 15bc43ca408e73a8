// Package modulepatch carries small, reviewed changes to two modules the compose loader
// is built on, until their upstreams release them:
//
//   - compose-go (composego.go): tree.Path.Matches without allocating. compose-go's
//     loader calls Matches once per value of a compose file per pattern of its tables;
//     the original splits both strings on every call, which made more than half of the
//     load of a 100-service file (docs/benchmarks.md, section 2b).
//   - jsonschema, compose-go's schema validator (jsonschema.go): the meta-schemas of the
//     five JSON-schema drafts compiled on first use instead of in the package's init,
//     which every process paid (about 7 ms, a quarter of `docker lifecycle version`)
//     although most commands never validate a schema (docs/benchmarks.md, section 28).
//
// `make` builds against copies of the modules from the Go module cache with these
// changes applied, through a generated Go workspace (build/modulepatch/go.work). Each
// change replaces an exact upstream text and refuses a file that no longer holds it, so a
// dependency upgrade stops the build until the change is reviewed. A plain `go build`
// without the workspace builds the unpatched modules: the same results, slower.
package modulepatch
