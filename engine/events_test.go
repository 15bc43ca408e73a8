package engine

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestEventsDecodesAndFilters: the stream's filter asks for the project's container
// events of the given actions, each message becomes an Event with its detail split
// off, and the end of the stream is an error on the error channel.
func TestEventsDecodesAndFilters(t *testing.T) {
	var query string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		w.Header().Set("Content-Type", "application/json")
		query = r.URL.Query().Get("filters")
		_, _ = w.Write([]byte(`{"Type":"container","Action":"health_status: unhealthy","Actor":{"ID":"c1","Attributes":{"name":"p-web-1","com.docker.compose.project":"p"}},"timeNano":1700000000000000001}
{"Type":"container","Action":"exec_create: sh -c id","Actor":{"ID":"c1","Attributes":{"name":"p-web-1","execID":"e1"}},"time":1700000001}
{"Type":"container","Action":"oom","Actor":{"ID":"c2","Attributes":{"name":"p-db-1"}},"time":1700000002}
`))
	}))
	t.Cleanup(srv.Close)
	api, err := client.New(client.WithHost("tcp://"+strings.TrimPrefix(srv.URL, "http://")), client.WithVersion("1.41"))
	assert.NilError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	evs, errs := NewMoby(api).Events(ctx, map[string]string{"com.docker.compose.project": "p"}, []string{EventHealthStatus, EventExecCreate, EventOOM})
	var got []Event
	for e := range evs {
		got = append(got, e)
	}
	err = <-errs
	assert.Check(t, is.ErrorContains(err, "event stream: the engine ended the event stream"))
	for _, want := range []string{`"type":{"container":true}`, `"label":{"com.docker.compose.project=p":true}`, `"health_status":true`, `"exec_create":true`, `"oom":true`} {
		assert.Check(t, is.Contains(query, want))
	}
	assert.Assert(t, is.Len(got, 3))
	assert.Check(t, is.Equal(got[0].Action, EventHealthStatus))
	assert.Check(t, is.Equal(got[0].Detail, "unhealthy"))
	assert.Check(t, is.Equal(got[0].Name, "p-web-1"))
	assert.Check(t, got[0].Time.Equal(time.Unix(0, 1700000000000000001)))
	assert.Check(t, is.Equal(got[1].Action, EventExecCreate))
	assert.Check(t, is.Equal(got[1].Detail, "sh -c id"))
	assert.Check(t, is.Equal(got[1].Attributes["execID"], "e1"))
	assert.Check(t, got[1].Time.Equal(time.Unix(1700000001, 0)))
	assert.Check(t, is.Equal(got[2].Action, EventOOM))
	assert.Check(t, is.Equal(got[2].Detail, ""))
	assert.Check(t, is.Equal(got[2].ContainerID, "c2"))
}
