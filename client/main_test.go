package client_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/server"
)

// brokerEnv, when set, makes the test binary a broker serving on the
// address in it, with the data directory in brokerDirEnv, until its stdin
// closes. Allocation tests and benchmarks use it so that the broker's own
// allocations and CPU are not counted with the client's.
const (
	brokerEnv    = "HARAQA_CLIENT_TEST_BROKER"
	brokerDirEnv = "HARAQA_CLIENT_TEST_BROKER_DIR"
)

func TestMain(m *testing.M) {
	if addr := os.Getenv(brokerEnv); addr != "" {
		if err := serveUntilStdinCloses(addr, os.Getenv(brokerDirEnv)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func serveUntilStdinCloses(addr, dir string) error {
	e, err := engine.Open(engine.Options{Dir: dir, Fsync: engine.FsyncNever, Logger: quiet})
	if err != nil {
		return err
	}
	defer e.Close()
	l, err := server.Listen(addr)
	if err != nil {
		return err
	}
	s := server.New(e, server.Options{Logger: quiet})
	go s.Serve(l)
	fmt.Println(l.Addr().String())
	io.Copy(io.Discard, os.Stdin)
	return s.Close()
}

// startBrokerProcess runs a broker in a child process on network and
// returns its address; it stops with the test.
func startBrokerProcess(t testing.TB, network string) string {
	t.Helper()
	addr := "tcp://127.0.0.1:0"
	if network == "unix" {
		addr = "unix://" + socketPath(t)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), brokerEnv+"="+addr, brokerDirEnv+"="+t.TempDir())
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	var listening string
	if _, err := fmt.Fscanln(out, &listening); err != nil {
		t.Fatalf("broker process: %v", err)
	}
	if network == "tcp" {
		addr = "tcp://" + listening
	}
	return addr
}

// dialProcess connects to a broker process.
func dialProcess(t testing.TB, addr string, opts ...client.Option) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
