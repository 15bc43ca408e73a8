package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// loadReport is what `testapp load` prints as its last line (JSON).
type loadReport struct {
	Sent   int            `json:"sent"`
	Failed int            `json:"failed"`
	Bodies map[string]int `json:"bodies"`
	Errors map[string]int `json:"errors,omitempty"`
}

// runLoad sends GET URL at RATE per second for DURATION (open loop: one request per
// tick whatever the answers), from inside a container, so the e2e tests can measure
// what another service sees of a service reached by name on a project network.
//
//	testapp load URL RATE DURATION
func runLoad(args []string, stdout, stderr io.Writer) int {
	if len(args) != 3 {
		fmt.Fprintln(stderr, "usage: testapp load URL RATE DURATION")
		return 2
	}
	rate, err := strconv.Atoi(args[1])
	if err != nil || rate < 1 || rate > 5000 {
		fmt.Fprintf(stderr, "testapp load: RATE must be 1..5000, got %q\n", args[1])
		return 2
	}
	duration, err := time.ParseDuration(args[2])
	if err != nil || duration <= 0 || duration > 10*time.Minute {
		fmt.Fprintf(stderr, "testapp load: DURATION must be a positive duration up to 10m, got %q\n", args[2])
		return 2
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	rep := loadReport{Bodies: map[string]int{}, Errors: map[string]int{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	end := time.Now().Add(duration)
	for time.Now().Before(end) {
		<-tick.C
		rep.Sent++
		wg.Go(func() {
			body, failure := loadGet(client, args[0])
			mu.Lock()
			defer mu.Unlock()
			if failure != "" {
				rep.Failed++
				if len(rep.Errors) < 8 {
					rep.Errors[failure]++
				}
				return
			}
			rep.Bodies[body]++
		})
	}
	wg.Wait()
	b, _ := json.Marshal(rep)
	fmt.Fprintln(stdout, string(b))
	return 0
}

func loadGet(client *http.Client, url string) (body, failure string) {
	resp, err := client.Get(url)
	if err != nil {
		return "", err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err.Error()
	}
	if resp.StatusCode != http.StatusOK {
		return "", resp.Status
	}
	return strings.TrimSpace(string(b)), ""
}

// runUntil asks URL every 20 ms (each request bounded by 1 s) until it answers 200 with
// BODY, then prints how long that took (Go duration) and exits 0; 1 after TIMEOUT. One
// process polling inside a container measures when a name on the container's network
// answers again far more finely than a `docker exec` per try.
func runUntil(args []string, stdout, stderr io.Writer) int {
	if len(args) != 3 {
		fmt.Fprintln(stderr, "usage: testapp until URL BODY TIMEOUT")
		return 2
	}
	timeout, err := time.ParseDuration(args[2])
	if err != nil || timeout <= 0 || timeout > 10*time.Minute {
		fmt.Fprintf(stderr, "testapp until: TIMEOUT must be a positive duration up to 10m, got %q\n", args[2])
		return 2
	}
	// No keep-alive: every try goes through name resolution and a new connection, as
	// a client that lost its connection does.
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	start := time.Now()
	last := ""
	for time.Since(start) < timeout {
		body, failure := loadGet(client, args[0])
		if failure == "" && body == args[1] {
			fmt.Fprintln(stdout, time.Since(start))
			return 0
		}
		last = failure
		if failure == "" {
			last = fmt.Sprintf("answered %q", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Fprintf(stderr, "testapp until: %s did not answer %q within %s (last: %s)\n", args[0], args[1], timeout, last)
	return 1
}
