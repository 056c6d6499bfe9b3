// Command hrq is the shell client of a haraqa broker, in the spirit of
// kcat, rpk and the nats CLI: it produces messages from stdin or its
// arguments, consumes them to stdout, manages topics and load-tests the
// broker.
//
//	seq 1 100000 | hrq produce numbers             # one message per line
//	hrq consume numbers --from beginning -e | wc -l
//	hrq consume logs --from -10 --follow            # tail -f
//	hrq consume events --json | jq .value
//	hrq consume --match '^logs\.' --follow --json # many topics, new ones too
//	hrq consume jobs --group workers               # a consumer-group member; acks what it wrote
//	hrq topics list | create | delete | describe | truncate
//	hrq groups list | describe | seek | delete
//	hrq offsets numbers
//	hrq watch numbers logs
//	hrq bench produce -n 1000000 -s 100
//
// The broker address comes from --addr, else HARAQA_ADDR, else
// tcp://127.0.0.1:4353 (tcp://host:port, host:port, unix:///path or a
// socket path); the token from --token, else HARAQA_TOKEN.
//
// Errors go to stderr as one line starting with "hrq: ". Exit codes:
//
//	0    ok
//	1    any other error (a topic that already exists, a broker error)
//	2    usage: unknown command or flag, bad argument, bad topic name
//	3    connection: cannot reach the broker, lost it, it refused the
//	     token, or it acknowledged nothing for --timeout
//	4    not found: the topic, the offset or the consumer group does not exist
//	5    data: input too large, a batch the broker refused, corrupt data
//	6    storage: the broker cannot store the messages (a full disk,
//	     too few healthy volumes), also when produce gives up after
//	     --timeout for that reason
//	130  interrupted by SIGINT or SIGTERM (consume --follow and watch,
//	     which run until stopped, exit 0 instead)
//
// Flags and subcommands are parsed by cobra (which also completes topic
// names from the broker in the shell); the progress line of bench, drawn
// only while stderr is a terminal, by progressbar (otherwise bench prints a
// status line every --status-every). Both stay in this command: the client
// package does not import them.
//
// Files: main.go (the root command, connecting), exit.go (exit codes and
// error lines), produce.go and stall.go (produce, the --timeout guard),
// consume.go, consume_many.go (several topics, --match), groups.go
// (consume --group, the groups command), format.go
// (--json, --format) and position.go (--from),
// topics.go, offsets.go, watch.go, bench.go and progress.go. readme_test.go
// runs README.md's shell examples against a real broker.
package main
