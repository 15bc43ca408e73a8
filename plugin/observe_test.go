package plugin

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

func statsReportFixture() rollout.StatsReport {
	c := rollout.ContainerStats{Name: "p-web-r2-1", Service: "web", Revision: 2, Number: 1,
		Usage: rollout.Usage{Containers: 1, CPUPercent: 12.345, MemoryBytes: 64 << 20, MemoryLimitBytes: 256 << 20, MemoryPercent: 25, Sampled: true, Health: "healthy",
			Traffic: &rollout.RouterTraffic{RequestsPerSecond: 10, P50Ms: 1.5, P99Ms: 9}}}
	router := rollout.ContainerStats{Name: "p-lifecycle-router", Service: "router", Usage: rollout.Usage{Containers: 1}}
	return rollout.StatsReport{Project: "p", Services: []rollout.ServiceStats{
		{Service: "router", Total: router.Usage, Revisions: []rollout.RevisionStats{{Containers: []rollout.ContainerStats{router}}}},
		{Service: "web", Total: rollout.Usage{Containers: 1, Health: "1/1", Sampled: true, CPUPercent: 12.345, Traffic: &rollout.RouterTraffic{RequestsPerSecond: 10, P99Ms: 9}},
			Revisions: []rollout.RevisionStats{{Revision: 2, Containers: []rollout.ContainerStats{c}}}},
	}}
}

func TestStatsTemplateRows(t *testing.T) {
	var b bytes.Buffer
	assert.NilError(t, writeStats(&b, "{{.Service}} {{.Revision}} {{.Name}} {{.CPUPerc}} {{.Health}} {{.Requests}} {{.P99}}", false, statsReportFixture()))
	assert.Check(t, is.Equal(b.String(), strings.Join([]string{
		"router - p-lifecycle-router -- - - -",
		"router * total -- - - -",
		"web 2 p-web-r2-1 12.35% healthy 10.0 9.00ms",
		"web * total 12.35% 1/1 10.0 9.00ms",
	}, "\n")+"\n"))
	b.Reset()
	assert.NilError(t, writeStats(&b, "table", false, statsReportFixture()))
	assert.Check(t, is.Contains(b.String(), "MEM USAGE / LIMIT"))
	assert.Check(t, is.Contains(b.String(), "64MiB / 256MiB"))
}

func TestStatsJSONIsOneObjectPerReport(t *testing.T) {
	var b bytes.Buffer
	assert.NilError(t, writeStats(&b, "json", false, statsReportFixture()))
	assert.Check(t, is.Equal(strings.Count(b.String(), "\n"), 1))
	var doc map[string]any
	assert.NilError(t, json.Unmarshal(b.Bytes(), &doc))
	svc := doc["services"].([]any)[1].(map[string]any)
	assert.Check(t, is.Equal(svc["service"], "web"))
	c := svc["revisions"].([]any)[0].(map[string]any)["containers"].([]any)[0].(map[string]any)
	assert.Check(t, is.Equal(c["cpu_percent"], 12.345))
	assert.Check(t, is.Equal(c["traffic"].(map[string]any)["p99_ms"], 9.0))
}

func TestLogPrinter(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	entry := func(service string, rev int, text string) rollout.LogEntry {
		return rollout.LogEntry{Service: service, Revision: rev, Number: 1, Container: "p-" + service, LogLine: engine.LogLine{Time: at, Stream: "stdout", Text: text}}
	}
	var b bytes.Buffer
	p := &logPrinter{out: &b, colors: map[string]string{}}
	assert.NilError(t, p.print(entry("web", 2, "hello")))
	assert.NilError(t, p.print(entry("router", 0, "x")))
	assert.Check(t, is.Equal(b.String(), "web-r2-1  | hello\nrouter    | x\n"))

	b.Reset()
	p = &logPrinter{out: &b, color: true, timestamps: true, colors: map[string]string{}}
	assert.NilError(t, p.print(entry("web", 2, "hello")))
	assert.Check(t, is.Equal(b.String(), "\033[36mweb-r2-1  | \033[0m2026-01-02T03:04:05.000000006Z hello\n"))

	b.Reset()
	p = &logPrinter{out: &b, json: true}
	e := entry("web", 2, `{"level":"warn","seq":3,"service":"theirs"}`)
	e.Fields = map[string]json.RawMessage{"level": json.RawMessage(`"warn"`), "seq": json.RawMessage(`3`), "service": json.RawMessage(`"theirs"`)}
	assert.NilError(t, p.print(e))
	assert.NilError(t, p.print(entry("web", 2, "plain")))
	assert.Check(t, is.Equal(b.String(),
		`{"container":"p-web","level":"warn","revision":2,"seq":3,"service":"web"}`+"\n"+
			`{"container":"p-web","message":"plain","revision":2,"service":"web","stream":"stdout"}`+"\n"))
}

func TestParseLogTime(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	got, err := parseLogTime("10m", now)
	assert.NilError(t, err)
	assert.Check(t, got.Equal(now.Add(-10*time.Minute)))
	got, err = parseLogTime("2026-01-02T03:00:00Z", now)
	assert.NilError(t, err)
	assert.Check(t, got.Equal(time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)))
	got, err = parseLogTime("1767323045", now)
	assert.NilError(t, err)
	assert.Check(t, got.Equal(time.Unix(1767323045, 0)))
	_, err = parseLogTime("yesterday", now)
	assert.Check(t, err != nil)
}
