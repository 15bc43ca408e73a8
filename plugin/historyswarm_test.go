package plugin

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	"gotest.tools/v3/golden"

	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

// swarmShopHistory: web rolled back by Swarm (no previous spec left), worker updated
// from 1 to 2, cron never updated; api is canary, its revisions 2 and 3 side by side
// behind the router.
func swarmShopHistory() []rollout.SwarmRevision {
	at := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	return []rollout.SwarmRevision{
		{Project: "shop", Service: "api", SwarmService: "shop_api-r2", Revision: 2, Image: "shop/api:2"},
		{Project: "shop", Service: "api", SwarmService: "shop_api-r3", Revision: 3, Image: "shop/api:3"},
		{Project: "shop", Service: "cron", SwarmService: "shop_cron", Image: "shop/cron:1"},
		{Project: "shop", Service: "router", SwarmService: "shop_lifecycle-router", Router: true, Image: "docker-lifecycle/agent:1"},
		{Project: "shop", Service: "web", SwarmService: "shop_web", Image: "shop/web:1", UpdateState: "rollback_completed", UpdateMessage: "rollback completed", UpdateStarted: at},
		{Project: "shop", Service: "worker", SwarmService: "shop_worker", Image: "shop/worker:2", PreviousImage: "shop/worker:1", UpdateState: "completed", UpdateMessage: "update completed", UpdateStarted: at.Add(90 * time.Second)},
	}
}

func TestSwarmHistoryTable(t *testing.T) {
	var out bytes.Buffer
	assert.NilError(t, writeSwarmHistory(&out, "table", swarmShopHistory()))
	golden.Assert(t, out.String(), "history-swarm-table.golden")
}

func TestSwarmHistoryJSON(t *testing.T) {
	var out bytes.Buffer
	assert.NilError(t, writeSwarmHistory(&out, "json", swarmShopHistory()))
	golden.Assert(t, out.String(), "history-swarm.json.golden")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	type swarmHistoryJSON struct {
		Service, SwarmService, Project, Role, Image, PreviousImage, UpdateState, UpdateMessage, Time string
		Revision                                                                                     int
	}
	var row swarmHistoryJSON
	assert.NilError(t, json.Unmarshal([]byte(lines[5]), &row))
	assert.Equal(t, row.PreviousImage, "shop/worker:1")
	assert.Equal(t, row.UpdateState, "completed")
	assert.Equal(t, row.Time, "2026-12-03T08:01:30.000Z")
	assert.Equal(t, row.Revision, 0)
	assert.Equal(t, row.Role, "app")
	row = swarmHistoryJSON{}
	assert.NilError(t, json.Unmarshal([]byte(lines[2]), &row))
	assert.Equal(t, row.PreviousImage, "-")
	assert.Equal(t, row.Time, "")
	row = swarmHistoryJSON{}
	assert.NilError(t, json.Unmarshal([]byte(lines[1]), &row))
	assert.DeepEqual(t, []any{row.Service, row.Revision, row.Role, row.SwarmService}, []any{"api", 3, "app", "shop_api-r3"})
	row = swarmHistoryJSON{}
	assert.NilError(t, json.Unmarshal([]byte(lines[3]), &row))
	assert.DeepEqual(t, []any{row.Service, row.Revision, row.Role, row.SwarmService}, []any{"router", 0, "router", "shop_lifecycle-router"})
}
