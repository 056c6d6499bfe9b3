package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"gonum.org/v1/plot/vg"
)

var fixtureInfo = chartInfo{date: "2030-01-02 03:04 UTC", machine: "2 CPUs (test fixture)", commit: "abc1234"}

func parseFixture(t *testing.T) *results {
	t.Helper()
	f, err := os.Open("testdata/RESULTS.raw.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := parse(f)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// svgDoc is what the test reads back from an SVG file.
type svgDoc struct {
	texts []string
	rects map[string][][2]float64 // fill colour -> [height, x] of each filled rectangle
}

var pathNum = regexp.MustCompile(`-?[0-9.]+(?:e-?[0-9]+)?`)

// readSVG parses an SVG with encoding/xml: every text, and the filled
// four-cornered paths (bars and legend swatches) by colour.
func readSVG(t *testing.T, b []byte) svgDoc {
	t.Helper()
	doc := svgDoc{rects: map[string][][2]float64{}}
	d := xml.NewDecoder(bytes.NewReader(b))
	root, inText := "", false
	var cur strings.Builder
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG does not parse: %v", err)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = e.Name.Local
			}
			switch e.Name.Local {
			case "text":
				inText = true
				cur.Reset()
			case "path":
				var dAttr, style string
				for _, a := range e.Attr {
					switch a.Name.Local {
					case "d":
						dAttr = a.Value
					case "style":
						style = a.Value
					}
				}
				fill, ok := strings.CutPrefix(style, "fill:")
				if !ok || strings.Contains(fill, ";") || !strings.HasSuffix(dAttr, "Z") {
					continue
				}
				nums := pathNum.FindAllString(dAttr, -1)
				if len(nums) != 8 {
					continue
				}
				var xs, ys []float64
				for i, n := range nums {
					v, err := strconv.ParseFloat(n, 64)
					if err != nil {
						t.Fatalf("path %q: %v", dAttr, err)
					}
					if i%2 == 0 {
						xs = append(xs, v)
					} else {
						ys = append(ys, v)
					}
				}
				doc.rects[strings.ToUpper(fill)] = append(doc.rects[strings.ToUpper(fill)],
					[2]float64{slices.Max(ys) - slices.Min(ys), slices.Min(xs)})
			}
		case xml.CharData:
			if inText {
				cur.Write(e)
			}
		case xml.EndElement:
			if e.Name.Local == "text" {
				inText = false
				doc.texts = append(doc.texts, cur.String())
			}
		}
	}
	if root != "svg" {
		t.Fatalf("root element %q, want svg", root)
	}
	return doc
}

func hexColor(c color.Color) string {
	r, g, b, _ := c.RGBA()
	return fmt.Sprintf("#%02X%02X%02X", r>>8, g>>8, b>>8)
}

// checkBars checks that each bar's height encodes its value on the axis of
// the figure: proportional to the value (linear) or to its logarithm above
// the axis' foot (log). want is the values per system in group order.
func checkBars(t *testing.T, name string, doc svgDoc, fig *barFigure, want map[string][]float64) {
	t.Helper()
	lo, hi, log := fig.yRange()
	scale := func(v float64) float64 {
		if log {
			return (math.Log(v) - math.Log(lo)) / (math.Log(hi) - math.Log(lo))
		}
		return (v - lo) / (hi - lo)
	}
	var axis float64 // points per unit of scale(), the same for every bar
	for sys, vals := range want {
		rects := doc.rects[hexColor(systemColors[sys])]
		// One rectangle per measured value, plus the legend swatch (the
		// rightmost: the legend is right of the plot).
		if len(rects) != len(vals)+1 {
			t.Fatalf("%s: %d rectangles in %s's colour, want %d bars and a legend swatch", name, len(rects), sys, len(vals))
		}
		sort.Slice(rects, func(i, j int) bool { return rects[i][1] < rects[j][1] })
		for i, v := range vals {
			h := rects[i][0]
			if axis == 0 {
				axis = h / scale(v)
			}
			if got := h / axis; math.Abs(got-scale(v)) > 0.01 {
				t.Errorf("%s: %s bar %d is %.1f pt high: %.3f of the axis, want %.3f (value %g)", name, sys, i, h, got, scale(v), v)
			}
		}
	}
}

