package kafka

import (
	"crypto/sha256"
	"errors"
	"net"
	"strconv"
	"sync"

	"github.com/haraqa/haraqa/auth"
	"github.com/haraqa/haraqa/engine"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// partition is the one Kafka partition of every haraqa topic.
const partition int32 = 0

// topicIDs maps haraqa topics to Kafka topic ids. An id is derived from
// the name (the first 16 bytes of SHA-256 over a fixed prefix and the
// name), so every broker and every restart agree without storing it; a
// topic deleted and created again keeps its id.
type topicIDs struct {
	mu   sync.Mutex
	byID map[[16]byte]string
}

func topicID(name string) [16]byte {
	sum := sha256.Sum256([]byte("haraqa-kafka-topic-id\x00" + name))
	var id [16]byte
	copy(id[:], sum[:16])
	id[0] |= 1 // never the all-zero id, which means "none" in Kafka
	return id
}

// name returns the topic whose id is id, looking through the topic list
// when the id was not seen yet.
func (t *topicIDs) name(s *Server, id [16]byte) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if n, ok := t.byID[id]; ok {
		return n, true
	}
	if t.byID == nil {
		t.byID = map[[16]byte]string{}
	}
	for _, n := range s.svc.Topics("") {
		t.byID[topicID(n)] = n
	}
	n, ok := t.byID[id]
	return n, ok
}

// advertised returns the host and port clients should use for this
// broker: Options.AdvertisedAddr, else the connection's local address.
func (c *conn) advertised() (string, int32) {
	addr := c.s.opts.AdvertisedAddr
	if addr == "" && c.nc == nil {
		addr = "127.0.0.1:9092" // HandleFrame: no connection
	} else if addr == "" {
		addr = c.nc.LocalAddr().String()
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 9092
	}
	p, _ := strconv.Atoi(port)
	return host, int32(p)
}

func (c *conn) broker() kmsg.MetadataResponseBroker {
	b := kmsg.NewMetadataResponseBroker()
	b.NodeID = c.s.opts.NodeID
	b.Host, b.Port = c.advertised()
	return b
}

// exists reports whether topic exists, creating it first when create is
// set and the broker auto-creates topics.
func (s *Server) exists(topic string, create bool) error {
	if _, _, err := s.svc.Offsets(topic); !errors.Is(err, engine.ErrTopicNotFound) || !create || !s.opts.AutoCreateTopics {
		return err
	}
	if err := s.svc.CreateTopic(topic); err != nil && !errors.Is(err, engine.ErrTopicExists) {
		return err
	}
	return nil
}

func handleMetadata(c *conn, h reqHeader, r kmsg.Request, sl *slot) {
	req := r.(*kmsg.MetadataRequest)
	resp := kmsg.NewPtrMetadataResponse()
	resp.Brokers = []kmsg.MetadataResponseBroker{c.broker()}
	cm := c.clusterMetadata()
	if cm != nil {
		resp.Brokers = append(resp.Brokers, cm.brokers...)
	}
	resp.ClusterID = kmsg.StringPtr(c.s.opts.ClusterID)
	resp.ControllerID = c.s.opts.NodeID
	autoCreate := req.AllowAutoTopicCreation || h.version < 4
	var names []string
	all := req.Topics == nil || (h.version == 0 && len(req.Topics) == 0)
	if all {
		for _, n := range c.s.svc.Topics("") {
			if c.mayList(n) {
				names = append(names, n)
			}
		}
	}
	for _, t := range req.Topics {
		if all {
			break
		}
		if t.Topic != nil {
			names = append(names, *t.Topic)
			continue
		}
		rt := kmsg.NewMetadataResponseTopic()
		rt.TopicID = t.TopicID
		n, ok := c.s.ids.name(c.s, t.TopicID)
		if !ok {
			rt.ErrorCode = errUnknownTopicID
			resp.Topics = append(resp.Topics, rt)
			continue
		}
		names = append(names, n)
	}
	for _, name := range names {
		rt := kmsg.NewMetadataResponseTopic()
		rt.Topic = kmsg.StringPtr(name)
		if !c.mayList(name) && !c.may(auth.Produce, name) {
			rt.ErrorCode = errTopicAuthorization
			resp.Topics = append(resp.Topics, rt)
			continue
		}
		if err := c.s.exists(name, autoCreate && !all && c.may(auth.Produce, name)); err != nil {
			rt.ErrorCode = codeOf(err)
			resp.Topics = append(resp.Topics, rt)
			continue
		}
		rt.TopicID = topicID(name)
		p := kmsg.NewMetadataResponseTopicPartition()
		p.Partition = partition
		p.Leader = c.s.opts.NodeID
		p.Replicas = []int32{c.s.opts.NodeID}
		p.ISR = []int32{c.s.opts.NodeID}
		if cm != nil {
			cm.partition(c.s.opts.NodeID, name, &p)
		}
		rt.Partitions = []kmsg.MetadataResponseTopicPartition{p}
		resp.Topics = append(resp.Topics, rt)
	}
	c.finish(sl, h, resp)
}

