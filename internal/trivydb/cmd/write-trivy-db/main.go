// Command write-trivy-db writes the e2e suite's tiny trivy database into a cache
// directory, for trying the scan gate by hand offline:
//
//	go run ./internal/trivydb/cmd/write-trivy-db /tmp/trivy-cache
//	TRIVY_CACHE_DIR=/tmp/trivy-cache TRIVY_SKIP_DB_UPDATE=true TRIVY_OFFLINE_SCAN=true docker lifecycle scan
package main

import (
	"fmt"
	"os"

	"github.com/docker-lifecycle/docker-lifecycle/internal/trivydb"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: write-trivy-db CACHE_DIR")
		os.Exit(2)
	}
	err := trivydb.Write(os.Args[1], []trivydb.GoAdvisory{{
		ID: "CVE-2022-32149", Module: "golang.org/x/text", Fixed: "0.3.8", Severity: "CRITICAL",
		Title: "golang.org/x/text/language: ParseAcceptLanguage takes a long time to parse complex tags",
	}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
