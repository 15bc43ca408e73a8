//go:build unix

package scan

import (
	"os/exec"
	"syscall"
)

// setProcessGroup runs the scanner in a process group of its own, and cancelling kills
// the group: a scanner's children must not outlive a timeout.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
