package compose

import (
	"errors"
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

// ErrNamedUser marks a service whose secrets are owned by a user or group name: its ids
// are in the image's /etc/passwd and /etc/group, which ServiceSecrets needs (Accounts).
var ErrNamedUser = errors.New("the secrets' owner is a user name")

// Accounts are an image's users and groups, read from its /etc/passwd and /etc/group,
// to turn a service's `user: postgres` into the ids that own its secret files.
type Accounts struct {
	Users  map[string]Account // by name
	Groups map[string]int     // group name → gid
}

// Account is one line of /etc/passwd.
type Account struct{ UID, GID int }

// ParseAccounts reads /etc/passwd and /etc/group contents (either may be nil: the image
// has none); malformed lines are skipped, as the C library does.
func ParseAccounts(passwd, group []byte) *Accounts {
	a := &Accounts{Users: map[string]Account{}, Groups: map[string]int{}}
	for _, line := range strings.Split(string(passwd), "\n") {
		f := strings.Split(strings.TrimSpace(line), ":")
		if len(f) < 4 || strings.HasPrefix(f[0], "#") {
			continue
		}
		uid, err1 := strconv.Atoi(f[2])
		gid, err2 := strconv.Atoi(f[3])
		if _, seen := a.Users[f[0]]; err1 == nil && err2 == nil && !seen {
			a.Users[f[0]] = Account{UID: uid, GID: gid}
		}
	}
	for _, line := range strings.Split(string(group), "\n") {
		f := strings.Split(strings.TrimSpace(line), ":")
		if len(f) < 3 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if gid, err := strconv.Atoi(f[2]); err == nil {
			if _, seen := a.Groups[f[0]]; !seen {
				a.Groups[f[0]] = gid
			}
		}
	}
	return a
}

// ServiceSecrets lists the secret files of a service: target relative to SecretsDir,
// mode 0400 unless set, owned by the uid/gid of the secret reference, else the
// service's user, else the image's (imageUser, "" when unknown), else root. A user or
// group given by name is looked up in accounts (the image's /etc/passwd and
// /etc/group); with nil accounts such a name is an error wrapping ErrNamedUser, which
// only a reference without uid and gid meets.
func ServiceSecrets(p *Project, service, imageUser string, accounts *Accounts) ([]SecretFileSpec, error) {
	svc := p.Project.Services[service]
	var out []SecretFileSpec
	user := svc.User
	if user == "" {
		user = imageUser
	}
	defUID, defGID, ownerErr := secretOwner(user, accounts)
	var ownerNeededBy string
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
		var err error
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
		if (ref.UID == "" || ref.GID == "") && ownerNeededBy == "" {
			ownerNeededBy = ref.Source
		}
		out = append(out, f)
	}
	if ownerErr != nil && ownerNeededBy != "" {
		return nil, fmt.Errorf("service %q: secret %q: %w", service, ownerNeededBy, ownerErr)
	}
	return out, nil
}

// ownerAdvice is what to do when a secret's owner cannot be resolved.
const ownerAdvice = `set uid and gid on each secret reference (secrets: [{source: NAME, uid: "1000", gid: "1000"}]) or a numeric user (user: "1000:1000")`

// secretOwner reads "user[:group]", each numeric or a name looked up in accounts. A
// numeric user without a group gets gid = uid; a named user without a group gets its
// primary group from /etc/passwd.
func secretOwner(user string, accounts *Accounts) (uid, gid int, err error) {
	if user == "" {
		return 0, 0, nil
	}
	u, g, hasGroup := strings.Cut(user, ":")
	uid, uerr := strconv.Atoi(u)
	switch {
	case uerr == nil:
		gid = uid
	case accounts == nil:
		return 0, 0, fmt.Errorf("%w %q, read from the image's /etc/passwd at deploy time", ErrNamedUser, user)
	default:
		a, ok := accounts.Users[u]
		if !ok {
			return 0, 0, fmt.Errorf("user %q is not in the image's /etc/passwd: %s", u, ownerAdvice)
		}
		uid, gid = a.UID, a.GID
	}
	if !hasGroup {
		return uid, gid, nil
	}
	if gid, err = strconv.Atoi(g); err == nil {
		return uid, gid, nil
	}
	if accounts == nil {
		return 0, 0, fmt.Errorf("%w %q, read from the image's /etc/group at deploy time", ErrNamedUser, user)
	}
	gid, ok := accounts.Groups[g]
	if !ok {
		return 0, 0, fmt.Errorf("group %q is not in the image's /etc/group: %s", g, ownerAdvice)
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
		// A user name is resolved at deploy time, from the image: not an error here.
		if _, err := ServiceSecrets(p, name, "", nil); err != nil && !errors.Is(err, ErrNamedUser) {
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
