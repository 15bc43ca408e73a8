package rollout

import (
	"fmt"
	"slices"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

// swarmImageProblems checks, before a Swarm update starts, that the images of the
// services it creates or updates can be on the nodes that will run their tasks. A node
// that lacks an image tries to pull it; an image that no registry holds fails the task
// there, and Swarm only notices after the update's monitor and rolls back. A manager's
// engine shows its own images only, so:
//   - on a one-node swarm an image missing here is a certain failure: an error;
//   - on a larger swarm, an image missing here, or present here with no registry digest
//     (built or loaded, never pushed), can only be on the other nodes if someone loaded
//     it there: a warning that names the image, so the user checks those nodes.
//
// Every service is reported at once.
func swarmImageProblems(p *compose.Project, services []string, images Images, node engine.SwarmInfo) (errs []error, warnings []string) {
	for _, name := range slices.Sorted(slices.Values(services)) {
		ref := compose.ImageRef(p, name)
		img, here := images[ref]
		switch {
		case !here && node.Nodes <= 1:
			errs = append(errs, fmt.Errorf("service %q: node %s, the swarm's only node, lacks image %s: load it there (docker save %s | docker load, on that engine) or push it to a registry the node can pull from", name, node.NodeName, ref, ref))
		case !here:
			warnings = append(warnings, fmt.Sprintf("service %q: this manager (%s) lacks image %s, and %s cannot be checked from here: tasks fail on any node without it (load it there, or push it to a registry)", name, node.NodeName, ref, otherNodes(node.Nodes-1)))
		case len(img.RepoDigests) == 0 && node.Nodes > 1:
			warnings = append(warnings, fmt.Sprintf("service %q: image %s was built or loaded here and is in no registry: %s only if it was loaded there too (tasks fail on a node without it)", name, ref, otherNodesHaveIt(node.Nodes-1)))
		}
	}
	return errs, warnings
}

// otherNodes names the nodes besides this one: "the other node", "the other 3 nodes".
func otherNodes(n int) string {
	if n == 1 {
		return "the other node"
	}
	return fmt.Sprintf("the other %d nodes", n)
}

func otherNodesHaveIt(n int) string {
	if n == 1 {
		return "the other node has it"
	}
	return otherNodes(n) + " have it"
}
