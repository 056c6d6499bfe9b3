package main

// The charts of RESULTS.md: the same medians as the tables, drawn with
// gonum.org/v1/plot into SVG and PNG files. Every row of the tables that is
// a throughput (MB/s, or msgs/s where a workload has no MB/s) or a latency
// percentile becomes a bar; the machine limits are drawn as lines.

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// chartInfo says where the results come from; it goes under every title.
type chartInfo struct {
	date, machine, commit string
}

func (i chartInfo) subtitle(runs int) string {
	var parts []string
	for _, s := range []string{i.date, i.machine} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	if i.commit != "" {
		parts = append(parts, "haraqa "+i.commit)
	}
	switch {
	case runs == 1:
		parts = append(parts, "one run")
	case runs > 1:
		parts = append(parts, fmt.Sprintf("median of %d runs", runs))
	}
	return strings.Join(parts, " · ")
}

// barGroup is one position on the x axis: a workload and metric.
type barGroup struct {
	label      string
	limit      float64 // the machine limit drawn across the group; 0: none
	limitLabel string
}

// barSeries is one system: one bar per group, NaN where not measured.
type barSeries struct {
	name   string
	values []float64
}

// barFigure is one chart file.
type barFigure struct {
	file        string // base name, without .svg/.png
	title       string
	note        string // a line under the subtitle (optional)
	yLabel      string
	groups      []barGroup
	series      []barSeries
	limitLegend string  // legend text of the limit lines
	refLine     float64 // a line across the whole chart (fraction: 100%); 0: none
	refLegend   string
	format      func(float64) string
	runs        int
}

func (f *barFigure) empty() bool { return len(f.groups) == 0 || len(f.series) == 0 }

// seriesOf returns one series per system that has at least one value.
func seriesOf(systems []string, value func(sys string, group int) (float64, bool), n int) []barSeries {
	var out []barSeries
	for _, sys := range systems {
		s := barSeries{name: sys, values: make([]float64, n)}
		any := false
		for g := range n {
			v, ok := value(sys, g)
			if !ok {
				v = math.NaN()
			} else {
				any = true
			}
			s.values[g] = v
		}
		if any {
			out = append(out, s)
		}
	}
	return out
}

// maxRuns is the largest number of runs behind any value of the results.
func (r *results) maxRuns() int {
	n := 0
	for _, res := range r.byName {
		for _, v := range res {
			n = max(n, len(v))
		}
	}
	return n
}

func isLatency(unit string) bool { return strings.HasSuffix(unit, "-µs") }

// tcpLimit is the limit drawn across a group: the binding (lowest for
// throughput) limit of haraqa-tcp's figure, the path every peer uses too
// (a loopback TCP stream or round trip, sendfile, or the disk for W5).
func (r *results) tcpLimit(bench, unit string) (name string, v float64) {
	for _, f := range fractions("haraqa-tcp") {
		if f.bench != bench {
			continue
		}
		if isLatency(unit) != f.lowerBetter {
			continue
		}
		lu := unit
		if !isLatency(unit) {
			if f.unit != unit {
				continue
			}
			lu = f.limitUnit
		}
		l := r.get("Limit/"+f.limit, lu)
		if !l.ok() {
			continue
		}
		if v == 0 || l.med < v {
			name, v = f.limit, l.med
		}
	}
	return name, v
}

func wrapLabel(id, what string) string {
	return id + "\n" + what
}

// throughputFigure charts every workload row with a throughput: in MB/s,
// the unit of the machine limits; a workload without MB/s in msgs/s.
func (r *results) throughputFigures(info chartInfo) []*barFigure {
	var figs []*barFigure
	for _, unit := range []string{"MB/s", "msgs/s"} {
		fig := &barFigure{
			file:        "throughput",
			title:       "Throughput, " + unit + " (higher is better)",
			yLabel:      unit,
			limitLegend: "machine limit",
			format:      num,
			runs:        r.maxRuns(),
		}
		if unit == "msgs/s" {
			fig.file = "throughput-msgs"
			fig.limitLegend = ""
		}
		var wls []workload
		for _, wl := range workloads {
			if !slices.Contains(wl.units, unit) || (unit == "msgs/s" && slices.Contains(wl.units, "MB/s")) {
				continue
			}
			if !r.measured(wl, unit) {
				continue
			}
			wls = append(wls, wl)
		}
		for _, wl := range wls {
			g := barGroup{label: wrapLabel(wl.id, wl.what)}
			if name, v := r.tcpLimit(wl.bench, unit); v > 0 {
				g.limit, g.limitLabel = v, name+" "+num(v)
			}
			fig.groups = append(fig.groups, g)
		}
		fig.series = seriesOf(systems, func(sys string, g int) (float64, bool) {
			s := r.get(fmt.Sprintf(wls[g].bench, sys), unit)
			return s.med, s.ok()
		}, len(wls))
		fig.note = info.subtitle(fig.runs)
		if !fig.empty() {
			figs = append(figs, fig)
		}
	}
	return figs
}

