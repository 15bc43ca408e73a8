package router

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
)

// maxConfigBytes bounds a PUT /config body; a real config is a few KiB.
const maxConfigBytes = 4 << 20

// ControlHandler is the control API the plugin talks to:
//
//	PUT /config   apply a JSON Config (200 with the applied config, defaults filled in;
//	              400 if it is invalid, 500 if it could not be applied or saved)
//	GET /config   the config in effect
//	GET /stats    a JSON Snapshot
//	GET /healthz  "ok" while the router runs
//
// It has no authentication: serve it only where the file system decides who may
// connect (ServeControl on a unix socket), never on a published port.
func (r *Router) ControlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /config", r.handlePutConfig)
	mux.HandleFunc("GET /config", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, r.Config())
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, r.Stats())
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	return mux
}

func (r *Router) handlePutConfig(w http.ResponseWriter, req *http.Request) {
	data, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxConfigBytes))
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err)
		return
	}
	cfg, err := DecodeConfig(data)
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err)
		return
	}
	// Apply and save as one step, so concurrent PUTs cannot leave the file with a
	// different config than the one in effect.
	r.putMu.Lock()
	defer r.putMu.Unlock()
	if err := r.Apply(cfg); err != nil {
		writeJSONError(w, http.StatusInternalServerError, err)
		return
	}
	if r.opts.ConfigFile != "" {
		if err := SaveConfigFile(r.opts.ConfigFile, cfg); err != nil {
			writeJSONError(w, http.StatusInternalServerError, errors.New("config applied but not saved: "+err.Error()))
			return
		}
	}
	writeJSON(w, http.StatusOK, r.Config())
}

// ServeControl serves ControlHandler on l until the router is closed (then it returns
// nil) or l fails.
func (r *Router) ServeControl(l net.Listener) error {
	srv := &http.Server{Handler: r.ControlHandler(), ReadHeaderTimeout: clientReadHeaderTimeout}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	r.controls[srv] = struct{}{}
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.controls, srv)
		r.mu.Unlock()
	}()
	err := srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeJSONError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}
