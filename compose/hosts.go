package compose

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// HostsSpec is x-lifecycle.hosts: the Docker contexts the project is deployed to, one
// engine each, in batches (docs/multihost.md). The plugin's --hosts flag replaces
// Contexts and keeps the rest.
type HostsSpec struct {
	// Contexts are the names of Docker contexts (`docker context ls`), in deploy order.
	Contexts []string `mapstructure:"contexts" json:"contexts,omitempty" yaml:"contexts,omitempty"`
	// Batch is how many hosts deploy before the next ones start: a count ("2") or a
	// percentage of the hosts ("50%"), rounded up; empty means all hosts in one batch.
	Batch string `mapstructure:"batch" json:"batch,omitempty" yaml:"batch,omitempty"`
	// Concurrency is how many hosts of a batch deploy at the same time (0: the whole batch).
	Concurrency int `mapstructure:"concurrency" json:"concurrency,omitempty" yaml:"concurrency,omitempty"`
	// Wait is the pause between two batches, after the first one is healthy.
	Wait Duration `mapstructure:"wait" json:"wait,omitempty" yaml:"wait,omitempty"`
}

// Enabled reports whether the project names hosts.
func (h HostsSpec) Enabled() bool { return len(h.Contexts) > 0 }

// BatchSize is how many of n hosts one batch holds (at least 1, at most n).
func (h HostsSpec) BatchSize(n int) int {
	size := n
	if pct, ok := strings.CutSuffix(h.Batch, "%"); ok {
		p, _ := strconv.Atoi(pct)
		size = (n*p + 99) / 100
	} else if h.Batch != "" {
		size, _ = strconv.Atoi(h.Batch)
	}
	return min(max(size, 1), max(n, 1))
}

// decodeHosts decodes x-lifecycle.hosts strictly and names every problem at once.
func decodeHosts(raw any) (HostsSpec, []string) {
	var spec HostsSpec
	if raw == nil {
		return spec, nil
	}
	m, err := stringKeys(raw)
	if err != nil {
		return spec, []string{"hosts: " + err.Error()}
	}
	block, ok := m.(map[string]any)
	if !ok {
		return spec, []string{fmt.Sprintf("hosts: must be a mapping with contexts, batch, concurrency and wait, got %s", describe(m))}
	}
	var problems []string
	valid := []string{"contexts", "batch", "concurrency", "wait"}
	for _, k := range sortedKeys(block) {
		if !slices.Contains(valid, k) {
			problems = append(problems, fmt.Sprintf("hosts: unknown key %q (valid keys: %s)", k, strings.Join(valid, ", ")))
		}
	}
	switch list := block["contexts"].(type) {
	case nil:
		problems = append(problems, "hosts.contexts: required: the names of the Docker contexts to deploy to (`docker context ls`)")
	case []any:
		seen := map[string]bool{}
		for i, v := range list {
			name, ok := v.(string)
			switch {
			case !ok:
				problems = append(problems, fmt.Sprintf("hosts.contexts[%d]: must be a context name, got %s", i, describe(v)))
			case strings.TrimSpace(name) == "":
				problems = append(problems, fmt.Sprintf("hosts.contexts[%d]: empty context name", i))
			case seen[name]:
				problems = append(problems, fmt.Sprintf("hosts.contexts[%d]: context %q is listed twice", i, name))
			default:
				seen[name] = true
				spec.Contexts = append(spec.Contexts, name)
			}
		}
		if len(list) == 0 {
			problems = append(problems, "hosts.contexts: empty: name at least one Docker context, or remove x-lifecycle.hosts")
		}
	default:
		problems = append(problems, fmt.Sprintf("hosts.contexts: must be a list of Docker context names, got %s", describe(list)))
	}
	if v, ok := block["batch"]; ok {
		batch, problem := parseBatch(v)
		if problem != "" {
			problems = append(problems, "hosts.batch: "+problem)
		}
		spec.Batch = batch
	}
	if v, ok := block["concurrency"]; ok {
		n, isInt := wholeNumber(v)
		if !isInt || n < 1 {
			problems = append(problems, fmt.Sprintf("hosts.concurrency: must be a whole number of hosts, 1 or more, got %v", v))
		}
		spec.Concurrency = n
	}
	if v, ok := block["wait"]; ok {
		s, isString := v.(string)
		d, err := time.ParseDuration(s)
		if !isString || err != nil || d < 0 {
			problems = append(problems, fmt.Sprintf("hosts.wait: must be a duration such as 30s, got %v", v))
		}
		spec.Wait = Duration(d)
	}
	return spec, problems
}

// parseBatch accepts 2, "2" or "50%" and returns it as a string, or a problem.
func parseBatch(v any) (string, string) {
	var s string
	n, isInt := wholeNumber(v)
	switch t := v.(type) {
	case string:
		s = strings.TrimSpace(t)
	default:
		if isInt {
			s = strconv.Itoa(n)
			break
		}
		return "", fmt.Sprintf("must be a number of hosts (2) or a percentage (\"50%%\"), got %s", describe(v))
	}
	if pct, ok := strings.CutSuffix(s, "%"); ok {
		if p, err := strconv.Atoi(pct); err != nil || p < 1 || p > 100 {
			return "", fmt.Sprintf("percentage %q must be a whole number from 1%% to 100%%", s)
		}
		return s, ""
	}
	if n, err := strconv.Atoi(s); err != nil || n < 1 {
		return "", fmt.Sprintf("must be a number of hosts, 1 or more, or a percentage (\"50%%\"), got %q", s)
	}
	return s, ""
}

// wholeNumber is v as an int when YAML gave a whole number (int, int64, uint64 or an
// integral float64, depending on the decoder).
func wholeNumber(v any) (int, bool) {
	switch t := v.(type) {
	case int:
		return t, true
	case int64:
		return int(t), true
	case uint64:
		return int(t), true
	case float64:
		if t == float64(int(t)) {
			return int(t), true
		}
	}
	return 0, false
}

// hostsError joins the problems of x-lifecycle.hosts into one error (nil when none).
func hostsError(problems []string) error { return alertsError(problems) }
