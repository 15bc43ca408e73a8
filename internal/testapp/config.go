package main

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

const (
	defaultVersion = "v1"
	defaultPort    = 8080
	crashExitCode  = 3
)

// config is the behaviour of the test app, read once from the environment at
// start (see the package documentation for each variable).
type config struct {
	version      string
	port         int
	readyAfter   time.Duration
	neverHealthy bool
	// unhealthyAfter > 0 turns /healthz to 503 this long after start: a
	// container that passes its health gate and fails later.
	unhealthyAfter time.Duration
	ignoreSIGTERM  bool
	drain          time.Duration
	slow           time.Duration
	errorRate      float64
	memoryHog      bool
	quiet          bool
	// logSeqEvery > 0 prints a JSON line {"level":"info","seq":N} every interval,
	// N counting from 1, until the process exits: logs can be checked for gaps and
	// duplicates per container.
	logSeqEvery time.Duration
	// logHistoryMiB > 0 first writes that many MiB of sequence-numbered JSON lines (of
	// about 200 bytes) as fast as the engine takes them: a long log history to read
	// (scripts/bench-logs-history.sh).
	logHistoryMiB int
	// greetPort and framePort, when set, serve the non-HTTP protocols of lineproto.go.
	greetPort int
	framePort int

	// countDir and faultFreeFirst let the containers of one service behave
	// differently although they share their environment: each container
	// numbers itself once in countDir (a directory they all mount), and the
	// first faultFreeFirst containers run without the faults (withoutFaults).
	countDir       string
	faultFreeFirst int

	// scheduledExits holds the exits asked for by CRASH_AFTER and
	// EXIT_AFTER/EXIT_CODE; the earliest one wins.
	scheduledExits []scheduledExit
}

// scheduledExit makes the process end by itself, without a signal: a crash,
// or a one-shot job that is done.
type scheduledExit struct {
	after   time.Duration
	code    int
	message string // logged just before exiting
	fault   bool   // a crash (CRASH_AFTER), as opposed to a job that is done
}

// parseConfig reads the configuration through getenv (os.Getenv outside
// tests). An empty variable counts as unset. All invalid variables are
// reported together, one per line, each naming its variable.
func parseConfig(getenv func(string) string) (config, error) {
	env := envReader{getenv: getenv}
	cfg := config{
		version:        versionFromEnv(getenv),
		port:           env.port(),
		readyAfter:     env.duration("READY_AFTER"),
		neverHealthy:   env.boolean("NEVER_HEALTHY"),
		unhealthyAfter: env.duration("UNHEALTHY_AFTER"),
		ignoreSIGTERM:  env.boolean("IGNORE_SIGTERM"),
		drain:          env.duration("DRAIN"),
		slow:           env.duration("SLOW"),
		errorRate:      env.fraction("ERROR_RATE"),
		memoryHog:      env.boolean("MEMORY_HOG"),
		quiet:          env.boolean("QUIET"),
		logSeqEvery:    env.duration("LOG_SEQ_EVERY"),
		countDir:       getenv("COUNT_DIR"),
	}
	cfg.greetPort, _ = env.intInRange("GREET_PORT", 1, 65535)
	cfg.logHistoryMiB, _ = env.intInRange("LOG_HISTORY_MIB", 1, 1<<20)
	cfg.framePort, _ = env.intInRange("FRAME_PORT", 1, 65535)
	if n, ok := env.intInRange("FAULT_FREE_FIRST", 0, math.MaxInt32); ok {
		if cfg.countDir == "" {
			env.invalid("FAULT_FREE_FIRST", getenv("FAULT_FREE_FIRST"), "COUNT_DIR too (the directory where containers are counted)")
		}
		cfg.faultFreeFirst = n
	}

	if after, ok := env.optionalDuration("CRASH_AFTER"); ok {
		cfg.scheduledExits = append(cfg.scheduledExits, scheduledExit{
			after:   after,
			code:    crashExitCode,
			message: fmt.Sprintf("crashing: CRASH_AFTER=%s has passed, exiting with code %d", after, crashExitCode),
			fault:   true,
		})
	}
	exitAfter, hasExitAfter := env.optionalDuration("EXIT_AFTER")
	exitCode, hasExitCode := env.intInRange("EXIT_CODE", 0, 255)
	if hasExitAfter || hasExitCode {
		cfg.scheduledExits = append(cfg.scheduledExits, scheduledExit{
			after:   exitAfter,
			code:    exitCode,
			message: fmt.Sprintf("done: EXIT_AFTER=%s has passed, exiting with code %d", exitAfter, exitCode),
		})
	}

	return cfg, errors.Join(env.errs...)
}

