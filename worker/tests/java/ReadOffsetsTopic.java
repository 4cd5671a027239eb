// Reads one connector's offset from an offsets topic with Kafka Connect's own classes: the
// distributed worker's KafkaOffsetBackingStore (reads the topic to its end) and
// OffsetStorageReaderImpl with schemaless JsonConverters (what a Debezium task's
// context.offsetStorageReader() is). Prints, tab-separated:
//   offset      <the offset map as JSON, or null>
//   partitions  <connectorPartitions(connector), Connect's partition tracking>
//   marker      <connectorPartitions("__pgseam.marker")>
//   partition   <the partition the Java producer's default partitioner picks for the key>
// Arguments: bootstrap.servers, topic, connector name, topic.prefix.
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;

import org.apache.kafka.common.utils.Utils;
import org.apache.kafka.connect.json.JsonConverter;
import org.apache.kafka.connect.runtime.distributed.DistributedConfig;
import org.apache.kafka.connect.storage.KafkaOffsetBackingStore;
import org.apache.kafka.connect.storage.OffsetStorageReaderImpl;
import org.apache.kafka.connect.util.TopicAdmin;

public class ReadOffsetsTopic {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1], connector = args[2], server = args[3];
        Map<String, String> props = new HashMap<>();
        props.put("bootstrap.servers", bootstrap);
        props.put("group.id", "pgseam-compat");
        props.put("config.storage.topic", "pgseam-compat-configs");
        props.put("status.storage.topic", "pgseam-compat-status");
        props.put("offset.storage.topic", topic);
        props.put("offset.storage.replication.factor", "-1");
        props.put("key.converter", JsonConverter.class.getName());
        props.put("value.converter", JsonConverter.class.getName());
        DistributedConfig config = new DistributedConfig(props);

        JsonConverter keyConverter = new JsonConverter();
        keyConverter.configure(Map.of("schemas.enable", "false"), true);
        JsonConverter valueConverter = new JsonConverter();
        valueConverter.configure(Map.of("schemas.enable", "false"), false);
        Map<String, Object> adminProps = new HashMap<>();
        adminProps.put("bootstrap.servers", bootstrap);
        TopicAdmin admin = new TopicAdmin(adminProps);
        KafkaOffsetBackingStore store =
                new KafkaOffsetBackingStore(() -> admin, () -> "pgseam-compat", keyConverter);
        store.configure(config);
        store.start();
        try {
            OffsetStorageReaderImpl reader =
                    new OffsetStorageReaderImpl(store, connector, keyConverter, valueConverter);
            Map<String, Object> offset = reader.offset(Map.of("server", server));
            String json = offset == null
                    ? "null"
                    : new String(valueConverter.fromConnectData(topic, null, offset), StandardCharsets.UTF_8);
            System.out.println("offset\t" + json);
            System.out.println("partitions\t" + store.connectorPartitions(connector));
            System.out.println("marker\t" + store.connectorPartitions("__pgseam.marker"));
            byte[] key = keyConverter.fromConnectData(topic, null,
                    java.util.Arrays.asList(connector, Map.of("server", server)));
            int partitions = admin.describeTopics(topic).get(topic).partitions().size();
            System.out.println("partition\t" + Utils.toPositive(Utils.murmur2(key)) % partitions);
        } finally {
            store.stop();
            admin.close();
        }
    }
}
