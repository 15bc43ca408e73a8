package rollout

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/docker-lifecycle/docker-lifecycle/agent/router"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/strategies"
)

// ctlSession is `agent ctl session` in the router: one request per line.
var ctlSession = []string{"/agent", "ctl", "session"}

// routerClient sends control requests to the router. It keeps one exec session open
// for the whole deploy (a router change then costs a round trip, not a process start
// in the container: measured in docs/benchmarks.md), and falls back to one exec per
// request when a session cannot be had (a dry run, a fake engine, an old agent).
type routerClient struct {
	eng engine.Engine
	id  string

	mu        sync.Mutex
	sess      *engine.Session
	lines     *bufio.Reader
	noSession bool
	// noAuto: the router's agent predates protocol auto (pushRoutes sends http);
	// warnedAuto: the deploy said so once.
	noAuto, warnedAuto bool
}

// newRouterClient is the client of a router this plugin created: it has every feature.
func newRouterClient(eng engine.Engine, id string) *routerClient {
	return &routerClient{eng: eng, id: id}
}

// observedRouterClient is the client of a router found on the engine, which an older
// plugin may have created: it is sent only what its container says its agent reads.
func observedRouterClient(eng engine.Engine, r strategies.ObservedContainer) *routerClient {
	c := newRouterClient(eng, r.ID)
	c.noAuto = !router.HasFeature(r.AgentFeatures, router.FeatureProtocolAuto)
	return c
}

type sessionRequest struct {
	Op          string `json:"op"`
	Body        string `json:"body,omitempty"`
	WaitDrained string `json:"wait_drained,omitempty"`
}

type sessionResponse struct {
	OK    bool   `json:"ok"`
	Body  string `json:"body,omitempty"`
	Error string `json:"error,omitempty"`
}

// do runs one request: op is put-config (with body, then waiting up to waitDrained
// for removed backends to drain), get-config or stats.
func (c *routerClient) do(ctx context.Context, op string, body []byte, waitDrained time.Duration) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if out, err, ok := c.viaSession(ctx, op, body, waitDrained); ok {
		return out, err
	}
	cmd := []string{"/agent", "ctl", op}
	if waitDrained > 0 {
		cmd = []string{"/agent", "ctl", "-wait-drained", waitDrained.String(), op}
	}
	var stdin []byte
	if op == "put-config" {
		stdin = body
	}
	return c.eng.Exec(ctx, c.id, cmd, stdin)
}

// viaSession answers through the session; ok is false when there is none to use.
func (c *routerClient) viaSession(ctx context.Context, op string, body []byte, waitDrained time.Duration) (out []byte, err error, ok bool) {
	if c.noSession {
		return nil, nil, false
	}
	if c.sess == nil {
		s, err := c.eng.ExecSession(ctx, c.id, ctlSession)
		if err != nil {
			c.noSession = true
			return nil, nil, false
		}
		c.sess, c.lines = s, bufio.NewReaderSize(s.Stdout, 64*1024)
	}
	req := sessionRequest{Op: op, Body: string(body)}
	if waitDrained > 0 {
		req.WaitDrained = waitDrained.String()
	}
	line, _ := json.Marshal(req)
	type answer struct {
		resp sessionResponse
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		if _, err := c.sess.Stdin.Write(append(line, '\n')); err != nil {
			done <- answer{err: err}
			return
		}
		text, err := c.lines.ReadBytes('\n')
		if err != nil {
			done <- answer{err: err}
			return
		}
		var resp sessionResponse
		err = json.Unmarshal(text, &resp)
		done <- answer{resp: resp, err: err}
	}()
	select {
	case a := <-done:
		if a.err != nil {
			// The session broke (e.g. the router restarted): drop it, use plain exec.
			c.closeLocked()
			c.noSession = true
			return nil, nil, false
		}
		if !a.resp.OK {
			return []byte(a.resp.Body), fmt.Errorf("%s", a.resp.Error), true
		}
		return []byte(a.resp.Body), nil, true
	case <-ctx.Done():
		c.closeLocked()
		return nil, ctx.Err(), true
	}
}

func (c *routerClient) closeLocked() {
	if c.sess != nil {
		_ = c.sess.Close()
		c.sess, c.lines = nil, nil
	}
}

// warm opens the session ahead of the first request, off the rollout's critical path.
func (c *routerClient) warm(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess != nil || c.noSession {
		return
	}
	s, err := c.eng.ExecSession(ctx, c.id, ctlSession)
	if err != nil {
		c.noSession = true
		return
	}
	c.sess, c.lines = s, bufio.NewReaderSize(s.Stdout, 64*1024)
}

// Close ends the session, if one is open.
func (c *routerClient) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeLocked()
}
