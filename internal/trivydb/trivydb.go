// Package trivydb writes a tiny trivy vulnerability database with trivy-db's own
// packages (the version trivy v0.74.0 reads), so tests can run real trivy offline:
// `trivy --cache-dir DIR --skip-db-update --offline-scan …` then finds exactly the
// advisories the test planted.
package trivydb

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/aquasecurity/trivy-db/pkg/db"
	"github.com/aquasecurity/trivy-db/pkg/metadata"
	"github.com/aquasecurity/trivy-db/pkg/types"
	bolt "go.etcd.io/bbolt"
)

// GoAdvisory is one vulnerability of a Go module, as the GitHub advisory source has it.
type GoAdvisory struct {
	ID       string // e.g. CVE-2022-32149
	Module   string // e.g. golang.org/x/text
	Fixed    string // first fixed version, e.g. 0.3.8; vulnerable below it
	Severity string // UNKNOWN, LOW, MEDIUM, HIGH, CRITICAL
	Title    string
}

// goBucket is the advisory bucket trivy looks up for Go modules ("go::" + data source).
const goBucket = "go::GitHub Security Advisory Go"

var ghsa = types.DataSource{ID: "ghsa", Name: "GitHub Security Advisory Go", URL: "https://github.com/advisories?query=type%3Areviewed+ecosystem%3Ago"}

// Write creates cacheDir/db/trivy.db and cacheDir/db/metadata.json (schema version 2,
// next update a year ahead, so trivy never wants to download).
func Write(cacheDir string, advisories []GoAdvisory) error {
	dir := filepath.Join(cacheDir, "db")
	if err := db.Init(dir); err != nil {
		return fmt.Errorf("open trivy db: %w", err)
	}
	dbc := db.Config{}
	err := dbc.BatchUpdate(func(tx *bolt.Tx) error {
		if err := dbc.PutDataSource(tx, goBucket, ghsa); err != nil {
			return err
		}
		for _, a := range advisories {
			sev, err := types.NewSeverity(a.Severity)
			if err != nil {
				return err
			}
			adv := types.Advisory{VulnerableVersions: []string{"< " + a.Fixed}, PatchedVersions: []string{a.Fixed}}
			if err := dbc.PutAdvisory(tx, []string{goBucket, a.Module}, a.ID, &adv); err != nil {
				return err
			}
			vuln := types.Vulnerability{
				Title: a.Title, Severity: a.Severity, Description: a.Title,
				VendorSeverity: types.VendorSeverity{ghsa.ID: sev},
				References:     []string{"https://example.invalid/" + a.ID},
			}
			if err := dbc.PutVulnerability(tx, a.ID, vuln); err != nil {
				return err
			}
		}
		return nil
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write trivy db: %w", err)
	}
	now := time.Now().UTC()
	return metadata.NewClient(dir).Update(metadata.Metadata{
		Version: db.SchemaVersion, NextUpdate: now.AddDate(1, 0, 0), UpdatedAt: now, DownloadedAt: now,
	})
}
