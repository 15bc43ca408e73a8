// Package secrets reads the values of a project's secrets from their sources: a file,
// an environment variable (compose's `file:` and `environment:`), or the output of a
// command (`x-lifecycle: {exec: "pass show db"}` on a top-level secret, for pass, op,
// vault and the like). Values are read only when a deploy delivers them, never for
// plan or config (except on Swarm, where the plan hashes them to name their versions,
// docs/swarm.md), and no error message ever quotes one.
package secrets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
)

// ErrSource marks a secret whose source could not be read.
var ErrSource = errors.New("secret source")

// execTimeout bounds a secret's exec source.
const execTimeout = 30 * time.Second

// Read returns the value of the project's secret name.
func Read(ctx context.Context, p *compose.Project, name string) ([]byte, error) {
	cfg, ok := p.Project.Secrets[name]
	if !ok {
		return nil, fmt.Errorf("%w: secret %q is not defined in the project's top-level secrets", ErrSource, name)
	}
	src, err := compose.SecretSourceOf(name, types.FileObjectConfig(cfg))
	if err != nil {
		return nil, err
	}
	switch src.Kind {
	case compose.SecretFile:
		path := src.Ref
		if !filepath.IsAbs(path) {
			path = filepath.Join(p.WorkingDir, path)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%w: secret %q: read file %s: %w", ErrSource, name, path, pathError(err))
		}
		return b, nil
	case compose.SecretEnvironment:
		v, ok := p.Project.Environment[src.Ref]
		if !ok {
			if v, ok = os.LookupEnv(src.Ref); !ok {
				return nil, fmt.Errorf("%w: secret %q: environment variable %s is not set", ErrSource, name, src.Ref)
			}
		}
		return []byte(v), nil
	case compose.SecretExec:
		return runExec(ctx, p.WorkingDir, name, src.Ref)
	}
	return nil, fmt.Errorf("%w: secret %q: no source", ErrSource, name)
}

// pathError keeps the reason of a file error without repeating the path.
func pathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func runExec(ctx context.Context, dir, name, command string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, execTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", command)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		return nil, fmt.Errorf("%w: secret %q: exec %q did not finish within %s", ErrSource, name, command, execTimeout)
	case err != nil:
		// stderr is the command's own diagnostics; stdout (the value) is never shown.
		return nil, fmt.Errorf("%w: secret %q: exec %q failed: %w: %s", ErrSource, name, command, err, firstLine(stderr.String()))
	case len(bytes.TrimSpace(stdout.Bytes())) == 0:
		return nil, fmt.Errorf("%w: secret %q: exec %q printed nothing", ErrSource, name, command)
	}
	// One trailing newline is the command's, not the secret's (as `pass show` prints).
	return bytes.TrimSuffix(stdout.Bytes(), []byte("\n")), nil
}

func firstLine(s string) string {
	if i := bytes.IndexByte([]byte(s), '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
