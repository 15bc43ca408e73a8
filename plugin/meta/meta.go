// Package meta is what the docker CLI asks the plugin about itself: its version and its
// metadata. It answers the CLI's metadata probe while the program is still initialising.
//
// The docker CLI runs every plugin command twice: first `docker-lifecycle
// docker-cli-plugin-metadata` to validate the plugin, then the command. Go initialises
// every imported package before main runs, and the plugin's dependencies cost about half
// of a process's CPU in their init functions (compose-go's JSON-schema library alone
// compiles five meta-schemas, about a quarter; regexps in distribution/reference, otel
// and grpc most of the rest). Answering from main would skip only the cobra tree and
// docker/cli's set-up, a few per cent. This package imports nothing heavy, so the Go
// initialisation order (dependencies first, then by import path) runs its init before
// those packages, and the probe exits there. docs/benchmarks.md, section 1, has the
// numbers.
package meta

import (
	"encoding/json"
	"io"
	"os"

	"github.com/docker/cli/cli-plugins/metadata"
)

// Version is set at build time with -ldflags "-X …/plugin/meta.Version=v1.2.3".
var Version = "v0.1.0-dev"

// Metadata describes the plugin to the docker CLI (`docker info`, `docker --help`).
func Metadata() metadata.Metadata {
	return metadata.Metadata{
		SchemaVersion:    "0.1.0",
		Vendor:           "docker lifecycle",
		Version:          Version,
		ShortDescription: "Production deploys of compose projects",
		URL:              "https://github.com/docker-lifecycle/docker-lifecycle",
	}
}

// The probe is exactly `PLUGIN docker-cli-plugin-metadata` (docker/cli's
// pluginmanager); anything else, extra arguments included, goes on to docker/cli's
// plugin.Run, which serves the same subcommand.
func init() {
	if len(os.Args) == 2 && os.Args[1] == metadata.MetadataSubcommandName {
		if err := WriteMetadata(os.Stdout); err != nil {
			os.Stderr.WriteString("docker lifecycle: writing the plugin metadata: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
}

// WriteMetadata writes the metadata as docker/cli's plugin.Run does for the
// docker-cli-plugin-metadata subcommand.
func WriteMetadata(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "     ")
	return enc.Encode(Metadata())
}
