/* test_config.c: loading, validation errors with file + JSON path, env
 * overrides, the shipped tag library, and the docs that cannot drift. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "momentd/config.h"
#include "rules.h"

Test(config, default_loads_with_both_shipped_campaigns) {
    md_config *cfg = th_default_config();
    cr_assert_eq(cfg->n_campaigns, 2);
    cr_assert_str_eq(cfg->campaigns[0].name, "prepay_wallet");
    cr_assert_str_eq(cfg->campaigns[1].name, "bill_instalment");
    cr_assert_str_eq(cfg->campaigns[1].routes[0].channel, "outbound_call");
    cr_assert_eq(cfg->kafka.poll_timeout_ms, 100, "defaults fill what the file leaves out");
    cr_assert_str_eq(cfg->kafka.topic_dead_letter, "momentd.dead-letter");
    md_config_destroy(cfg);
}

Test(config, ships_the_utility_tag_library_exactly) {
    md_config *cfg = th_default_config();
    struct {
        const char *name, *expr, *label;
    } want[] = {{"high_balance", "balance >= 200", "余额较高"},
                {"frequent_payer", "payments_180d >= 5", "频繁缴费"},
                {"low_balance", "balance < 200", "余额不足"},
                {"frequent_arrears", "arrears_restores_180d >= 3", "频繁欠费"},
                {"late_payer", "late_payments_180d >= 3", "逾期缴费"}};
    for (size_t w = 0; w < 5; w++) {
        size_t i;
        for (i = 0; i < cfg->n_tags; i++)
            if (strcmp(cfg->tags[i].name, want[w].name) == 0) break;
        cr_assert_lt(i, cfg->n_tags, "tag %s missing", want[w].name);
        cr_assert_str_eq(cfg->tags[i].class_, "rule");
        cr_assert_str_eq(cfg->tags[i].expr, want[w].expr);
        cr_assert_str_eq(cfg->tags[i].label, want[w].label);
    }
    /* "6 months" is 180 days of event time. */
    for (size_t i = 0; i < cfg->n_windows; i++)
        if (strstr(cfg->windows[i].name, "_180d")) cr_assert_eq(cfg->windows[i].span_ms, 180 * TH_DAY);
    md_config_destroy(cfg);
}

static void expect_rejected(const char *from, const char *to, const char *want) {
    char err[1024];
    md_config *cfg = th_config_with(from, to, err, sizeof(err));
    cr_assert_null(cfg, "replacing %s with %s should be rejected", from, to);
    cr_assert(strstr(err, want), "error should contain \"%s\", got: %s", want, err);
    cr_assert(strncmp(err, "test.json: ", 11) == 0, "error names the file: %s", err);
}

Test(config, errors_name_file_path_and_expectation) {
    expect_rejected("\"group_id\": \"momentd\"", "\"groupid\": \"momentd\"", "$.kafka.groupid: unknown key in kafka");
    expect_rejected("\"threshold\": 0.6,", "\"threshold\": 1.5,", "$.campaigns[0].threshold: expected a number in [0, 1], got 1.5");
    expect_rejected("\"threshold\": 0.6,", "\"threshold\": \"high\",", "$.campaigns[0].threshold: expected a number, got \"high\"");
    expect_rejected("\"threshold\": 0.6,", "", "$.campaigns[0].threshold: required");
    expect_rejected("\"span\": \"7d\", \"granularity\": \"1h\"}", "\"span\": \"7 days\", \"granularity\": \"1h\"}", "$.windows[8].span: expected a duration");
    expect_rejected("\"mode\": \"adaptive\", \"min_days\": 7", "\"mode\": \"smart\", \"min_days\": 7", "$.campaigns[0].cooldown.mode: expected one of adaptive|fixed");
    expect_rejected("\"quiet_start\": \"21:00\", \"quiet_end\": \"09:00\"", "\"quiet_start\": \"25:00\", \"quiet_end\": \"09:00\"", "$.channels[0].quiet_start: expected a local time");
    expect_rejected("\"default_utc_offset\": \"+08:00\"", "\"default_utc_offset\": \"Asia/Shanghai\"", "expected a UTC offset");
    expect_rejected("\"max\": 2, \"per\": \"30d\"}]},\n    {\"name\": \"in_app\"", "\"max\": 2, \"per\": \"30d\", \"max\": 3}]},\n    {\"name\": \"in_app\"", "key appears more than once");
    expect_rejected("{\n  \"kafka\"", "[", "not valid JSON");
}