// TestChartsFromFixture protects the promise that the charts published
// beside RESULTS.md show the measured numbers: every system and every
// measured median appears as a labelled bar of the right height, the limits
// are drawn and named, the title says when, where and at which commit, and
// both the SVG and the PNG are valid files with the systems' bars in them.
func TestChartsFromFixture(t *testing.T) {
	r := parseFixture(t)
	dir := t.TempDir()
	written, err := r.writeCharts(dir, fixtureInfo)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, w := range written {
		names = append(names, filepath.Base(w))
	}
	wantFiles := []string{"throughput.svg", "throughput.png", "throughput-msgs.svg", "throughput-msgs.png",
		"latency.svg", "latency.png", "fraction.svg", "fraction.png"}
	if !slices.Equal(names, wantFiles) {
		t.Fatalf("wrote %v, want %v", names, wantFiles)
	}

	subtitle := "2030-01-02 03:04 UTC · 2 CPUs (test fixture) · haraqa abc1234 · median of 3 runs"
	common := []string{subtitle, "haraqa-tcp", "nats"}
	cases := []struct {
		file   string
		texts  []string             // must all appear
		absent []string             // must not appear
		bars   map[string][]float64 // medians per system, in group order
	}{
		{
			file: "throughput",
			texts: []string{"Throughput, MB/s (higher is better)", "MB/s (log scale)", "W1", "W2", "W5",
				"750", "640", "540", "17.2", "58.2", "0.45",
				"limit tcp-stream 3,000", "limit sendfile-tcp 2,200", "limit seqwrite-fdatasync 1,500", "machine limit"},
			absent: []string{"haraqa-unix", "haraqa-proc-tcp", "redis", "W3p", "900", "600"},
			bars:   map[string][]float64{"haraqa-tcp": {750, 640, 540}, "nats": {17.2, 58.2, 0.45}},
		},
		{
			// Workloads that report msgs/s but no MB/s.
			file: "throughput-msgs",
			texts: []string{"Throughput, msgs/s (higher is better)", "msgs/s (log scale)", "Topics",
				"produce over 1 topic (round-robin)", "produce over 10,000 topics", "1,200,000", "28,000"},
			absent: []string{"redis", "produce over 100 topics", "W1", "machine limit"},
			bars:   map[string][]float64{"haraqa-tcp": {1_200_000}, "nats": {28_000}},
		},
		{
			file: "latency",
			texts: []string{"Latency, µs (lower is better)", "W4 p50", "W4 p99", "W4 p99.9",
				"27.0", "140", "280", "37.0", "195", "590",
				"limit tcp-rtt 12.0", "limit tcp-rtt 24.0", "limit tcp-rtt 80.0"},
			absent: []string{"redis", "W6 p50"},
			bars:   map[string][]float64{"haraqa-tcp": {27, 140, 280}, "nats": {37, 195, 590}},
		},
		{
			file: "fraction",
			// 750/3000, 640/2200, 12/27 (latency: limit ÷ haraqa), 540/1500
			texts:  []string{"W1 MB/s", "vs tcp-stream", "25%", "29%", "44%", "36%", "the limit", subtitle},
			absent: []string{"nats", "redis"},
			bars:   map[string][]float64{"haraqa-tcp": {25, 640.0 / 22, 1200.0 / 27, 36}},
		},
	}
	figs := map[string]*barFigure{}
	for _, f := range r.figures(fixtureInfo) {
		figs[f.file] = f
	}
	for _, c := range cases {
		b, err := os.ReadFile(filepath.Join(dir, c.file+".svg"))
		if err != nil {
			t.Fatal(err)
		}
		doc := readSVG(t, b)
		want := c.texts
		if c.file != "fraction" {
			want = append(want, common...)
		}
		for _, s := range want {
			if !slices.Contains(doc.texts, s) {
				t.Errorf("%s.svg: no text %q; texts: %q", c.file, s, doc.texts)
			}
		}
		for _, s := range c.absent {
			if slices.Contains(doc.texts, s) {
				t.Errorf("%s.svg: text %q should not be there", c.file, s)
			}
		}
		checkBars(t, c.file+".svg", doc, figs[c.file], c.bars)

		// The PNG decodes, has the chart's size, and holds a bar's worth of
		// pixels in the colour of each system charted and none in the
		// colour of a system that was not measured.
		pb, err := os.ReadFile(filepath.Join(dir, c.file+".png"))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(pb))
		if err != nil {
			t.Fatalf("%s.png: %v", c.file, err)
		}
		w, h := figs[c.file].size()
		if got, want := img.Bounds().Size(), (image.Point{X: int(math.Ceil(float64(w/vg.Inch) * pngDPI)), Y: int(math.Ceil(float64(h/vg.Inch) * pngDPI))}); got != want {
			t.Errorf("%s.png: size %v, want %v", c.file, got, want)
		}
		count := func(c color.Color) int {
			n := 0
			cr, cg, cb, _ := c.RGBA()
			for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y++ {
				for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x++ {
					r, g, b, _ := img.At(x, y).RGBA()
					if r == cr && g == cg && b == cb {
						n++
					}
				}
			}
			return n
		}
		for sys := range c.bars {
			if n := count(systemColors[sys]); n < 200 {
				t.Errorf("%s.png: %d pixels of %s's colour, want a bar's worth", c.file, n, sys)
			}
		}
		if n := count(systemColors["redis"]); n != 0 {
			t.Errorf("%s.png: %d pixels of redis's colour, but redis was not measured", c.file, n)
		}
	}
}