func (r *results) measured(wl workload, unit string) bool {
	for _, sys := range systems {
		if r.get(fmt.Sprintf(wl.bench, sys), unit).ok() {
			return true
		}
	}
	return false
}

// latencyFigure charts every latency percentile of every workload.
func (r *results) latencyFigure(info chartInfo) *barFigure {
	fig := &barFigure{
		file:        "latency",
		title:       "Latency, µs (lower is better)",
		yLabel:      "µs",
		limitLegend: "limit (TCP round trip)",
		format:      num,
		runs:        r.maxRuns(),
	}
	type key struct{ bench, unit string }
	var keys []key
	for _, wl := range workloads {
		for _, u := range wl.units {
			if !isLatency(u) || !r.measured(wl, u) {
				continue
			}
			keys = append(keys, key{wl.bench, u})
			g := barGroup{label: wl.id + " " + strings.TrimSuffix(u, "-µs")}
			if name, v := r.tcpLimit(wl.bench, u); v > 0 {
				g.limit, g.limitLabel = v, name+" "+num(v)
			}
			fig.groups = append(fig.groups, g)
		}
	}
	fig.series = seriesOf(systems, func(sys string, g int) (float64, bool) {
		s := r.get(fmt.Sprintf(keys[g].bench, sys), keys[g].unit)
		return s.med, s.ok()
	}, len(keys))
	fig.note = info.subtitle(fig.runs)
	return fig
}

// fractionFigure charts haraqa's figures as a percentage of the machine
// limit that bounds them (the last table of RESULTS.md).
func (r *results) fractionFigure(info chartInfo) *barFigure {
	fig := &barFigure{
		file:      "fraction",
		title:     "haraqa as a fraction of the machine limit, % (latency: limit ÷ haraqa)",
		yLabel:    "% of the limit",
		refLine:   100,
		refLegend: "the limit",
		format:    func(v float64) string { return fmt.Sprintf("%.0f%%", v) },
		runs:      r.maxRuns(),
	}
	base := fractions("haraqa-tcp")
	var idx []int
	for i, f := range base {
		any := false
		for _, sys := range haraqaSystems() {
			if _, ok := r.fraction(fractions(sys)[i], sys); ok {
				any = true
			}
		}
		if !any {
			continue
		}
		idx = append(idx, i)
		fig.groups = append(fig.groups, barGroup{label: f.id + " " + f.unit + "\nvs " + f.limit})
	}
	fig.series = seriesOf(haraqaSystems(), func(sys string, g int) (float64, bool) {
		v, ok := r.fraction(fractions(sys)[idx[g]], sys)
		return 100 * v, ok
	}, len(idx))
	fig.note = info.subtitle(fig.runs) + "\nUnix-socket systems are measured against the Unix-socket limits, -proc against an echo process"
	return fig
}

func haraqaSystems() []string {
	var out []string
	for _, s := range systems {
		if strings.HasPrefix(s, "haraqa") {
			out = append(out, s)
		}
	}
	return out
}

// figures returns every chart the results have data for.
func (r *results) figures(info chartInfo) []*barFigure {
	figs := r.throughputFigures(info)
	for _, f := range []*barFigure{r.latencyFigure(info), r.fractionFigure(info)} {
		if !f.empty() {
			figs = append(figs, f)
		}
	}
	return figs
}

// systemColors keeps a system's colour the same in every chart.
var systemColors = map[string]color.Color{
	"haraqa-tcp":       color.RGBA{0x1f, 0x4e, 0x9a, 0xff},
	"haraqa-unix":      color.RGBA{0x6b, 0xa3, 0xe0, 0xff},
	"haraqa-proc-tcp":  color.RGBA{0x1b, 0x87, 0x7a, 0xff},
	"haraqa-proc-unix": color.RGBA{0x86, 0xd0, 0xc0, 0xff},
	"nats":             color.RGBA{0xe8, 0x8a, 0x1a, 0xff},
	"redis":            color.RGBA{0xc6, 0x28, 0x28, 0xff},
}

func seriesColor(name string, i int) color.Color {
	if c, ok := systemColors[name]; ok {
		return c
	}
	return plotutil.Color(i)
}

var limitColor = color.RGBA{0x33, 0x33, 0x33, 0xff}

