package browsertest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/haraqa/haraqa/client"
)

// needChromium returns chromium's path, or skips the test on a developer's
// machine and fails it in CI (HARAQA_REQUIRE_TOOLS=1), as
// internal/testtool does for the main module (which this module cannot
// import).
func needChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	reason := "chromium is not installed (.ci/install-deps installs Debian's chromium)"
	if os.Getenv("HARAQA_REQUIRE_TOOLS") == "1" {
		t.Fatalf("HARAQA_REQUIRE_TOOLS=1 and %s", reason)
	}
	t.Skip(reason)
	return ""
}

// broker is the broker binary running for a test.
type broker struct {
	addr, http string // tcp://host:port and http://host:port
	log        *strings.Builder
}

// startBroker builds cmd/broker and runs it on loopback ports chosen by
// the kernel, reading its addresses from its log.
func startBroker(t *testing.T) *broker {
	t.Helper()
	dir, err := os.MkdirTemp("", "haraqa-") // short volume paths on the page
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bin := filepath.Join(dir, "broker")
	build := exec.Command("go", "build", "-o", bin, "-ldflags", "-X main.version=v1.0.0-browsertest", "./cmd/broker")
	build.Dir = "../.." // in the broker's own module, with its go.sum
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the broker: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-http", "127.0.0.1:0", "-fsync", "never", filepath.Join(dir, "v1"), filepath.Join(dir, "v2"))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	b := &broker{log: &strings.Builder{}}
	done := make(chan struct{})
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		cmd.Wait()
	})
	addrs := make(chan [2]string, 1)
	go func() {
		defer close(done)
		re := regexp.MustCompile(`addr=(\S+)`)
		var tcp, web string
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			b.log.WriteString(line + "\n") // read by the test only after done
			m := re.FindStringSubmatch(line)
			switch {
			case m == nil:
			case strings.Contains(line, `msg="serving HTTP"`):
				web = m[1]
			case strings.Contains(line, "msg=listening") && strings.Contains(line, "network=tcp"):
				tcp = m[1]
				addrs <- [2]string{tcp, web}
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	select {
	case a := <-addrs:
		b.addr, b.http = "tcp://"+a[0], "http://"+a[1]
	case <-done:
		t.Fatalf("the broker exited:\n%s", b.log)
	case <-time.After(60 * time.Second):
		t.Fatal("the broker did not listen within 60s")
	}
	return b
}

// fill produces and consumes a known workload.
func fill(t *testing.T, b *broker) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, b.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for topic, n := range map[string]int{"orders": 12000, "payments": 2500, "audit-log": 40} {
		for i := 0; i < n; i += 500 {
			msgs := make([][]byte, min(500, n-i))
			for j := range msgs {
				msgs[j] = fmt.Appendf(nil, `{"topic":%q,"n":%d}`, topic, i+j)
			}
			if _, err := c.Produce(ctx, topic, msgs...); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A consumer group on orders through the HTTP API: 100 leased, 50 acked.
	g := b.http + "/topics/orders/groups/billing"
	post(t, "PUT", g, `{"start":"earliest"}`)
	var join struct {
		Member string `json:"member"`
		Epoch  uint64 `json:"epoch"`
	}
	if err := json.Unmarshal([]byte(post(t, "POST", g+"/members", `{"name":"billing-1"}`)), &join); err != nil {
		t.Fatal(err)
	}
	q := fmt.Sprintf("?member=%s&epoch=%d", join.Member, join.Epoch)
	post(t, "POST", g+"/fetch"+q+"&max=100", "")
	post(t, "POST", g+"/ack"+q, `{"ranges":[{"first":0,"next":50}]}`)

	var buf client.ConsumeBuffer
	for off := uint64(0); off < 5000; {
		m, err := c.Consume(ctx, "orders", off, 1000, &buf)
		if err != nil {
			t.Fatal(err)
		}
		off = m.Next()
	}
}

// trickle produces to and consumes from orders until ctx ends (at most a
// minute), so that the page shows rates.
func trickle(ctx context.Context, t *testing.T, b *broker) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	c, err := client.Dial(ctx, b.addr)
	if err != nil {
		t.Error(err)
		return
	}
	defer c.Close()
	var buf client.ConsumeBuffer
	off := uint64(5000)
	for ctx.Err() == nil {
		msgs := make([][]byte, 50)
		for j := range msgs {
			msgs[j] = []byte(`{"topic":"orders","trickle":true}`)
		}
		if _, err := c.Produce(ctx, "orders", msgs...); err != nil {
			return // ctx ended
		}
		m, err := c.Consume(ctx, "orders", off, 100, &buf)
		if err != nil {
			return
		}
		off = m.Next()
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// post sends a JSON request and returns the answer's body; anything but
// 2xx fails the test.
func post(t *testing.T, method, url, body string) string {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, b)
	}
	return string(b)
}

// TestStatusPageInChromium checks the status page as a person sees it, in
// a real browser with JavaScript off: the topics with their offset ranges,
// the volumes and their state, a consumer group's lag, the broker's
// version and readiness; that it
// fits a phone's width (wide tables scroll inside their box, the page does
// not); and that it reloads itself. It saves a screenshot
// (HARAQA_STATUS_SCREENSHOT names where; else the test's temporary
// directory).
func TestStatusPageInChromium(t *testing.T) {
	chromium := needChromium(t)
	b := startBroker(t)
	fill(t, b)

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoFirstRun, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	if err := chromedp.Do(bctx); err != nil { // starts the browser, without a deadline (see chromedp.Run)
		t.Fatalf("starting chromium: %v", err)
	}
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()

	noScript := chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
		return err
	})
	// A phone: 390 CSS pixels wide, scale 2.
	if err := chromedp.Do(ctx, noScript, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile),
		chromedp.Navigate(b.http+"/"), chromedp.WaitVisible(chromedp.CSS("table"))); err != nil {
		t.Fatalf("loading the page: %v\nbroker log:\n%s", err, b.log)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the page's text:\n%s", text)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`version v1\.0\.0-browsertest`),
		regexp.MustCompile(`\bready\b`),
		regexp.MustCompile(`orders\s+0\s+12,000\s+12,000`),
		regexp.MustCompile(`payments\s+0\s+2,500\s+2,500`),
		regexp.MustCompile(`audit-log\s+0\s+40\s+40`),
		regexp.MustCompile(`v1\s+healthy`),
		regexp.MustCompile(`v2\s+healthy`),
		regexp.MustCompile(`corruptions found\s+0`),
		regexp.MustCompile(`topics 3`),
		regexp.MustCompile(`orders\s+billing\s+50\s+11,950\s+50\s+1\b`), // committed, lag, in flight, members
	} {
		if !want.MatchString(text) {
			t.Errorf("the page's text does not match %s", want)
		}
	}
	// The page is no wider than the phone: wide tables scroll in their box.
	widths, err := chromedp.Run(ctx, chromedp.Evaluate[[]int](`[document.documentElement.clientWidth, document.documentElement.scrollWidth,
		Math.max(...Array.from(document.querySelectorAll("table"), e => e.scrollWidth))]`))
	if err != nil {
		t.Fatal(err)
	}
	if len(widths) != 3 || widths[0] != 390 || widths[1] > 390 {
		t.Errorf("on a 390-pixel phone the page is %v pixels wide (viewport, page, widest table), want the page no wider than 390", widths)
	}
	t.Logf("phone: viewport, page, widest table: %v pixels", widths)

	// Traffic from here on, for the rates.
	tctx, stopTrickle := context.WithCancel(context.Background())
	trickled := make(chan struct{})
	go func() { defer close(trickled); trickle(tctx, t, b) }()
	defer func() { stopTrickle(); <-trickled }()

	// It reloads itself (a meta refresh, no script): the time it shows moves on.
	stamp := chromedp.Text(chromedp.CSS("div.meta + div.meta"))
	first, err := chromedp.Run(ctx, stamp)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		time.Sleep(time.Second)
		now, err := chromedp.Run(ctx, stamp)
		if err == nil && now != first && strings.Contains(now, "UTC") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page did not reload itself within 20s: %q, then %q (%v)", first, now, err)
		}
	}

	// A desktop window for the screenshot.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1000, 800), chromedp.Navigate(b.http+"/"), chromedp.WaitVisible(chromedp.CSS("table"))); err != nil {
		t.Fatal(err)
	}
	text, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	if err != nil {
		t.Fatal(err)
	}
	if rates := regexp.MustCompile(`orders\s+0\s+[\d,]+\s+[\d,]+\s+\S+ \S+\s+1\s+[1-9][\d,.]*/s\s+[1-9][\d,.]*/s`); !rates.MatchString(text) {
		t.Errorf("no produce and consume rates for orders under traffic:\n%s", text)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	out := os.Getenv("HARAQA_STATUS_SCREENSHOT")
	if out == "" {
		out = filepath.Join(t.TempDir(), "status-page.png")
	}
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	if len(png) < 8 || string(png[1:4]) != "PNG" {
		t.Fatalf("the screenshot is not a PNG (%d bytes)", len(png))
	}
	t.Logf("screenshot: %s (%d bytes)", out, len(png))
}
