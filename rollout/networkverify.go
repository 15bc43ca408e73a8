package rollout

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/docker-lifecycle/docker-lifecycle/agent/agentimage"
	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/segments"
)

// Verify tunables: the per-target probe timeout inside the agent, how long one agent
// container may take in all, and how many run at once.
const (
	verifyProbeTimeout = 2 * time.Second
	verifyAgentTimeout = 60 * time.Second
	verifyParallel     = 16
	// RoleVerify marks verify's agent containers (label io.lifecycle.role).
	roleVerify = "verify"
)

// VerifyResult is `network verify --format json`.
type VerifyResult struct {
	Project     string                                   `json:"project"`
	Services    []string                                 `json:"services"`
	Sources     []string                                 `json:"sources"`
	Skipped     map[string]string                        `json:"skipped"`
	Policy      map[string]map[string]bool               `json:"policy"`
	Observed    map[string]map[string]*ObservedReachable `json:"observed"`
	Differences []segments.Difference                    `json:"differences"`
	Probed      int                                      `json:"probed"`
	Seconds     float64                                  `json:"seconds"`

	// Matrix is the policy the observation is compared with (the table renders it).
	Matrix segments.Matrix `json:"-"`
}

// ObservedReachable is one probe of `agent probe-many`, with its verdict.
type ObservedReachable struct {
	Target    string   `json:"target"`
	Reachable bool     `json:"reachable"`
	Resolved  bool     `json:"resolved"`
	Addrs     []string `json:"addrs,omitempty"`
	Port      int      `json:"port,omitempty"`
	Connect   string   `json:"connect,omitempty"`
	Error     string   `json:"error,omitempty"`
	Millis    int64    `json:"ms"`
}

func (o *ObservedReachable) Text() string {
	switch {
	case o == nil:
		return "n/a"
	case !o.Reachable:
		return "-"
	case o.Port == 0:
		return "dns"
	case o.Connect == "refused":
		return "refused"
	}
	return "yes"
}

func (o *ObservedReachable) Detail() string {
	if o == nil {
		return "not probed"
	}
	if !o.Resolved {
		return fmt.Sprintf("%s does not resolve", o.Target)
	}
	text := o.Target + " resolves"
	if len(o.Addrs) > 0 {
		text += " to " + strings.Join(o.Addrs, ", ")
	}
	if o.Port != 0 {
		text += ", connect " + o.Connect
	}
	return text
}

// ProbeNetwork runs one agent container per running service, in that service's network
// namespace, probing every other running service by name (and port), and compares the
// result with the policy matrix.
func ProbeNetwork(ctx context.Context, eng engine.Engine, p *compose.Project) (VerifyResult, error) {
	started := time.Now()
	spec := compose.NetworkSpec(p)
	policy := segments.Policy(spec)
	res := VerifyResult{Project: p.Name, Services: policy.Services, Skipped: map[string]string{}, Policy: policy.Map(),
		Observed: map[string]map[string]*ObservedReachable{}, Differences: []segments.Difference{}, Matrix: policy}

	containers, err := eng.ListContainers(ctx, map[string]string{compose.LabelProject: p.Name})
	if err != nil {
		return res, err
	}
	running := map[string]engine.Container{} // service → the newest running container
	for _, c := range containers {
		svc := c.Labels[compose.LabelService]
		if c.State != "running" || svc == "" || c.Labels[compose.LabelOneoff] == "True" || c.Labels[compose.LabelRole] == compose.RoleRouter {
			continue
		}
		if old, ok := running[svc]; !ok || revisionOf(c) > revisionOf(old) {
			running[svc] = c
		}
	}
	for _, s := range policy.Services {
		if _, ok := running[s]; ok {
			res.Sources = append(res.Sources, s)
		} else {
			res.Skipped[s] = "no running container"
		}
	}
	if len(res.Sources) == 0 {
		res.Seconds = time.Since(started).Seconds()
		return res, nil
	}
	arch, err := eng.Arch(ctx)
	if err != nil {
		return res, err
	}
	image, err := agentimage.Ensure(ctx, eng, arch)
	if err != nil {
		return res, err
	}

	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, verifyParallel)
	var wg sync.WaitGroup
	for _, src := range res.Sources {
		var targets []string
		for _, dst := range res.Sources {
			if dst == src {
				continue
			}
			t := dst
			if port := compose.ProbePort(p, dst); port > 0 {
				t += ":" + strconv.Itoa(port)
			}
			targets = append(targets, t)
		}
		if len(targets) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			row, err := probeFrom(ctx, eng, p, image, src, running[src].ID, targets)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("probe from service %s: %w", src, err)
				}
				return
			}
			res.Observed[src] = row
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return res, firstErr
	}
	observed := segments.NewMatrix(policy.Services)
	for src, row := range res.Observed {
		for dst, o := range row {
			observed.Set(src, dst, o.Reachable)
			res.Probed++
		}
	}
	res.Differences = append(res.Differences, segments.Diff(policy, observed, func(from, to string) bool {
		return res.Observed[from][to] == nil
	})...)
	res.Seconds = time.Since(started).Seconds()
	return res, nil
}

