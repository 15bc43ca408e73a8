package compose

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"runtime/debug"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v4"
)

// LoadOptions are the compose flags every command shares.
type LoadOptions struct {
	ConfigFiles []string // -f; empty: compose.yaml (and friends) in WorkingDir, or COMPOSE_FILE
	ProjectName string   // -p; empty: name:, COMPOSE_PROJECT_NAME, or the directory name
	Profiles    []string // --profile; empty: COMPOSE_PROFILES
	EnvFiles    []string // --env-file; empty: .env in the project directory
	WorkingDir  string   // --project-directory
	// KeepRefused loads a file whose services set keys docker lifecycle refuses (each
	// problem then is in Project.Refused, not an error), so lint can judge a file that
	// deploy would refuse.
	KeepRefused bool
}

// Project is a loaded compose project with its resolved x-lifecycle settings.
type Project struct {
	*types.Project
	Spec ProjectSpec
	// ServiceSpecs holds each service's resolved x-lifecycle block, by service name.
	ServiceSpecs map[string]ServiceSpec
	// Refused lists the refused keys of a project loaded with KeepRefused.
	Refused []error
}

// Load reads the compose files the way `docker compose` does and decodes x-lifecycle
// strictly: unknown keys and bad values are errors naming the file, service and key.
func Load(ctx context.Context, opts LoadOptions) (*Project, error) {
	defer relaxGC()()
	po, err := cli.NewProjectOptions(opts.ConfigFiles,
		cli.WithWorkingDirectory(opts.WorkingDir),
		cli.WithOsEnv,
		cli.WithEnvFiles(opts.EnvFiles...),
		cli.WithDotEnv,
		cli.WithConfigFileEnv,
		cli.WithDefaultConfigPath,
		cli.WithName(opts.ProjectName),
		cli.WithDefaultProfiles(opts.Profiles...),
	)
	if err != nil {
		return nil, fmt.Errorf("compose options: %w", err)
	}
	tp, err := po.LoadProject(ctx)
	if err != nil {
		return nil, loadError(po.ConfigPaths, err)
	}
	return fromTypes(tp, opts.KeepRefused)
}

// relaxGC lets the heap grow to 5× its live size while a project loads, and returns the
// function that restores the previous setting. compose-go's passes over the tree leave
// about 18 MB of short-lived garbage for a 100-service file on a heap that starts
// nearly empty, so at the default GOGC the collector runs cycle after cycle over data
// that is about to die: measured, 400 cuts the CPU of `config` on that file by a third
// (docs/benchmarks.md, section 2b). Scoped to the load, so a long-running command
// (monitor, guard) keeps the default afterwards; a GOGC set by the user is left alone.
func relaxGC() (restore func()) {
	if os.Getenv("GOGC") != "" {
		return func() {}
	}
	previous := debug.SetGCPercent(400)
	return func() { debug.SetGCPercent(previous) }
}

// falseSchema matches compose-go's schema error for a key the compose schema does not
// allow, e.g. "validating /p/compose.yaml: services.web.imagee false schema".
var falseSchema = regexp.MustCompile(`validating (.+): (\S+) false schema`)

// loadError adds what compose-go's errors leave out: the hint when no compose file was
// found, ErrDependencyCycle on its depends_on cycle error (compose-go finds cycles
// before checkDependencies can), a readable unknown-key message, and the file names
// (compose-go names the file only for some errors).
func loadError(files []string, err error) error {
	msg := err.Error()
	switch {
	case len(files) == 0:
		return fmt.Errorf("load compose project: %w (run in a directory with a compose.yaml or pass -f)", err)
	case strings.HasPrefix(msg, "dependency cycle detected: "):
		return fmt.Errorf("load compose project: %w: %s", ErrDependencyCycle, strings.TrimPrefix(msg, "dependency cycle detected: "))
	case falseSchema.MatchString(msg):
		m := falseSchema.FindStringSubmatch(msg)
		path, key := m[2], m[2]
		if i := strings.LastIndex(path, "."); i >= 0 {
			path, key = path[:i], path[i+1:]
		}
		return fmt.Errorf("load compose project: %s: unknown compose key %q under %s: check its spelling against the compose specification", m[1], key, path)
	case strings.HasPrefix(msg, "yaml: "):
		for _, f := range files {
			var tree any
			if b, rerr := os.ReadFile(f); rerr == nil && yaml.Unmarshal(b, &tree) != nil {
				return fmt.Errorf("load compose project: %s: %w", f, err)
			}
		}
	}
	for _, f := range files {
		if strings.Contains(msg, f) {
			return fmt.Errorf("load compose project: %w", err)
		}
	}
	return fmt.Errorf("load compose project: %s: %w", strings.Join(files, ", "), err)
}

