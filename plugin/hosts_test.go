package plugin

import (
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
)

func TestHostNames(t *testing.T) {
	p := &compose.Project{Spec: compose.ProjectSpec{Hosts: compose.HostsSpec{Contexts: []string{"a", "b"}}}}
	got, err := hostNames(nil, p)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(got, []string{"a", "b"}), "x-lifecycle.hosts when no --hosts")

	got, err = hostNames([]string{"c"}, p)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(got, []string{"c"}), "--hosts replaces x-lifecycle.hosts")

	got, err = hostNames(nil, nil)
	assert.NilError(t, err)
	assert.Check(t, is.Len(got, 0), "-p NAME alone: the current context")

	_, err = hostNames([]string{"a", ""}, p)
	assert.Check(t, is.ErrorContains(err, `--hosts: an empty context name in "a,"`))
	_, err = hostNames([]string{"a", "a"}, p)
	assert.Check(t, is.ErrorContains(err, `--hosts: context "a" is named twice`))
}