Test(config, rules_are_cross_checked) {
    /* A campaign routed to a channel with no contact policy is an error, not a bypass. */
    expect_rejected("\"routes\": [{\"channel\": \"outbound_call\"}]", "\"routes\": [{\"channel\": \"fax\"}]",
                    "$.campaigns[1].routes[0].channel: \"fax\" has no entry in $.channels, so it has no contact policy");
    expect_rejected("\"signal\": \"late_payment\"", "\"signal\": \"late_pay\"", "$.windows[1].signal: no signal named \"late_pay\"");
    expect_rejected("\"expr\": \"balance < 200\"", "\"expr\": \"balance < 200 && late_payer\"", "$.tags[5].expr: unknown name 'late_payer'");
    expect_rejected("\"expr\": \"balance < 200\"", "\"expr\": \"score.prepay_wallet > 0.5\"", "$.tags[5].expr: unknown name 'score.prepay_wallet'");
    expect_rejected("\"rearm_below\": 0.4", "\"rearm_below\": 0.7", "rearm_below: 0.7 is above the threshold");
    expect_rejected("\"min_days\": 7, \"max_days\": 45", "\"min_days\": 50, \"max_days\": 45", "min_days: 50 is above max_days 45");
    expect_rejected("{\"name\": \"late_payment\", \"type\": \"payment\", \"where\": \"late\"}",
                    "{\"name\": \"late_payment\", \"type\": \"payment\", \"where\": \"late == \"}", "$.signals[1].where: unexpected end");
    expect_rejected("\"name\": \"bill_instalment\"", "\"name\": \"prepay_wallet\"", "is already the name of $.campaigns[0]");
    expect_rejected("\"granularity\": \"1h\"}", "\"granularity\": \"5h\"}", "whole number of granularity buckets");
    expect_rejected("\"name\": \"bill_instalment\"", "\"name\": \"bill,instalment\"", "$.campaigns[1].name: \"bill,instalment\" must be an identifier");
    expect_rejected("{\"name\": \"sms\"", "{\"name\": \"9sms\"", "$.channels[2].name: \"9sms\" must be an identifier");
    /* A channel's capacity and what confirms its contacts. */
    const char *call = "{\"name\": \"outbound_call\",";
    char five[400] = "{\"name\": \"outbound_call\", \"capacity\": [";
    for (int i = 0; i < 5; i++) strcat(five, i ? ", {\"max\": 9, \"per\": \"1h\"}" : "{\"max\": 9, \"per\": \"1h\"}");
    strcat(five, "],");
    expect_rejected(call, five, "$.channels[0].capacity: at most 4 limits");
    expect_rejected(call, "{\"name\": \"outbound_call\", \"capacity\": [{\"max\": 9, \"per\": \"500ms\"}],", "$.channels[0].capacity[0].per");
    expect_rejected(call, "{\"name\": \"outbound_call\", \"capacity\": [{\"max\": -1, \"per\": \"1h\"}],", "$.channels[0].capacity[0].max");
    expect_rejected(call, "{\"name\": \"outbound_call\", \"capacity\": [{\"per\": \"1h\"}],", "$.channels[0].capacity[0].max: required");
    expect_rejected(call, "{\"name\": \"outbound_call\", \"confirm\": \"maybe\",", "$.channels[0].confirm: expected one of emitted|sent");
    /* momentd check shows both. */
    char err[1024], *buf = NULL;
    size_t len = 0;
    md_config *shown = th_config_with(call, "{\"name\": \"outbound_call\", \"confirm\": \"sent\", \"capacity\": [{\"max\": 120, \"per\": \"1h\"}, {\"max\": 800, \"per\": \"1d\"}],", err, sizeof(err));
    cr_assert(shown, "%s", err);
    FILE *f = open_memstream(&buf, &len);
    md_config_print_summary(shown, f);
    fclose(f);
    cr_assert(strstr(buf, "channel   outbound_call    capacity 120 per 3600s 800 per 86400s, a contact once the channel reports sent"), "%s", buf);
    free(buf);
    md_config_destroy(shown);
    char longname[200];
    snprintf(longname, sizeof(longname), "{\"name\": \"outbound_call_%s\",", "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghij");
    /* It names keys (the capacity counters'), topics and metrics: bounded. */
    expect_rejected(call, longname, "must be an identifier (letters, digits, _; not starting with a digit; at most 64 bytes)");
    expect_rejected("\"conversion\": \"kind == \\\"prepay\\\"\"", "\"conversion\": \"kind == \"", "$.campaigns[0].conversion: unexpected end");
    /* A model version is written into trigger records and model-quality field names. */
    expect_rejected("\"version\": \"prepay_wallet-2026.11.1\"", "\"version\": \"prepay,wallet:1\"",
                    "$.campaigns[0].model.version: \"prepay,wallet:1\" must be 1-96 bytes of letters, digits, '.', '_' and '-'");
    expect_rejected("\"version\": \"prepay_wallet-2026.11.1\"", "\"version\": \"\"", "$.campaigns[0].model.version: \"\" must be 1-96 bytes");
    /* A policy arm's own model: a version of its own and the campaign model's shape. */
    const char *fixed45 = "\"cooldown\": {\"mode\": \"fixed\", \"fixed_days\": 45}}";
    expect_rejected(fixed45, "\"cooldown\": {\"mode\": \"fixed\", \"fixed_days\": 45}, \"threshold\": 0.5}",
                    "$.campaigns[1].arms[1]: threshold and rearm_below go with a model of the arm's own");
    expect_rejected(fixed45,
                    "\"cooldown\": {\"mode\": \"fixed\", \"fixed_days\": 45}, \"model\": {\"version\": \"bill_instalment-2026.11.1\", "
                    "\"features\": [{\"name\": \"x\", \"expr\": \"late_payments_180d\", \"weight\": 1}]}}",
                    "$.campaigns[1].arms[1].model.version: \"bill_instalment-2026.11.1\" is the campaign model's version");
    expect_rejected(fixed45,
                    "\"cooldown\": {\"mode\": \"fixed\", \"fixed_days\": 45}, \"model\": {\"version\": \"v2\", "
                    "\"features\": [{\"name\": \"x\", \"expr\": \"late_payments_180d\", \"weight\": 1}]}}",
                    "$.campaigns[1].arms[1].model: must have the campaign model's features");
}

