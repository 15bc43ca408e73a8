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
