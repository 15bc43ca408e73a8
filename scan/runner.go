package scan

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	// PinnedVersion is the trivy release docker lifecycle is tested with
	// (scripts/build-trivy.sh builds it).
	PinnedVersion = "0.74.0"
	// MinVersion is the oldest trivy whose flags and JSON report the gate relies on.
	MinVersion = "0.50.0"
	// EnvTrivy names the trivy binary to use, before PATH.
	EnvTrivy = "LIFECYCLE_TRIVY"
)

var (
	// ErrScannerMissing: no trivy to run. The gate fails closed.
	ErrScannerMissing = errors.New("no image scanner (trivy) found")
	// ErrScannerFailed: trivy ran but did not produce a report (crash, hang, garbage).
	ErrScannerFailed = errors.New("the image scanner (trivy) failed")
)

// InstallHint says how to get a scanner or go without one; every "missing or failing
// scanner" error ends with it. It offers only what Find accepts: trivy runs as a binary
// on this machine, never from an image on the engine.
const InstallHint = "install trivy v" + PinnedVersion + " (the version docker lifecycle is tested with; " + MinVersion + " or newer works) on PATH " +
	"(https://trivy.dev/latest/getting-started/installation/), or set " + EnvTrivy + " to the path of its binary; " +
	"or run deploy with --skip-scan to deploy without the gate"

// Trivy is a trivy binary whose version was checked.
type Trivy struct {
	Path    string
	Version string // "0.74.0"; "dev" for a build without version stamp
}

// Find returns the trivy binary to run: $LIFECYCLE_TRIVY, else trivy on PATH.
func Find(getenv func(string) string) (string, error) {
	if p := getenv(EnvTrivy); p != "" {
		st, err := os.Stat(p)
		if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return "", fmt.Errorf("%w: %s=%s is not an executable file: %s", ErrScannerMissing, EnvTrivy, p, InstallHint)
		}
		return p, nil
	}
	p, err := exec.LookPath("trivy")
	if err != nil {
		return "", fmt.Errorf("%w: no trivy on PATH and %s is not set: %s", ErrScannerMissing, EnvTrivy, InstallHint)
	}
	return p, nil
}

// Probe runs `trivy version` and checks that the binary is a trivy new enough.
func Probe(ctx context.Context, path string) (Trivy, error) {
	dir, err := os.MkdirTemp("", "lifecycle-trivy-")
	if err != nil {
		return Trivy{}, err
	}
	defer os.RemoveAll(dir)
	stdout, stderr, err := run(ctx, dir, 30*time.Second, path, "version", "--format", "json")
	if err != nil {
		return Trivy{}, fmt.Errorf("%w: %s version: %w%s: %s", ErrScannerFailed, path, err, tail(stderr), InstallHint)
	}
	var v struct{ Version string }
	if err := json.Unmarshal(bytes.TrimSpace(stdout), &v); err != nil || v.Version == "" {
		return Trivy{}, fmt.Errorf("%w: %s does not answer `version --format json` as trivy does (%s): %s", ErrScannerFailed, path, excerpt(stdout), InstallHint)
	}
	return CheckVersion(path, v.Version)
}

// CheckVersion accepts trivy MinVersion or newer, and builds without a version stamp
// ("dev"), which cannot be judged. A scan's report names the trivy that wrote it, so
// the gate checks that instead of paying for a `trivy version` run.
func CheckVersion(path, v string) (Trivy, error) {
	t := Trivy{Path: path, Version: strings.TrimPrefix(v, "v")}
	if parsed, ok := parseVersion(t.Version); ok && less(parsed, mustVersion(MinVersion)) {
		return t, fmt.Errorf("%w: %s is trivy %s, the gate needs %s or newer: %s", ErrScannerFailed, path, t.Version, MinVersion, InstallHint)
	}
	return t, nil
}

// Options are the x-lifecycle.scan settings trivy applies itself, and how trivy reaches
// the image.
type Options struct {
	IgnoreUnfixed bool
	IgnoreFile    string // absolute path, or ""
	Timeout       time.Duration
	// DockerHost, when set, makes trivy read the image from that engine itself
	// (--image-src docker): it exports the image only when its layer cache misses.
	// Unset, the image is an archive file (`docker save`).
	DockerHost string
}

// Args is the trivy command line for image, an archive path or, with DockerHost, an
// image reference. The exit code is 0 whatever trivy finds: the gate judges findings
// from the report, so any other exit status (1 for an error, 2 for a panic, a signal)
// can only mean the scanner failed.
func Args(image string, opts Options) []string {
	args := []string{"image", "--input", image}
	if opts.DockerHost != "" {
		args = []string{"image", "--image-src", "docker", "--docker-host", opts.DockerHost}
	}
	args = append(args, "--format", "json", "--exit-code", "0", "--scanners", "vuln,secret", "--quiet")
	if opts.Timeout > 0 {
		args = append(args, "--timeout", opts.Timeout.String())
	}
	if opts.IgnoreUnfixed {
		args = append(args, "--ignore-unfixed")
	}
	if opts.IgnoreFile != "" {
		args = append(args, "--ignorefile", opts.IgnoreFile)
	}
	if opts.DockerHost != "" {
		args = append(args, image)
	}
	return args
}

