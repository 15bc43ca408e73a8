package compose

import (
	"testing"
	"time"

	"gotest.tools/v3/assert"
)

func TestDecodeScanSpec(t *testing.T) {
	tests := []struct {
		doc     string
		want    ScanSpec
		wantErr string
	}{
		{doc: "{}", want: ScanSpec{}},
		{doc: "scan: ~", want: ScanSpec{Enabled: true, FailOn: "CRITICAL", Timeout: Duration(DefaultScanTimeout)}},
		{doc: "scan: {}", want: ScanSpec{Enabled: true, FailOn: "CRITICAL", Timeout: Duration(DefaultScanTimeout)}},
		{
			doc:  "scan: {fail-on: high, ignore-unfixed: true, ignore-file: .trivyignore, timeout: 30s}",
			want: ScanSpec{Enabled: true, FailOn: "HIGH", IgnoreUnfixed: true, IgnoreFile: ".trivyignore", Timeout: Duration(30 * time.Second)},
		},
		{doc: "scan: {fail-on: none}", want: ScanSpec{Enabled: true, FailOn: "NONE", Timeout: Duration(DefaultScanTimeout)}},
		{doc: "scan: {fail-on: severe}", wantErr: `key "scan.fail-on": unknown severity "SEVERE" (valid: UNKNOWN, LOW, MEDIUM, HIGH, CRITICAL, NONE)`},
		{doc: "scan: {failon: HIGH}", wantErr: `unknown key "scan.failon" (valid keys: fail-on, ignore-unfixed, ignore-file, timeout)`},
		{doc: "scan: {timeout: -1s}", wantErr: `must not be negative`},
		{doc: "scan: {timeout: soon}", wantErr: `want a duration`},
		{doc: "scan: {ignore-unfixed: maybe}", wantErr: `ignore-unfixed`},
		{doc: "scan: true", wantErr: `scan`},
	}
	for _, tc := range tests {
		t.Run(tc.doc, func(t *testing.T) {
			spec, err := DecodeProjectSpec(decodeYAML(t, tc.doc))
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			assert.NilError(t, err)
			assert.DeepEqual(t, spec.Scan, tc.want)
		})
	}
}
