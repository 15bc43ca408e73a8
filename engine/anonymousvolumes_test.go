package engine

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestIsAnonymousVolume(t *testing.T) {
	hex := strings.Repeat("a1", 32)
	for _, tc := range []struct {
		v    Volume
		want bool
	}{
		{Volume{Name: hex}, true},
		{Volume{Name: hex, Labels: map[string]string{"com.docker.volume.anonymous": ""}}, true},
		{Volume{Name: hex, Labels: map[string]string{"com.docker.compose.project": "demo"}}, false},
		{Volume{Name: "demo_data"}, false},
		{Volume{Name: strings.ToUpper(hex)}, false},
		{Volume{Name: hex[:63]}, false},
	} {
		assert.Check(t, is.Equal(IsAnonymousVolume(tc.v), tc.want), "%+v", tc.v)
	}
}

// TestRemoveAnonymousVolumes: only anonymous volumes are removed; one still in use (the
// engine refuses) or gone is left without a word.
func TestRemoveAnonymousVolumes(t *testing.T) {
	free, used, gone := strings.Repeat("1", 64), strings.Repeat("2", 64), strings.Repeat("3", 64)
	labelled := strings.Repeat("4", 64)
	var removed []string
	f := &Fake{
		InspectVolumeFn: func(_ context.Context, name string) (Volume, error) {
			switch name {
			case gone:
				return Volume{}, fmt.Errorf("volume %s: %w", name, ErrNotFound)
			case labelled:
				return Volume{Name: name, Labels: map[string]string{"com.docker.compose.volume": "data"}}, nil
			}
			return Volume{Name: name}, nil
		},
		RemoveVolumeFn: func(_ context.Context, name string) error {
			removed = append(removed, name)
			if name == used {
				return fmt.Errorf("remove volume %s: %w", name, ErrVolumeInUse)
			}
			return nil
		},
	}
	RemoveAnonymousVolumes(context.Background(), f, []Mount{
		{Type: "volume", Name: free, Destination: "/a"},
		{Type: "volume", Name: used, Destination: "/b"},
		{Type: "volume", Name: gone, Destination: "/c"},
		{Type: "volume", Name: labelled, Destination: "/d"},
		{Type: "volume", Name: "demo_data", Destination: "/e"},
		{Type: "bind", Name: "", Destination: "/f"},
	})
	assert.Check(t, is.DeepEqual(removed, []string{free, used}))
}
