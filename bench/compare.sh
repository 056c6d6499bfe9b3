#!/usr/bin/env bash
# compare.sh runs the benchmark suite COUNT times (go test -count), prints
# a markdown table with the median and range per workload and system, the
# haraqa/peer ratios and the machine limits, and writes it to RESULTS.md
# (raw go test output in RESULTS.raw.txt), and draws the charts of the
# same numbers into charts/ next to it (SVG and PNG, see README.md).
#
#   ./compare.sh                  # everything, 3 runs (about 8 minutes here)
#   COUNT=5 BENCH='W1W2|Limit' ./compare.sh
#
# Redis Streams needs redis-server (Debian: apt-get install -y redis-server);
# without it the Redis benchmarks are skipped and the table says so.
set -euo pipefail
cd "$(dirname "$0")"

COUNT=${COUNT:-3}
BENCH=${BENCH:-.}
BENCHSTAT=${BENCHSTAT:-golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da}
OUT=${OUT:-RESULTS.md}
RAW=${RAW:-RESULTS.raw.txt}
CHARTS=${CHARTS:-$(dirname "$OUT")/charts}
FLAGS=${FLAGS:-} # more go test flags, e.g. FLAGS=-short for a quick try

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cmd="go test -run='^\$' -bench='$BENCH' -benchtime=1x -count=$COUNT -timeout=60m${FLAGS:+ $FLAGS} ."
echo "+ $cmd" >&2
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
start=$(date +%s)
# The suite's own output goes to the terminal as it comes. A failed
# benchmark (a peer that does not finish a case within its bound, say) does
# not stop the script: the table and charts are written from every row that
# ran, and the script then exits with go test's status.
suite_status=0
go test -run='^$' -bench="$BENCH" -benchtime=1x -count="$COUNT" -timeout=60m $FLAGS . | tee "$RAW" >&2 || suite_status=$?
elapsed=$(( $(date +%s) - start ))
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

if ! go run "$BENCHSTAT" "$RAW" >"$tmp/benchstat.txt" 2>"$tmp/benchstat.err"; then
	echo "compare.sh: benchstat failed (the table does without it):" >&2
	cat "$tmp/benchstat.err" >&2
	: >"$tmp/benchstat.txt"
fi

modver() { awk -v m="$1" '$1 == m { print $2 }' go.mod; }
# (|| true: without redis-server, set -e and pipefail would end the script here)
redis_version=$({ redis-server --version 2>/dev/null || true; } | sed -n 's/.*v=\([^ ]*\).*/\1/p')
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
mem=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
run_date=$(date -u '+%Y-%m-%d %H:%M UTC')
commit=$(git -C .. rev-parse --short HEAD 2>/dev/null || echo '?')

cat >"$tmp/header.md" <<EOF
# haraqa vs NATS JetStream vs Redis Streams — results

Written by \`bench/compare.sh\` from one run; every number below was measured
in that run. Ratios are between systems of the same run on the same machine.

- **Command** (in \`bench/\`): \`$cmd\` — took ${elapsed}s
  (the whole of compare.sh adds benchstat and this table).
- **Date**: $run_date
- **Machine**: $(nproc) CPUs ($cpu), $mem RAM, Linux $(uname -r), $(go version | cut -d' ' -f3).
  Load average (1, 5, 15 min) before the run: $load_before; after: $load_after
  (the suite keeps about 1–2 cores busy; more means other work shared the machine).
- **Versions**: haraqa at $commit with the working tree as it was;
  nats-server $(modver github.com/nats-io/nats-server/v2) embedded, nats.go $(modver github.com/nats-io/nats.go) (jetstream);
  redis-server ${redis_version:-not installed} (Debian package), go-redis $(modver github.com/redis/go-redis/v9).
- **Durability** (matched per tier):

  | tier | workloads | haraqa | NATS JetStream | Redis Streams |
  |---|---|---|---|---|
  | relaxed | W1–W4, W6 | fsync=never | default sync (sync_interval 2 min), file storage | appendonly yes, appendfsync everysec |
  | durable | W5 | fsync=always (fdatasync before the ack, group commit) | sync_interval always (SyncAlways) | appendonly yes, appendfsync always |

  Redis also runs with \`save ""\` (no RDB snapshots) and auto-aof-rewrite off,
  so nothing but the AOF competes with the workload.
- **Systems**: haraqa-tcp / haraqa-unix: broker in the benchmark process
  (engine + server with their defaults but fsync), over loopback TCP / a Unix
  socket. haraqa-proc-*: cmd/broker built from this tree, run as a child
  process (its defaults but -fsync). nats: nats-server embedded in the
  benchmark process, over loopback TCP. redis: redis-server as a child
  process over loopback TCP. The haraqa-proc-* and redis rows are the
  process-to-process comparison; haraqa-tcp and nats the in-process one.
- Every run verified the count and content of the messages it read back
  before reporting. Latencies in µs; MB/s counts message payload bytes (10^6).

EOF

go run ./internal/benchtable -raw "$RAW" -benchstat "$tmp/benchstat.txt" -header "$tmp/header.md" \
	-charts "$CHARTS" -date "$run_date" -machine "$(nproc) CPUs ($cpu), $mem RAM" -commit "$commit" >"$OUT"
cat "$OUT"
echo "compare.sh: wrote $OUT, $RAW and the charts in $CHARTS in $(( $(date +%s) - start ))s" >&2
if [ "$suite_status" -ne 0 ]; then
	echo "compare.sh: go test failed (exit $suite_status): some rows are missing; see the FAIL lines in $RAW" >&2
	exit "$suite_status"
fi
