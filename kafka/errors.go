package kafka

import (
	"errors"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/logsvc"
)

// Kafka error codes the listener answers with (Kafka's protocol guide,
// "Error Codes").
const (
	errNone                      int16 = 0
	errUnknownServer             int16 = -1
	errOffsetOutOfRange          int16 = 1
	errCorruptMessage            int16 = 2
	errUnknownTopicOrPartition   int16 = 3
	errNotLeaderOrFollower       int16 = 6
	errRequestTimedOut           int16 = 7
	errMessageTooLarge           int16 = 10
	errCoordinatorNotAvailable   int16 = 15
	errNotCoordinator            int16 = 16
	errInvalidTopic              int16 = 17
	errIllegalGeneration         int16 = 22
	errInconsistentGroupProtocol int16 = 23
	errInvalidGroupID            int16 = 24
	errUnknownMemberID           int16 = 25
	errInvalidSessionTimeout     int16 = 26
	errRebalanceInProgress       int16 = 27
	errTopicAuthorization        int16 = 29
	errGroupAuthorization        int16 = 30
	errClusterAuthorization      int16 = 31
	errUnsupportedSASLMechanism  int16 = 33
	errUnsupportedVersion        int16 = 35
	errTopicAlreadyExists        int16 = 36
	errInvalidPartitions         int16 = 37
	errInvalidReplicationFactor  int16 = 38
	errInvalidRequest            int16 = 42
	errOutOfOrderSequence        int16 = 45
	errTransactionalIDAuth       int16 = 53
	errKafkaStorage              int16 = 56
	errGroupIDNotFound           int16 = 69
	errNonEmptyGroup             int16 = 68
	errGroupMaxSizeReached       int16 = 81
	errInvalidRecord             int16 = 87
	errUnknownTopicID            int16 = 100
)

// codeOf maps an error of the log service onto a Kafka error code.
func codeOf(err error) int16 {
	switch {
	case err == nil:
		return errNone
	case errors.Is(err, engine.ErrTopicNotFound):
		return errUnknownTopicOrPartition
	case errors.Is(err, engine.ErrBadTopicName):
		return errInvalidTopic
	case errors.Is(err, engine.ErrTopicExists):
		return errTopicAlreadyExists
	case errors.Is(err, engine.ErrOutOfRange):
		return errOffsetOutOfRange
	case errors.Is(err, engine.ErrSequence):
		return errOutOfOrderSequence
	case errors.Is(err, logsvc.ErrNotLeader):
		// A cluster node that is not a replica of the topic, or knows no
		// leader for it now: retriable, nothing was done; clients refresh
		// their metadata and send again.
		return errNotLeaderOrFollower
	case errors.Is(err, logsvc.ErrInDoubt):
		// Not known committed in time: retriable, and it may have been
		// stored (an idempotent producer's retry is deduplicated).
		return errRequestTimedOut
	case errors.Is(err, engine.ErrStorage), errors.Is(err, engine.ErrResource),
		errors.Is(err, engine.ErrReadOnly), errors.Is(err, engine.ErrClosed):
		// Retriable for a Kafka client: nothing of the request was done.
		return errKafkaStorage
	case errors.Is(err, engine.ErrInvalidBatch):
		return errInvalidRecord
	case errors.Is(err, engine.ErrCorrupt):
		return errCorruptMessage
	}
	return errUnknownServer
}
