/* Peer.java: the benchmark's stream-processing peer. A Kafka Streams 3.9.1
 * application doing work comparable to momentd's on the same three input
 * topics, so that bench/run can state momentd's rate against a real stream
 * processor's on the same broker and the same messages:
 *
 *   - the payments, calls and app-logins topics read as one stream (Kafka
 *     Streams merges the co-partitioned topics of a task by timestamp);
 *   - each message parsed and checked (Jackson), its customer's state read
 *     from and written to a RocksDB store with its changelog topic;
 *   - the same 11 windows per customer as config/momentd.json (daily and
 *     hourly buckets over 7-180 days, sparse, pruned), the balance and the
 *     last app login;
 *   - both campaign models of config/momentd.json (their eligibility, the
 *     tags they read, every feature with its cap and transform, the
 *     threshold; the profile offsets left out: the peer reads no profiles);
 *   - a fixed 45-day cooldown per campaign; a moment is produced to
 *     <prefix>peer.moments;
 *   - at-least-once, 2 stream threads (StreamsConfig's defaults otherwise).
 *
 * It does less than momentd: no event-id guard, no offsets kept with the
 * state, no caps, quiet hours, holdout, arms, routes or dead letters.
 *
 *   bench/peers/kstreams/run BROKERS STATE_DIR [TOPIC_PREFIX]
 *
 * Reads every message the three topics hold when it starts (their end
 * offsets, counted first), prints "expect N", then "progress MS COUNT" every
 * 200 ms, and when it has processed N: "done N FIRST_MS LAST_MS CPU_NS" (the
 * wall clock of the first and the N-th message, and the process's CPU time
 * so far: every thread, RocksDB's included) and exits 0. Exit 1 on a stream
 * error. */

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.Stores;

public final class Peer {
    static final long HOUR = 3_600_000L, DAY = 24 * HOUR;
    static final String STORE = "customers";

    /* The 11 windows: what they count, their span and bucket (ms). */
    enum W {
        PAYMENTS_180D(180 * DAY, DAY), LATE_PAYMENTS_180D(180 * DAY, DAY), ARREARS_RESTORES_180D(180 * DAY, DAY),
        APP_PAYMENTS_180D(180 * DAY, DAY), PAYMENT_AMOUNT_30D(30 * DAY, DAY), BILL_CALLS_30D(30 * DAY, DAY),
        INSTALMENT_CALLS_30D(30 * DAY, DAY), COMPLAINTS_180D(180 * DAY, DAY), APP_LOGINS_7D(7 * DAY, HOUR),
        PREPAY_VIEWS_7D(7 * DAY, HOUR), INSTALMENT_VIEWS_7D(7 * DAY, HOUR);
        final long span, bucket;
        W(long span, long bucket) { this.span = span; this.bucket = bucket; }
    }

    static final AtomicLong processed = new AtomicLong();
    static volatile long firstMs = 0, lastMs = 0, expect = Long.MAX_VALUE;

    /* A customer's state: per window, sparse (bucket, value) pairs; the
     * balance; the last app login; the last moment per campaign. */
    static final class State {
        final long[][] idx = new long[W.values().length][];
        final double[][] val = new double[W.values().length][];
        final int[] n = new int[W.values().length];
        double balance = Double.NaN;
        long lastApp = Long.MIN_VALUE;
        final long[] lastMoment = {Long.MIN_VALUE, Long.MIN_VALUE};

        State() {
            for (int w = 0; w < idx.length; w++) { idx[w] = new long[4]; val[w] = new double[4]; }
        }

        static State decode(byte[] b) {
            State s = new State();
            if (b == null) return s;
            ByteBuffer in = ByteBuffer.wrap(b);
            for (int w = 0; w < s.idx.length; w++) {
                int k = in.getShort();
                s.idx[w] = new long[Math.max(4, k)];
                s.val[w] = new double[Math.max(4, k)];
                for (int i = 0; i < k; i++) { s.idx[w][i] = in.getInt(); s.val[w][i] = in.getFloat(); }
                s.n[w] = k;
            }
            s.balance = in.getDouble();
            s.lastApp = in.getLong();
            s.lastMoment[0] = in.getLong();
            s.lastMoment[1] = in.getLong();
            return s;
        }

        byte[] encode() {
            int size = 8 * 4;
            for (int w = 0; w < idx.length; w++) size += 2 + n[w] * 8;
            ByteBuffer out = ByteBuffer.allocate(size);
            for (int w = 0; w < idx.length; w++) {
                out.putShort((short) n[w]);
                for (int i = 0; i < n[w]; i++) { out.putInt((int) idx[w][i]); out.putFloat((float) val[w][i]); }
            }
            out.putDouble(balance).putLong(lastApp).putLong(lastMoment[0]).putLong(lastMoment[1]);
            return out.array();
        }

