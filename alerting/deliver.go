package alerting

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
)

// Target is one place notifications go to.
type Target interface {
	// Name says which target, for the delivery errors the notifier logs.
	Name() string
	Send(ctx context.Context, a Alert) error
}

// queueSize bounds the notifications waiting for one target; beyond, new ones are
// dropped (and logged): a dead webhook must not grow the monitor's memory.
const queueSize = 256

// Notifier delivers every notification to every target, each target in its own
// goroutine and in order (a slow or retrying webhook delays only its own queue).
type Notifier struct {
	log    func(string)
	queues []*queue
	wg     sync.WaitGroup
	cancel context.CancelFunc
	ctx    context.Context
}

type queue struct {
	t  Target
	ch chan Alert
}

// NewTargets builds the targets of x-lifecycle.alerts.targets (none: stderr), writing
// stderr lines to stderr.
func NewTargets(specs []compose.AlertTarget, stderr io.Writer) ([]Target, error) {
	if len(specs) == 0 {
		specs = []compose.AlertTarget{{Stderr: true}}
	}
	var out []Target
	w := &lockedWriter{w: stderr}
	for i, s := range specs {
		switch {
		case s.Webhook != nil:
			t, err := NewWebhook(*s.Webhook)
			if err != nil {
				return nil, fmt.Errorf("alerts.targets[%d]: %w", i, err)
			}
			out = append(out, t)
		case s.Exec != nil:
			out = append(out, &Exec{Spec: *s.Exec})
		case s.Stderr:
			out = append(out, &Stderr{W: w})
		}
	}
	return out, nil
}

// NewNotifier starts one delivery goroutine per target; log receives each failed
// delivery (after its retries) and each dropped notification.
func NewNotifier(targets []Target, log func(string)) *Notifier {
	ctx, cancel := context.WithCancel(context.Background())
	n := &Notifier{log: log, ctx: ctx, cancel: cancel}
	for _, t := range targets {
		q := &queue{t: t, ch: make(chan Alert, queueSize)}
		n.queues = append(n.queues, q)
		n.wg.Go(func() {
			for a := range q.ch {
				if err := q.t.Send(ctx, a); err != nil {
					n.log(fmt.Sprintf("alert %s %s not delivered to %s: %v", a.Status, a.Rule, q.t.Name(), err))
				}
			}
		})
	}
	return n
}

// Notify queues a for every target; it does not block.
func (n *Notifier) Notify(a Alert) {
	for _, q := range n.queues {
		select {
		case q.ch <- a:
		default:
			n.log(fmt.Sprintf("alert %s %s dropped for %s: %d notifications already wait", a.Status, a.Rule, q.t.Name(), queueSize))
		}
	}
}

// Close delivers what is queued, waiting at most grace, then gives up on the rest.
func (n *Notifier) Close(grace time.Duration) {
	for _, q := range n.queues {
		close(q.ch)
	}
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		n.cancel()
		<-done
	}
	n.cancel()
}

// Body is a's JSON, or tmpl executed over a (a webhook's body).
func Body(a Alert, tmpl *template.Template) ([]byte, error) {
	if tmpl == nil {
		return json.Marshal(a)
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, a); err != nil {
		return nil, fmt.Errorf("body template: %w", err)
	}
	return b.Bytes(), nil
}

// Webhook POSTs each notification to a URL, retrying a transport error, a 429 or a
// 5xx Retries times, Backoff apart and doubling (capped at maxBackoff).
type Webhook struct {
	Spec   compose.WebhookTarget
	tmpl   *template.Template
	client *http.Client
	// Sleep waits between attempts (tests replace it); it returns early with ctx.
	Sleep func(ctx context.Context, d time.Duration) error
}

const maxBackoff = 30 * time.Second

