// Prints, for each hex-encoded key on stdin, the partition the Java producer's default
// partitioner chooses for a keyed record: BuiltInPartitioner.partitionForKey (kafka-clients
// 4.3.0), which is toPositive(murmur2(key)) % numPartitions.
import java.io.BufferedReader;
import java.io.InputStreamReader;

import org.apache.kafka.clients.producer.internals.BuiltInPartitioner;

public class JavaPartitions {
    public static void main(String[] args) throws Exception {
        int partitions = Integer.parseInt(args[0]);
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        String line;
        StringBuilder out = new StringBuilder();
        while ((line = in.readLine()) != null) {
            byte[] key = new byte[line.length() / 2];
            for (int i = 0; i < key.length; i++) {
                key[i] = (byte) Integer.parseInt(line.substring(2 * i, 2 * i + 2), 16);
            }
            out.append(BuiltInPartitioner.partitionForKey(key, partitions)).append('\n');
        }
        System.out.print(out);
    }
}