func revisionOf(c engine.Container) int {
	n, _ := strconv.Atoi(c.Labels[compose.LabelRevision])
	return n
}

// probeFrom runs `agent probe-many` in the network namespace of container id and reads
// its JSON lines. The agent container carries the project label (so `down` and the test
// harness find a leftover one) as a one-off (so deploys ignore it), and is removed.
func probeFrom(ctx context.Context, eng engine.Engine, p *compose.Project, image, service, id string, targets []string) (map[string]*ObservedReachable, error) {
	suffix := make([]byte, 3)
	_, _ = rand.Read(suffix)
	pids := int64(64)
	spec := engine.ContainerSpec{
		Name: fmt.Sprintf("%s-lifecycle-verify-%s-%s", p.Name, service, hex.EncodeToString(suffix)),
		Config: &container.Config{
			Image: image,
			User:  "65534",
			Cmd:   append([]string{"probe-many", "-timeout", verifyProbeTimeout.String()}, targets...),
			Labels: map[string]string{
				compose.LabelProject: p.Name, compose.LabelOneoff: "True", compose.LabelRole: roleVerify,
				compose.LabelManagedBy: compose.ManagedByValue, compose.LabelService: service,
			},
		},
		HostConfig: &container.HostConfig{
			NetworkMode:    container.NetworkMode("container:" + id),
			CapDrop:        []string{"ALL"},
			SecurityOpt:    []string{"no-new-privileges:true"},
			ReadonlyRootfs: true,
			LogConfig:      container.LogConfig{Type: "json-file"},
			Resources:      container.Resources{Memory: 64 << 20, PidsLimit: &pids},
		},
	}
	agentID, err := eng.CreateContainer(ctx, spec)
	defer func() {
		if agentID != "" {
			rmCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			_ = eng.RemoveContainer(rmCtx, agentID, true)
		}
	}()
	if err != nil {
		return nil, err
	}
	if err := eng.StartContainer(ctx, agentID); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(verifyAgentTimeout)
	for delay := 50 * time.Millisecond; ; delay = min(delay*2, 200*time.Millisecond) {
		d, err := eng.InspectContainer(ctx, agentID)
		if err != nil {
			return nil, err
		}
		if d.State == "exited" || d.State == "dead" {
			if d.ExitCode != 0 {
				logs, _ := eng.ContainerLogTail(ctx, agentID, 20)
				return nil, fmt.Errorf("agent exited with code %d: %s", d.ExitCode, strings.TrimSpace(logs))
			}
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("agent did not finish within %s", verifyAgentTimeout)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
	}
	logs, err := eng.ContainerLogTail(ctx, agentID, len(targets)+10)
	if err != nil {
		return nil, err
	}
	row := map[string]*ObservedReachable{}
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var o ObservedReachable
		if err := json.Unmarshal([]byte(line), &o); err != nil {
			return nil, fmt.Errorf("agent output %q: %w", line, err)
		}
		// Reachable: the name resolves and, when a port is known, a host answered on
		// it (connected, or refused: the path exists even if nothing listens).
		o.Reachable = o.Resolved && (o.Port == 0 || o.Connect == "ok" || o.Connect == "refused")
		host, _, _ := strings.Cut(o.Target, ":")
		row[host] = &o
	}
	if len(row) != len(targets) {
		return nil, errors.New("agent output is incomplete: " + strings.TrimSpace(logs))
	}
	return row, nil
}
