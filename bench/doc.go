// Package bench measures haraqa side by side with NATS JetStream and Redis
// Streams, in one run on one machine, together with the machine's own
// limits (loopback and Unix-socket throughput, sendfile, memcpy, fdatasync).
//
// It is a module of its own (bench/go.mod, with a replace to the root
// module) so that the peers' dependencies never enter haraqa's go.mod.
// Everything lives in _test.go files: the workloads W1–W6 are benchmarks,
// and every run verifies the count and content of what it read back before
// it reports a number. README.md says how to run them; compare.sh runs the
// whole set and writes RESULTS.md.
package bench
