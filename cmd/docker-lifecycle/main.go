// Command docker-lifecycle is the docker lifecycle CLI plugin.
package main

import (
	"github.com/docker/cli/cli-plugins/plugin"

	lifecycle "github.com/docker-lifecycle/docker-lifecycle/plugin"
	"github.com/docker-lifecycle/docker-lifecycle/plugin/meta"
)

// The docker CLI's metadata probe never gets here: package meta answers it while the
// program initialises, before the heavy dependencies do.
func main() {
	plugin.Run(lifecycle.NewRootCommand, meta.Metadata())
}
