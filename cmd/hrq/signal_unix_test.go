//go:build !windows

package main

import (
	"os"
	"os/exec"
	"syscall"
)

// Process control the tests need, per platform (signal_windows_test.go).

func pauseProcess(p *os.Process) error  { return p.Signal(syscall.SIGSTOP) }
func resumeProcess(p *os.Process) error { return p.Signal(syscall.SIGCONT) }
func interruptSelf() error              { return syscall.Kill(os.Getpid(), syscall.SIGINT) }

// ownProcessGroup starts cmd in a process group of its own, so that
// killProcessGroup also ends what it started in the background.
func ownProcessGroup(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }

func killProcessGroup(cmd *exec.Cmd) { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
