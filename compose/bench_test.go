package compose

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/docker-lifecycle/docker-lifecycle/internal/benchgen"
)

// writeBenchProject writes the generated n-service project (see internal/benchgen) into
// a temp dir and returns the load options for it.
func writeBenchProject(b *testing.B, n int) LoadOptions {
	b.Helper()
	dir := b.TempDir()
	file := filepath.Join(dir, "compose.yaml")
	if err := os.WriteFile(file, []byte(benchgen.Compose(n, benchgen.Options{})), 0o644); err != nil {
		b.Fatal(err)
	}
	return LoadOptions{WorkingDir: dir, ConfigFiles: []string{file}}
}

// BenchmarkLoad100Services is the load half of `docker lifecycle plan` on a 100-service
// project: compose-go parsing, interpolation, normalization and validation, then our
// x-lifecycle decoding, supported-key checks and the file locator's second YAML parse.
func BenchmarkLoad100Services(b *testing.B) {
	opts := writeBenchProject(b, 100)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(ctx, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConfigHash100Services hashes every service of the loaded project once per
// iteration, as planning does.
func BenchmarkConfigHash100Services(b *testing.B) {
	p, err := Load(context.Background(), writeBenchProject(b, 100))
	if err != nil {
		b.Fatal(err)
	}
	names := p.ServiceNames()
	b.ReportAllocs()
	for b.Loop() {
		for _, name := range names {
			if _, err := ConfigHash(p, name); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkContainer100Services converts every replica-1 container of the project into
// engine create options, as a fresh deploy does.
func BenchmarkContainer100Services(b *testing.B) {
	p, err := Load(context.Background(), writeBenchProject(b, 100))
	if err != nil {
		b.Fatal(err)
	}
	names := p.ServiceNames()
	b.ReportAllocs()
	for b.Loop() {
		for _, name := range names {
			if _, err := Container(p, name, ReplicaLabels{Number: 1, Revision: 1, ConfigHash: "h", ImageID: "sha256:x"}); err != nil {
				b.Fatal(err)
			}
		}
	}
}
