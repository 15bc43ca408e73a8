package engine

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/moby/moby/client"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestVersionLess(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"1.39", "1.40", true}, {"1.9", "1.40", true}, {"1.40", "1.40", false}, {"1.41", "1.40", false}, {"2.0", "1.40", false},
	} {
		assert.Check(t, is.Equal(versionLess(tc.a, tc.b), tc.want), "%s < %s", tc.a, tc.b)
	}
}

func fakeDaemon(t *testing.T, apiVersion string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", apiVersion)
		w.Header().Set("Ostype", "linux")
		if strings.HasSuffix(r.URL.Path, "/_ping") {
			_, _ = w.Write([]byte("OK"))
			return
		}
		http.Error(w, `{"message":"client version 1.41 is too new"}`, http.StatusBadRequest)
	}))
	t.Cleanup(srv.Close)
	return "tcp://" + strings.TrimPrefix(srv.URL, "http://")
}

func TestPingRefusesEngineOlderThanAPI140(t *testing.T) {
	api, err := client.New(client.WithHost(fakeDaemon(t, "1.39")))
	assert.NilError(t, err)
	_, err = NewMoby(api).Ping(context.Background())
	assert.Check(t, errors.Is(err, ErrEngineTooOld))
	assert.Check(t, is.ErrorContains(err, "API 1.39"))
	assert.Check(t, is.ErrorContains(err, "1.40 or newer"))
	assert.Check(t, !strings.Contains(err.Error(), "too new"))
}

func TestPingAcceptsAPI141(t *testing.T) {
	api, err := client.New(client.WithHost(fakeDaemon(t, "1.41")))
	assert.NilError(t, err)
	info, err := NewMoby(api).Ping(context.Background())
	assert.NilError(t, err)
	assert.Check(t, is.Equal(info.APIVersion, "1.41"))
	assert.Check(t, is.Equal(api.ClientVersion(), "1.41"))
}

func TestPingUnreachable(t *testing.T) {
	api, err := client.New(client.WithHost("unix:///nonexistent/docker.sock"))
	assert.NilError(t, err)
	_, err = NewMoby(api).Ping(context.Background())
	assert.Check(t, errors.Is(err, ErrUnreachable))
	assert.Check(t, is.ErrorContains(err, "/nonexistent/docker.sock"))
}
