package client_test

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// logLine returns access-log line i as JSON, about 200 bytes, drawn from a
// generator seeded with i: the same i always gives the same line. The
// fields vary the way a web server's do: a few methods, a few hundred
// paths, status codes skewed to 200, addresses, user agents and latencies.
func logLine(i uint64) []byte {
	r := rand.New(rand.NewPCG(i, 0x6c6f67))
	ts := time.Unix(1700000000+int64(i/50), int64(i%50)*20_000_000).UTC()
	return fmt.Appendf(nil,
		`{"time":%q,"level":"info","remote":"10.%d.%d.%d","method":%q,"path":"/api/v1/%s/%d","status":%d,"bytes":%d,"duration_ms":%.3f,"ua":%q,"req_id":"%016x"}`,
		ts.Format(time.RFC3339Nano), r.IntN(4), r.IntN(256), r.IntN(256),
		methods[r.IntN(len(methods))], resources[r.IntN(len(resources))], r.IntN(500),
		statuses[r.IntN(len(statuses))], 200+r.IntN(20000), r.Float64()*250,
		agents[r.IntN(len(agents))], r.Uint64())
}

var (
	methods   = []string{"GET", "GET", "GET", "POST", "PUT", "DELETE"}
	resources = []string{"users", "orders", "items", "carts", "sessions", "search"}
	statuses  = []int{200, 200, 200, 200, 200, 201, 204, 301, 304, 400, 401, 404, 500, 503}
	agents    = []string{
		"Mozilla/5.0 (X11; Linux x86_64)",
		"curl/8.5.0",
		"Go-http-client/1.1",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2)",
		"kube-probe/1.29",
	}
)