Test(config, windows_over_one_signal_share_a_series) {
    md_config *cfg = th_default_config();
    int pay = -1, amount = -1;
    for (size_t i = 0; i < cfg->n_windows; i++) {
        if (strcmp(cfg->windows[i].name, "payments_180d") == 0) pay = cfg->rules->windows[i].series;
        if (strcmp(cfg->windows[i].name, "payment_amount_30d") == 0) amount = cfg->rules->windows[i].series;
    }
    cr_assert_neq(pay, amount, "a count and a sum cannot share buckets");
    cr_assert_lt(cfg->rules->n_series, cfg->n_windows + 1);
    md_config_destroy(cfg);
}

Test(config, environment_overrides_addresses) {
    setenv("MOMENTD_KAFKA_BROKERS", "127.0.0.1:39092", 1);
    setenv("MOMENTD_REDIS_URL", "redis://127.0.0.1:36379/2", 1);
    md_config *cfg = th_default_config();
    cr_assert_str_eq(cfg->kafka.brokers, "127.0.0.1:39092");
    cr_assert_str_eq(cfg->redis.url, "redis://127.0.0.1:36379/2");
    md_config_destroy(cfg);
    unsetenv("MOMENTD_KAFKA_BROKERS");
    unsetenv("MOMENTD_REDIS_URL");
}

/* An override that is set but empty is taken as unset, and the password
 * has one too (it was missing from --help before the table named them). */
