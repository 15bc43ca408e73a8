package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
	"github.com/docker-lifecycle/docker-lifecycle/scan"
)

type scanOptions struct {
	format string
	failOn string
}

func newScanCommand(dockerCli command.Cli, project *projectOptions) *cobra.Command {
	opts := scanOptions{}
	cmd := &cobra.Command{
		Use:   "scan [OPTIONS] [SERVICE...]",
		Short: "Scan each image of the project with trivy (vulnerabilities, secrets); deploy runs the same gate when x-lifecycle.scan is set",
		Example: `  docker lifecycle scan
  docker lifecycle scan --format sarif > scan.sarif
  docker lifecycle scan --fail-on HIGH web`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.failOn != "" {
				f, err := scan.ParseSeverity(opts.failOn)
				if err != nil {
					return usageError("invalid --fail-on: %v", err)
				}
				opts.failOn = f
			}
			return runScan(cmd, dockerCli, project, opts, args)
		},
		ValidArgsFunction: completeServices(project),
	}
	enumFlag(cmd.Flags(), &opts.format, "format", "table", "Output format", reportFormats...)
	cmd.Flags().StringVar(&opts.failOn, "fail-on", "", "Lowest severity that fails the scan: UNKNOWN, LOW, MEDIUM, HIGH, CRITICAL or NONE (default: x-lifecycle.scan.fail-on, CRITICAL)")
	return cmd
}

func runScan(cmd *cobra.Command, dockerCli command.Cli, project *projectOptions, opts scanOptions, services []string) error {
	ctx, cancel := commandContext(cmd)
	defer cancel()
	p, eng, err := openProject(ctx, dockerCli, project)
	if err != nil {
		return err
	}
	if opts.failOn != "" {
		p.Spec.Scan.FailOn = opts.failOn
	}
	events, err := newProgress(dockerCli, project.progress)
	if err != nil {
		return err
	}
	res, err := scanProject(ctx, eng, p, services, false, trivyDockerHost(dockerCli), events)
	_ = events.Close()
	if err != nil {
		return exitError(ctx, err)
	}
	switch opts.format {
	case "json":
		err = writeScanJSON(dockerCli.Out(), res)
	case "sarif":
		err = writeScanSARIF(dockerCli.Out(), p.ComposeFiles, res)
	default:
		err = writeScanTable(dockerCli.Out(), res)
	}
	if err != nil {
		return err
	}
	if !res.Passed {
		return cli.StatusError{StatusCode: 1, Status: fmt.Sprintf("%d findings at or above %s would stop a deploy", res.Blocking, res.FailOn)}
	}
	return nil
}

// scanGate is the deploy's gate: it scans and returns an error wrapping scan.ErrBlocked
// when findings stop the deploy, or the scanner's error (fail closed).
func scanGate(ctx context.Context, eng engine.Engine, p *compose.Project, services []string, dockerHost string, events progress.Writer) error {
	res, err := scanProject(ctx, eng, p, services, true, dockerHost, events)
	if err != nil {
		return fmt.Errorf("image scan gate (x-lifecycle.scan): %w", err)
	}
	if err := res.BlockedError(); err != nil {
		return err
	}
	progress.Emit(events, "Scan", progress.Done, "Passed", fmt.Sprintf("%d images, nothing at or above %s", len(res.Images), res.FailOn))
	return nil
}

// scanImage is one distinct image (by ID) of the project, with the services running it.
type scanImage struct {
	ref, id  string
	services []string
}

