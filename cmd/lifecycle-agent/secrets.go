package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
)

// secretFile is one file of `agent secrets-write` input; Value is the secret itself
// (bytes, base64 in JSON), which never goes anywhere but the file.
type secretFile struct {
	Name  string `json:"name"`
	Value []byte `json:"value"`
	Mode  uint32 `json:"mode"`
	UID   int    `json:"uid"`
	GID   int    `json:"gid"`
}

// secretsWrite writes the secret files read as JSON from stdin into dir (a tmpfs),
// each with its mode and owner, replacing the directory's previous files atomically
// per file. It prints the names it wrote, never a value.
func secretsWrite(args []string) int {
	dir := "/run/secrets"
	if len(args) == 1 {
		dir = args[0]
	}
	var files []secretFile
	if err := json.NewDecoder(io.LimitReader(os.Stdin, 16<<20)).Decode(&files); err != nil {
		fmt.Fprintf(os.Stderr, "agent secrets-write: read the files from stdin: %v\n", err)
		return 1
	}
	for _, f := range files {
		if f.Name == "" || strings.ContainsRune(f.Name, '/') || f.Name == "." || f.Name == ".." {
			fmt.Fprintf(os.Stderr, "agent secrets-write: bad file name %q\n", f.Name)
			return 1
		}
		tmp := filepath.Join(dir, "."+f.Name+".tmp")
		if err := os.WriteFile(tmp, f.Value, 0o600); err != nil {
			fmt.Fprintf(os.Stderr, "agent secrets-write: %s: %v\n", f.Name, err)
			return 1
		}
		if err := os.Chown(tmp, f.UID, f.GID); err != nil {
			fmt.Fprintf(os.Stderr, "agent secrets-write: %s: %v\n", f.Name, err)
			return 1
		}
		if err := os.Chmod(tmp, os.FileMode(f.Mode)&os.ModePerm); err != nil {
			fmt.Fprintf(os.Stderr, "agent secrets-write: %s: %v\n", f.Name, err)
			return 1
		}
		if err := os.Rename(tmp, filepath.Join(dir, f.Name)); err != nil {
			fmt.Fprintf(os.Stderr, "agent secrets-write: %s: %v\n", f.Name, err)
			return 1
		}
		fmt.Println(f.Name)
	}
	return 0
}

// hold keeps a secrets tmpfs mounted: the engine unmounts a tmpfs volume when its last
// container stops, so without a holder a restarted service container would find its
// secrets gone. It waits for SIGTERM.
func hold() int {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	<-signals
	return 0
}
