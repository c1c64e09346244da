// The independent exactly-once reader: Apache Kafka's own Java consumer with
// isolation.level=read_committed, reading every partition of a topic from the
// start up to its last stable offset, printing each record as a JSON line
// ({"partition", "offset", "key", "value"}). Run by test/kit/kafka-java.ts
// with the broker's jars (scripts/services/kafka.sh) on the class path.
//
//   java -cp '<kafka libs>/*' KafkaReadCommitted.java BROKER TOPIC

import com.fasterxml.jackson.databind.ObjectMapper;
import java.time.Duration;
import java.util.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;

public class KafkaReadCommitted {
  public static void main(String[] args) throws Exception {
    Properties props = new Properties();
    props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
    props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    ObjectMapper json = new ObjectMapper();
    StringBuilder out = new StringBuilder();
    try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props)) {
      List<TopicPartition> partitions = new ArrayList<>();
      consumer.partitionsFor(args[1], Duration.ofSeconds(30)).forEach(p -> partitions.add(new TopicPartition(p.topic(), p.partition())));
      consumer.assign(partitions);
      consumer.seekToBeginning(partitions);
      // With read_committed the end offsets are the last stable offsets: everything committed or aborted before them.
      Map<TopicPartition, Long> end = consumer.endOffsets(partitions, Duration.ofSeconds(30));
      long deadline = System.currentTimeMillis() + 120_000;
      while (partitions.stream().anyMatch(tp -> consumer.position(tp) < end.get(tp))) {
        if (System.currentTimeMillis() > deadline) throw new RuntimeException("did not reach the last stable offsets " + end + " within 120 s");
        for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
          Map<String, Object> row = new LinkedHashMap<>();
          row.put("partition", r.partition());
          row.put("offset", r.offset());
          row.put("key", r.key());
          row.put("value", r.value());
          out.append(json.writeValueAsString(row)).append('\n');
        }
      }
    }
    System.out.print(out);
  }
}
