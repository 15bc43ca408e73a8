package rollout

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"filippo.io/age"
)

// EncryptionAge is the manifest's `encryption` of archives encrypted with age.
const EncryptionAge = "age"

// ageSuffix is appended to the name of an encrypted archive.
const ageSuffix = ".age"

// ErrIdentityNeeded marks a restore of an encrypted backup without a matching identity.
var ErrIdentityNeeded = errors.New("the backup is encrypted")

// RecipientsFile is a recipients file's name and content (one recipient a line, like age -R).
type RecipientsFile struct {
	Name    string
	Content string
}

// ParseRecipients parses --encrypt-to values and recipients files (blank lines and
// lines starting with # skipped) into age recipients, reporting every bad one at once.
// A line holding a secret key is never echoed back.
func ParseRecipients(args []string, files []RecipientsFile) ([]age.Recipient, error) {
	var out []age.Recipient
	var errs []error
	parse := func(where, s string) {
		if strings.HasPrefix(strings.ToUpper(s), "AGE-SECRET-KEY-") {
			errs = append(errs, fmt.Errorf("%s: this is an age identity (a secret key), not a recipient: pass its public key (`age-keygen -y FILE` prints it)", where))
			return
		}
		// age.ParseRecipients on one line uses age's own recipient parsing (X25519
		// and the post-quantum hybrid age1pq1… recipients).
		r, err := age.ParseRecipients(strings.NewReader(s))
		if err != nil || len(r) != 1 {
			errs = append(errs, fmt.Errorf("%s: %q is not an age recipient (want age1…)", where, s))
			return
		}
		out = append(out, r[0])
	}
	for _, a := range args {
		parse("--encrypt-to", strings.TrimSpace(a))
	}
	for _, f := range files {
		n := 0
		for i, line := range strings.Split(f.Content, "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			n++
			parse(fmt.Sprintf("--encrypt-to-file %s line %d", f.Name, i+1), line)
		}
		if n == 0 {
			errs = append(errs, fmt.Errorf("--encrypt-to-file %s: no recipient in the file", f.Name))
		}
	}
	return out, errors.Join(errs...)
}

// ParseIdentities reads an age identity file (like age -i; AGE-SECRET-KEY-1… lines).
func ParseIdentities(name string, r io.Reader) ([]age.Identity, error) {
	ids, err := age.ParseIdentities(r)
	if err != nil {
		return nil, fmt.Errorf("--identity %s: %w", name, err)
	}
	return ids, nil
}

// decryptArchive returns the plaintext of an archive, decrypting it when the manifest
// says it is encrypted.
func decryptArchive(m Manifest, r io.Reader, identities []age.Identity) (io.Reader, error) {
	switch m.Encryption {
	case "", "none":
		return r, nil
	case EncryptionAge:
		if len(identities) == 0 {
			return nil, fmt.Errorf("%w with age: pass --identity FILE, the age identity file of a recipient it was encrypted to", ErrIdentityNeeded)
		}
		d, err := age.Decrypt(r, identities...)
		var noMatch *age.NoIdentityMatchError
		if errors.As(err, &noMatch) {
			return nil, fmt.Errorf("%w with age to other recipients than the identities given: pass --identity FILE, the age identity file of a recipient it was encrypted to", ErrIdentityNeeded)
		}
		return d, err
	default:
		return nil, fmt.Errorf("encryption %q is not one this version reads (age)", m.Encryption)
	}
}
