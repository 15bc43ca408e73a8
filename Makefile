# docker lifecycle: build, install, test, demo.
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo v0.1.0-dev)
LDFLAGS   := -s -w -X github.com/docker-lifecycle/docker-lifecycle/plugin/meta.Version=$(VERSION)
PLUGINDIR ?= $(HOME)/.docker/cli-plugins
BIN       := bin/docker-lifecycle

AGENT_LDFLAGS := -s -w -X main.version=$(VERSION)
AGENT_BINS    := agent/agentimage/bin/agent-linux-amd64 agent/agentimage/bin/agent-linux-arm64

.PHONY: build agent install test unit e2e fuzz demo demo-down lint bench bench-rollout clean bench-router bench-compare

# compose-go and its schema validator with two small changes (internal/modulepatch;
# docs/benchmarks.md, sections 2b and 28): every go command of this Makefile builds
# against patched copies of the modules from the module cache, through a Go workspace
# generated from it. A plain `go build` outside make builds the unpatched modules: the
# same results, a slower start and load.
PATCHED_WORK := $(CURDIR)/build/modulepatch/go.work
export GOWORK := $(PATCHED_WORK)

$(PATCHED_WORK): go.mod go.sum $(wildcard internal/modulepatch/*.go internal/modulepatch/cmd/modulepatch/*.go)
	GOWORK=off $(GO) run ./internal/modulepatch/cmd/modulepatch -out build/modulepatch >/dev/null

# The agent binaries are embedded into the plugin, so they are built first.
agent: $(PATCHED_WORK)
	for arch in amd64 arm64; do \
	  CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags '$(AGENT_LDFLAGS)' \
	    -o agent/agentimage/bin/agent-linux-$$arch ./cmd/lifecycle-agent || exit 1; \
	done

build: agent
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/docker-lifecycle

install: build
	mkdir -p $(PLUGINDIR)
	install -m 0755 $(BIN) $(PLUGINDIR)/docker-lifecycle
	@echo "installed $(PLUGINDIR)/docker-lifecycle: try 'docker lifecycle --help'"

# e2e tests needing trivy, Compose v2 or the agent binaries skip without them (CI=1 makes
# that a failure). go test shows a passing package's output only with -v, so the e2e run
# writes its skip summary ("e2e: skipped N tests needing trivy: set …") to a file that
# the target prints at the end.
# The e2e tests' durations, longest first, go to another file: the target prints the
# 15 longest (where CI's 30 minutes go; parallel tests overlap).
E2E_SKIPPED := $(CURDIR)/bin/e2e-skipped.txt
E2E_DURATIONS := $(CURDIR)/bin/e2e-durations.txt
define with_skip_summary
	@mkdir -p bin && rm -f $(E2E_SKIPPED) $(E2E_DURATIONS)
	LIFECYCLE_E2E_SKIPPED=$(E2E_SKIPPED) LIFECYCLE_E2E_DURATIONS=$(E2E_DURATIONS) $(1); status=$$?; cat $(E2E_SKIPPED) 2>/dev/null; \
	  if [ -s $(E2E_DURATIONS) ]; then echo "e2e: the 15 longest tests (all in $(E2E_DURATIONS)):"; head -n 15 $(E2E_DURATIONS); fi; exit $$status
endef

# Unit and e2e tests; the e2e tests run the built plugin through the real docker CLI on
# the engine of the current context and clean up everything they create.
test: agent
	$(call with_skip_summary,$(GO) test -count=1 -parallel 3 -timeout 40m ./...)

unit: agent
	$(GO) test -count=1 -short ./...

e2e: agent
	$(call with_skip_summary,$(GO) test -count=1 -parallel 3 -timeout 40m -run . ./e2e/...)

fuzz: $(PATCHED_WORK)
	$(GO) test ./compose/ -run '^$$' -fuzz FuzzDecodeServiceSpec -fuzztime 15s
	$(GO) test ./compose/ -run '^$$' -fuzz FuzzDecodeProjectSpec -fuzztime 15s

# Builds and installs the plugin, builds the demo images on the engine, and deploys
# examples/demo; then a v2 rollout of its web service.
demo: install
	$(GO) run ./internal/testimage/cmd/build-testapp-image lifecycle-demo:v1=v1 lifecycle-demo:v2=v2
	cd examples/demo && docker lifecycle deploy
	cd examples/demo && docker lifecycle ps
	@echo
	@echo "web answers on http://127.0.0.1:8080/ :"; curl -s http://127.0.0.1:8080/
	@echo "rolling web to v2 behind the router, under 100 req/s of load (every request counted):"
	cd examples/demo && WEB_VERSION=v2 docker lifecycle plan
	$(GO) build -o bin/benchload ./internal/benchload/cmd/benchload
	bin/benchload -url http://127.0.0.1:8080/ -rate 100 -duration 20s -warmup 0s > bin/demo-load.txt 2>&1 & \
	  load=$$!; sleep 1; (cd examples/demo && WEB_VERSION=v2 docker lifecycle deploy); deployed=$$?; \
	  wait $$load; echo "load during the rollout: $$(cat bin/demo-load.txt)"; exit $$deployed
	@curl -s http://127.0.0.1:8080/
	@echo
	cd examples/demo && docker lifecycle history web
	@echo "the rollout's timeline (events and the router's per-second counters, kept with the revision):"
	cd examples/demo && docker lifecycle history web --timeline | head -n 24
	cd examples/demo && docker lifecycle stats --no-stream
	@echo "Prometheus metrics from 'docker lifecycle monitor' (started, scraped once, stopped):"
	cd examples/demo && { docker lifecycle monitor --listen 127.0.0.1:9464 & mon=$$!; \
	  for i in 1 2 3 4 5 6 7 8 9 10; do sleep 1; curl -sf http://127.0.0.1:9464/metrics > ../../bin/demo-metrics.txt && \
	    grep -q '^lifecycle_container_memory_usage_bytes' ../../bin/demo-metrics.txt && break; done; kill $$mon; wait $$mon; }; \
	  grep -E '^lifecycle_(container_memory_usage_bytes|route_requests_total|service_revision)' ../../bin/demo-metrics.txt | head -8
	cd examples/demo && docker lifecycle logs --tail 5 web
	@echo "the guard (heals unhealthy containers; here it reports a docker exec into web):"
	cd examples/demo && { docker lifecycle guard > ../../bin/demo-guard.txt 2>&1 & guard=$$!; sleep 2; \
	  docker exec $$(docker ps -q --filter label=com.docker.compose.project=lifecycle-demo --filter label=com.docker.compose.service=web | head -1) \
	    /testapp healthcheck http://127.0.0.1:8080/ > /dev/null; sleep 2; kill $$guard; wait $$guard || true; }; cat ../../bin/demo-guard.txt
	@echo "backing up db's volume (paused during the copy) into bin/demo-backup, keeping the 3 newest backups:"
	cd examples/demo && docker lifecycle backup db --to ../../bin/demo-backup --keep-last 3
	@echo "the recovery runbook for that backup (docker lifecycle drill restores it into an isolated scratch project and times it):"
	cd examples/demo && docker lifecycle dr plan --from ../../bin/demo-backup | head -n 20
	@echo "a restore drill of that backup (restored into an isolated scratch project, started, timed, removed); history then shows it:"
	cd examples/demo && docker lifecycle --progress quiet drill ../../bin/demo-backup/latest
	cd examples/demo && docker lifecycle history web | tail -n 1
	@echo "See it:    cd examples/demo && docker lifecycle ps   (or docker compose -p lifecycle-demo ps)"
	@echo "Remove it: make demo-down"

demo-down:
	cd examples/demo && docker lifecycle down --volumes
	-docker image rm lifecycle-demo:v1 lifecycle-demo:v2

lint: $(PATCHED_WORK)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags crashhook ./plugin

bench: $(PATCHED_WORK)
	scripts/bench.sh

# Compose's `up -d` against a docker lifecycle rolling deploy, v1 → v2 under 200 req/s
# (e2e TestComposeUpDropsRequestsOnV1toV2, left out of make test for CI's time).
bench-compare: agent
	LIFECYCLE_BENCH_COMPARE=1 $(GO) test -count=1 -v -run TestComposeUpDropsRequestsOnV1toV2 ./e2e/

clean:
	rm -rf bin build $(AGENT_BINS)

# The traffic router against a direct connection, nginx and kamal-proxy (wrk, loopback
# only; installs wrk and nginx with apt-get when missing): docs/benchmarks.md, section 7.
bench-router: $(PATCHED_WORK)
	scripts/bench-router.sh

# Rollout overhead per batch of a rolling deploy (docs/benchmarks.md, section 8).
bench-rollout: install
	scripts/bench-rollout.sh
