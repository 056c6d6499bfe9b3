package cluster

// Entry kinds: the first byte of a normal entry's data. Every kind is
// listed here, in one place; a new kind takes a new number.
const (
	// Topic groups.
	kindProduce = 1
	// kindGroup: a batch of consumer-group state records of the topic,
	// laid out as a produce entry of one batch whose time field holds
	// the Raft term in which its proposer coordinated the groups
	// (groups_apply.go).
	kindGroup = 2

	// The metadata group. Its commands share one layout: kind, u64
	// proposing node, u64 proposal id, u16 length + a name (metaCommand).
	kindCreateTopic = 10
	kindDeleteTopic = 11
	kindSync        = 12 // no change: a barrier that brings this node's catalog up to date
	kindNodeAddr    = 13 // the proposing node's client address (placement)
	kindAddNode     = 14 // "id=host:port": a node joins (membership.go)
	kindRemoveNode  = 15 // "id": a node leaves
	kindMoveReplica = 16 // "topic from to": a topic's replica moves to another node
	kindSettle      = 17 // "topic": the topic's group reached its replicas; retiring ones go
	kindKafkaAddr   = 18 // the proposing node's Kafka advertised address (kafkameta.go)
)
