package main

import (
	"errors"
	"os"
	"os/exec"
)

// Windows has no SIGSTOP, SIGINT to oneself or process groups by pid: the
// tests that need them fail there with this error. hrq's tests run on
// Linux and macOS (README.md, Quick start); on Windows they are vetted.

var errNoSignals = errors.New("this test needs POSIX signals")

func pauseProcess(*os.Process) error  { return errNoSignals }
func resumeProcess(*os.Process) error { return errNoSignals }
func interruptSelf() error            { return errNoSignals }
func ownProcessGroup(*exec.Cmd)       {}
func killProcessGroup(cmd *exec.Cmd)  { cmd.Process.Kill() }
