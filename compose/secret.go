package compose

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

// SecretsDir is where a service's secrets are delivered, on a tmpfs.
const SecretsDir = "/run/secrets"

// RoleSecrets marks the small container that holds a service container's secrets
// tmpfs mounted (label LabelRole), so the secrets survive its restarts.
const RoleSecrets = "secrets"

// Secret source kinds.
const (
	SecretFile        = "file"
	SecretEnvironment = "environment"
	SecretExec        = "exec"
)

// SecretSource is where a secret's value comes from.
type SecretSource struct {
	Kind string
	// Ref is the file path, the variable name or the command; never the value.
	Ref string
}

// secretSpec is the x-lifecycle block of a top-level secret.
type secretSpec struct {
	Exec string `mapstructure:"exec"`
}

// SecretSourceOf reads a top-level secret's source: x-lifecycle's exec when set (the
// secret's compose file or environment is then what plain `docker compose` uses),
// else compose's file or environment.
func SecretSourceOf(name string, cfg types.FileObjectConfig) (SecretSource, error) {
	var spec secretSpec
	if err := decodeStrict(cfg.Extensions[ExtensionKey], &spec); err != nil {
		return SecretSource{}, fmt.Errorf("secret %q: %w: %w", name, ErrInvalidSpec, err)
	}
	switch {
	case spec.Exec != "":
		return SecretSource{SecretExec, spec.Exec}, nil
	case bool(cfg.External):
		return SecretSource{}, fmt.Errorf("secret %q: external secrets are %w (they are Swarm's); use file, environment or x-lifecycle.exec", name, ErrUnsupported)
	case cfg.File != "":
		return SecretSource{SecretFile, cfg.File}, nil
	case cfg.Environment != "":
		return SecretSource{SecretEnvironment, cfg.Environment}, nil
	}
	return SecretSource{}, fmt.Errorf("secret %q has no source: set file, environment or x-lifecycle.exec", name)
}

// SecretFileSpec is one secret as a service receives it.
type SecretFileSpec struct {
	Secret string // the top-level secret
	Name   string // the file name under SecretsDir
	Mode   uint32
	UID    int
	GID    int
}

// ServiceSecrets lists the secret files of a service: target relative to SecretsDir,
// mode 0400 unless set, owned by the uid/gid given, else the service's numeric user,
// else the image's (imageUser, "" when unknown), else root.
func ServiceSecrets(p *Project, service, imageUser string) ([]SecretFileSpec, error) {
	svc := p.Project.Services[service]
	var out []SecretFileSpec
	user := svc.User
	if user == "" {
		user = imageUser
	}
	defUID, defGID, err := numericUser(user)
	if err != nil {
		return nil, fmt.Errorf("service %q: secrets: %w", service, err)
	}
	for _, ref := range svc.Secrets {
		if _, ok := p.Project.Secrets[ref.Source]; !ok {
			return nil, fmt.Errorf("service %q: secret %q is not defined in the top-level secrets", service, ref.Source)
		}
		name := ref.Target
		if name == "" {
			name = ref.Source
		}
		if strings.HasPrefix(name, "/") {
			if path.Dir(name) != SecretsDir {
				return nil, fmt.Errorf("service %q: secret %q: target %s is %w: secrets are files directly under %s", service, ref.Source, name, ErrUnsupported, SecretsDir)
			}
			name = path.Base(name)
		}
		if strings.Contains(name, "/") || name == "." || name == ".." {
			return nil, fmt.Errorf("service %q: secret %q: target %q must be a file name", service, ref.Source, name)
		}
		f := SecretFileSpec{Secret: ref.Source, Name: name, Mode: 0o400, UID: defUID, GID: defGID}
		if ref.Mode != nil {
			f.Mode = uint32(*ref.Mode)
		}
		if ref.UID != "" {
			if f.UID, err = strconv.Atoi(ref.UID); err != nil {
				return nil, fmt.Errorf("service %q: secret %q: uid %q must be a number", service, ref.Source, ref.UID)
			}
		}
		if ref.GID != "" {
			if f.GID, err = strconv.Atoi(ref.GID); err != nil {
				return nil, fmt.Errorf("service %q: secret %q: gid %q must be a number", service, ref.Source, ref.GID)
			}
		}
		out = append(out, f)
	}
	return out, nil
}

// numericUser reads "uid[:gid]"; a user name cannot be resolved without the image's
// /etc/passwd, so secrets of such a service need uid and gid in the secret reference.
func numericUser(user string) (uid, gid int, err error) {
	if user == "" {
		return 0, 0, nil
	}
	u, g, hasGroup := strings.Cut(user, ":")
	if uid, err = strconv.Atoi(u); err != nil {
		return 0, 0, fmt.Errorf("user %q is not numeric: set uid and gid on the secret reference", user)
	}
	gid = uid
	if hasGroup {
		if gid, err = strconv.Atoi(g); err != nil {
			return 0, 0, fmt.Errorf("user %q: group is not numeric: set gid on the secret reference", user)
		}
	}
	return uid, gid, nil
}

// SecretsHolderName and SecretsVolume name a container's secrets holder and tmpfs.
func SecretsHolderName(container string) string { return container + "-secrets" }

// SecretsVolume is the tmpfs volume of a container's secrets.
func SecretsVolume(container string) string { return container + "_secrets" }

// validateSecrets checks every secret a service uses, at load time: sources and
// targets, so a bad one stops a deploy before any engine call.
func validateSecrets(p *Project) error {
	for _, name := range p.ServiceNames() {
		if _, err := ServiceSecrets(p, name, ""); err != nil {
			return err
		}
		for _, ref := range p.Project.Services[name].Secrets {
			if _, err := SecretSourceOf(ref.Source, types.FileObjectConfig(p.Project.Secrets[ref.Source])); err != nil {
				return err
			}
		}
	}
	return nil
}
