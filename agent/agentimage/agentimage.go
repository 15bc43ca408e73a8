// Package agentimage creates the agent image on the engine from the static agent binaries
// embedded in the plugin: a FROM scratch image streamed through the API, tagged by the
// binary's content digest, so no registry is ever needed and each engine builds it once.
package agentimage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/internal/scratchimage"
)

// Repository is the image repository of the agent; the tag is a content digest.
const Repository = "docker-lifecycle-agent"

// LabelAgent marks agent images, so they can be found and pruned.
const LabelAgent = "io.lifecycle.agent"

// ErrNoBinary means the plugin was built without the agent binary for an architecture.
var ErrNoBinary = errors.New("no agent binary embedded for this architecture")

//go:embed bin
var binaries embed.FS

// Binary returns the embedded agent binary for a Linux architecture (amd64, arm64).
func Binary(arch string) ([]byte, error) {
	b, err := fs.ReadFile(binaries, "bin/agent-linux-"+arch)
	if err != nil {
		return nil, fmt.Errorf("%w: linux/%s (build the plugin with `make build`, which builds the agent first)", ErrNoBinary, arch)
	}
	return b, nil
}

// Tag is the image reference of an agent binary: its content digest, so a new plugin
// version with a new agent gets a new image and an old one is never reused by mistake.
func Tag(binary []byte) string {
	sum := sha256.Sum256(append([]byte(dockerfile), binary...))
	return Repository + ":" + hex.EncodeToString(sum[:])[:16]
}

// TagFor is the agent image reference for an engine architecture (as Ensure names it),
// without building anything: a plan compares it with what runs.
func TagFor(arch string) (string, error) {
	bin, err := Binary(normalizeArch(arch))
	if err != nil {
		return "", err
	}
	return Tag(bin), nil
}

// Ensure returns the agent image for the engine's architecture, building it first if the
// engine does not have it yet.
func Ensure(ctx context.Context, eng engine.Engine, arch string) (string, error) {
	bin, err := Binary(normalizeArch(arch))
	if err != nil {
		return "", err
	}
	tag := Tag(bin)
	if _, err := eng.InspectImage(ctx, tag); err == nil {
		return tag, nil
	} else if !errors.Is(err, engine.ErrNotFound) {
		return "", err
	}
	buildContext, err := buildContext(bin)
	if err != nil {
		return "", err
	}
	if err := eng.BuildImage(ctx, buildContext, tag, map[string]string{LabelAgent: "true"}); err != nil {
		return "", fmt.Errorf("create agent image %s: %w", tag, err)
	}
	return tag, nil
}

// normalizeArch maps the engine's reported architecture (uname style) to Go's.
func normalizeArch(arch string) string {
	switch strings.ToLower(arch) {
	case "x86_64", "amd64":
		return "amd64"
	case "aarch64", "arm64":
		return "arm64"
	}
	return arch
}

// dockerfile is part of the image's tag (see Tag): a change here makes a new image.
// /state belongs to the agent's user, so a new volume mounted there (the router's
// state) is initialized with that owner and the router needs no root.
const dockerfile = "FROM scratch\nCOPY agent /agent\nCOPY --chown=65534:65534 state /state\nUSER 65534:65534\nENTRYPOINT [\"/agent\"]\n"

func buildContext(bin []byte) (*bytes.Buffer, error) {
	return scratchimage.Context(dockerfile, scratchimage.File{Name: "state/", Mode: 0o755}, scratchimage.File{Name: "agent", Mode: 0o755, Data: bin})
}
