//go:build !unix

package scan

import "os/exec"

func setProcessGroup(*exec.Cmd) {}
