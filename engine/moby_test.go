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

// An engine whose ping says it is in no swarm answers Swarm without its /info (every
// deploy asks); a manager's membership comes from /info.
func TestSwarmAsksInfoOnlyOfSwarmMembers(t *testing.T) {
	for _, tc := range []struct {
		header, wantState string
		wantInfoCalls     int
		wantManager       bool
	}{
		{"inactive", "inactive", 0, false},
		{"active/manager", "active", 1, true},
		{"", "active", 1, true}, // an engine that does not tell: ask
	} {
		infoCalls := 0
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Api-Version", "1.41")
			if tc.header != "" {
				w.Header().Set("Swarm", tc.header)
			}
			if strings.HasSuffix(r.URL.Path, "/info") {
				infoCalls++
				_, _ = w.Write([]byte(`{"Swarm":{"NodeID":"n1","LocalNodeState":"active","ControlAvailable":true,"Nodes":1,"Managers":1}}`))
				return
			}
			_, _ = w.Write([]byte("OK"))
		}))
		api, err := client.New(client.WithHost("tcp://" + strings.TrimPrefix(srv.URL, "http://")))
		assert.NilError(t, err)
		m := NewMoby(api)
		_, err = m.Ping(context.Background())
		assert.NilError(t, err)
		info, err := m.Swarm(context.Background())
		assert.NilError(t, err)
		assert.Check(t, is.Equal(info.LocalNodeState, tc.wantState), tc.header)
		assert.Check(t, is.Equal(info.ControlAvailable, tc.wantManager), tc.header)
		assert.Check(t, is.Equal(infoCalls, tc.wantInfoCalls), tc.header)
		srv.Close()
	}
}

func TestPingUnreachable(t *testing.T) {
	api, err := client.New(client.WithHost("unix:///nonexistent/docker.sock"))
	assert.NilError(t, err)
	_, err = NewMoby(api).Ping(context.Background())
	assert.Check(t, errors.Is(err, ErrUnreachable))
	assert.Check(t, is.ErrorContains(err, "/nonexistent/docker.sock"))
}

// The engine's texts for a failed pull, as registries and the engine word them, each
// sorted into the sentinel whose advice mends it.
func TestPullErrorSortsRefusals(t *testing.T) {
	rows := []struct {
		msg  string
		want error
	}{
		{"unauthorized: authentication required", ErrUnauthorized},
		{"pull access denied for acme/app, repository does not exist or may require 'docker login'", ErrUnauthorized},
		{"Get \"https://r.example/v2/\": no basic auth credentials", ErrUnauthorized},
		{"manifest for acme/app:9 not found: manifest unknown: manifest unknown", ErrNotFound},
		{"Get \"https://r.example:5000/v2/\": dial tcp: lookup r.example on 10.0.0.2:53: no such host", ErrRegistryUnreachable},
		{"Get \"https://127.0.0.1:1/v2/\": dial tcp 127.0.0.1:1: connect: connection refused", ErrRegistryUnreachable},
		{"Get \"https://r.example/v2/\": http: server gave HTTP response to HTTPS client", ErrRegistryUnreachable},
		{"Get \"https://r.example/v2/\": tls: failed to verify certificate: x509: certificate signed by unknown authority", ErrRegistryUnreachable},
		{"Get \"https://r.example/v2/\": net/http: request canceled while waiting for connection (Client.Timeout exceeded while awaiting headers)", ErrRegistryUnreachable},
		{"write /var/lib/docker/tmp/x: no space left on device", nil},
	}
	for _, row := range rows {
		err := pullError("acme/app:9", errors.New(row.msg))
		assert.Check(t, is.Contains(err.Error(), "pull acme/app:9: "), row.msg)
		assert.Check(t, is.Contains(err.Error(), row.msg))
		for _, sentinel := range []error{ErrUnauthorized, ErrNotFound, ErrRegistryUnreachable} {
			assert.Check(t, is.Equal(errors.Is(err, sentinel), sentinel == row.want), "%q is %v, want %v", row.msg, sentinel, row.want)
		}
	}
}

// TestCreateNetworkRemovesADuplicate: when a network of the same name and labels
// appears beside the one just created (an old engine accepts both; a killed deploy's
// create landed late), the newer ones are removed and the oldest is kept; a network of
// another owner (other labels) is left alone.
func TestCreateNetworkRemovesADuplicate(t *testing.T) {
	ours := map[string]string{"com.docker.compose.project": "p"}
	for _, tc := range []struct {
		name        string
		listed      string // the engine's answer to the list after the create
		wantRemoved []string
	}{
		{"one network", `[{"Id":"new","Name":"p_default","Created":"2026-12-03T10:00:01Z","Labels":{"com.docker.compose.project":"p"}}]`, nil},
		{"ours is newer", `[
			{"Id":"new","Name":"p_default","Created":"2026-12-03T10:00:01Z","Labels":{"com.docker.compose.project":"p"}},
			{"Id":"old","Name":"p_default","Created":"2026-12-03T10:00:00Z","Labels":{"com.docker.compose.project":"p"}}]`, []string{"new"}},
		{"the other is newer", `[
			{"Id":"late","Name":"p_default","Created":"2026-12-03T10:00:02Z","Labels":{"com.docker.compose.project":"p"}},
			{"Id":"new","Name":"p_default","Created":"2026-12-03T10:00:01Z","Labels":{"com.docker.compose.project":"p"}}]`, []string{"late"}},
		{"not ours or another name", `[
			{"Id":"new","Name":"p_default","Created":"2026-12-03T10:00:01Z","Labels":{"com.docker.compose.project":"p"}},
			{"Id":"foreign","Name":"p_default","Created":"2026-12-03T10:00:00Z","Labels":{"owner":"someone"}},
			{"Id":"prefix","Name":"p_default2","Created":"2026-12-03T10:00:00Z","Labels":{"com.docker.compose.project":"p"}}]`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var removed []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Api-Version", "1.41")
				switch {
				case strings.HasSuffix(r.URL.Path, "/_ping"):
					_, _ = w.Write([]byte("OK"))
				case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/networks/create"):
					_, _ = w.Write([]byte(`{"Id":"new"}`))
				case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/networks"):
					assert.Check(t, is.Contains(r.URL.Query().Get("filters"), "p_default"))
					_, _ = w.Write([]byte(tc.listed))
				case r.Method == http.MethodDelete:
					removed = append(removed, r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:])
					w.WriteHeader(http.StatusNoContent)
				default:
					http.Error(w, `{"message":"unexpected"}`, http.StatusBadRequest)
				}
			}))
			defer srv.Close()
			api, err := client.New(client.WithHost("tcp://"+strings.TrimPrefix(srv.URL, "http://")), client.WithAPIVersion("1.41"))
			assert.NilError(t, err)
			assert.NilError(t, NewMoby(api).CreateNetwork(context.Background(), NetworkSpec{Name: "p_default", Labels: ours}))
			assert.Check(t, is.DeepEqual(removed, tc.wantRemoved))
		})
	}
}