// scanProject runs trivy on each distinct image of the selected services (all when
// none are named; with their dependencies when withDeps) and judges the findings.
//
// dockerHost is the engine's address when trivy can reach it itself (see trivyDockerHost);
// empty, each image goes to trivy as a `docker save` archive.
func scanProject(ctx context.Context, eng engine.Engine, p *compose.Project, services []string, withDeps bool, dockerHost string, events progress.Writer) (*scan.Result, error) {
	spec := p.Spec.Scan.WithDefaults()
	images, err := projectImages(ctx, eng, p, services, withDeps)
	if err != nil {
		return nil, err
	}
	opts := scan.Options{IgnoreUnfixed: spec.IgnoreUnfixed, Timeout: time.Duration(spec.Timeout), DockerHost: dockerHost}
	if opts.IgnoreFile, err = ignoreFile(p, spec); err != nil {
		return nil, err
	}
	path, err := scan.Find(os.Getenv)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "lifecycle-scan-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	// The version comes from the first report (trivy names itself in it), or from
	// `trivy version` when the report does not say.
	res := &scan.Result{Project: p.Name, FailOn: spec.FailOn, IgnoreUnfixed: spec.IgnoreUnfixed, Images: []scan.ImageResult{}}
	var trivy *scan.Trivy
	checkVersion := func(v string) error {
		var t scan.Trivy
		var err error
		if v != "" {
			t, err = scan.CheckVersion(path, v)
		} else {
			t, err = scan.Probe(ctx, path)
		}
		if err != nil {
			return err
		}
		trivy = &t
		res.Scanner = scan.Scanner{Name: "trivy", Version: t.Version, Path: t.Path}
		return nil
	}
	runner := scan.Trivy{Path: path}
	for i, img := range images {
		id := "Image " + img.ref
		progress.Emit(events, id, progress.Working, "Scanning", "services: "+strings.Join(img.services, ", "))
		started := time.Now()
		target := img.ref
		if opts.DockerHost == "" {
			target = filepath.Join(dir, fmt.Sprintf("image-%d.tar", i))
			if err := saveImage(ctx, eng, img.ref, target); err != nil {
				progress.Emit(events, id, progress.Error, "Failed", err.Error())
				return nil, err
			}
		}
		report, err := runner.Scan(ctx, dir, target, opts)
		if opts.DockerHost == "" {
			_ = os.Remove(target)
		}
		if err == nil && trivy == nil {
			err = checkVersion(report.Trivy.Version)
		}
		if err == nil && report.Metadata.ImageID != "" && report.Metadata.ImageID != img.id {
			err = fmt.Errorf("image %s changed during the scan (was %s, trivy scanned %s): scan again", img.ref, img.id, report.Metadata.ImageID)
		}
		if err != nil {
			progress.Emit(events, id, progress.Error, "Failed", "scanner failed")
			if ctx.Err() == nil && !strings.Contains(err.Error(), scan.InstallHint) {
				err = fmt.Errorf("scan image %s: %w\n%s", img.ref, err, scan.InstallHint)
			}
			return nil, err
		}
		ir := scan.Judge(report, spec.FailOn)
		ir.Image, ir.ImageID, ir.Services = img.ref, img.id, img.services
		ir.Seconds = time.Since(started).Round(time.Millisecond).Seconds()
		res.Images = append(res.Images, ir)
		summary := fmt.Sprintf("%d vulnerabilities, %d secrets", len(ir.Findings)-ir.Secrets, ir.Secrets)
		if ir.Passed {
			progress.Emit(events, id, progress.Done, "Scanned", summary)
		} else {
			progress.Emit(events, id, progress.Error, "Blocked", fmt.Sprintf("%s; %d at or above %s", summary, ir.Blocking, spec.FailOn))
		}
	}
	if trivy == nil { // no image at all: the scanner must still work, or the gate fails closed
		if err := checkVersion(""); err != nil {
			return nil, err
		}
	}
	res.Summarize()
	return res, nil
}

// trivyDockerHost is the engine of the current context when trivy can reach it as the
// plugin does: a unix socket (a local engine, Docker Desktop) or plain tcp://. trivy then
// reads the image from the engine and exports it only when its layer cache misses: an
// unchanged 170 MB image rescans in ~0.15 s instead of ~1.7 s through an archive.
// ssh:// and TLS contexts get "" and the archive, which works for any engine;
// LIFECYCLE_SCAN_SOURCE=archive asks for the archive everywhere.
func trivyDockerHost(dockerCli command.Cli) string {
	ep := dockerCli.DockerEndpoint()
	if ep.TLSData != nil || os.Getenv("LIFECYCLE_SCAN_SOURCE") == "archive" {
		return ""
	}
	if strings.HasPrefix(ep.Host, "unix://") || strings.HasPrefix(ep.Host, "tcp://") {
		return ep.Host
	}
	return ""
}

// projectImages returns the distinct images of the selected services, each with the
// services that run it, in service order; a missing image is an error naming it.
func projectImages(ctx context.Context, eng engine.Engine, p *compose.Project, services []string, withDeps bool) ([]scanImage, error) {
	names := p.ServiceNames()
	if len(services) > 0 {
		for _, s := range services {
			if !slices.Contains(names, s) {
				return nil, fmt.Errorf("no such service: %q (services: %s)", s, strings.Join(names, ", "))
			}
		}
		names = services
		if withDeps {
			sel, err := p.Project.WithSelectedServices(services)
			if err != nil {
				return nil, err
			}
			names = sel.ServiceNames()
		}
	}
	sort.Strings(names)
	var out []scanImage
	byID := map[string]int{}
	for _, name := range names {
		ref := compose.ImageRef(p, name)
		img, err := eng.InspectImage(ctx, ref)
		if err != nil {
			if errors.Is(err, engine.ErrNotFound) {
				return nil, fmt.Errorf("service %q: image %s is not on the engine: build or pull it before scanning", name, ref)
			}
			return nil, err
		}
		if i, ok := byID[img.ID]; ok {
			out[i].services = append(out[i].services, name)
			continue
		}
		byID[img.ID] = len(out)
		out = append(out, scanImage{ref: ref, id: img.ID, services: []string{name}})
	}
	return out, nil
}

// ignoreFile resolves x-lifecycle.scan.ignore-file against the project directory; unset,
// the project's .trivyignore is used when there is one (trivy runs elsewhere and would
// not see it).
func ignoreFile(p *compose.Project, spec compose.ScanSpec) (string, error) {
	if spec.IgnoreFile == "" {
		for _, name := range []string{".trivyignore", ".trivyignore.yaml"} {
			f := filepath.Join(p.WorkingDir, name)
			if st, err := os.Stat(f); err == nil && !st.IsDir() {
				return f, nil
			}
		}
		return "", nil
	}
	f := spec.IgnoreFile
	if !filepath.IsAbs(f) {
		f = filepath.Join(p.WorkingDir, f)
	}
	if st, err := os.Stat(f); err != nil || st.IsDir() {
		return "", fmt.Errorf("x-lifecycle.scan.ignore-file %s: not a readable file (paths are relative to the project directory %s)", spec.IgnoreFile, p.WorkingDir)
	}
	return f, nil
}