// clampLog is a log scale on which a bar's foot (0) sits on the axis.
type clampLog struct{}

func (clampLog) Normalize(min, max, x float64) float64 {
	if x < min {
		x = min
	}
	return plot.LogScale{}.Normalize(min, max, x)
}

// groupedTicks writes tick labels of 1,000 and more with thousands grouped.
type groupedTicks struct{ plot.Ticker }

func (g groupedTicks) Ticks(min, max float64) []plot.Tick {
	ts := g.Ticker.Ticks(min, max)
	for i, t := range ts {
		if t.Label != "" && t.Value >= 1000 {
			ts[i].Label = num(t.Value)
		}
	}
	return ts
}

const (
	pngDPI      = 110
	labelSize   = 8
	legendWidth = 1.7 * vg.Inch
)

// size is the chart's size: wide enough for every bar's label.
func (f *barFigure) size() (vg.Length, vg.Length) {
	bars := len(f.groups) * (len(f.series) + 1)
	w := max(vg.Length(bars)*15+legendWidth+1.2*vg.Inch, 9*vg.Inch)
	return w, 5.5 * vg.Inch
}

// yRange picks the axis: log when the values (and limits) span more than
// 30×, and head room for the rotated value labels.
func (f *barFigure) yRange() (lo, hi float64, log bool) {
	lo, hi = math.Inf(1), 0
	see := func(v float64) {
		if v > 0 && !math.IsNaN(v) {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	for _, s := range f.series {
		for _, v := range s.values {
			see(v)
		}
	}
	for _, g := range f.groups {
		see(g.limit)
	}
	see(f.refLine)
	if hi == 0 {
		return 0, 1, false
	}
	const room = 0.8 // the highest bar stops at 80% of the axis
	if hi/lo > 30 {
		llo := math.Floor(math.Log10(lo))
		lhi := llo + (math.Log10(hi)-llo)/room
		return math.Pow(10, llo), math.Pow(10, lhi), true
	}
	return 0, hi / room, false
}

func (f *barFigure) plot() (*plot.Plot, *plot.Legend, error) {
	p := plot.New()
	p.Y.Label.Text = f.yLabel
	labels := make([]string, len(f.groups))
	for i, g := range f.groups {
		labels[i] = g.label
		if g.limit > 0 {
			labels[i] += "\nlimit " + g.limitLabel
		}
	}
	p.NominalX(labels...)
	p.X.Tick.Label.Font.Size = 9
	p.Add(plotter.NewGrid())
	p.X.Padding, p.Y.Padding = 0, 0

	leg := plot.NewLegend()
	leg.Top, leg.Left = true, true
	leg.TextStyle.Font.Size = 10
	leg.Padding = 4

	w, _ := f.size()
	groupWidth := (w - legendWidth - 1*vg.Inch) / vg.Length(len(f.groups))
	barWidth := groupWidth / vg.Length(len(f.series)+1)
	labelStyle := text.Style{
		Font:     font.From(plot.DefaultFont, labelSize),
		Handler:  plot.DefaultTextHandler,
		Color:    color.Black,
		Rotation: math.Pi / 2,
		XAlign:   draw.XLeft,
		YAlign:   draw.YCenter,
	}
	var valueLabels []plot.Plotter // added last: drawn over the lines
	for i, s := range f.series {
		offset := vg.Length(float64(i)-float64(len(f.series)-1)/2) * barWidth
		var xys plotter.XYs
		var strs []string
		var first *plotter.BarChart
		for g, v := range s.values {
			if math.IsNaN(v) {
				continue // no bar, no label: not measured
			}
			// A bar chart of one bar per value: a missing value draws nothing.
			bar, err := plotter.NewBarChart(plotter.Values{v}, barWidth*0.9)
			if err != nil {
				return nil, nil, err
			}
			bar.XMin = float64(g)
			bar.Color = seriesColor(s.name, i)
			bar.LineStyle.Width = 0
			bar.Offset = offset
			p.Add(bar)
			if first == nil {
				first = bar
				leg.Add(s.name, bar)
			}
			xys = append(xys, plotter.XY{X: float64(g), Y: v})
			strs = append(strs, f.format(v))
		}
		if len(xys) > 0 {
			lab, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: strs})
			if err != nil {
				return nil, nil, err
			}
			for j := range lab.TextStyle {
				lab.TextStyle[j] = labelStyle
			}
			lab.Offset = vg.Point{X: offset, Y: 3}
			valueLabels = append(valueLabels, lab)
		}
	}

	lineStyle := draw.LineStyle{Color: limitColor, Width: vg.Points(1.5), Dashes: []vg.Length{vg.Points(5), vg.Points(3)}}
	var limitLine *plotter.Line
	half := float64(len(f.series)+1) / 2 * float64(barWidth) / float64(groupWidth)
	for g, grp := range f.groups {
		if grp.limit <= 0 {
			continue
		}
		l, err := plotter.NewLine(plotter.XYs{{X: float64(g) - half, Y: grp.limit}, {X: float64(g) + half, Y: grp.limit}})
		if err != nil {
			return nil, nil, err
		}
		l.LineStyle = lineStyle
		p.Add(l)
		limitLine = l
	}
	if limitLine != nil {
		leg.Add(f.limitLegend, limitLine)
	}
	if f.refLine > 0 {
		l, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: f.refLine}, {X: float64(len(f.groups)) - 0.5, Y: f.refLine}})
		if err != nil {
			return nil, nil, err
		}
		l.LineStyle = lineStyle
		p.Add(l)
		leg.Add(f.refLegend, l)
	}

	p.Add(valueLabels...)

	lo, hi, log := f.yRange()
	p.Y.Tick.Marker = groupedTicks{plot.DefaultTicks{}}
	if log {
		p.Y.Label.Text += " (log scale)"
		p.Y.Scale = clampLog{}
		p.Y.Tick.Marker = groupedTicks{plot.LogTicks{Prec: -1}}
	}
	p.Y.Min, p.Y.Max = lo, hi
	p.X.Min, p.X.Max = -0.5, float64(len(f.groups))-0.5
	return p, &leg, nil
}