Test(config, environment_overrides_come_from_the_table) {
    setenv("MOMENTD_REDIS_PASSWORD", "s3cret", 1);
    setenv("MOMENTD_REDIS_URL", "", 1);
    md_config *cfg = th_default_config();
    cr_assert_str_eq(cfg->redis.password, "s3cret");
    cr_assert_str_eq(cfg->redis.url, "redis://127.0.0.1:6379/0");
    md_config_destroy(cfg);
    unsetenv("MOMENTD_REDIS_PASSWORD");
    unsetenv("MOMENTD_REDIS_URL");
}

static void collect_env(void *ctx, const char *name, const char *key) {
    char *buf = ctx;
    size_t used = strlen(buf);
    snprintf(buf + used, 512 - used, "%s=%s;", name, key);
}

Test(config, environment_overrides_are_listed_for_help) {
    char buf[512] = "";
    md_config_foreach_env(collect_env, buf);
    cr_assert_str_eq(buf, "MOMENTD_KAFKA_BROKERS=kafka.brokers;MOMENTD_REDIS_URL=redis.url;MOMENTD_REDIS_PASSWORD=redis.password;MOMENTD_HTTP_TOKEN=http.token;");
}

/* The reload rule comes from the table's restart column: connection
 * settings need a restart and are named, rules and limits do not. */
Test(config, restart_only_settings_are_named) {
    char err[512], key[256];
    md_config *base = th_default_config();
    static const struct {
        const char *from, *to, *key;
    } cases[] = {
        {"\"group_id\": \"momentd\"", "\"group_id\": \"other\"", "kafka.group_id"},
        {"\"url\": \"redis://127.0.0.1:6379/0\"", "\"url\": \"redis://127.0.0.1:6380/0\"", "redis.url"},
        {"\"key_prefix\": \"md\"", "\"key_prefix\": \"md2\"", "redis.key_prefix"},
        {"\"url\": \"redis://127.0.0.1:6379/0\"", "\"url\": \"redis://127.0.0.1:6379/0\", \"timeout\": \"9s\"", "redis.timeout"},
        {"\"threshold\": 0.6,", "\"threshold\": 0.5,", NULL},
        {"\"url\": \"redis://127.0.0.1:6379/0\"", "\"url\": \"redis://127.0.0.1:6379/0\", \"retry_backoff\": \"2s\"", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        md_config *neu = th_config_with(cases[i].from, cases[i].to, err, sizeof(err));
        cr_assert(neu, "case %zu: %s", i, err);
        key[0] = '\0';
        bool changed = md_config_restart_change(base, neu, key, sizeof(key));
        if (cases[i].key) cr_expect(changed && strcmp(key, cases[i].key) == 0, "case %zu: expected %s, got %s", i, cases[i].key, key);
        else cr_expect(!changed, "case %zu: %s is not restart-only", i, key);
        md_config_destroy(neu);
    }
    cr_assert(!md_config_restart_change(base, base, key, sizeof(key)));
    md_config_destroy(base);
}

Test(config, durations_offsets_times) {
    int64_t ms;
    int m;
    cr_assert(md_parse_duration("90d", &ms) && ms == 90 * TH_DAY);
    cr_assert(md_parse_duration("1.5h", &ms) && ms == 5400000);
    cr_assert(md_parse_duration("250ms", &ms) && ms == 250);
    cr_assert(md_parse_duration("250", &ms) && ms == 250);
    cr_assert_not(md_parse_duration("-1d", &ms));
    cr_assert_not(md_parse_duration("3 weeks", &ms));
    cr_assert(md_parse_utc_offset("+08:00", &m) && m == 480);
    cr_assert(md_parse_utc_offset("-05:30", &m) && m == -330);
    cr_assert_not(md_parse_utc_offset("+15:00", &m));
    cr_assert(md_parse_time_of_day("21:30", &m) && m == 1290);
    cr_assert_not(md_parse_time_of_day("9:30", &m));
}

/* The reference in docs/CONFIG.md is generated from the loader's tables:
 * committed text and generated text must be identical, and every key the
 * loader accepts appears in it. */
static char *generated_reference(void) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert(f);
    md_config_print_reference(f);
    fclose(f);
    return buf;
}

