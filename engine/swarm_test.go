package engine

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"gotest.tools/v3/assert"
)

// TestSwarmObjectErrors: Swarm refuses to remove a secret a service references with
// a 400 (gRPC InvalidArgument) naming the service: ErrInUse; a missing one is ErrNotFound.
// A failed create never quotes the value.
func TestSwarmObjectErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		switch {
		case r.Method == http.MethodDelete && strings.HasSuffix(r.URL.Path, "/secrets/used"):
			http.Error(w, `{"message":"rpc error: code = InvalidArgument desc = secret 'shop_db_1' is in use by the following service: shop_web"}`, http.StatusBadRequest)
		case r.Method == http.MethodDelete:
			http.Error(w, `{"message":"config gone not found"}`, http.StatusNotFound)
		case strings.HasSuffix(r.URL.Path, "/secrets/create"):
			http.Error(w, `{"message":"rpc error: code = AlreadyExists desc = secret shop_db_1 already exists"}`, http.StatusConflict)
		default:
			http.Error(w, `{"message":"unexpected"}`, http.StatusInternalServerError)
		}
	}))
	t.Cleanup(srv.Close)
	api, err := client.New(client.WithHost("tcp://"+strings.TrimPrefix(srv.URL, "http://")), client.WithAPIVersion("1.41"))
	assert.NilError(t, err)
	m := NewMoby(api)
	ctx := context.Background()
	err = m.RemoveSwarmObject(ctx, SwarmSecret, "used")
	assert.Assert(t, errors.Is(err, ErrInUse), "%v", err)
	err = m.RemoveSwarmObject(ctx, SwarmConfig, "gone")
	assert.Assert(t, errors.Is(err, ErrNotFound) && !errors.Is(err, ErrInUse), "%v", err)
	_, err = m.CreateSwarmObject(ctx, SwarmSecret, "shop_db_1", nil, []byte("the-VALUE"))
	assert.ErrorContains(t, err, "create Swarm secret shop_db_1")
	assert.Assert(t, !strings.Contains(err.Error(), "the-VALUE"))
}

func TestParseServiceLogLine(t *testing.T) {
	at := time.Unix(5, 0)
	got := parseServiceLogLine(LogLine{Time: at, Stream: "stdout", Text: "com.docker.swarm.node.id=n1,com.docker.swarm.service.id=s1,com.docker.swarm.task.id=t1 hello world"})
	assert.DeepEqual(t, got, ServiceLogLine{TaskID: "t1", LogLine: LogLine{Time: at, Stream: "stdout", Text: "hello world"}})
	got = parseServiceLogLine(LogLine{Time: at, Stream: "stdout", Text: "com.docker.swarm.node.id=n1,com.docker.swarm.task.id=t2"})
	assert.DeepEqual(t, got, ServiceLogLine{TaskID: "t2", LogLine: LogLine{Time: at, Stream: "stdout", Text: ""}})
	got = parseServiceLogLine(LogLine{Time: at, Stream: "stdout", Text: "no details here"})
	assert.DeepEqual(t, got, ServiceLogLine{LogLine: LogLine{Time: at, Stream: "stdout", Text: "no details here"}})
}
