package router

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"gotest.tools/v3/assert"
)

func TestControlPlaneOverUnixSocket(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "ctl.sock")
	file := filepath.Join(dir, "router.json")
	r := newTestRouter(t, Options{ConfigFile: file})
	l, err := net.Listen("unix", sock)
	assert.NilError(t, err)
	served := make(chan error, 1)
	go func() { served <- r.ServeControl(l) }()

	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	do := func(method, path, body string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, "http://router"+path, bytes.NewBufferString(body))
		assert.NilError(t, err)
		resp, err := c.Do(req)
		assert.NilError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		assert.NilError(t, err)
		return resp.StatusCode, b
	}

	status, body := do("GET", "/healthz", "")
	assert.Equal(t, status, http.StatusOK)
	assert.Equal(t, string(body), "ok\n")

	srv := newBackendServer(t, "a", nil)
	put := `{"version":1,"routes":[{"name":"web","listen":"127.0.0.1:0","drain_timeout":"3s",
		"backends":[{"id":"web-1","address":"` + hostPort(srv) + `","weight":100,"group":"1"}]}]}`
	status, body = do("PUT", "/config", put)
	assert.Equal(t, status, http.StatusOK, "%s", body)
	var applied Config
	assert.NilError(t, json.Unmarshal(body, &applied))
	assert.Equal(t, applied.Routes[0].Protocol, HTTP)
	assert.Equal(t, applied.Routes[0].DrainTimeout, Duration(3*time.Second))

	status, body = do("GET", "/config", "")
	assert.Equal(t, status, http.StatusOK)
	var got Config
	assert.NilError(t, json.Unmarshal(body, &got))
	assert.DeepEqual(t, got, applied)

	saved, err := LoadConfigFile(file)
	assert.NilError(t, err)
	assert.DeepEqual(t, saved, applied)

	get(t, newClient(t), routeURL(t, r, "web"))
	status, body = do("GET", "/stats", "")
	assert.Equal(t, status, http.StatusOK)
	var snap Snapshot
	assert.NilError(t, json.Unmarshal(body, &snap))
	assert.Equal(t, snap.Route("web").Backend("web-1").Responses2xx, uint64(1))
	assert.Equal(t, snap.Route("web").Backend("web-1").Group, "1")

	for _, bad := range []string{`{`, `{"routes":[{"name":"x"}]}`, `{"routez":[]}`, `{"version":2}`} {
		status, body = do("PUT", "/config", bad)
		assert.Equal(t, status, http.StatusBadRequest, "%s → %s", bad, body)
		assert.Assert(t, bytes.Contains(body, []byte(`"error"`)))
	}
	status, _ = do("DELETE", "/config", "")
	assert.Equal(t, status, http.StatusMethodNotAllowed)
	// The failed PUTs changed nothing.
	assert.DeepEqual(t, r.Config(), applied)

	assert.NilError(t, r.Close())
	assert.NilError(t, <-served)
}
