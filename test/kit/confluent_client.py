"""The independent client the format tests check Runnel against: Confluent's
Python serializers (confluent-kafka with fastavro, and Google's protobuf) and
its schema registry client, producing to and consuming from the test broker.

  python confluent_client.py produce-avro TOPIC SCHEMA_FILE RECORDS_FILE
  python confluent_client.py consume-avro TOPIC COUNT
  python confluent_client.py produce-protobuf TOPIC RECORDS_FILE
  python confluent_client.py consume-protobuf TOPIC COUNT

Records are JSON lines; consumed records are printed as JSON lines, with
datetimes as microseconds since the epoch and bytes as base64.
"""
import base64
import datetime
import json
import os
import sys

from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.serialization import MessageField, SerializationContext

BROKER = os.environ.get("RUNNEL_TEST_KAFKA", "127.0.0.1:19092")
REGISTRY = os.environ["RUNNEL_TEST_SCHEMA_REGISTRY"]
AUTH = os.environ["RUNNEL_TEST_SCHEMA_REGISTRY_AUTH"]


def registry():
    return SchemaRegistryClient({"url": REGISTRY, "basic.auth.user.info": AUTH})


def plain(v):
    if isinstance(v, datetime.datetime):
        delta = v - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
        return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
    if type(v).__name__ == "Decimal":
        return str(v)
    if isinstance(v, (bytes, bytearray)):
        return base64.b64encode(v).decode()
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [plain(x) for x in v]
    return v


def produce(topic, serialize, records):
    p = Producer({"bootstrap.servers": BROKER})
    for r in records:
        p.produce(topic, value=serialize(r, SerializationContext(topic, MessageField.VALUE)))
    p.flush(30)


def consume(topic, count, deserialize):
    c = Consumer({"bootstrap.servers": BROKER, "group.id": f"runnel-test-{topic}", "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    out = []
    try:
        deadline = datetime.datetime.now() + datetime.timedelta(seconds=60)
        while len(out) < count and datetime.datetime.now() < deadline:
            m = c.poll(0.5)
            if m is None or m.error():
                continue
            out.append(deserialize(m.value(), SerializationContext(topic, MessageField.VALUE)))
    finally:
        c.close()
    for r in out:
        print(json.dumps(plain(r)))


def protobuf_class():
    """The test's message (runnel.test.Reading), built from a descriptor: no protoc needed."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2

    fdp = descriptor_pb2.FileDescriptorProto(name="runnel_test_reading.proto", package="runnel.test", syntax="proto3")
    fdp.dependency.append("google/protobuf/timestamp.proto")
    kind = fdp.enum_type.add(name="Kind")
    for i, n in enumerate(["UNKNOWN", "GAUGE", "COUNTER"]):
        kind.value.add(name=n, number=i)
    msg = fdp.message_type.add(name="Reading")
    F = descriptor_pb2.FieldDescriptorProto
    msg.field.add(name="id", number=1, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    msg.field.add(name="sensor", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    msg.field.add(name="value", number=3, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
    msg.field.add(name="kind", number=4, type=F.TYPE_ENUM, type_name=".runnel.test.Kind", label=F.LABEL_OPTIONAL)
    msg.field.add(name="at", number=5, type=F.TYPE_MESSAGE, type_name=".google.protobuf.Timestamp", label=F.LABEL_OPTIONAL)
    msg.field.add(name="tags", number=6, type=F.TYPE_STRING, label=F.LABEL_REPEATED)
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(timestamp_pb2.DESCRIPTOR.serialized_pb)
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("runnel.test.Reading"))


def main():
    cmd, topic = sys.argv[1], sys.argv[2]
    if cmd == "produce-avro":
        from confluent_kafka.schema_registry.avro import AvroSerializer

        import decimal

        schema = open(sys.argv[3]).read()
        records = [json.loads(l) for l in open(sys.argv[4]) if l.strip()]
        # Arguments like decimal:amount say which fields are given as text for Decimal values.
        for arg in sys.argv[5:]:
            kind, field = arg.split(":")
            for r in records:
                if kind == "decimal":
                    r[field] = decimal.Decimal(r[field])
        produce(topic, AvroSerializer(registry(), schema, conf={"auto.register.schemas": True}), records)
    elif cmd == "consume-avro":
        from confluent_kafka.schema_registry.avro import AvroDeserializer

        consume(topic, int(sys.argv[3]), AvroDeserializer(registry()))
    elif cmd == "produce-protobuf":
        from confluent_kafka.schema_registry.protobuf import ProtobufSerializer
        from google.protobuf import json_format

        cls = protobuf_class()
        records = [json.loads(l) for l in open(sys.argv[3]) if l.strip()]
        ser = ProtobufSerializer(cls, registry(), {"use.deprecated.format": False})
        produce(topic, lambda r, ctx: ser(json_format.ParseDict(r, cls()), ctx), records)
    elif cmd == "consume-protobuf":
        from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer
        from google.protobuf import json_format

        des = ProtobufDeserializer(protobuf_class(), {"use.deprecated.format": False})
        consume(
            topic,
            int(sys.argv[3]),
            lambda v, ctx: json_format.MessageToDict(des(v, ctx), preserving_proto_field_name=True, always_print_fields_with_no_presence=True),
        )
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