// draw lays out title, note, plot and legend on a canvas.
func (f *barFigure) draw(c vg.CanvasSizer) error {
	p, leg, err := f.plot()
	if err != nil {
		return err
	}
	dc := draw.New(c)
	dc.FillPolygon(color.White, []vg.Point{dc.Min, {X: dc.Max.X, Y: dc.Min.Y}, dc.Max, {X: dc.Min.X, Y: dc.Max.Y}})
	// The title, then where the numbers come from.
	for _, t := range []struct {
		s    string
		size vg.Length
		c    color.Color
	}{{f.title, 14, color.Black}, {f.note, 10, color.RGBA{0x44, 0x44, 0x44, 0xff}}} {
		if t.s == "" {
			continue
		}
		sty := text.Style{
			Font:    font.From(plot.DefaultFont, t.size),
			Handler: plot.DefaultTextHandler,
			Color:   t.c,
			XAlign:  draw.XCenter,
			YAlign:  draw.YTop,
		}
		dc.FillText(sty, vg.Point{X: (dc.Min.X + dc.Max.X) / 2, Y: dc.Max.Y - 6}, t.s)
		dc = draw.Crop(dc, 0, 0, 0, -sty.Height(t.s)-6)
	}
	p.Draw(draw.Crop(dc, 0, -legendWidth, 0, 0))
	legC := draw.Crop(dc, dc.Max.X-dc.Min.X-legendWidth+8, 0, 0, -30)
	leg.Draw(legC)
	return nil
}

// svg and png render the figure.
func (f *barFigure) svg() ([]byte, error) {
	w, h := f.size()
	c := vgsvg.New(w, h)
	if err := f.draw(c); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if _, err := c.WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func (f *barFigure) png() ([]byte, error) {
	w, h := f.size()
	c := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(pngDPI))
	if err := f.draw(c); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// chartFiles are the names of every chart there can be.
var chartFiles = []string{"throughput", "throughput-msgs", "latency", "fraction"}

// writeCharts writes every figure as dir/NAME.svg and dir/NAME.png,
// removes the charts of earlier runs that these results have no data for,
// and returns the file names written.
func (r *results) writeCharts(dir string, info chartInfo) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	figs := r.figures(info)
	for _, name := range chartFiles {
		if !slices.ContainsFunc(figs, func(f *barFigure) bool { return f.file == name }) {
			for _, kind := range []string{".svg", ".png"} {
				if err := os.Remove(filepath.Join(dir, name+kind)); err != nil && !os.IsNotExist(err) {
					return nil, err
				}
			}
		}
	}
	var written []string
	for _, f := range figs {
		for _, kind := range []string{"svg", "png"} {
			render := f.svg
			if kind == "png" {
				render = f.png
			}
			b, err := render()
			if err != nil {
				return written, fmt.Errorf("chart %s.%s: %w", f.file, kind, err)
			}
			name := filepath.Join(dir, f.file+"."+kind)
			if err := os.WriteFile(name, b, 0o644); err != nil {
				return written, err
			}
			written = append(written, name)
		}
	}
	return written, nil
}