// TestChartsShowEveryRow protects the promise that a workload row of the
// committed RESULTS.raw.txt is never left out of the charts: every
// benchmark with a throughput or a latency percentile is one of the bars.
func TestChartsShowEveryRow(t *testing.T) {
	f, err := os.Open("../../RESULTS.raw.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := parse(f)
	if err != nil {
		t.Fatal(err)
	}
	shown := map[string]bool{}
	for _, wl := range workloads {
		for _, u := range wl.units {
			for _, sys := range systems {
				name := fmt.Sprintf(wl.bench, sys)
				if r.get(name, u).ok() && (u == "MB/s" || u == "msgs/s" || isLatency(u)) {
					shown[name+" "+u] = true
				}
			}
		}
	}
	figs := r.figures(chartInfo{})
	bars := 0
	for _, fig := range figs {
		if fig.file == "fraction" {
			continue
		}
		for _, s := range fig.series {
			for _, v := range s.values {
				if !math.IsNaN(v) {
					bars++
				}
			}
		}
	}
	want := 0
	for name, res := range r.byName {
		if strings.HasPrefix(name, "Limit/") {
			continue
		}
		latency := false
		for u := range res {
			latency = latency || isLatency(u)
		}
		for u := range res {
			switch {
			case isLatency(u):
			case latency:
				continue // a latency workload's MB/s is its pace, not a throughput
			case u == "MB/s", u == "msgs/s" && res["MB/s"] == nil:
			default:
				continue // msgs/s beside MB/s is the same bar; B/op, allocs/op …
			}
			want++
			if !shown[name+" "+u] {
				t.Errorf("%s %s is in RESULTS.raw.txt but in no chart (add its workload to benchtable's workloads)", name, u)
			}
		}
	}
	if bars != want {
		t.Errorf("the charts hold %d bars, RESULTS.raw.txt has %d values to chart", bars, want)
	}
}

// TestCommittedChartsMatchResults protects the promise that the charts
// shown in README.md and bench/README.md are the committed
// RESULTS.raw.txt: each chart there is has every group and every median of
// the raw file as a labelled bar of the right height, and there is no chart
// left over from other results.
func TestCommittedChartsMatchResults(t *testing.T) {
	f, err := os.Open("../../RESULTS.raw.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := parse(f)
	if err != nil {
		t.Fatal(err)
	}
	const redraw = "redraw them (bench/README.md, \"Charts\")"
	figs := r.figures(chartInfo{})
	for _, name := range chartFiles {
		want := slices.ContainsFunc(figs, func(f *barFigure) bool { return f.file == name })
		for _, kind := range []string{".svg", ".png"} {
			_, err := os.Stat(filepath.Join("../../charts", name+kind))
			if got := err == nil; got != want {
				t.Errorf("charts/%s%s exists: %v, the results have that chart: %v; %s", name, kind, got, want, redraw)
			}
		}
	}
	for _, fig := range figs {
		b, err := os.ReadFile(filepath.Join("../../charts", fig.file+".svg"))
		if err != nil {
			t.Errorf("%v; %s", err, redraw)
			continue
		}
		doc := readSVG(t, b)
		var want []string
		for _, g := range fig.groups {
			want = append(want, strings.Split(g.label, "\n")...)
			if g.limit > 0 {
				want = append(want, "limit "+g.limitLabel)
			}
		}
		bars := map[string][]float64{}
		for _, s := range fig.series {
			want = append(want, s.name)
			for _, v := range s.values {
				if !math.IsNaN(v) {
					want = append(want, fig.format(v))
					bars[s.name] = append(bars[s.name], v)
				}
			}
		}
		for _, s := range want {
			if !slices.Contains(doc.texts, s) {
				t.Errorf("charts/%s.svg has no %q: it was not drawn from RESULTS.raw.txt; %s", fig.file, s, redraw)
			}
		}
		checkBars(t, "charts/"+fig.file+".svg", doc, fig, bars)
	}
}

// TestChartsRemoveStale protects the promise that a chart of a kind the
// results no longer have is not left beside them to be read as current.
func TestChartsRemoveStale(t *testing.T) {
	r, err := parse(strings.NewReader("BenchmarkW4/nats-2 \t1\t 100 ns/op\t 36.00 p50-µs\n"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, name := range chartFiles {
		for _, kind := range []string{".svg", ".png"} {
			if err := os.WriteFile(filepath.Join(dir, name+kind), []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := r.writeCharts(dir, chartInfo{}); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, e := range ents {
		left = append(left, e.Name())
	}
	if want := []string{"latency.png", "latency.svg"}; !slices.Equal(left, want) {
		t.Errorf("after charting W4 only the directory holds %v, want %v", left, want)
	}
}