// NewWebhook prepares a webhook target (its body template parsed).
func NewWebhook(spec compose.WebhookTarget) (*Webhook, error) {
	w := &Webhook{Spec: spec, client: &http.Client{}, Sleep: sleepCtx}
	if spec.Body != "" {
		t, err := template.New("body").Funcs(compose.AlertTemplateFuncs).Parse(spec.Body)
		if err != nil {
			return nil, fmt.Errorf("webhook body: %w", err)
		}
		w.tmpl = t
	}
	return w, nil
}

func (w *Webhook) Name() string { return "webhook " + redact(w.Spec.URL) }

// redact hides a URL's query and credentials (a Slack webhook's path is its secret,
// so only scheme and host are kept).
func redact(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		rest := u[i+3:]
		if j := strings.IndexAny(rest, "/?#"); j >= 0 {
			rest = rest[:j]
		}
		if j := strings.LastIndex(rest, "@"); j >= 0 {
			rest = rest[j+1:]
		}
		return u[:i+3] + rest + "/…"
	}
	return "(url)"
}

func (w *Webhook) Send(ctx context.Context, a Alert) error {
	body, err := Body(a, w.tmpl)
	if err != nil {
		return err
	}
	retries := compose.DefaultWebhookRetries
	if w.Spec.Retries != nil {
		retries = *w.Spec.Retries
	}
	backoff := time.Duration(w.Spec.Backoff)
	if backoff <= 0 {
		backoff = compose.DefaultWebhookBackoff
	}
	var last error
	for attempt := 0; ; attempt++ {
		retry, err := w.post(ctx, body)
		if err == nil {
			return nil
		}
		last = err
		if !retry || attempt >= retries {
			break
		}
		if err := w.Sleep(ctx, backoff); err != nil {
			break
		}
		backoff = min(2*backoff, maxBackoff)
	}
	return fmt.Errorf("%w (%d attempts)", last, retries+1)
}

// post makes one attempt; retry says whether a failure is worth another.
func (w *Webhook) post(ctx context.Context, body []byte) (retry bool, err error) {
	timeout := time.Duration(w.Spec.Timeout)
	if timeout <= 0 {
		timeout = compose.DefaultWebhookTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.Spec.URL, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "docker-lifecycle-alerts")
	for k, v := range w.Spec.Headers {
		req.Header.Set(k, v)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return true, fmt.Errorf("POST: %w", redactErr(err, w.Spec.URL))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return true, fmt.Errorf("POST: %s", resp.Status)
	}
	return false, fmt.Errorf("POST: %s (not retried: the receiver refused the request)", resp.Status)
}

func redactErr(err error, u string) error {
	return fmt.Errorf("%s", strings.ReplaceAll(err.Error(), u, redact(u)))
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Exec runs a command on this host with the notification's JSON on its stdin, killed
// after its timeout.
type Exec struct{ Spec compose.ExecTarget }

func (e *Exec) Name() string { return "exec " + e.Spec.Command[0] }

func (e *Exec) Send(ctx context.Context, a Alert) error {
	body, err := json.Marshal(a)
	if err != nil {
		return err
	}
	timeout := time.Duration(e.Spec.Timeout)
	if timeout <= 0 {
		timeout = compose.DefaultExecTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.Spec.Command[0], e.Spec.Command[1:]...)
	cmd.Stdin = bytes.NewReader(append(body, '\n'))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return fmt.Errorf("killed after its timeout of %s", timeout)
		}
		msg := strings.TrimSpace(out.String())
		if len(msg) > 300 {
			msg = msg[:300] + "…"
		}
		if msg != "" {
			return fmt.Errorf("%w: %s", err, msg)
		}
		return err
	}
	return nil
}

// Stderr writes each notification's summary as one line.
type Stderr struct{ W io.Writer }

func (s *Stderr) Name() string { return "stderr" }

func (s *Stderr) Send(_ context.Context, a Alert) error {
	_, err := fmt.Fprintln(s.W, "ALERT "+a.Summary)
	return err
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
