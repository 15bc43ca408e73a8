package rollout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
	"github.com/docker-lifecycle/docker-lifecycle/scan"
)

// ScanGate is the deploy's gate: it scans and returns an error wrapping scan.ErrBlocked
// when findings stop the deploy, or the scanner's error (fail closed).
func ScanGate(ctx context.Context, eng engine.Engine, p *compose.Project, services []string, dockerHost string, events progress.Writer) error {
	res, err := ScanProject(ctx, eng, p, services, true, dockerHost, events)
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

// ScanProject runs trivy on each distinct image of the selected services (all when
// none are named; with their dependencies when withDeps) and judges the findings.
//
// dockerHost is the engine's address when trivy can reach it itself (the plugin decides it from the context);
// empty, each image goes to trivy as a `docker save` archive.
func ScanProject(ctx context.Context, eng engine.Engine, p *compose.Project, services []string, withDeps bool, dockerHost string, events progress.Writer) (*scan.Result, error) {
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
