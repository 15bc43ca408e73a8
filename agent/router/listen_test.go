package router

import (
	"context"
	"net"
	"net/http"
	"sync"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// recordingListen is an Options.Listen that serves a listener it was given (as the
// agent's supervisor hands one over) for one address, binds the others, and records
// which addresses were opened and closed.
type recordingListen struct {
	given     map[string]net.Listener
	mu        sync.Mutex
	opened    []string
	closedLog []string
}

type recordedListener struct {
	net.Listener
	addr string
	rec  *recordingListen
	once sync.Once
}

func (l *recordedListener) Close() error {
	l.once.Do(func() {
		l.rec.mu.Lock()
		l.rec.closedLog = append(l.rec.closedLog, l.addr)
		l.rec.mu.Unlock()
	})
	return l.Listener.Close()
}

func (rl *recordingListen) listen(ctx context.Context, addr string) (net.Listener, error) {
	ln := rl.given[addr]
	if ln == nil {
		var err error
		if ln, err = (&net.ListenConfig{}).Listen(ctx, "tcp", addr); err != nil {
			return nil, err
		}
	}
	rl.mu.Lock()
	rl.opened = append(rl.opened, addr)
	rl.mu.Unlock()
	return &recordedListener{Listener: ln, addr: addr, rec: rl}, nil
}

func (rl *recordingListen) closed() []string {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	return append([]string(nil), rl.closedLog...)
}

// TestListenOptionServesGivenListener: a route's address is opened through
// Options.Listen (so a listener inherited from a supervisor serves it), and what it
// returned is closed when the address leaves the config, when a failed Apply gives
// up a new address, and on Close.
func TestListenOptionServesGivenListener(t *testing.T) {
	inherited, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	defer busy.Close()
	const web, extra = "web.example:80", "127.0.0.1:0"
	rl := &recordingListen{given: map[string]net.Listener{web: inherited}}
	r := New(Options{Listen: rl.listen})
	defer r.Close()
	srv := newBackendServer(t, "a", nil)
	webRoute := Route{Name: "web", Listen: web, Backends: []Backend{{ID: "a", Address: hostPort(srv), Weight: 1}}}
	applyRoutes(t, r, webRoute)
	assert.Equal(t, r.Addr("web").String(), inherited.Addr().String())
	status, body := get(t, newClient(t), "http://"+inherited.Addr().String()+"/")
	assert.Check(t, is.Equal(status, http.StatusOK))
	assert.Check(t, is.Equal(body, "a"))

	// A failed Apply closes the address it had opened before the conflict.
	err = r.Apply(Config{Routes: []Route{webRoute,
		{Name: "extra", Listen: extra, Protocol: TCP},
		{Name: "db", Listen: busy.Addr().String(), Protocol: TCP}}})
	assert.ErrorContains(t, err, "address already in use")
	assert.Check(t, is.DeepEqual(rl.closed(), []string{extra}))

	// The address leaves the config: its listener is closed, the new one opened.
	applyRoutes(t, r, Route{Name: "api", Listen: extra, Protocol: TCP})
	assert.Check(t, is.DeepEqual(rl.closed(), []string{extra, web}))
	r.Close()
	assert.Check(t, is.DeepEqual(rl.closed(), []string{extra, web, extra}))
	rl.mu.Lock()
	defer rl.mu.Unlock()
	assert.Check(t, is.DeepEqual(rl.opened, []string{web, extra, extra}))
}
