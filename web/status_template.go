package web

import "html/template"

// statusTemplate is the status page: one self-contained HTML document
// (inline CSS, no scripts, no external assets), readable on a phone.
var statusTemplate = template.Must(template.New("status").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{{.RefreshSeconds}}">
<title>haraqa broker {{.Version}}</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;padding:1rem;color:#1b1f24;background:#fff;line-height:1.4}
h1{font-size:1.3rem;margin:0 0 .3rem}
h2{font-size:1.05rem;margin:1.4rem 0 .4rem}
.meta{color:#555;font-size:.9rem}
.meta span{display:inline-block;margin-right:1rem}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;font-size:.9rem;min-width:100%}
th,td{padding:.3rem .6rem;border-bottom:1px solid #ddd;text-align:left;white-space:nowrap}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
th{background:#f3f4f6}
.ok{color:#137333;font-weight:600}
.bad{color:#b3261e;font-weight:600}
.warn{color:#9a6700;font-weight:600}
.reason{white-space:normal;color:#b3261e}
ul{padding-left:1.2rem}
@media (max-width:600px){body{padding:.6rem}th,td{padding:.25rem .4rem}}
</style>
</head>
<body>
<h1>haraqa broker</h1>
<div class="meta">
<span>version <b>{{.Version}}</b></span>
<span>uptime <b>{{.Uptime}}</b></span>
<span>connections <b>{{.Conns}}</b></span>
<span>topics <b>{{.TotalTopics}}</b></span>
<span>{{if .Ready}}<span class="bad">not ready</span>{{else}}<span class="ok">ready</span>{{end}}</span>
</div>
<div class="meta">{{.Now}} · reloads every {{.Refresh}}</div>
{{if .Ready}}<ul>{{range .Ready}}<li class="reason">{{.Check}}: {{.Error}}</li>{{end}}</ul>{{end}}
{{if not .Open}}<p class="warn">The engine is not open yet: the data directories are being opened and recovered.</p>{{end}}

<h2>Volumes</h2>
<div class="scroll"><table>
<tr><th>directory</th><th>state</th><th>id</th><th>reason</th></tr>
{{range .Volumes}}<tr><td>{{.Dir}}</td><td class="{{if eq .State "healthy"}}ok{{else if eq .State "repairing"}}warn{{else}}bad{{end}}">{{.State}}</td><td>{{.ID}}</td><td class="reason">{{.Reason}}</td></tr>
{{end}}</table></div>

<h2>Topics</h2>
{{if .Topics}}<div class="scroll"><table>
<tr><th>topic</th><th class="n">start</th><th class="n">end</th><th class="n">messages</th><th class="n">size</th><th class="n">segments</th><th class="n">produce</th><th class="n">consume</th><th>read-only</th></tr>
{{range .Topics}}<tr><td>{{.Name}}</td><td class="n">{{.Start}}</td><td class="n">{{.End}}</td><td class="n">{{.Messages}}</td><td class="n">{{.Size}}</td><td class="n">{{.Segments}}</td><td class="n">{{.ProduceRate}}</td><td class="n">{{.ConsumeRate}}</td><td class="reason">{{.ReadOnly}}</td></tr>
{{end}}</table></div>
{{if .MoreTopics}}<p class="meta">and {{.MoreTopics}} more topics not shown</p>{{end}}
{{else}}<p class="meta">no topics</p>{{end}}
<p class="meta">Rates are messages per second produced and consumed since the previous reload.</p>

{{if .Groups}}<h2>Consumer groups</h2>
<div class="scroll"><table>
<tr><th>topic</th><th>group</th><th class="n">committed</th><th class="n">lag</th><th class="n">in flight</th><th class="n">members</th><th class="n">redeliveries</th><th class="n">dead-lettered</th></tr>
{{range .Groups}}<tr><td>{{.Topic}}</td><td>{{.Name}}</td><td class="n">{{.Committed}}</td><td class="n">{{.Lag}}</td><td class="n">{{.InFlight}}</td><td class="n">{{.Members}}</td><td class="n">{{.Redeliveries}}</td><td class="n">{{.DeadLettered}}</td></tr>
{{end}}</table></div>{{end}}

<h2>Health and repair</h2>
<div class="scroll"><table>
{{range .Counters}}<tr><td>{{.Name}}</td><td class="n">{{.Value}}</td></tr>
{{end}}</table></div>
<p class="meta">Machine-readable: <a href="/metrics">/metrics</a> · <a href="/readyz">/readyz</a> · <a href="/healthz">/healthz</a></p>
</body>
</html>
`))
