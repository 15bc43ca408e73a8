package strategies

import (
	"fmt"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

// keepsAnonymousVolumes is the note a recreate create step carries when the new
// container takes over the anonymous volumes the service declares (`volumes: [/cache]`)
// from the container it replaces, as `docker compose up` does (the executor does it,
// rollout/anonymousvolumes.go). The image's VOLUMEs are taken over too, but the plan,
// which reads no image, cannot name them; "" when there is nothing to note.
func keepsAnonymousVolumes(svc types.ServiceConfig, replaced []ObservedContainer, number int) string {
	var old string
	for _, c := range replaced {
		if c.Number == number {
			old = c.Name
		}
	}
	if old == "" {
		return ""
	}
	var paths []string
	for _, v := range svc.Volumes {
		if v.Type == types.VolumeTypeVolume && v.Source == "" {
			paths = append(paths, v.Target)
		}
	}
	switch len(paths) {
	case 0:
		return ""
	case 1:
		return fmt.Sprintf("keeps the anonymous volume at %s of %s", paths[0], old)
	}
	return fmt.Sprintf("keeps the anonymous volumes at %s of %s", strings.Join(paths, ", "), old)
}
