// Command docker-lifecycle is the docker lifecycle CLI plugin.
package main

import (
	"github.com/docker/cli/cli-plugins/plugin"

	lifecycle "github.com/docker-lifecycle/docker-lifecycle/plugin"
)

func main() {
	plugin.Run(lifecycle.NewRootCommand, lifecycle.Metadata())
}