// Scan runs trivy (the binary at t.Path) on image — a `docker save` archive, or a
// reference on opts.DockerHost — from dir, a fresh directory of the caller's: trivy
// reads trivy.yaml and .trivyignore from its working directory, and the user's must not
// change the gate behind its back.
func (t Trivy) Scan(ctx context.Context, dir, image string, opts Options) (*Report, error) {
	// trivy's own --timeout comes first and says so; the kill is the backstop for a hang.
	limit := opts.Timeout + min(killGrace, opts.Timeout)
	if opts.Timeout <= 0 {
		limit = 0
	}
	stdout, stderr, err := run(ctx, dir, limit, t.Path, Args(image, opts)...)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, errKilled) {
			err = fmt.Errorf("trivy did not finish within %s (x-lifecycle.scan.timeout) and was stopped; raise the timeout if the image is large", opts.Timeout)
		}
		return nil, fmt.Errorf("%w: %w%s", ErrScannerFailed, err, tail(stderr))
	}
	r, err := ParseReport(stdout)
	if err != nil {
		return nil, fmt.Errorf("%w: %w%s", ErrScannerFailed, err, tail(stderr))
	}
	return r, nil
}

// killGrace is how long past its own --timeout (at most that timeout again) trivy may
// run before it is killed.
var killGrace = 10 * time.Second

// errKilled: the program ran past its time limit and was killed.
var errKilled = errors.New("killed at its time limit")

// run runs the program in dir with the caller's environment, and kills its whole process
// group when ctx ends or limit (if > 0) passes, so a hanging scanner never hangs us.
func run(ctx context.Context, dir string, limit time.Duration, path string, args ...string) (stdout, stderr []byte, err error) {
	runCtx, cancel := ctx, context.CancelFunc(func() {})
	if limit > 0 {
		runCtx, cancel = context.WithTimeout(ctx, limit)
	}
	defer cancel()
	cmd := exec.CommandContext(runCtx, path, args...)
	cmd.Dir = dir
	cmd.Env = scannerEnv(os.Environ())
	setProcessGroup(cmd)
	cmd.WaitDelay = 2 * time.Second
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	switch {
	case err == nil:
		return out.Bytes(), errOut.Bytes(), nil
	case ctx.Err() == nil && runCtx.Err() != nil:
		return out.Bytes(), errOut.Bytes(), fmt.Errorf("%s: %w", filepath.Base(path), errKilled)
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return out.Bytes(), errOut.Bytes(), fmt.Errorf("trivy was killed by signal %s (it crashed)", ws.Signal())
		}
		switch code := exit.ExitCode(); code {
		case 2:
			return out.Bytes(), errOut.Bytes(), fmt.Errorf("trivy exited with code 2 (it panicked)")
		default:
			return out.Bytes(), errOut.Bytes(), fmt.Errorf("trivy exited with code %d", code)
		}
	}
	return out.Bytes(), errOut.Bytes(), fmt.Errorf("run %s: %w", path, err)
}

// scannerEnv is the caller's environment (TRIVY_CACHE_DIR, TRIVY_DB_REPOSITORY,
// TRIVY_OFFLINE_SCAN… keep working) with telemetry and the new-version check off
// unless the user set them: a deploy gate phones home only for the database.
func scannerEnv(env []string) []string {
	out := append([]string(nil), env...)
	for _, kv := range []string{"TRIVY_DISABLE_TELEMETRY=true", "TRIVY_SKIP_VERSION_CHECK=true"} {
		key := kv[:strings.IndexByte(kv, '=')+1]
		if !hasKey(env, key) {
			out = append(out, kv)
		}
	}
	return out
}

func hasKey(env []string, prefix string) bool {
	for _, kv := range env {
		if strings.HasPrefix(kv, prefix) {
			return true
		}
	}
	return false
}

// tail is the last lines of trivy's error output, for error messages.
func tail(stderr []byte) string {
	lines := strings.Split(strings.TrimSpace(strings.ToValidUTF8(string(stderr), "?")), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return ""
	}
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return ":\n    " + strings.Join(lines, "\n    ") + "\n"
}

type version [3]int

func parseVersion(s string) (version, bool) {
	var v version
	s, _, _ = strings.Cut(s, "-")
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return v, false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return v, false
		}
		v[i] = n
	}
	return v, true
}

func mustVersion(s string) version {
	v, ok := parseVersion(s)
	if !ok {
		panic("bad version " + s)
	}
	return v
}

func less(a, b version) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}