// fromTypes validates a compose-go project and resolves its x-lifecycle settings.
func fromTypes(tp *types.Project, keepRefused bool) (*Project, error) {
	p := &Project{Project: tp, ServiceSpecs: map[string]ServiceSpec{}}
	files := newFileLocator(tp.ComposeFiles)

	spec, err := DecodeProjectSpec(tp.Extensions[ExtensionKey])
	if err != nil {
		return nil, fmt.Errorf("%s: top-level %w: %w", files.find(ExtensionKey), ErrInvalidSpec, err)
	}
	p.Spec = spec

	awaitedCompletion := map[string]bool{}
	for _, svc := range tp.Services {
		for dep, d := range svc.DependsOn {
			if d.Condition == types.ServiceConditionCompletedSuccessfully {
				awaitedCompletion[dep] = true
			}
		}
	}
	// Every service's problems are collected, so one run names all a file needs changed.
	var problems []error
	for _, name := range sortedServiceNames(tp) {
		svc := tp.Services[name]
		s, err := DecodeServiceSpec(svc.Extensions[ExtensionKey], spec)
		if err != nil {
			problems = append(problems, fmt.Errorf("%s: service %q: %w: %w", files.find("services", name, ExtensionKey), name, ErrInvalidSpec, err))
			continue
		}
		refused := false
		for _, err := range checkSupported(tp, svc) {
			err = fmt.Errorf("%s: service %q: %w", files.find("services", name), name, err)
			if keepRefused && errors.Is(err, ErrUnsupported) {
				p.Refused = append(p.Refused, err)
				continue
			}
			problems = append(problems, err)
			refused = true
		}
		if refused {
			continue
		}
		if err := resolveRollout(svc, &s, spec.Strategy, awaitedCompletion[name]); err != nil {
			problems = append(problems, fmt.Errorf("%s: service %q: %w: %w", files.find("services", name, ExtensionKey), name, ErrInvalidSpec, err))
			continue
		}
		if err := resolveGuard(spec.Guard, &s); err != nil {
			problems = append(problems, fmt.Errorf("%s: service %q: %w: %w", files.find("services", name, ExtensionKey), name, ErrInvalidSpec, err))
			continue
		}
		resolveAlerts(spec.Alerts, &s)
		p.ServiceSpecs[name] = s
	}
	if top, err := stringKeys(tp.Extensions[ExtensionKey]); err == nil {
		_, rawVerify := takeKey(top, "backup", "verify")
		_, rawHooks := takeKey(top, "backup", "hooks")
		// A service left out by the active profiles is still the project's: its checks
		// load (and a drill skips them, as it does not start the service).
		names := sortedServiceNames(tp)
		for n := range tp.DisabledServices {
			names = append(names, n)
		}
		sort.Strings(names)
		checks, err := DecodeBackupVerify(rawVerify, names)
		if err != nil {
			problems = append(problems, fmt.Errorf("%s: top-level %w: %w", files.find(ExtensionKey), ErrInvalidSpec, err))
		}
		p.Spec.Backup.Verify = checks
		hooks, err := DecodeBackupHooks(rawHooks, names)
		if err != nil {
			problems = append(problems, fmt.Errorf("%s: top-level %w: %w", files.find(ExtensionKey), ErrInvalidSpec, err))
		}
		p.Spec.Backup.Hooks = hooks
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	if err := resolveNetworks(p, files); err != nil {
		return nil, err
	}
	if err := checkDependencies(tp); err != nil {
		return nil, err
	}
	if err := validateSecrets(p); err != nil {
		return nil, fmt.Errorf("%s: %w", files.find("secrets"), err)
	}
	return p, nil
}

func sortedServiceNames(tp *types.Project) []string {
	names := make([]string, 0, len(tp.Services))
	for n := range tp.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// fileLocator finds which compose file defines a key, so errors can name the file
// even when several -f files are merged. It parses the files only when an error needs
// it: loading a large project should not pay for a second YAML parse.
type fileLocator struct {
	files []string
	trees []map[string]any
}

func newFileLocator(files []string) *fileLocator {
	return &fileLocator{files: files}
}

func (l *fileLocator) parse() {
	if l.trees != nil {
		return
	}
	l.trees = make([]map[string]any, len(l.files))
	for i, f := range l.files {
		if b, err := os.ReadFile(f); err == nil {
			_ = yaml.Unmarshal(b, &l.trees[i])
		}
	}
}

// find returns the last file (overrides win) whose YAML has the path, else the first file.
func (l *fileLocator) find(path ...string) string {
	l.parse()
	for i := len(l.trees) - 1; i >= 0; i-- {
		var node any = l.trees[i]
		found := true
		for _, key := range path {
			m, ok := node.(map[string]any)
			if !ok {
				found = false
				break
			}
			if node, ok = m[key]; !ok {
				found = false
				break
			}
		}
		if found {
			return l.files[i]
		}
	}
	if len(l.files) > 0 {
		return l.files[0]
	}
	return "compose file"
}
