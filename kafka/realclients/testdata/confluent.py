"""librdkafka through confluent-kafka against haraqa's Kafka listener.

produce BOOTSTRAP TOPIC START COUNT: an idempotent producer (acks=all, lz4)
  sends values "m<i>"; prints "half" once half are acknowledged (the test
  restarts the broker then), then "acked <i>" per acknowledged message and
  "failed <i> <error>" per failed one, and "done" after flush.
consume BOOTSTRAP TOPIC GROUP COUNT: a group consumer (no auto commit)
  reads COUNT messages, prints "msg <offset> <value>" for each, commits them
  synchronously and closes.
"""
import sys
from confluent_kafka import Producer, Consumer, KafkaException


def produce(bootstrap, topic, start, count):
    p = Producer({
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": "lz4",
        "linger.ms": 5,
        "batch.num.messages": 200,
        "message.timeout.ms": 60000,
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 500,
    })
    acked = [0]
    told = [False]

    def report(err, msg):
        i = msg.value().decode()
        if err is not None:
            print("failed", i, err, flush=True)
            return
        acked[0] += 1
        print("acked", i[1:], flush=True)
        if not told[0] and acked[0] >= count // 2:
            told[0] = True
            print("half", flush=True)

    for i in range(start, start + count):
        while True:
            try:
                p.produce(topic, value=("m%d" % i).encode(), key=b"k", on_delivery=report)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
        if i - start == count // 2:
            # Let the first half be acknowledged (and the broker restart)
            # while the second half is still to be sent.
            while not told[0]:
                p.poll(0.1)
    left = p.flush(90)
    print("done", left, flush=True)


def consume(bootstrap, topic, group, count):
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,
    })
    c.subscribe([topic])
    got = 0
    last = None
    while got < count:
        m = c.poll(1.0)
        if m is None:
            continue
        if m.error():
            raise KafkaException(m.error())
        print("msg", m.offset(), m.value().decode(), flush=True)
        got += 1
        last = m
    c.commit(message=last, asynchronous=False)
    c.close()
    print("done", flush=True)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "produce":
        produce(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        consume(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
