package policy

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

// secretNameParts are the (normalized) name parts that say a variable holds a secret.
var secretNameParts = []string{"PASSWORD", "PASSWD", "SECRET", "TOKEN", "API_KEY", "APIKEY", "PRIVATE_KEY", "ACCESS_KEY", "CREDENTIAL"}

// referenceSuffixes end the names of variables that point at a secret or describe it
// instead of holding it: POSTGRES_PASSWORD_FILE=/run/secrets/db is the remedy, not a leak.
var referenceSuffixes = []string{"_FILE", "_PATH", "_DIR", "_URL", "_URI", "_HOST", "_PORT", "_TTL"}

const (
	minEntropyLen  = 20  // shorter values are not judged by entropy
	minEntropyBits = 4.0 // Shannon entropy per character
)

// checkSecretsInEnv reports environment variables and labels that look like
// secrets, by name (with a literal value) or by a high-entropy value. Messages
// name the variable only: the value never leaves this function.
func checkSecretsInEnv(dst []violation, svc *types.ServiceConfig, _ *input) []violation {
	for _, k := range sortedKeys(svc.Environment) {
		if v := svc.Environment[k]; v != nil {
			dst = appendSecret(dst, "environment", k, *v)
		}
	}
	for _, k := range sortedKeys(svc.Labels) {
		dst = appendSecret(dst, "labels", k, svc.Labels[k])
	}
	return dst
}

func appendSecret(dst []violation, key, name, value string) []violation {
	switch {
	case secretName(name) && literalSecret(value):
		return append(dst, violation{Message: fmt.Sprintf("%s: %s has a literal value and its name says it is a secret", key, name)})
	case highEntropy(value):
		return append(dst, violation{Message: fmt.Sprintf("%s: %s has a high-entropy value that looks like a secret", key, name)})
	}
	return dst
}

// secretName reports whether a variable or label name says it holds a secret.
// Names are compared upper-case with '.', '-' and ' ' read as '_'.
func secretName(name string) bool {
	n := strings.Map(func(r rune) rune {
		switch r {
		case '.', '-', ' ':
			return '_'
		}
		return r
	}, strings.ToUpper(name))
	for _, suffix := range referenceSuffixes {
		if strings.HasSuffix(n, suffix) {
			return false
		}
	}
	for _, part := range secretNameParts {
		if strings.Contains(n, part) {
			return true
		}
	}
	return false
}

// literalSecret reports whether a value under a secret-looking name is one:
// not empty, not a switch (REQUIRE_PASSWORD=true), not a path into /run/secrets.
func literalSecret(v string) bool {
	v = strings.TrimSpace(v)
	switch strings.ToLower(v) {
	case "", "true", "false", "yes", "no", "on", "off", "0", "1":
		return false
	}
	return !strings.HasPrefix(v, "/run/secrets/")
}

// highEntropy reports whether v looks like a generated token: at least
// minEntropyLen characters, all base64/hex-ish ([A-Za-z0-9+/=_-]), with both
// letters and digits (which rules out words and identifiers), and at least
// minEntropyBits of Shannon entropy per character.
func highEntropy(v string) bool {
	if len(v) < minEntropyLen {
		return false
	}
	var counts [128]int
	var letter, digit bool
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
			letter = true
		case c >= '0' && c <= '9':
			digit = true
		case c == '+', c == '/', c == '=', c == '_', c == '-':
		default:
			return false
		}
		counts[c]++
	}
	return letter && digit && shannon(counts[:], len(v)) >= minEntropyBits
}

// shannon is the Shannon entropy, in bits per symbol, of n symbols with the given counts.
func shannon(counts []int, n int) float64 {
	var h float64
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / float64(n)
			h -= p * math.Log2(p)
		}
	}
	return h
}

func sortedKeys[V any](m map[string]V) []string {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
