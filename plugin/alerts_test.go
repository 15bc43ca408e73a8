package plugin

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/alerting"
	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

// The foreground guard sends its alerts to the project's alert targets, except a
// stderr target (its alerts are on stderr already).
func TestGuardNotifier(t *testing.T) {
	var stderr bytes.Buffer
	n, err := alertTargetsNotifier(&compose.Project{Spec: compose.ProjectSpec{Alerts: compose.AlertsSpec{Targets: []compose.AlertTarget{{Stderr: true}}}}}, &stderr, "guard")
	assert.NilError(t, err)
	assert.Check(t, n == nil, "only a stderr target: no notifier")

	bodies := make(chan []byte, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies <- b
	}))
	defer srv.Close()
	p := &compose.Project{Spec: compose.ProjectSpec{Alerts: compose.AlertsSpec{Targets: []compose.AlertTarget{
		{Stderr: true}, {Webhook: &compose.WebhookTarget{URL: srv.URL}},
	}}}}
	n, err = alertTargetsNotifier(p, &stderr, "guard")
	assert.NilError(t, err)
	assert.Assert(t, n != nil)
	n.Notify(rollout.GuardNotification(rollout.GuardAlert{Time: time.Now(), Project: "demo", Service: "web", Container: "demo-web-r1-1",
		Kind: rollout.AlertExec, Action: rollout.ActionReported, Reason: "docker exec", Command: "sh"}))
	n.Close(5 * time.Second)
	var a alerting.Alert
	assert.NilError(t, json.Unmarshal(<-bodies, &a))
	assert.Check(t, is.Equal(a.Status, alerting.StatusEvent))
	assert.Check(t, is.Equal(a.Source, alerting.SourceGuard))
	assert.Check(t, is.Equal(a.Metric, "exec"))
	assert.Check(t, is.Contains(string(a.Guard), `"command":"sh"`))
	assert.Check(t, is.Equal(stderr.String(), ""), "nothing undelivered, no ALERT line")
}
