package compose

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/mattn/go-shellwords"
)

// DefaultVerifyTimeout bounds a backup.verify command that sets no timeout.
const DefaultVerifyTimeout = 30 * time.Second

// VerifyCheck is one entry of x-lifecycle.backup.verify: a command `docker lifecycle
// drill` runs in a container of Service of the restored scratch project; exit 0 passes.
type VerifyCheck struct {
	Service string `json:"service" yaml:"service"`
	// Command is exec form; a string in the compose file is split as a shell would
	// split words (no shell runs it, as compose's `command:`).
	Command []string `json:"command" yaml:"command"`
	Timeout Duration `json:"timeout" yaml:"timeout"`
}

// verifyKeys are the keys of a backup.verify entry.
var verifyKeys = []string{"service", "command", "timeout"}

// DecodeBackupVerify decodes x-lifecycle.backup.verify strictly: a list of mappings
// with the keys service (one of services), command (a non-empty string or list of
// strings) and timeout (a positive duration, default DefaultVerifyTimeout). Every
// problem of every entry is returned, joined, each naming its entry and key.
func DecodeBackupVerify(raw any, services []string) ([]VerifyCheck, error) {
	if raw == nil {
		return nil, nil
	}
	raw, err := stringKeys(raw)
	if err != nil {
		return nil, fmt.Errorf("key \"backup.verify\": %w", err)
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, fmt.Errorf("key \"backup.verify\": want a list of {service, command, timeout}, got %s", describe(raw))
	}
	var checks []VerifyCheck
	var problems []error
	for i, item := range list {
		at := fmt.Sprintf("backup.verify[%d]", i)
		entry, ok := item.(map[string]any)
		if !ok {
			problems = append(problems, fmt.Errorf("key %q: want a mapping {service, command, timeout}, got %s", at, describe(item)))
			continue
		}
		c, errs := decodeVerifyEntry(at, entry, services)
		problems = append(problems, errs...)
		if len(errs) == 0 {
			checks = append(checks, c)
		}
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	return checks, nil
}

func decodeVerifyEntry(at string, entry map[string]any, services []string) (VerifyCheck, []error) {
	c := VerifyCheck{Timeout: Duration(DefaultVerifyTimeout)}
	var errs []error
	errs = append(errs, unknownEntryKeys(at, entry, verifyKeys)...)
	service, err := entryService(at, entry, services, "the service whose container runs the command")
	if err != nil {
		errs = append(errs, err)
	}
	c.Service = service
	if entry["command"] == nil {
		errs = append(errs, fmt.Errorf("key %q: required: a command such as [\"pg_isready\"] or \"psql -c 'select 1'\"", at+".command"))
	} else {
		cmd, cmdErrs := decodeCommand(at+".command", entry["command"])
		c.Command = cmd
		errs = append(errs, cmdErrs...)
	}
	if t, present := entry["timeout"]; present {
		if d, err := decodePositiveDuration(at+".timeout", t); err != nil {
			errs = append(errs, err)
		} else {
			c.Timeout = d
		}
	}
	return c, errs
}

// decodeCommand decodes a command key in exec form: a list of strings, or a string split
// into words as a shell would split them (no shell runs it, as compose's `command:`).
func decodeCommand(at string, raw any) ([]string, []error) {
	var errs []error
	var words []string
	switch cmd := raw.(type) {
	case string:
		split, err := shellwords.Parse(cmd)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("key %q: %q does not split into words: %v", at, cmd, err))
		case len(split) == 0:
			errs = append(errs, fmt.Errorf("key %q: must not be empty", at))
		default:
			words = split
		}
	case []any:
		for j, w := range cmd {
			s, ok := w.(string)
			if !ok {
				errs = append(errs, fmt.Errorf("key \"%s[%d]\": want a string, got %s", at, j, describe(w)))
				continue
			}
			words = append(words, s)
		}
		if len(cmd) == 0 {
			errs = append(errs, fmt.Errorf("key %q: must not be empty", at))
		}
	default:
		errs = append(errs, fmt.Errorf("key %q: want a string or a list of strings, got %s", at, describe(cmd)))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return words, nil
}

// decodePositiveDuration decodes a duration key that must be above zero.
func decodePositiveDuration(at string, raw any) (Duration, error) {
	d, err := durationHook(nil, durationType, raw)
	switch {
	case err != nil:
		return 0, fmt.Errorf("key %q: %w", at, err)
	case time.Duration(d.(Duration)) <= 0:
		return 0, fmt.Errorf("key %q: must be positive, got %v", at, raw)
	}
	return d.(Duration), nil
}

// unknownEntryKeys reports every key of a list entry that is not one of valid, sorted.
func unknownEntryKeys(at string, entry map[string]any, valid []string) []error {
	keys := make([]string, 0, len(entry))
	for k := range entry {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	for _, k := range keys {
		if !slices.Contains(valid, k) {
			errs = append(errs, fmt.Errorf("unknown key %q (valid keys: %s)", at+"."+k, strings.Join(valid, ", ")))
		}
	}
	return errs
}

// entryService decodes a list entry's service key: required (what says what it names),
// a string, one of services.
func entryService(at string, entry map[string]any, services []string, what string) (string, error) {
	switch s, ok := entry["service"].(string); {
	case entry["service"] == nil:
		return "", fmt.Errorf("key %q: required: %s", at+".service", what)
	case !ok:
		return "", fmt.Errorf("key %q: want a service name, got %s", at+".service", describe(entry["service"]))
	case !slices.Contains(services, s):
		return "", fmt.Errorf("key %q: no service %q in the project (services: %s)", at+".service", s, strings.Join(services, ", "))
	default:
		return s, nil
	}
}
