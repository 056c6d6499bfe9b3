// kafkajs against haraqa's Kafka listener: produce COUNT messages with
// keys and headers, then consume them in a consumer group that commits.
// Usage: node run.js BROKER TOPIC GROUP COUNT. Prints one JSON line.
const { Kafka, logLevel } = require('kafkajs')

async function main () {
  const [broker, topic, group, countArg] = process.argv.slice(2)
  const count = parseInt(countArg, 10)
  const kafka = new Kafka({ clientId: 'kafkajs-test', brokers: [broker], logLevel: logLevel.WARN })
  const producer = kafka.producer({ allowAutoTopicCreation: true })
  await producer.connect()
  for (let i = 0; i < count; i += 100) {
    const messages = []
    for (let j = i; j < Math.min(i + 100, count); j++) {
      messages.push({ key: `key-${j}`, value: `value-${j}`, headers: { n: `${j}` } })
    }
    await producer.send({ topic, acks: -1, messages })
  }
  await producer.disconnect()

  const consumer = kafka.consumer({ groupId: group, sessionTimeout: 10000, heartbeatInterval: 500 })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const got = []
  await new Promise((resolve, reject) => {
    consumer.run({
      autoCommit: true,
      eachMessage: async ({ message }) => {
        const n = message.headers.n ? message.headers.n.toString() : ''
        got.push(`${message.offset}|${message.key}|${message.value}|${n}`)
        if (got.length === count) resolve()
      }
    }).catch(reject)
  })
  await consumer.commitOffsets([{ topic, partition: 0, offset: String(count) }])
  await consumer.disconnect()
  console.log(JSON.stringify({ got }))
}

main().catch(err => { console.error(err); process.exit(1) })
