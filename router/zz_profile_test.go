package router

import (
	"os"
	"testing"
	"time"
)

// TEMPORARY: profile harness, removed before hand-off.
func TestProfileServe(t *testing.T) {
	addr, backend := os.Getenv("PROF_LISTEN"), os.Getenv("PROF_BACKEND")
	if addr == "" {
		t.Skip()
	}
	d, _ := time.ParseDuration(os.Getenv("PROF_FOR"))
	r := New(Options{})
	defer r.Close()
	cfg := Config{Version: 1, Routes: []Route{{Name: "web", Listen: addr, Backends: []Backend{{ID: "b1", Address: backend, Weight: 1}}}}}
	if err := r.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	time.Sleep(d)
}
