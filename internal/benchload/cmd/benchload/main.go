// Command benchload sends GET requests at a fixed rate (open loop) and prints the
// latency percentiles; see package benchload. scripts/bench-router.sh uses it for the
// p50/p99 at 1000 req/s.
//
//	benchload -url http://127.0.0.1:8080/ -rate 1000 -duration 10s [-warmup 2s] [-conns 32] [-json]
//	benchload -free-ports N     print N free 127.0.0.1 ports, one a line
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/docker-lifecycle/docker-lifecycle/internal/benchload"
)

func main() {
	var o benchload.Options
	flag.StringVar(&o.URL, "url", "", "URL to GET")
	flag.IntVar(&o.Rate, "rate", 1000, "requests per second")
	flag.DurationVar(&o.Duration, "duration", 10*time.Second, "measured duration")
	flag.DurationVar(&o.Warmup, "warmup", 2*time.Second, "unmeasured warm-up at the same rate")
	flag.IntVar(&o.Conns, "conns", 32, "keep-alive connections (most concurrent requests)")
	flag.DurationVar(&o.Timeout, "timeout", 10*time.Second, "per-request timeout")
	asJSON := flag.Bool("json", false, "print one JSON object instead of text")
	freePorts := flag.Int("free-ports", 0, "print this many free ports on 127.0.0.1 and exit")
	flag.Parse()

	if *freePorts > 0 {
		ports, err := benchload.FreePorts(*freePorts)
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchload:", err)
			os.Exit(1)
		}
		for _, p := range ports {
			fmt.Println(p)
		}
		return
	}
	if o.URL == "" {
		fmt.Fprintln(os.Stderr, "benchload: -url is required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := benchload.Run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchload:", err)
		os.Exit(1)
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	out := map[string]any{
		"sent": res.Sent, "ok": res.OK, "errors": res.Errors, "rate": res.Rate,
		"p50_ms": ms(res.Percentile(0.50)), "p90_ms": ms(res.Percentile(0.90)),
		"p99_ms": ms(res.Percentile(0.99)), "max_ms": ms(res.Percentile(1)),
		"pacer_late_max_ms": ms(res.Late),
	}
	if *asJSON {
		_ = json.NewEncoder(os.Stdout).Encode(out)
	} else {
		fmt.Printf("sent %d ok %d errors %d rate %.1f/s p50 %.3f ms p90 %.3f ms p99 %.3f ms max %.3f ms (pacer late by up to %.3f ms)\n",
			res.Sent, res.OK, res.Errors, res.Rate, out["p50_ms"], out["p90_ms"], out["p99_ms"], out["max_ms"], out["pacer_late_max_ms"])
	}
	if e := res.FirstError(); e != nil {
		fmt.Fprintln(os.Stderr, "benchload: first error:", e)
	}
	if res.Errors > 0 || res.OK == 0 {
		os.Exit(1)
	}
}