        /* Adds v at ts, dropping buckets that fell out of the span. */
        void add(W w, long ts, double v) {
            int o = w.ordinal();
            long b = Math.floorDiv(ts, w.bucket), oldest = b - w.span / w.bucket + 1;
            int keep = 0;
            boolean found = false;
            for (int i = 0; i < n[o]; i++) {
                if (idx[o][i] < oldest) continue;
                idx[o][keep] = idx[o][i];
                val[o][keep] = val[o][i];
                if (idx[o][keep] == b) { val[o][keep] += v; found = true; }
                keep++;
            }
            n[o] = keep;
            if (found) return;
            if (n[o] == idx[o].length) {
                idx[o] = java.util.Arrays.copyOf(idx[o], n[o] * 2);
                val[o] = java.util.Arrays.copyOf(val[o], n[o] * 2);
            }
            idx[o][n[o]] = b;
            val[o][n[o]++] = v;
        }

        /* The window read at ts. */
        double read(W w, long ts) {
            int o = w.ordinal();
            long b = Math.floorDiv(ts, w.bucket), oldest = b - w.span / w.bucket + 1;
            double sum = 0;
            for (int i = 0; i < n[o]; i++)
                if (idx[o][i] >= oldest && idx[o][i] <= b) sum += val[o][i];
            return sum;
        }
    }

    static double feature(double x, double cap) { return Math.log1p(Math.min(Math.max(x, 0), cap)); }

    static double logistic(double z) { return 1 / (1 + Math.exp(-z)); }

    static final class Moments implements Processor<byte[], byte[], byte[], byte[]> {
        final ObjectMapper json = new ObjectMapper();
        ProcessorContext<byte[], byte[]> ctx;
        KeyValueStore<String, byte[]> store;

        @Override
        public void init(ProcessorContext<byte[], byte[]> context) {
            ctx = context;
            store = context.getStateStore(STORE);
        }

        @Override
        public void process(Record<byte[], byte[]> r) {
            if (firstMs == 0) firstMs = System.currentTimeMillis();
            try {
                handle(r);
            } finally {
                if (processed.incrementAndGet() == expect) lastMs = System.currentTimeMillis();
            }
        }

        void handle(Record<byte[], byte[]> r) {
            JsonNode e;
            try {
                e = json.readTree(r.value());
            } catch (Exception bad) {
                return;
            }
            if (e == null || !e.path("event_id").isTextual() || !e.path("customer_id").isTextual() || !e.path("ts").isNumber()
                || !e.path("type").isTextual())
                return;
            String customer = e.get("customer_id").asText(), type = e.get("type").asText();
            long ts = e.get("ts").asLong();
            if (customer.isEmpty() || r.key() == null || !customer.equals(new String(r.key(), StandardCharsets.UTF_8))) return;
            State s = State.decode(store.get(customer));
            switch (type) {
            case "payment": {
                if (!e.path("amount").isNumber()) return;
                double amount = e.get("amount").asDouble();
                String kind = e.path("kind").asText(""), channel = e.path("channel").asText("");
                s.add(W.PAYMENTS_180D, ts, 1);
                if (e.path("late").asBoolean(false)) s.add(W.LATE_PAYMENTS_180D, ts, 1);
                if (kind.equals("arrears_restore")) s.add(W.ARREARS_RESTORES_180D, ts, 1);
                if (channel.equals("app")) s.add(W.APP_PAYMENTS_180D, ts, 1);
                s.add(W.PAYMENT_AMOUNT_30D, ts, amount);
                if (e.path("balance_after").isNumber()) s.balance = e.get("balance_after").asDouble();
                break;
            }
            case "call": {
                String reason = e.path("reason").asText("");
                boolean inbound = e.path("direction").asText("").equals("inbound");
                if (inbound && (reason.equals("bill_inquiry") || reason.equals("prepay_inquiry") || reason.equals("autodebit_inquiry")))
                    s.add(W.BILL_CALLS_30D, ts, 1);
                if (inbound && reason.equals("instalment_inquiry")) s.add(W.INSTALMENT_CALLS_30D, ts, 1);
                if (reason.equals("complaint")) s.add(W.COMPLAINTS_180D, ts, 1);
                break;
            }
            case "app_login": {
                boolean prepay = false, instalment = false;
                for (JsonNode p : e.path("pages")) {
                    prepay |= p.asText().equals("prepay_product");
                    instalment |= p.asText().equals("instalment_product");
                }
                s.add(W.APP_LOGINS_7D, ts, 1);
                if (prepay) s.add(W.PREPAY_VIEWS_7D, ts, 1);
                if (instalment) s.add(W.INSTALMENT_VIEWS_7D, ts, 1);
                s.lastApp = Math.max(s.lastApp, ts);
                break;
            }
            default:
                return;
            }
            decide(s, customer, e.get("event_id").asText(), ts);
            store.put(customer, s.encode());
        }

