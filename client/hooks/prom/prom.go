// Package prom is a client.Hook that counts what a haraqa Client does in
// Prometheus metrics (github.com/prometheus/client_golang). It is a module
// of its own, so the client does not import Prometheus.
//
//	h, err := prom.New(prometheus.DefaultRegisterer)
//	c, err := client.Dial(ctx, addr, client.WithHooks(h))
//
// Metrics (the topic label has one value per topic the Client uses):
//
//	haraqa_client_produced_messages_total{topic}   messages acknowledged (producers and Produce*)
//	haraqa_client_produced_batches_total{topic}    batches acknowledged
//	haraqa_client_produced_bytes_total{topic}      batch bytes acknowledged
//	haraqa_client_produce_failed_messages_total{topic}
//	haraqa_client_consumed_messages_total{topic}
//	haraqa_client_request_duration_seconds{op,status}  request to response
//	haraqa_client_request_bytes_total{op}          frames written
//	haraqa_client_connects_total{result}           "ok" or "error"
//	haraqa_client_disconnects_total
package prom

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/haraqa/haraqa/client"
)

// Hook holds the metrics; register it with client.WithHooks.
type Hook struct {
	Produced      *prometheus.CounterVec
	ProducedBatch *prometheus.CounterVec
	ProducedBytes *prometheus.CounterVec
	ProduceFailed *prometheus.CounterVec
	Consumed      *prometheus.CounterVec
	Duration      *prometheus.HistogramVec
	RequestBytes  *prometheus.CounterVec
	Connects      *prometheus.CounterVec
	Disconnects   prometheus.Counter
}

// New returns a Hook whose metrics are registered with reg (nil: not
// registered). Two Clients in one process need two registries, or one
// Hook shared by both.
func New(reg prometheus.Registerer) (*Hook, error) {
	h := &Hook{
		Produced: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "haraqa_client_produced_messages_total",
			Help: "Messages the broker acknowledged to this client's producers."}, []string{"topic"}),
		ProducedBatch: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "haraqa_client_produced_batches_total",
			Help: "Batches the broker acknowledged to this client's producers."}, []string{"topic"}),
		ProducedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "haraqa_client_produced_bytes_total",
			Help: "Bytes of the batches the broker acknowledged (as sent, compressed)."}, []string{"topic"}),
		ProduceFailed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "haraqa_client_produce_failed_messages_total",
			Help: "Messages of this client's producers that failed for good."}, []string{"topic"}),
		Consumed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "haraqa_client_consumed_messages_total",
			Help: "Messages this client read."}, []string{"topic"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "haraqa_client_request_duration_seconds",
			Help:    "Time from writing a request to reading its response (long polls included).",
			Buckets: prometheus.ExponentialBuckets(50e-6, 4, 10)}, []string{"op", "status"}),
		RequestBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "haraqa_client_request_bytes_total",
			Help: "Bytes of the request frames written."}, []string{"op"}),
		Connects: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "haraqa_client_connects_total",
			Help: "Connection attempts, by result."}, []string{"result"}),
		Disconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: "haraqa_client_disconnects_total",
			Help: "Connections that ended (closed or lost)."}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{h.Produced, h.ProducedBatch, h.ProducedBytes, h.ProduceFailed,
			h.Consumed, h.Duration, h.RequestBytes, h.Connects, h.Disconnects} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return h, nil
}

// OnConnect counts a connection attempt.
func (h *Hook) OnConnect(addr string, d time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	h.Connects.WithLabelValues(result).Inc()
}

// OnDisconnect counts a connection that ended.
func (h *Hook) OnDisconnect(addr string, err error) { h.Disconnects.Inc() }

// OnRequestWritten counts request bytes.
func (h *Hook) OnRequestWritten(op client.Opcode, bytes int, err error) {
	h.RequestBytes.WithLabelValues(op.String()).Add(float64(bytes))
}

// OnResponseRead observes a request's duration.
func (h *Hook) OnResponseRead(op client.Opcode, bytes int, d time.Duration, status client.Code) {
	h.Duration.WithLabelValues(op.String(), status.String()).Observe(d.Seconds())
}

// OnBatchProduced counts a producer's batch.
func (h *Hook) OnBatchProduced(topic string, base uint64, count, bytes int, d time.Duration, err error) {
	if err != nil {
		h.ProduceFailed.WithLabelValues(topic).Add(float64(count))
		return
	}
	h.Produced.WithLabelValues(topic).Add(float64(count))
	h.ProducedBatch.WithLabelValues(topic).Inc()
	h.ProducedBytes.WithLabelValues(topic).Add(float64(bytes))
}

// OnMessagesConsumed counts messages read.
func (h *Hook) OnMessagesConsumed(topic string, msgs *client.Messages, d time.Duration) {
	h.Consumed.WithLabelValues(topic).Add(float64(msgs.Len()))
}
