package compose

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/swarm"
)

// Swarm cannot change a secret or config in place (moby#33808, moby#35048): each value
// is an object of its own, named after the hash of its content, so a changed value is a
// new name in the service spec and Swarm rolls the services that use it.

// Kinds of Swarm objects (the same words as engine.SwarmSecret and engine.SwarmConfig).
const (
	SwarmSecret = "secret"
	SwarmConfig = "config"
)

// LabelSwarmObject is the compose name of a secret or config on its Swarm versions: the
// deploy removes the versions no service of the project references any more only among
// the objects carrying it.
const LabelSwarmObject = "io.lifecycle.swarm.name"

// swarmObjectHashLen is how many hex digits of the value's sha256 name a version.
const swarmObjectHashLen = 8

// Swarm's limits on a secret's or config's name (swarmkit's validation).
var swarmObjectNameRE = regexp.MustCompile(`^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$`)

const swarmObjectNameMax = 64

// SwarmObjectKey names a secret or config of the project: its kind and compose name.
type SwarmObjectKey struct{ Kind, Name string }

func (k SwarmObjectKey) String() string { return k.Kind + " " + k.Name }

// SwarmObject is one version of a secret or config a deploy to Swarm needs. It never
// holds the value.
type SwarmObject struct {
	SwarmObjectKey
	// SwarmName is <project>_<name>_<first 8 hex digits of the value's sha256>.
	SwarmName string
	Labels    map[string]string
	// Services are the compose services that reference it.
	Services []string
}

// SwarmVersions maps each secret and config the deployed services reference to the
// Swarm name of its current version.
type SwarmVersions map[SwarmObjectKey]string

// SwarmObjectName is the Swarm name of the version of a secret or config whose value is
// value.
func SwarmObjectName(project, name string, value []byte) string {
	sum := sha256.Sum256(value)
	return project + "_" + name + "_" + hex.EncodeToString(sum[:])[:swarmObjectHashLen]
}

// NewSwarmObject is the version of the project's secret or config whose value is value,
// labelled as `docker stack deploy` labels its objects plus LabelSwarmObject; labels of
// the top-level definition are kept. A name Swarm would refuse is an error.
func NewSwarmObject(p *Project, key SwarmObjectKey, value []byte, services []string) (SwarmObject, error) {
	name := SwarmObjectName(p.Name, key.Name, value)
	if len(name) > swarmObjectNameMax || !swarmObjectNameRE.MatchString(name) {
		return SwarmObject{}, fmt.Errorf("%s: its Swarm name %s is not valid (at most %d letters, digits, '-', '_' or '.'): shorten the project or %s name", key, name, swarmObjectNameMax, key.Kind)
	}
	labels := map[string]string{}
	var defined map[string]string
	if key.Kind == SwarmSecret {
		defined = p.Project.Secrets[key.Name].Labels
	} else {
		defined = p.Project.Configs[key.Name].Labels
	}
	for k, v := range defined {
		labels[k] = v
	}
	labels[LabelStackNamespace] = p.Name
	labels[LabelSwarmObject] = key.Name
	return SwarmObject{SwarmObjectKey: key, SwarmName: name, Labels: labels, Services: services}, nil
}

// SwarmObjectRefs lists the secrets and configs the services reference, each once, in
// the order first met, with the services that use it.
func SwarmObjectRefs(p *Project, services []string) (keys []SwarmObjectKey, users map[SwarmObjectKey][]string) {
	users = map[SwarmObjectKey][]string{}
	add := func(k SwarmObjectKey, service string) {
		if _, seen := users[k]; !seen {
			keys = append(keys, k)
		}
		if u := users[k]; len(u) == 0 || u[len(u)-1] != service {
			users[k] = append(u, service)
		}
	}
	for _, name := range services {
		svc := p.Project.Services[name]
		for _, ref := range svc.Secrets {
			add(SwarmObjectKey{SwarmSecret, ref.Source}, name)
		}
		for _, ref := range svc.Configs {
			add(SwarmObjectKey{SwarmConfig, ref.Source}, name)
		}
	}
	return keys, users
}

