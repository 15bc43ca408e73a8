package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

const healthcheckTimeout = 2 * time.Second

// runHealthcheck implements "testapp healthcheck [URL]", the exec-form
// health check of a scratch image, which has no curl or wget:
//
//	healthcheck: {test: ["CMD", "/testapp", "healthcheck"]}
//
// Docker keeps the output in the container's health log, so it says why.
func runHealthcheck(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	var url string
	switch len(args) {
	case 0:
		env := envReader{getenv: getenv}
		port := env.port()
		if len(env.errs) > 0 {
			fmt.Fprintf(stderr, "testapp healthcheck: invalid environment: %v\n", env.errs[0])
			return 2
		}
		url = fmt.Sprintf("http://127.0.0.1:%d/healthz", port)
	case 1:
		url = args[0]
	default:
		fmt.Fprintf(stderr, "usage: testapp healthcheck [URL]\n")
		return 2
	}

	if err := checkHealth(url, healthcheckTimeout); err != nil {
		fmt.Fprintf(stderr, "unhealthy: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "healthy: %s answered 200\n", url)
	return 0
}

// checkHealth GETs url and returns nil only for a 200 answer.
func checkHealth(url string, timeout time.Duration) error {
	client := &http.Client{
		Timeout: timeout,
		// Go straight to the app: a proxy from the container's environment
		// has nothing to do with whether this container is healthy.
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
	}
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
