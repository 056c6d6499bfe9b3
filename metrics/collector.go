package metrics

import (
	"github.com/haraqa/haraqa/engine"
	"github.com/prometheus/client_golang/prometheus"
)

// The scrape-time metrics: read from the engine's and server's own
// counters, nothing kept here.
var (
	descProducedMsgs  = desc("haraqa_produced_messages_total", "Messages appended to the topic by this process (an idempotent producer's duplicates not counted).", "topic")
	descProducedBytes = desc("haraqa_produced_bytes_total", "Record-batch bytes appended to the topic by this process.", "topic")
	descConsumedMsgs  = desc("haraqa_consumed_messages_total", "Messages read from the topic by this process: consumes and group fetches of every front end, and dead-letter copies (from the offset asked for to the end of the batches returned).", "topic")
	descConsumedBytes = desc("haraqa_consumed_bytes_total", "Record-batch bytes read from the topic by this process's front ends.", "topic")
	descTopicBytes    = desc("haraqa_topic_size_bytes", "Bytes the topic's segments hold on one volume.", "topic")
	descTopics        = desc("haraqa_topics", "Topics open.")
	descOther         = desc("haraqa_topics_unlabelled", "Topics past -metrics-max-topics, summed into the topic=\"_other_\" series.")
	descSegments      = desc("haraqa_segments", "Segments of all topics (one volume's copy).")
	descConns         = desc("haraqa_open_connections", "Open protocol connections.")
	descMappings      = desc("haraqa_open_mappings", "Memory mappings segments hold.")
	descFiles         = desc("haraqa_open_segment_files", "File descriptors segments hold.")
	descVolume        = desc("haraqa_volume_state", "1 for the volume's current state (healthy, fenced, repairing), else 0.", "volume", "state")
	descFenced        = desc("haraqa_volumes_fenced_total", "Times a volume was taken out of service.")
	descCorrupt       = desc("haraqa_corruptions_found_total", "Damaged segments or batches found (open, scrub, read).")
	descRepaired      = desc("haraqa_segments_repaired_total", "Segment copies rebuilt from a mirror.")
	descRepairedBytes = desc("haraqa_repaired_bytes_total", "Bytes rewritten by repairs.")
	descTorn          = desc("haraqa_torn_bytes_total", "Bytes cut from torn segment tails at open.")
	descFailovers     = desc("haraqa_read_failovers_total", "Reads served from another mirror after a bad batch.")
	descResource      = desc("haraqa_resource_errors_total", "Requests refused for want of descriptors or mappings.")
	descPressure      = desc("haraqa_pressure_releases_total", "Active segments let go to stay within the descriptor and mapping budgets.")
	descScrubPasses   = desc("haraqa_scrub_passes_total", "Completed scrub passes over every sealed segment.")
	descScrubBytes    = desc("haraqa_scrub_verified_bytes_total", "Bytes the scrubber re-verified.")
	descDuplicates    = desc("haraqa_idempotent_duplicates_total", "Batches an idempotent producer sent again, answered with their first offset and not stored twice.")
	descGroupLag      = desc("haraqa_group_lag_messages", "Messages of the topic the consumer group has not acked (in flight included).", "topic", "group")
	descGroupInFlight = desc("haraqa_group_in_flight_messages", "Messages leased to the group's members now.", "topic", "group")
	descBuild         = desc("haraqa_build_info", "The broker's version.", "version")
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var allDescs = []*prometheus.Desc{descProducedMsgs, descProducedBytes, descConsumedMsgs, descConsumedBytes,
	descTopicBytes, descTopics, descOther, descSegments, descConns, descMappings, descFiles, descVolume,
	descFenced, descCorrupt, descRepaired, descRepairedBytes, descTorn, descFailovers, descResource,
	descPressure, descScrubPasses, descScrubBytes, descDuplicates, descGroupLag, descGroupInFlight, descBuild}

// stateCollector is Metrics seen as the collector of its scrape-time
// metrics.
type stateCollector Metrics

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

// topicSums are one topic series' values (several topics' in "_other_").
type topicSums struct {
	producedMsgs, producedBytes, consumedMsgs, consumedBytes, size int64
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	m := (*Metrics)(c)
	ch <- prometheus.MustNewConstMetric(descBuild, prometheus.GaugeValue, 1, m.opts.Version)
	s := m.Snapshot()
	if !s.Open {
		return
	}
	names := make([]string, len(s.Topics))
	for i, t := range s.Topics {
		names[i] = t.Name
	}
	label := m.labels(names)
	sums := map[string]*topicSums{}
	var order []string
	segments, other := 0, 0
	for _, t := range s.Topics {
		l := label(t.Name)
		if l == OtherTopics {
			other++
		}
		ts := sums[l]
		if ts == nil {
			ts = &topicSums{}
			sums[l] = ts
			order = append(order, l)
		}
		ts.producedMsgs += t.AppendedMessages
		ts.producedBytes += t.AppendedBytes
		ts.consumedMsgs += t.ReadMessages
		ts.consumedBytes += t.ReadBytes
		ts.size += t.Bytes
		segments += t.Segments
	}
	for _, l := range order {
		ts := sums[l]
		ch <- counter(descProducedMsgs, ts.producedMsgs, l)
		ch <- counter(descProducedBytes, ts.producedBytes, l)
		ch <- counter(descConsumedMsgs, ts.consumedMsgs, l)
		ch <- counter(descConsumedBytes, ts.consumedBytes, l)
		ch <- gauge(descTopicBytes, ts.size, l)
	}
	ch <- gauge(descTopics, int64(len(s.Topics)))
	ch <- gauge(descOther, int64(other))
	ch <- gauge(descSegments, int64(segments))
	ch <- gauge(descConns, int64(s.Conns))
	st := s.Stats
	ch <- gauge(descMappings, st.OpenMappings)
	ch <- gauge(descFiles, st.OpenFiles)
	for _, v := range st.Volumes {
		for _, state := range []engine.VolumeState{engine.VolumeHealthy, engine.VolumeFenced, engine.VolumeRepairing} {
			on := int64(0)
			if v.State == state {
				on = 1
			}
			ch <- gauge(descVolume, on, v.Dir, state.String())
		}
	}
	ch <- counter(descFenced, st.VolumesFenced)
	ch <- counter(descCorrupt, st.CorruptionsFound)
	ch <- counter(descRepaired, st.SegmentsRepaired)
	ch <- counter(descRepairedBytes, st.BytesRepaired)
	ch <- counter(descTorn, st.TornBytes)
	ch <- counter(descFailovers, st.ReadFailovers)
	ch <- counter(descResource, st.ResourceErrors)
	ch <- counter(descPressure, st.PressureReleases)
	ch <- counter(descScrubPasses, st.ScrubPasses)
	ch <- counter(descScrubBytes, st.ScrubBytes)
	ch <- counter(descDuplicates, st.Duplicates)
	c.collectGroups(ch, s.Groups, label)
}

// collectGroups exports each group's lag and in-flight count; the groups
// of topics summed into "_other_" are summed into one group "_other_".
func (c *stateCollector) collectGroups(ch chan<- prometheus.Metric, groups []engine.GroupInfo, label func(string) string) {
	var otherLag, otherInFlight uint64
	others := false
	for _, g := range groups {
		if label(g.Topic) == OtherTopics {
			otherLag += g.Lag
			otherInFlight += g.InFlight
			others = true
			continue
		}
		ch <- gauge(descGroupLag, int64(g.Lag), g.Topic, g.Name)
		ch <- gauge(descGroupInFlight, int64(g.InFlight), g.Topic, g.Name)
	}
	if others {
		ch <- gauge(descGroupLag, int64(otherLag), OtherTopics, OtherTopics)
		ch <- gauge(descGroupInFlight, int64(otherInFlight), OtherTopics, OtherTopics)
	}
}

func counter(d *prometheus.Desc, v int64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

func gauge(d *prometheus.Desc, v int64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
}
