// Command benchgen is the helper of scripts/bench.sh:
//
//	benchgen compose [-n 100] [-o FILE] [-name P] [-image REF] [-port-base N]
//	    writes the generated compose project (internal/benchgen.Compose)
//	benchgen deploy -scenario S -events FILE -start NS -end NS -chain a,b,c [-inspect FILE]
//	    prints "S<TAB>metric<TAB>ms" lines for one deploy run
//	benchgen deploy-table < samples     medians per metric and scenario (markdown)
//	benchgen stats [-unit ms] < samples  n, median, p90, min, max per label (markdown)
//	benchgen rollout < events            "batch<TAB>metric<TAB>ms" lines of a rolling deploy
//	benchgen follow -label L -seconds S [-each a,b] [-header] -- CMD ARGS…
//	    runs CMD (once, or once per name of -each with {} replaced by it) for S seconds,
//	    stops it with SIGINT and prints a row of scripts/bench-logs.sh's table: lines,
//	    lost and duplicated sequence numbers, latency, the follower's CPU
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker-lifecycle/docker-lifecycle/internal/benchgen"
)

func main() {
	if len(os.Args) < 2 {
		fail(fmt.Errorf("usage: benchgen compose|deploy|deploy-table|stats [flags]"))
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "compose":
		err = compose(args)
	case "deploy":
		err = deploy(args)
	case "rollout":
		var events []benchgen.Event
		if events, err = benchgen.ReadEvents(os.Stdin); err == nil {
			var batches []benchgen.RolloutBatch
			if batches, err = benchgen.RolloutBatches(events); err == nil {
				ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
				for _, b := range batches {
					fmt.Printf("bring_up\t%.1f\nroute\t%.1f\nstop\t%.1f\noverhead\t%.1f\n", ms(b.BringUp), ms(b.Route), ms(b.Stop), ms(b.Overhead))
				}
			}
		}
	case "follow":
		err = follow(args)
	case "deploy-table":
		var s []benchgen.Sample
		if s, err = benchgen.ReadSamples(os.Stdin); err == nil {
			benchgen.WriteDeployTable(os.Stdout, s)
		}
	case "stats":
		fs := flag.NewFlagSet("stats", flag.ExitOnError)
		unit := fs.String("unit", "ms", "unit of the values")
		fs.Parse(args)
		var s []benchgen.Sample
		if s, err = benchgen.ReadSamples(os.Stdin); err == nil {
			benchgen.WriteStatsTable(os.Stdout, s, *unit)
		}
	default:
		err = fmt.Errorf("unknown command %q", cmd)
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "benchgen:", err)
	os.Exit(1)
}

func compose(args []string) error {
	fs := flag.NewFlagSet("compose", flag.ExitOnError)
	n := fs.Int("n", 100, "number of services")
	out := fs.String("o", "", "output file (default: stdout)")
	name := fs.String("name", "", "project name (default lifecycle-bench)")
	image := fs.String("image", "", "image of every service (default lifecycle-demo:v1)")
	portBase := fs.Int("port-base", 0, "every 10th service i publishes 127.0.0.1:port-base+i:8080 (default 30000)")
	fs.Parse(args)
	doc := benchgen.Compose(*n, benchgen.Options{Name: *name, Image: *image, PortBase: *portBase})
	if *out == "" {
		_, err := fmt.Print(doc)
		return err
	}
	return os.WriteFile(*out, []byte(doc), 0o644)
}

func deploy(args []string) error {
	fs := flag.NewFlagSet("deploy", flag.ExitOnError)
	scenario := fs.String("scenario", "deploy", "scenario name (column of the table)")
	eventsFile := fs.String("events", "", "file with the --progress json stderr")
	startNS := fs.Int64("start", 0, "process start, ns since the epoch (date +%s%N)")
	endNS := fs.Int64("end", 0, "process end, ns since the epoch")
	chain := fs.String("chain", "", "critical-path container names, comma-separated")
	inspectFile := fs.String("inspect", "", "docker inspect output of the chain (optional)")
	fs.Parse(args)
	f, err := os.Open(*eventsFile)
	if err != nil {
		return err
	}
	defer f.Close()
	events, err := benchgen.ReadEvents(f)
	if err != nil {
		return err
	}
	var inspected []benchgen.Inspected
	if *inspectFile != "" {
		if b, err := os.ReadFile(*inspectFile); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			if err := json.Unmarshal(b, &inspected); err != nil {
				return fmt.Errorf("%s: %w", *inspectFile, err)
			}
		}
	}
	var names []string
	if *chain != "" {
		names = strings.Split(*chain, ",")
	}
	m, err := benchgen.DeployRun(events, time.Unix(0, *startNS), time.Unix(0, *endNS), names, inspected)
	if err != nil {
		return err
	}
	for _, k := range benchgen.DeployMetrics {
		if v, ok := m[k]; ok {
			fmt.Printf("%s\t%s\t%s\n", *scenario, k, strconv.FormatFloat(v, 'f', 1, 64))
		}
	}
	return nil
}

func follow(args []string) error {
	fs := flag.NewFlagSet("follow", flag.ExitOnError)
	label := fs.String("label", "follower", "first column of the row")
	seconds := fs.Float64("seconds", 30, "how long to follow")
	each := fs.String("each", "", "comma-separated names: one process per name, {} in the command replaced by it")
	header := fs.Bool("header", false, "print the table header first")
	fs.Parse(args)
	argv := fs.Args()
	if len(argv) == 0 {
		return fmt.Errorf("follow: no command")
	}
	keys := []string{""} // one process; the stream is the line's own prefix
	if *each != "" {
		keys = strings.Split(*each, ",")
	}
	var (
		mu      sync.Mutex
		counter benchgen.FollowCounter
		readers sync.WaitGroup
		cmds    []*exec.Cmd
	)
	start := time.Now()
	for _, key := range keys {
		args := make([]string, len(argv))
		for i, a := range argv {
			args[i] = strings.ReplaceAll(a, "{}", key)
		}
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		cmds = append(cmds, cmd)
		readers.Go(func() {
			sc := bufio.NewScanner(out)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				at := time.Now()
				mu.Lock()
				counter.Line(key, sc.Text(), at)
				mu.Unlock()
			}
		})
	}
	time.Sleep(time.Duration(*seconds * float64(time.Second)))
	for _, cmd := range cmds {
		cmd.Process.Signal(os.Interrupt)
	}
	kill := time.AfterFunc(15*time.Second, func() {
		for _, cmd := range cmds {
			cmd.Process.Kill()
		}
	})
	readers.Wait()
	var user, sys time.Duration
	for _, cmd := range cmds {
		cmd.Wait() // interrupted: its exit status says nothing
		user += cmd.ProcessState.UserTime()
		sys += cmd.ProcessState.SystemTime()
	}
	kill.Stop()
	wall := time.Since(start)
	if *header {
		fmt.Print(benchgen.FollowHeader)
	}
	benchgen.WriteFollowRow(os.Stdout, *label, &counter, wall, user, sys)
	if counter.Unparsed > 0 {
		fmt.Fprintf(os.Stderr, "benchgen follow: %s: %d lines without a timestamp and seq\n", *label, counter.Unparsed)
	}
	return nil
}
