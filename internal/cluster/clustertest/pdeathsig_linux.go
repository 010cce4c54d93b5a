package clustertest

import (
	"os/exec"
	"syscall"
)

// dieWithParent kills redis-server when the test process dies, even by a
// signal that runs no cleanup (a test timeout).
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