func handleCreateTopics(c *conn, h reqHeader, r kmsg.Request, sl *slot) {
	req := r.(*kmsg.CreateTopicsRequest)
	resp := kmsg.NewPtrCreateTopicsResponse()
	for _, t := range req.Topics {
		rt := kmsg.NewCreateTopicsResponseTopic()
		rt.Topic = t.Topic
		rt.NumPartitions, rt.ReplicationFactor = 1, 1
		switch {
		case !c.may(auth.Admin, t.Topic):
			rt.ErrorCode = errTopicAuthorization
		case t.NumPartitions != -1 && t.NumPartitions != 1 || len(t.ReplicaAssignment) > 1:
			rt.ErrorCode = errInvalidPartitions
			rt.ErrorMessage = kmsg.StringPtr("haraqa: a topic has exactly one partition")
		case t.ReplicationFactor != -1 && t.ReplicationFactor != 1:
			rt.ErrorCode = errInvalidReplicationFactor
			rt.ErrorMessage = kmsg.StringPtr("haraqa: replication factor must be 1 (the broker mirrors every topic on its volumes)")
		case req.ValidateOnly:
			if _, _, err := c.s.svc.Offsets(t.Topic); err == nil {
				rt.ErrorCode = errTopicAlreadyExists
			}
		default:
			if err := c.s.svc.CreateTopic(t.Topic); err != nil {
				rt.ErrorCode = codeOf(err)
				rt.ErrorMessage = kmsg.StringPtr(err.Error())
			}
		}
		if rt.ErrorCode == errNone {
			rt.TopicID = topicID(t.Topic)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	c.finish(sl, h, resp)
}

func handleDeleteTopics(c *conn, h reqHeader, r kmsg.Request, sl *slot) {
	req := r.(*kmsg.DeleteTopicsRequest)
	resp := kmsg.NewPtrDeleteTopicsResponse()
	topics := req.Topics
	for _, n := range req.TopicNames {
		t := kmsg.NewDeleteTopicsRequestTopic()
		t.Topic = kmsg.StringPtr(n)
		topics = append(topics, t)
	}
	for _, t := range topics {
		rt := kmsg.NewDeleteTopicsResponseTopic()
		rt.Topic, rt.TopicID = t.Topic, t.TopicID
		name := ""
		switch {
		case t.Topic != nil:
			name = *t.Topic
		default:
			n, ok := c.s.ids.name(c.s, t.TopicID)
			if !ok {
				rt.ErrorCode = errUnknownTopicID
				resp.Topics = append(resp.Topics, rt)
				continue
			}
			name = n
			rt.Topic = kmsg.StringPtr(n)
		}
		if !c.may(auth.Admin, name) {
			rt.ErrorCode = errTopicAuthorization
		} else if err := c.s.svc.DeleteTopic(name); err != nil {
			rt.ErrorCode = codeOf(err)
			rt.ErrorMessage = kmsg.StringPtr(err.Error())
		} else {
			rt.TopicID = topicID(name)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	c.finish(sl, h, resp)
}

func handleInitProducerID(c *conn, h reqHeader, r kmsg.Request, sl *slot) {
	req := r.(*kmsg.InitProducerIDRequest)
	resp := kmsg.NewPtrInitProducerIDResponse()
	switch {
	case req.TransactionalID != nil:
		// Transactions are not served: a transactional producer is told
		// so rather than given an id it would use for transactions.
		resp.ErrorCode = errTransactionalIDAuth
		resp.ProducerID, resp.ProducerEpoch = -1, -1
	case req.ProducerID >= 0 && req.ProducerEpoch >= 0:
		// KIP-360: a producer that asks again for its own id gets the
		// next epoch, which starts its sequences afresh.
		resp.ProducerID = req.ProducerID
		resp.ProducerEpoch = req.ProducerEpoch + 1
		if resp.ProducerEpoch < 0 {
			resp.ProducerID, resp.ProducerEpoch = newKafkaProducerID(c.s), 0
		}
	default:
		resp.ProducerID, resp.ProducerEpoch = newKafkaProducerID(c.s), 0
	}
	c.finish(sl, h, resp)
}

// newKafkaProducerID draws a Kafka producer id: 47 random bits from the
// log service, so that together with a 16-bit epoch it fits in a haraqa
// producer id (see haraqaProducer).
func newKafkaProducerID(s *Server) int64 {
	return int64(s.svc.NewProducerID() >> 16 & (1<<47 - 1))
}

// haraqaProducer maps a Kafka producer id and epoch onto the haraqa
// producer id the engine deduplicates by: RecordSequenced (sequences count
// records, as Kafka's do), the id, the epoch. A new epoch is a new
// producer to the engine, whose sequences start at 0.
func haraqaProducer(id int64, epoch int16) uint64 {
	return engine.RecordSequenced | uint64(id)&(1<<47-1)<<16 | uint64(uint16(epoch))
}