// ConfigValue is the value of the project's config name: its content (compose-go puts an
// environment config's value there too), its environment variable, or its file.
func ConfigValue(p *Project, name string) ([]byte, error) {
	cfg, ok := p.Project.Configs[name]
	switch {
	case !ok:
		return nil, fmt.Errorf("config %q is not defined in the top-level configs", name)
	case cfg.Content != "":
		return []byte(cfg.Content), nil
	case cfg.Environment != "":
		v, ok := p.Environment[cfg.Environment]
		if !ok {
			return nil, fmt.Errorf("config %q: environment variable %s is not set", name, cfg.Environment)
		}
		return []byte(v), nil
	case cfg.File != "":
		file := cfg.File
		if !path.IsAbs(file) {
			file = path.Join(p.WorkingDir, file)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("config %q: %w", name, err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("config %q has no source: set file, environment or content", name)
}

// swarmFileRefs converts the service's secret and config references into Swarm's,
// naming the versions in versions (the IDs are filled in when the deploy runs: they
// exist only once the objects do). As `docker stack deploy`: a secret's target is a
// file name under /run/secrets (default: the secret's name), a config's an absolute
// path (default /<config name>; a relative one is under /); uid and gid default to 0,
// the mode to 0444.
func swarmFileRefs(svc types.ServiceConfig, versions SwarmVersions) ([]*swarm.SecretReference, []*swarm.ConfigReference, error) {
	var secrets []*swarm.SecretReference
	var configs []*swarm.ConfigReference
	for _, ref := range svc.Secrets {
		name := ref.Target
		if name == "" {
			name = ref.Source
		}
		if strings.HasPrefix(name, "/") {
			if path.Dir(name) != SecretsDir {
				return nil, nil, fmt.Errorf("secret %q: target %s is %w on Swarm: secrets are files directly under %s", ref.Source, name, ErrUnsupported, SecretsDir)
			}
			name = path.Base(name)
		}
		if strings.Contains(name, "/") || name == "." || name == ".." {
			return nil, nil, fmt.Errorf("secret %q: target %q must be a file name", ref.Source, name)
		}
		uid, gid, mode, err := swarmFileOwner(SwarmSecret, ref.Source, ref.UID, ref.GID, ref.Mode)
		if err != nil {
			return nil, nil, err
		}
		version, ok := versions[SwarmObjectKey{SwarmSecret, ref.Source}]
		if !ok {
			return nil, nil, fmt.Errorf("secret %q has no Swarm version (its value was not read)", ref.Source)
		}
		secrets = append(secrets, &swarm.SecretReference{SecretName: version, File: &swarm.SecretReferenceFileTarget{Name: name, UID: uid, GID: gid, Mode: mode}})
	}
	for _, ref := range svc.Configs {
		target := ref.Target
		if target == "" {
			target = "/" + ref.Source
		} else if !path.IsAbs(target) {
			target = "/" + target
		}
		uid, gid, mode, err := swarmFileOwner(SwarmConfig, ref.Source, ref.UID, ref.GID, ref.Mode)
		if err != nil {
			return nil, nil, err
		}
		version, ok := versions[SwarmObjectKey{SwarmConfig, ref.Source}]
		if !ok {
			return nil, nil, fmt.Errorf("config %q has no Swarm version (its value was not read)", ref.Source)
		}
		configs = append(configs, &swarm.ConfigReference{ConfigName: version, File: &swarm.ConfigReferenceFileTarget{Name: target, UID: uid, GID: gid, Mode: mode}})
	}
	return secrets, configs, nil
}

func swarmFileOwner(kind, source, uid, gid string, mode *types.FileMode) (string, string, os.FileMode, error) {
	for _, id := range []*string{&uid, &gid} {
		if *id == "" {
			*id = "0"
		}
		if _, err := strconv.ParseUint(*id, 10, 32); err != nil {
			return "", "", 0, fmt.Errorf("%s %q: uid and gid must be numbers, got %q", kind, source, *id)
		}
	}
	m := os.FileMode(0o444)
	if mode != nil {
		m = os.FileMode(*mode)
	}
	return uid, gid, m, nil
}
