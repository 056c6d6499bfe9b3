// Package realclients tests haraqa's Kafka listener with real Kafka
// clients: franz-go (kgo), IBM/sarama, kcat, librdkafka through Python
// (confluent-kafka), kafkajs and syslog-ng's kafka() destination. It is a
// module of its own so that the clients' dependencies stay out of the
// broker's go.mod; .ci/run vets and tests it.
package realclients
