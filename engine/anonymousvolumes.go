package engine

import (
	"context"
	"errors"
	"strings"
)

// ErrVolumeInUse is returned (wrapped) by RemoveVolume when a container still mounts
// the volume.
var ErrVolumeInUse = errors.New("volume in use")

// IsAnonymousVolume reports whether a volume is one the engine made for a container's
// anonymous mount (a VOLUME of its image, a compose volume without a source): named by
// 64 hex digits and carrying no Compose label, so a project's named volume (labelled, and
// named <project>_<volume>) never is one.
func IsAnonymousVolume(v Volume) bool {
	if !isHexID(v.Name) {
		return false
	}
	for k := range v.Labels {
		if strings.HasPrefix(k, "com.docker.compose.") {
			return false
		}
	}
	return true
}

func isHexID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// RemoveAnonymousVolumes removes the anonymous volumes among mounts (those of a removed
// container). `docker rm -v` removes only the anonymous volumes the engine created for
// that container, not one a replacement inherited by name (rollout/anonymousvolumes.go),
// which would otherwise be left behind. A volume another container still mounts (the
// revision kept for a rollback, the replacement that inherited it) is refused by the
// engine and stays: its last holder's removal removes it. It is best effort: a volume
// that could not be removed stays, unused, as `docker volume prune` finds it.
func RemoveAnonymousVolumes(ctx context.Context, eng Engine, mounts []Mount) {
	for _, m := range mounts {
		if m.Type != "volume" || !isHexID(m.Name) {
			continue
		}
		v, err := eng.InspectVolume(ctx, m.Name)
		if err != nil || !IsAnonymousVolume(v) {
			continue // gone already (the engine removed its own), or not anonymous
		}
		_ = eng.RemoveVolume(ctx, m.Name) // in use or gone meanwhile: see above
	}
}
