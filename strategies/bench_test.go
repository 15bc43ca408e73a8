package strategies

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/internal/benchgen"
)

func benchProject(b *testing.B, n int) compose.LoadOptions {
	b.Helper()
	dir := b.TempDir()
	file := filepath.Join(dir, "compose.yaml")
	if err := os.WriteFile(file, []byte(benchgen.Compose(n, benchgen.Options{})), 0o644); err != nil {
		b.Fatal(err)
	}
	return compose.LoadOptions{WorkingDir: dir, ConfigFiles: []string{file}}
}

// emptyObserved is a fresh engine: nothing deployed, only the image present (without
// it, planning stops at ErrImageMissing).
func emptyObserved() Observed {
	return Observed{Networks: map[string]bool{}, Volumes: map[string]bool{},
		ImageIDs: map[string]string{"lifecycle-demo:v1": "sha256:0123456789abcdef0123456789abcdef"}}
}

// BenchmarkPlan100Services is the CPU side of `docker lifecycle plan` on the generated
// 100-service project, without the engine: load, ConfigHash of every service, and the
// recreate strategy's plan for a fresh engine.
func BenchmarkPlan100Services(b *testing.B) {
	opts := benchProject(b, 100)
	ctx := context.Background()
	b.ReportAllocs()
	var steps int
	for b.Loop() {
		p, err := compose.Load(ctx, opts)
		if err != nil {
			b.Fatal(err)
		}
		for _, name := range p.ServiceNames() {
			if _, err := compose.ConfigHash(p, name); err != nil {
				b.Fatal(err)
			}
		}
		plan, err := MakePlan(desire(b, p), emptyObserved(), Options{})
		if err != nil {
			b.Fatal(err)
		}
		steps = len(plan.Steps)
	}
	b.ReportMetric(float64(steps), "steps")
}

// BenchmarkDeployOnly100Services is strategies.MakePlan alone on the loaded project.
func BenchmarkDeployOnly100Services(b *testing.B) {
	p, err := compose.Load(context.Background(), benchProject(b, 100))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := MakePlan(desire(b, p), emptyObserved(), Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
