// Reads a Kafka Connect offset file the way FileOffsetBackingStore.load() does (plain
// ObjectInputStream, expecting a HashMap<byte[], byte[]>), then re-encodes each value the way
// Debezium 3.6.3 and Connect would: PostgresOffsetContext.getOffset() puts the fields into a new
// HashMap in its fixed order, and JsonConverter (schemas disabled) prints that map.
// Prints, per entry: the key text, a tab, the value Java read, a tab, the value Java would write.
import java.io.FileInputStream;
import java.io.ObjectInputStream;
import java.nio.charset.StandardCharsets;
import java.util.Collections;
import java.util.HashMap;
import java.util.Map;

import org.apache.kafka.connect.json.JsonConverter;

public class ReadOffsets {
    private static final String[] PUT_ORDER = {
        "ts_usec", "txId", "lsn", "xmin", "snapshot", "last_snapshot_record",
        "snapshot_completed", "lsn_proc", "lsn_commit", "messageType"
    };

    public static void main(String[] args) throws Exception {
        Object object;
        try (ObjectInputStream in = new ObjectInputStream(new FileInputStream(args[0]))) {
            object = in.readObject();
        }
        if (!(object instanceof HashMap)) {
            throw new IllegalStateException("Expected HashMap but found " + object.getClass());
        }
        JsonConverter converter = new JsonConverter();
        converter.configure(Collections.singletonMap("schemas.enable", "false"), false);
        @SuppressWarnings("unchecked")
        Map<byte[], byte[]> raw = (Map<byte[], byte[]>) object;
        for (Map.Entry<byte[], byte[]> entry : raw.entrySet()) {
            String key = new String(entry.getKey(), StandardCharsets.UTF_8);
            String value = new String(entry.getValue(), StandardCharsets.UTF_8);
            @SuppressWarnings("unchecked")
            Map<String, Object> parsed = (Map<String, Object>) converter.toConnectData("", entry.getValue()).value();
            Map<String, Object> rebuilt = new HashMap<>();
            for (String field : PUT_ORDER) {
                if (parsed.containsKey(field)) {
                    rebuilt.put(field, parsed.get(field));
                }
            }
            if (rebuilt.size() != parsed.size()) {
                throw new IllegalStateException("unexpected fields in " + value);
            }
            String rewritten = new String(converter.fromConnectData("", null, rebuilt), StandardCharsets.UTF_8);
            System.out.println(key + "\t" + value + "\t" + rewritten);
        }
    }
}
