// Package metrics exports the broker's state to Prometheus: per-topic
// produced and consumed messages and bytes, request, fsync and
// group-commit histograms, connections, topics, segments, descriptors and
// mappings, volume states, corruption, repair and scrub counters,
// idempotent-producer duplicates, consumer-group lag and in-flight
// messages, plus the Go and process collectors.
//
// Most of it is read at scrape time from the counters the engine and the
// server keep anyway (engine.Stats, engine.TopicInfo, server.Conns); only
// the histograms are fed on the hot path, through the engine's Observer
// and the server's RequestObserver, both implemented by *Metrics (an
// atomic add or two per request or group commit, no allocation).
//
// Topic labels are capped (Options.MaxTopics): the first topics seen get
// their own series; topics past the cap are summed into one series
// labelled "_other_" (so a counter of "_other_" can go down when one of
// its topics is deleted or moves to a series of its own). 10,000 topics
// cannot blow up a scrape.
//
// Other front ends register their own metrics on Registry, named
// haraqa_<area>_..., with the Prometheus suffixes (_total, _seconds,
// _bytes).
//
//	m := metrics.New(metrics.Options{MaxTopics: 1000, Version: version})
//	e, _ := engine.Open(engine.Options{..., Observer: m})
//	srv := server.New(e, server.Options{..., Observer: m})
//	m.Attach(metrics.Sources{Engine: e, Conns: srv.Conns})
//	mux.Handle("GET /metrics", m.Handler())
package metrics
