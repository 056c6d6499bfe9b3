// Command w3probe produces and consumes W3-like 1 MiB messages against a
// running broker process (-pid) and prints the wall-clock rate, the CPU per
// MiB of the client (getrusage) and of the broker (/proc/PID/stat), and
// the voluntary context switches per MiB of both (bench/README.md,
// "Profiles"). One connection, -depth produces in flight, one message per
// batch; the consume reads 16 MiB per request through a client.Consumer.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/trace"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/haraqa/haraqa/client"
)

func procCPU(pid int) (u, s float64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return ut / 100, st / 100
}

func ctxsw(pid int) (v, iv int) {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, e := range ents {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, e.Name()))
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) == 2 && f[0] == "voluntary_ctxt_switches:" {
				x, _ := strconv.Atoi(f[1])
				v += x
			}
			if len(f) == 2 && f[0] == "nonvoluntary_ctxt_switches:" {
				x, _ := strconv.Atoi(f[1])
				iv += x
			}
		}
	}
	return
}

func self() (u, s float64) {
	var r syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &r)
	return float64(r.Utime.Nano()) / 1e9, float64(r.Stime.Nano()) / 1e9
}

func main() {
	addr := flag.String("addr", "tcp://127.0.0.1:4353", "")
	pid := flag.Int("pid", 0, "broker pid")
	n := flag.Int("n", 2000, "")
	size := flag.Int("size", 1<<20, "")
	depth := flag.Int("depth", 4, "")
	mode := flag.String("mode", "both", "produce|consume|both")
	topic := flag.String("topic", fmt.Sprintf("p%d", time.Now().UnixNano()), "")
	tr := flag.String("trace", "", "write a runtime trace of the produce phase here")
	flag.Parse()
	ctx := context.Background()
	c, err := client.Dial(ctx, *addr)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	mib := float64(*n) * float64(*size) / (1 << 20)
	var cv0, bv0 int
	mark := func() { cv0, _ = ctxsw(os.Getpid()); bv0, _ = ctxsw(*pid) }
	report := func(what string, d time.Duration, cu0, cs0, bu0, bs0 float64) {
		cv, _ := ctxsw(os.Getpid())
		bv, _ := ctxsw(*pid)
		defer fmt.Printf("   vol ctxsw/MiB client %.1f broker %.1f\n", float64(cv-cv0)/mib, float64(bv-bv0)/mib)
		cu, cs := self()
		bu, bs := procCPU(*pid)
		fmt.Printf("%-8s %7.0f MB/s  client us/MiB user %5.0f sys %5.0f | broker user %5.0f sys %5.0f\n", what,
			mib*(1<<20)/1e6/d.Seconds(), (cu-cu0)*1e6/mib, (cs-cs0)*1e6/mib, (bu-bu0)*1e6/mib, (bs-bs0)*1e6/mib)
	}
	if *mode != "consume" {
		c.CreateTopic(ctx, *topic)
		var next atomic.Int64
		cu0, cs0 := self()
		bu0, bs0 := procCPU(*pid)
		mark()
		start := time.Now()
		if *tr != "" {
			f, _ := os.Create(*tr)
			trace.Start(f)
			defer f.Close()
		}
		var wg sync.WaitGroup
		for range *depth {
			wg.Add(1)
			go func() {
				defer wg.Done()
				msg := make([]byte, *size)
				for i := range msg {
					msg[i] = byte(i * 7)
				}
				for next.Add(1) <= int64(*n) {
					if _, err := c.Produce(ctx, *topic, msg); err != nil {
						panic(err)
					}
				}
			}()
		}
		wg.Wait()
		if *tr != "" {
			trace.Stop()
		}
		report("produce", time.Since(start), cu0, cs0, bu0, bs0)
	}
	if *mode != "produce" {
		cu0, cs0 := self()
		bu0, bs0 := procCPU(*pid)
		mark()
		start := time.Now()
		cs := client.NewConsumer(c, *topic, 0, client.ConsumeMaxBytes(16<<20), client.ConsumeLimit(*n))
		got := 0
		var sum byte
		for m, err := range cs.Messages(ctx) {
			if err != nil {
				panic(err)
			}
			sum += m.Value[len(m.Value)-1]
			if got++; got == *n {
				break
			}
		}
		report("consume", time.Since(start), cu0, cs0, bu0, bs0)
	}
}