// withoutFaults is the configuration of a container that FAULT_FREE_FIRST exempts:
// no NEVER_HEALTHY, UNHEALTHY_AFTER or CRASH_AFTER; everything else stays.
func (c config) withoutFaults() config {
	c.neverHealthy = false
	c.unhealthyAfter = 0
	var exits []scheduledExit
	for _, e := range c.scheduledExits {
		if !e.fault {
			exits = append(exits, e)
		}
	}
	c.scheduledExits = exits
	return c
}

// countContainer numbers this container (id: its hostname) in COUNT_DIR and
// returns the configuration it runs with: without faults among the first
// FAULT_FREE_FIRST containers.
func countContainer(cfg config, id string) (config, int, error) {
	n, err := claimNumber(cfg.countDir, id)
	if err != nil {
		return cfg, 0, err
	}
	if n <= cfg.faultFreeFirst {
		cfg = cfg.withoutFaults()
	}
	return cfg, n, nil
}

// claimNumber gives id the lowest free number in dir, by creating
// dir/container-N holding id (O_EXCL makes the claim atomic between containers
// sharing the directory), and returns it (from 1). An id that already has a
// number keeps it: a restarted container is the same container, and must not
// turn faulty because it started twice.
func claimNumber(dir, id string) (int, error) {
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return 0, fmt.Errorf("COUNT_DIR=%q: %w", dir, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("COUNT_DIR=%q: %w", dir, err)
	}
	for _, e := range entries {
		var n int
		if _, err := fmt.Sscanf(e.Name(), "container-%d", &n); err != nil {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(dir, e.Name())); err == nil && string(b) == id {
			return n, nil
		}
	}
	for n := 1; ; n++ {
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("container-%d", n)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o666)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("COUNT_DIR=%q: %w", dir, err)
		}
		_, err = f.WriteString(id)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return 0, fmt.Errorf("COUNT_DIR=%q: %w", dir, err)
		}
		return n, nil
	}
}

// versionFromEnv is shared with the version subcommand, which must work even
// when other variables are invalid.
func versionFromEnv(getenv func(string) string) string {
	if version := getenv("VERSION"); version != "" {
		return version
	}
	return defaultVersion
}

// envReader parses environment variables, collecting one error per invalid
// variable instead of stopping at the first.
type envReader struct {
	getenv func(string) string
	errs   []error
}

func (e *envReader) invalid(name, value, want string) {
	e.errs = append(e.errs, fmt.Errorf("%s=%q: want %s", name, value, want))
}

// port reads PORT; the healthcheck subcommand needs it alone.
func (e *envReader) port() int {
	if port, ok := e.intInRange("PORT", 1, 65535); ok {
		return port
	}
	return defaultPort
}

// duration reads a duration that defaults to 0 when unset.
func (e *envReader) duration(name string) time.Duration {
	d, _ := e.optionalDuration(name)
	return d
}

// optionalDuration reads a duration and reports whether it was set, for
// variables where "unset" and "0s" differ (CRASH_AFTER=0s crashes at once).
func (e *envReader) optionalDuration(name string) (time.Duration, bool) {
	value := e.getenv(name)
	if value == "" {
		return 0, false
	}
	d, err := time.ParseDuration(value)
	if err != nil || d < 0 {
		e.invalid(name, value, "a non-negative Go duration such as 500ms, 10s or 1m30s")
		return 0, false
	}
	return d, true
}

func (e *envReader) boolean(name string) bool {
	value := e.getenv(name)
	if value == "" {
		return false
	}
	b, err := strconv.ParseBool(value)
	if err != nil {
		e.invalid(name, value, "1 or 0 (or true or false)")
		return false
	}
	return b
}

// intInRange reads an integer in [low, high] and reports whether it was set.
func (e *envReader) intInRange(name string, low, high int) (int, bool) {
	value := e.getenv(name)
	if value == "" {
		return 0, false
	}
	n, err := strconv.Atoi(value)
	if err != nil || n < low || n > high {
		e.invalid(name, value, fmt.Sprintf("an integer from %d to %d", low, high))
		return 0, false
	}
	return n, true
}

// fraction reads a number in [0, 1] that defaults to 0 when unset.
func (e *envReader) fraction(name string) float64 {
	value := e.getenv(name)
	if value == "" {
		return 0
	}
	f, err := strconv.ParseFloat(value, 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > 1 {
		e.invalid(name, value, "a number from 0 to 1, such as 0.2")
		return 0
	}
	return f
}
