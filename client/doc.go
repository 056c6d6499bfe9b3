// Package client is the Go client of the haraqa broker.
//
// A Client holds one connection to a broker (TCP or Unix socket). Calls
// from any number of goroutines are pipelined on it, each under its own
// request id, and every response is handed to the call waiting for it (a
// call alone in flight reads its own); responses come back in any order.
// Every call takes a context first: when it ends the call returns
// ctx.Err() at once (or when the response it is reading is in), and the
// late response, if any, is discarded. A request already written may
// still take effect on the broker.
//
// What there is:
//
//   - Produce and ProduceBatch append one batch and return its base offset;
//     ProduceMessages appends messages with keys, headers and the
//     producer's timestamps.
//   - Batches are compressed with s2 or zstd when the Client was dialled
//     WithCompression (or a Producer has ProducerCompression): stored and
//     sent compressed, never decompressed by the broker.
//   - Consume reads whole batches into a reusable ConsumeBuffer, verifies
//     each batch's checksums, decompresses what is compressed (bounded by
//     WithMaxBody) and trims to the requested range; with ConsumeWait it
//     long-polls at the end of the topic.
//   - CreateTopic, DeleteTopic, ListTopics, Offsets, OffsetAt,
//     TruncateBefore, TruncateBeforeTime manage topics; Watch follows
//     their offset ranges.
//   - MultiProducer batches messages for many topics (per topic, by
//     size, count and linger time, under one buffer bound) and is
//     idempotent by default: it resends a batch after a lost ack or a
//     retriable error and the broker stores it once (InitProducer);
//     SendFunc reports each message's offset or error to a callback, and
//     Flush names the topics and counts that failed (ProduceError).
//     Producer is a MultiProducer bound to one topic;
//     Consumer follows a topic as a Go iterator, from an offset or a time
//     (ConsumeFrom), with a reset policy for a position out of range
//     (ConsumeReset); MultiConsumer follows several topics, a list or a
//     name pattern, new ones included; Writer turns lines into messages
//     (for log.New and slog).
//   - GroupConsumer is a member of a consumer group, a cursor kept by the
//     broker and shared by its members (NewGroupConsumer): messages are
//     leased to it and each is acked, nacked or extended (GroupMessage's
//     Ack, Nack, InProgress); ListGroups, DescribeGroup, SeekGroup and
//     DeleteGroup manage groups.
//   - WithTransformer seals every value produced and opens every value
//     consumed: AESGCM encrypts with AES-256-GCM under rotating key ids;
//     a value that does not open is an error of that message
//     (Messages.Err), never garbage. WithHooks registers observers of
//     connections, requests, produced batches and consumed messages.
//
// Errors: a broker error is an *Error (netproto.Error) with a Code, the
// broker's message, a Retriable flag and, for ErrOffsetOutOfRange, the
// topic's valid range. errors.Is matches it against ErrTopicNotFound,
// ErrOffsetOutOfRange, ... (the sentinels of package netproto).
// IsRetriable tells whether a retry may succeed. A dropped connection fails
// the calls in flight with ErrDisconnected (retriable), and the next call
// redials with backoff (WithReconnect).
//
// Aliasing: message values, keys and headers returned by Consume alias
// the ConsumeBuffer and stay valid until its next use; a Consumer's
// messages alias its buffer until the next iteration. Copy what must live
// longer. Produce, ProduceMessages, Producer.Send and SendMessage copy the
// messages they are given.
//
// Option names follow one rule: an option's name starts with the call it
// configures, which is also its type's name. Options of Dial are Option and
// start with With (With… the client); options of Consume and a Consumer
// are ConsumeOption and start with Consume; options of NewProducer are
// ProducerOption and start with Producer; options of NewGroupConsumer are
// GroupOption and start with Group. So a name says where it goes, and
// the compiler refuses one passed to the wrong call; a test holds every
// exported option to the rule.
//
// Options are grouped by what they configure: Option for the connection
// (WithToken, WithTLSConfig for tls:// addresses, WithDialTimeout,
// WithWriteTimeout, WithMaxBody,
// WithReconnect, WithLogger, WithHooks) and for what it produces and
// consumes (WithCompression, WithTransformer); Dial refuses a bad value
// with an error naming the option (ErrBadOption),
// ConsumeOption for reads (ConsumeWait, ConsumeMaxBytes, ConsumeLimit,
// ConsumeFrom, ConsumeSkipCorrupt, ConsumeReset, ConsumeOnReset,
// ConsumeDiscoverEvery) and ProducerOption for a Producer (ProducerMaxBytes,
// ProducerMaxMessages, ProducerLinger, ProducerBufferBytes,
// ProducerMaxInFlight, ProducerCompression, ProducerIdempotent,
// ProducerOnError, ProducerOnAck, ProducerOnTopicAck); a Producer given a
// bad value fails every Send, Flush and Close with ErrBadOption naming it.
//
// Hello world:
//
//	ctx := context.Background()
//	c, err := client.Dial(ctx, "tcp://127.0.0.1:4353")
//	if err != nil {
//		return err
//	}
//	defer c.Close()
//	if err := c.CreateTopic(ctx, "greetings"); err != nil && !errors.Is(err, client.ErrTopicExists) {
//		return err
//	}
//	first, err := c.Produce(ctx, "greetings", []byte("hello"), []byte("world"))
//	if err != nil {
//		return err
//	}
//	var buf client.ConsumeBuffer
//	msgs, err := c.Consume(ctx, "greetings", first, 2, &buf)
//	if err != nil {
//		return err
//	}
//	for m := range msgs.All() {
//		fmt.Println(m.Offset, string(m.Value)) // m.Value aliases buf
//	}
package client