static char *doc_for_keys;
static int keys_seen;
static void check_key(void *ctx, const char *path) {
    (void)ctx;
    char cell[300];
    snprintf(cell, sizeof(cell), "| `%s` |", path);
    cr_expect(strstr(doc_for_keys, cell), "key %s is accepted by the loader but missing from docs/CONFIG.md", path);
    keys_seen++;
}

Test(config, reference_cannot_drift) {
    char *gen = generated_reference();
    char *doc = th_read_file(MOMENTD_SOURCE_DIR "/docs/CONFIG.md");
    cr_assert_str_eq(doc, gen, "docs/CONFIG.md is stale: regenerate with `momentd config-doc > docs/CONFIG.md`");
    doc_for_keys = doc;
    md_config_foreach_key(check_key, NULL);
    cr_assert_gt(keys_seen, 80);
    /* And the other way: every documented row is a key the loader walks. */
    int rows = 0;
    for (const char *p = strstr(doc, "\n| `"); p; p = strstr(p + 1, "\n| `")) rows++;
    cr_assert_eq(rows, keys_seen, "documented rows and loader keys differ in number");
    free(gen);
    free(doc);
}

/* Secrets are referenced, not written: ${env:NAME} and ${file:PATH} as a
 * whole string value, in scalar keys and in librdkafka pass-through. */
/* Every pass-through object of librdkafka properties knows its secret
 * properties (the table's column, one row each): a reference there is
 * resolved, in the consumer's and the producer's as in the common one. */
Test(config, secret_properties_are_resolved_in_every_pass_through) {
    setenv("MD_TEST_SASL", "env-s3cret", 1);
    const char *pairs[] = {
        "\"consumer\": {", "\"consumer\": {\"sasl.password\": \"${env:MD_TEST_SASL}\", ",
        "\"producer\": {", "\"producer\": {\"ssl.key.password\": \"${env:MD_TEST_SASL}\", ",
    };
    char err[512];
    md_config *cfg = th_config_edit(pairs, 2, err, sizeof(err));
    cr_assert_not_null(cfg, "%s", err);
    cr_assert_str_eq(cfg->kafka.consumer[0].key, "sasl.password");
    cr_assert_str_eq(cfg->kafka.consumer[0].value, "env-s3cret");
    cr_assert_str_eq(cfg->kafka.producer[0].key, "ssl.key.password");
    cr_assert_str_eq(cfg->kafka.producer[0].value, "env-s3cret");
    md_config_destroy(cfg);
    unsetenv("MD_TEST_SASL");
}

Test(config, secrets_come_from_environment_and_files) {
    char path[] = "/tmp/momentd-secret-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "file-s3cret\n", 12), 12);
    close(fd);
    setenv("MD_TEST_SASL", "env-s3cret", 1);
    char edit[600];
    snprintf(edit, sizeof(edit),
             "\"redis\": {\"url\": \"redis://:url-s3cret@127.0.0.1:6379/0\", \"key_prefix\": \"md\", \"password\": \"${file:%s}\"}",
             path);
    const char *pairs[] = {
        "\"redis\": {\"url\": \"redis://127.0.0.1:6379/0\", \"key_prefix\": \"md\"}", edit,
        "\"consumer\": {", "\"common\": {\"sasl.password\": \"${env:MD_TEST_SASL}\", \"client.id\": \"${literal}\"}, \"consumer\": {",
    };
    char err[512];
    md_config *cfg = th_config_edit(pairs, 2, err, sizeof(err));
    cr_assert_not_null(cfg, "%s", err);
    cr_assert_str_eq(cfg->redis.password, "file-s3cret", "the file's contents without the newline");
    cr_assert_eq(cfg->kafka.n_common, 2);
    cr_assert_str_eq(cfg->kafka.common[0].value, "env-s3cret");
    cr_assert_str_eq(cfg->kafka.common[1].value, "${literal}", "anything else is literal");
    cr_assert_str_eq(cfg->redis.url, "redis://:url-s3cret@127.0.0.1:6379/0");
    /* The summary `momentd check` prints shows none of them. */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    md_config_print_summary(cfg, f);
    fclose(f);
    cr_assert_null(strstr(buf, "s3cret"), "no secret in the summary:\n%s", buf);
    cr_assert_not_null(strstr(buf, "redis://***@127.0.0.1:6379/0"), "the URL is shown redacted:\n%s", buf);
    cr_assert_not_null(strstr(buf, "(password set)"));
    free(buf);
    md_config_destroy(cfg);

    /* A reference that cannot be resolved is an error naming the path and the reference. */
    unsetenv("MD_TEST_SASL");
    cfg = th_config_edit(pairs, 2, err, sizeof(err));
    cr_assert_null(cfg);
    cr_assert_not_null(strstr(err, "$.kafka.common.sasl.password: environment variable MD_TEST_SASL is not set"), "%s", err);
    unlink(path);
    setenv("MD_TEST_SASL", "x", 1);
    cfg = th_config_edit(pairs, 2, err, sizeof(err));
    cr_assert_null(cfg);
    cr_assert_not_null(strstr(err, "$.redis.password: cannot read /tmp/momentd-secret-"), "%s", err);
    cr_assert_null(strstr(err, "s3cret"), "%s", err);
    unsetenv("MD_TEST_SASL");
}