// saveImage writes the image's `docker save` archive to path: trivy reads it with
// --input, so the engine may be remote and trivy needs no access to its socket.
func saveImage(ctx context.Context, eng engine.Engine, ref, path string) error {
	rc, err := eng.SaveImage(ctx, ref)
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		return fmt.Errorf("save image %s: %w", ref, err)
	}
	return f.Close()
}

func writeScanJSON(w io.Writer, res *scan.Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

// writeScanTable prints one row per service, then the findings that block.
func writeScanTable(w io.Writer, res *scan.Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tIMAGE\tCRITICAL\tHIGH\tMEDIUM\tLOW\tUNKNOWN\tSECRETS\tRESULT")
	type row struct {
		service string
		img     *scan.ImageResult
	}
	var rows []row
	for i := range res.Images {
		for _, s := range res.Images[i].Services {
			rows = append(rows, row{s, &res.Images[i]})
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].service < rows[j].service })
	for _, r := range rows {
		v := r.img.Vulnerabilities
		result := "pass"
		if !r.img.Passed {
			result = fmt.Sprintf("BLOCKED (%d)", r.img.Blocking)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", r.service, r.img.Image,
			v["CRITICAL"], v["HIGH"], v["MEDIUM"], v["LOW"], v["UNKNOWN"], r.img.Secrets, result)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if res.Passed {
		_, err := fmt.Fprintf(w, "\nPassed: nothing at or above %s (trivy %s).\n", res.FailOn, res.Scanner.Version)
		return err
	}
	fmt.Fprintf(w, "\nBlocking findings (at or above %s):\n", res.FailOn)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tSEVERITY\tID\tWHERE\tINSTALLED\tFIXED")
	for _, img := range res.Images {
		for _, f := range img.Findings {
			if !f.Blocking {
				continue
			}
			where, installed, fixed := f.Target, f.Installed, f.Fixed
			if f.Kind == scan.KindSecret {
				where, installed, fixed = fmt.Sprintf("%s:%d (secret: %s)", f.Target, f.Line, f.Title), "-", "-"
			} else {
				where = f.Package + " (" + f.Target + ")"
				if fixed == "" {
					fixed = "no fix yet"
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", img.Image, f.Severity, f.ID, where, installed, fixed)
		}
	}
	return tw.Flush()
}

// writeScanSARIF prints SARIF 2.1.0 in the same shape as `lint --format sarif`: one
// rule per vulnerability or secret rule, one result per finding, located at the
// service in the compose file (SARIF has no notion of an image layer).
func writeScanSARIF(w io.Writer, composeFiles []string, res *scan.Result) error {
	driver := sarifDriver{Name: "docker-lifecycle scan (trivy " + res.Scanner.Version + ")", Version: Version, InformationURI: Metadata().URL}
	uri := "compose.yaml"
	if len(composeFiles) > 0 {
		uri = filepath.Base(composeFiles[0])
	}
	seen := map[string]bool{}
	results := []sarifResult{}
	for _, img := range res.Images {
		for _, f := range img.Findings {
			if !seen[f.ID] {
				seen[f.ID] = true
				help := f.URL
				if help == "" {
					help = "see trivy's documentation for rule " + f.ID
				}
				driver.Rules = append(driver.Rules, sarifRule{ID: f.ID, ShortDescription: sarifText{dash(f.Title)}, Help: sarifText{help},
					Properties: map[string]any{"kind": f.Kind, "severity": f.Severity, "security-severity": securitySeverity(f.Severity)}})
			}
			level := "warning"
			if f.Blocking {
				level = "error"
			}
			for _, svc := range img.Services {
				r := sarifResult{RuleID: f.ID, Level: level, Message: sarifText{svc + " (" + img.Image + "): " + f.Describe()}}
				var loc sarifLocation
				loc.PhysicalLocation.ArtifactLocation.URI = uri
				loc.LogicalLocations = []sarifLogical{{Name: "services." + svc, Kind: "object"}}
				r.Locations = []sarifLocation{loc}
				results = append(results, r)
			}
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(sarifLog{
		Schema:  "https://json.schemastore.org/sarif-2.1.0.json",
		Version: "2.1.0",
		Runs:    []sarifRun{{Tool: sarifTool{Driver: driver}, Results: results}},
	})
}

// securitySeverity is the CVSS-like score code-scanning tools sort SARIF results by.
func securitySeverity(severity string) string {
	switch severity {
	case "CRITICAL":
		return "9.5"
	case "HIGH":
		return "8.0"
	case "MEDIUM":
		return "5.5"
	case "LOW":
		return "2.0"
	}
	return "0.0"
}
