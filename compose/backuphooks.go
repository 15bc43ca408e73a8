package compose

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
)

// DefaultHookTimeout bounds a backup hook command that sets no timeout.
const DefaultHookTimeout = 5 * time.Minute

// What a failed backup hook does (BackupHook.OnFailure).
const (
	HookFail     = "fail"     // the backup stops, nothing is written (the default)
	HookContinue = "continue" // noted in the progress and the manifest; the copy goes on
)

// BackupHook is one entry of x-lifecycle.backup.hooks: commands `docker lifecycle backup`
// runs in a running container of Service when the backup includes a volume the service
// mounts — Before ahead of the first copy (e.g. pg_dump into the volume), After once the
// copies are done (e.g. removing the dump), also when a copy failed.
type BackupHook struct {
	Service string `json:"service" yaml:"service"`
	// Before and After are exec form (a string is split into words as a shell would;
	// no shell runs it, as compose's `command:`). At least one is set.
	Before  []string `json:"before,omitempty" yaml:"before,omitempty"`
	After   []string `json:"after,omitempty" yaml:"after,omitempty"`
	Timeout Duration `json:"timeout" yaml:"timeout"`
	// User runs the commands as this user instead of the container's (docker exec
	// --user, compose's post_start user): NAME, UID, NAME:GROUP or UID:GID.
	User string `json:"user,omitempty" yaml:"user,omitempty"`
	// OnFailure is HookFail or HookContinue.
	OnFailure string `json:"on-failure" yaml:"on-failure"`
}

// hookKeys are the keys of a backup.hooks entry.
var hookKeys = []string{"service", "before", "after", "user", "timeout", "on-failure"}

// DecodeBackupHooks decodes x-lifecycle.backup.hooks strictly: a list of mappings with
// service (one of services, once), before and/or after (a non-empty string or list of
// strings), user (docker exec's --user form), timeout (positive, default DefaultHookTimeout) and on-failure (fail, the
// default, or continue). Every problem of every entry is returned, joined, each naming
// its entry and key.
func DecodeBackupHooks(raw any, services []string) ([]BackupHook, error) {
	if raw == nil {
		return nil, nil
	}
	raw, err := stringKeys(raw)
	if err != nil {
		return nil, fmt.Errorf("key \"backup.hooks\": %w", err)
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, fmt.Errorf("key \"backup.hooks\": want a list of {service, before, after, user, timeout, on-failure}, got %s", describe(raw))
	}
	var hooks []BackupHook
	var problems []error
	seen := map[string]int{}
	for i, item := range list {
		at := fmt.Sprintf("backup.hooks[%d]", i)
		entry, ok := item.(map[string]any)
		if !ok {
			problems = append(problems, fmt.Errorf("key %q: want a mapping {service, before, after, user, timeout, on-failure}, got %s", at, describe(item)))
			continue
		}
		h, errs := decodeHookEntry(at, entry, services)
		if first, dup := seen[h.Service]; dup && h.Service != "" {
			errs = append(errs, fmt.Errorf("key %q: service %q already has hooks in backup.hooks[%d]: put its commands in one entry", at+".service", h.Service, first))
		} else if h.Service != "" {
			seen[h.Service] = i
		}
		problems = append(problems, errs...)
		if len(errs) == 0 {
			hooks = append(hooks, h)
		}
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	return hooks, nil
}

func decodeHookEntry(at string, entry map[string]any, services []string) (BackupHook, []error) {
	h := BackupHook{Timeout: Duration(DefaultHookTimeout), OnFailure: HookFail}
	var errs []error
	errs = append(errs, unknownEntryKeys(at, entry, hookKeys)...)
	service, err := entryService(at, entry, services, "the service whose container runs the commands")
	if err != nil {
		errs = append(errs, err)
	}
	h.Service = service
	if entry["before"] == nil && entry["after"] == nil {
		errs = append(errs, fmt.Errorf("key %q: set before, after or both: e.g. before: pg_dump -U postgres -f /var/lib/postgresql/data/dump.sql app", at))
	}
	if raw, ok := entry["before"]; ok {
		cmd, cmdErrs := decodeCommand(at+".before", raw)
		h.Before, errs = cmd, append(errs, cmdErrs...)
	}
	if raw, ok := entry["after"]; ok {
		cmd, cmdErrs := decodeCommand(at+".after", raw)
		h.After, errs = cmd, append(errs, cmdErrs...)
	}
	if v, present := entry["user"]; present {
		user, err := decodeHookUser(at+".user", v)
		h.User = user
		if err != nil {
			errs = append(errs, err)
		}
	}
	if t, present := entry["timeout"]; present {
		if d, err := decodePositiveDuration(at+".timeout", t); err != nil {
			errs = append(errs, err)
		} else {
			h.Timeout = d
		}
	}
	if v, present := entry["on-failure"]; present {
		switch s, ok := v.(string); {
		case ok && (s == HookFail || s == HookContinue):
			h.OnFailure = s
		case ok:
			errs = append(errs, fmt.Errorf("key %q: want %s or %s, got %q", at+".on-failure", HookFail, HookContinue, s))
		default:
			errs = append(errs, fmt.Errorf("key %q: want %s or %s, got %s", at+".on-failure", HookFail, HookContinue, describe(v)))
		}
	}
	return h, errs
}

// decodeHookUser checks a hook's user as the engine's exec takes it: NAME, UID,
// NAME:GROUP or UID:GID (a bare number in YAML is a UID). Whether the name exists is
// the container's to say: its /etc/passwd is read by the engine when the hook runs.
func decodeHookUser(at string, v any) (string, error) {
	const want = "want USER, UID, USER:GROUP or UID:GID (as docker exec --user), e.g. postgres or 999:999"
	var user string
	switch u := v.(type) {
	case string:
		user = u
	case int, int64, uint64:
		n := fmt.Sprint(u)
		if strings.HasPrefix(n, "-") {
			return "", fmt.Errorf("key %q: %s, got %s", at, want, n)
		}
		return n, nil
	default:
		return "", fmt.Errorf("key %q: %s, got %s", at, want, describe(v))
	}
	name, group, hasGroup := strings.Cut(user, ":")
	parts := []string{name}
	if hasGroup {
		parts = append(parts, group)
	}
	for _, part := range parts {
		if part == "" || strings.ContainsFunc(part, func(r rune) bool { return r == ':' || r == '/' || unicode.IsSpace(r) || unicode.IsControl(r) }) {
			return "", fmt.Errorf("key %q: %s, got %q", at, want, user)
		}
	}
	return user, nil
}