        /* Both campaigns of config/momentd.json, with a fixed 45-day cooldown. */
        void decide(State s, String customer, String eventId, long ts) {
            double late = s.read(W.LATE_PAYMENTS_180D, ts), arrears = s.read(W.ARREARS_RESTORES_180D, ts);
            double payments = s.read(W.PAYMENTS_180D, ts), prepayViews = s.read(W.PREPAY_VIEWS_7D, ts);
            boolean lowBalance = !Double.isNaN(s.balance) && s.balance < 200, latePayer = late >= 3;
            boolean frequentArrears = arrears >= 3, frequentPayer = payments >= 5;
            double daysSinceApp = s.lastApp == Long.MIN_VALUE ? 1e9 : (ts - s.lastApp) / (double) DAY;
            if (lowBalance || frequentArrears || latePayer || frequentPayer || prepayViews >= 1) {
                double z = -2.5 + 1.2 * feature(late, 12) + (lowBalance ? 1.0 : 0) + (latePayer ? 0.5 : 0) + 0.9 * feature(arrears, 12)
                           + 1.2 * feature(prepayViews, 20) + 0.6 * feature(s.read(W.BILL_CALLS_30D, ts), 10)
                           + (frequentPayer ? 0.4 : 0) + 0.3 * Math.max(0, 7 - daysSinceApp) / 7;
                moment(s, 0, "prepay_wallet", logistic(z), 0.6, customer, eventId, ts);
            }
            double z = -3.0 + 1.4 * feature(s.read(W.INSTALMENT_VIEWS_7D, ts), 20) + 1.1 * feature(s.read(W.INSTALMENT_CALLS_30D, ts), 5)
                       + 0.5 * feature(s.read(W.PAYMENT_AMOUNT_30D, ts) / 1000, 100) + 0.4 * feature(late, 12);
            moment(s, 1, "bill_instalment", logistic(z), 0.65, customer, eventId, ts);
        }

        void moment(State s, int c, String campaign, double score, double threshold, String customer, String eventId, long ts) {
            if (score < threshold || (s.lastMoment[c] != Long.MIN_VALUE && ts - s.lastMoment[c] < 45 * DAY)) return;
            s.lastMoment[c] = ts;
            String m = "{\"campaign\":\"" + campaign + "\",\"customer_id\":" + quote(customer) + ",\"score\":" + score
                       + ",\"ts\":" + ts + ",\"caused_by\":" + quote(eventId) + "}";
            ctx.forward(new Record<>(customer.getBytes(StandardCharsets.UTF_8), m.getBytes(StandardCharsets.UTF_8), ts));
        }

        String quote(String v) {
            try {
                return json.writeValueAsString(v);
            } catch (Exception impossible) {
                return "\"\"";
            }
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: Peer BROKERS STATE_DIR [TOPIC_PREFIX]");
            System.exit(2);
        }
        String brokers = args[0], stateDir = args[1], prefix = args.length > 2 ? args[2] : "";
        List<String> inputs = List.of(prefix + "payments", prefix + "calls", prefix + "app-logins");
        String output = prefix + "peer.moments";

        // What the topics hold now: the run is over when that much is processed.
        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
        long total = 0;
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(cp, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> parts = new ArrayList<>();
            for (String t : inputs)
                for (PartitionInfo p : c.partitionsFor(t)) parts.add(new TopicPartition(t, p.partition()));
            Map<TopicPartition, Long> end = c.endOffsets(parts), begin = c.beginningOffsets(parts);
            for (TopicPartition tp : parts) total += end.get(tp) - begin.get(tp);
            try (Admin admin = Admin.create(Map.of("bootstrap.servers", brokers))) {
                int n = c.partitionsFor(inputs.get(0)).size();
                if (!admin.listTopics().names().get().contains(output))
                    admin.createTopics(List.of(new NewTopic(output, n, (short) 1))).all().get();
            }
        }
        expect = total;
        System.out.println("expect " + expect);

        Topology t = new Topology();
        t.addSource("inputs", inputs.toArray(new String[0]));
        t.addProcessor("moments", Moments::new, "inputs");
        t.addStateStore(Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(STORE), Serdes.String(), Serdes.ByteArray()), "moments");
        t.addSink("out", output, "moments");

        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, "momentd-peer-" + ProcessHandle.current().pid());
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
        p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 2);
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.AT_LEAST_ONCE);
        p.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.ByteArraySerde.class);
        p.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.ByteArraySerde.class);
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");

        KafkaStreams streams = new KafkaStreams(t, p);
        final boolean[] failed = {false};
        streams.setUncaughtExceptionHandler(ex -> {
            System.err.println("peer: stream error: " + ex);
            failed[0] = true;
            return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        streams.start();
        while (!failed[0]) {
            Thread.sleep(200);
            long n = processed.get();
            System.out.println("progress " + System.currentTimeMillis() + " " + n);
            if (n >= expect) break;
        }
        long cpu = ((com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean())
                       .getProcessCpuTime();
        streams.close(java.time.Duration.ofSeconds(30));
        if (failed[0]) System.exit(1);
        System.out.println("done " + expect + " " + firstMs + " " + lastMs + " " + cpu);
    }
}