/* Regression: a reference resolved in any string field, so that
 * kafka.brokers = "${file:/etc/shadow}" put the file into check's output
 * and connection errors. References are for secret settings only. */
Test(config, references_are_refused_outside_secret_settings) {
    char err[512];
    static const char *const bad[][2] = {
        {"\"brokers\": \"127.0.0.1:9092\"", "\"brokers\": \"${file:/etc/hostname}\""},
        {"\"key_prefix\": \"md\"", "\"key_prefix\": \"${env:HOME}\""},
        {"\"consumer\": {", "\"common\": {\"client.id\": \"${env:HOME}\"}, \"consumer\": {"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        md_config *cfg = th_config_with(bad[i][0], bad[i][1], err, sizeof(err));
        cr_expect_null(cfg, "case %zu loaded", i);
        md_config_destroy(cfg);
        cr_expect_not_null(strstr(err, "allowed only in secret"), "case %zu: %s", i, err);
    }
}

/* Regression: key_prefix was cut at 63 bytes without a word. */
Test(config, key_prefix_is_checked_not_cut) {
    char err[512], to[200];
    snprintf(to, sizeof(to), "\"key_prefix\": \"%s\"", "p123456789012345678901234567890123456789012345678901234567890123");
    md_config *cfg = th_config_with("\"key_prefix\": \"md\"", to, err, sizeof(err));
    cr_assert_null(cfg, "a 64-byte prefix loaded");
    cr_assert_not_null(strstr(err, "$.redis.key_prefix: must be 1-63 bytes"), "%s", err);
    cfg = th_config_with("\"key_prefix\": \"md\"", "\"key_prefix\": \"m{d}\"", err, sizeof(err));
    cr_assert_null(cfg, "a prefix with braces loaded");
    md_config_destroy(cfg);
}

Test(config, urls_are_redacted_and_secret_keys_known) {
    char out[128];
    md_redact_url("redis://:pw@h:1/0", out, sizeof(out));
    cr_assert_str_eq(out, "redis://***@h:1/0");
    md_redact_url("redis://user:pw@h", out, sizeof(out));
    cr_assert_str_eq(out, "redis://***@h");
    md_redact_url("redis://h:1/0", out, sizeof(out));
    cr_assert_str_eq(out, "redis://h:1/0");
    /* Regression: a '/' or an '@' in the password printed it, or part of it. */
    md_redact_url("redis://:pa/ss@h:1/0", out, sizeof(out));
    cr_assert_str_eq(out, "redis://***@h:1/0");
    md_redact_url("rediss://user:p@ss@h:1/0", out, sizeof(out));
    cr_assert_str_eq(out, "rediss://***@h:1/0");
    cr_assert(md_config_key_is_secret("sasl.password"));
    cr_assert(md_config_key_is_secret("ssl.key.password"));
    cr_assert(md_config_key_is_secret("sasl.jaas.config"));
    cr_assert(md_config_key_is_secret("ssl.key.pem"));
    cr_assert(md_config_key_is_secret("sasl.oauthbearer.client.secret"));
    cr_assert_not(md_config_key_is_secret("security.protocol"));
    cr_assert_not(md_config_key_is_secret("sasl.username"));
}
