/* backtest.c: `momentd backtest` (backtest.h). Replays recorded input
 * through the engine twice, under the live and under a candidate
 * configuration, each in a Redis namespace of its own (wiped before and
 * after), and prints what each would have triggered per campaign, channel
 * and day. The live state is never read or written. */
#include "backtest.h"

#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "kafka.h"
#include "momentd/jsonw.h"
#include "report_store.h"
#include "rules.h"
#include "store.h"

#define MAX_ROWS 100000

typedef struct brow {
    char campaign[MD_TOKEN_MAX + 1];
    char channel[MD_TOKEN_MAX + 1];
    char day[11];
    int64_t n[2]; /* live, candidate */
} brow;

/* What one side's triggers of one campaign are worth: expected by the
 * side's own model (its p_contact and the moment's priority, summed), and
 * observed in the history that follows them (conversions within the
 * attribution window, from the replay's funnel), with the model's quality
 * on the triggers whose window closed before the history ends. */
typedef struct bvalue {
    int64_t triggers;
    double expected_conversions, expected_value;
    int64_t conversions, amount_fen;
    bool measured;
    md_model_report model;
} bvalue;

typedef struct btally {
    brow *rows;
    size_t n;
    int side;
    const md_config *cfg;
    int64_t holdouts[2], total[2];
    int64_t first_ms, last_ms; /* event times of the first and last trigger, either side */
    bvalue value[2][MD_MAX_CAMPAIGNS]; /* by the side's campaign index */
} btally;

/* A number the engine wrote into a moment ("key":value); 0 if absent. */
static double payload_number(const char *payload, const char *key) {
    const char *p = strstr(payload, key);
    return p ? strtod(p + strlen(key), NULL) : 0;
}

static void tally_one(btally *t, const md_delivery *tr) {
    if (tr->holdout || tr->campaign < 0 || tr->channel < 0) {
        t->holdouts[t->side]++;
        return;
    }
    t->total[t->side]++;
    if (tr->campaign < MD_MAX_CAMPAIGNS) {
        bvalue *v = &t->value[t->side][tr->campaign];
        v->triggers++;
        v->expected_conversions += payload_number(tr->payload, "\"p_contact\":");
        v->expected_value += payload_number(tr->payload, "\"priority\":");
    }
    const char *camp = t->cfg->campaigns[tr->campaign].name, *chan = t->cfg->channels[tr->channel].name;
    char day[11] = "?";
    const char *et = strstr(tr->payload, "\"event_time\":\"");
    if (et) snprintf(day, sizeof(day), "%.10s", et + 14);
    const char *q = et ? strchr(et + 14, '"') : NULL;
    int64_t ms;
    if (q && md_parse_rfc3339(et + 14, (size_t)(q - (et + 14)), &ms)) {
        if (!t->first_ms || ms < t->first_ms) t->first_ms = ms;
        if (ms > t->last_ms) t->last_ms = ms;
    }
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->rows[i].campaign, camp) == 0 && strcmp(t->rows[i].channel, chan) == 0 && strcmp(t->rows[i].day, day) == 0) {
            t->rows[i].n[t->side]++;
            return;
        }
    if (t->n == MAX_ROWS) return;
    brow *r = &t->rows[t->n++];
    memset(r, 0, sizeof(*r));
    snprintf(r->campaign, sizeof(r->campaign), "%s", camp);
    snprintf(r->channel, sizeof(r->channel), "%s", chan);
    snprintf(r->day, sizeof(r->day), "%s", day);
    r->n[t->side] = 1;
}

/* The sink of each side: the moments it would have emitted, tallied. */
static md_err tally(void *ctx, const md_delivery *dv, size_t n, char *err, size_t errsz) {
    (void)err;
    (void)errsz;
    btally *t = ctx;
    for (size_t k = 0; k < n; k++) tally_one(t, &dv[k]);
    return MD_ERR_OK;
}

/* One input record: an event, or a profile ("customer-profiles|KEY|JSON" in
 * the generator's "topic|key|json" form). */
/* Inputs per batch (the daemon's default batch is larger; a replay gains
 * nothing from more). */
#define BACKTEST_BATCH 500

/* load-profiles' sink: profiles emit nothing. */
static md_err no_moments(void *ctx, const md_delivery *dv, size_t n, char *err, size_t errsz) {
    (void)ctx;
    (void)dv;
    (void)n;
    (void)err;
    (void)errsz;
    return MD_ERR_OK;
}

typedef struct brec {
    bool profile;
    char customer[MD_CUSTOMER_ID_MAX + 1];
    const char *json;
    size_t len;
} brec;

typedef struct binput {
    char **lines; /* owned copies, NUL-terminated */
    size_t *lens;
    size_t n, cap;
} binput;

static bool add_line(binput *in, const char *s, size_t len) {
    if (in->n == in->cap) {
        size_t cap = in->cap ? in->cap * 2 : 4096;
        char **l = realloc(in->lines, cap * sizeof(char *));
        if (!l) return false;
        in->lines = l;
        size_t *ls = realloc(in->lens, cap * sizeof(size_t));
        if (!ls) return false;
        in->lens = ls;
        in->cap = cap;
    }
    char *c = malloc(len + 1);
    if (!c) return false;
    memcpy(c, s, len);
    c[len] = '\0';
    in->lines[in->n] = c;
    in->lens[in->n++] = len;
    return true;
}

static void free_input(binput *in) {
    for (size_t i = 0; i < in->n; i++) free(in->lines[i]);
    free(in->lines);
    free(in->lens);
}

static void to_record(const char *line, size_t len, brec *r) {
    memset(r, 0, sizeof(*r));
    r->json = line;
    r->len = len;
    /* "topic|key|json" (the generator's and the demo's files) */
    if (line[0] != '{') {
        const char *a = memchr(line, '|', len), *b = a ? memchr(a + 1, '|', len - (size_t)(a + 1 - line)) : NULL;
        if (a && b) {
            r->profile = (size_t)(a - line) == strlen("customer-profiles") && memcmp(line, "customer-profiles", 17) == 0;
            size_t kl = (size_t)(b - a - 1);
            if (kl <= MD_CUSTOMER_ID_MAX) {
                memcpy(r->customer, a + 1, kl);
                r->customer[kl] = '\0';
            }
            r->json = b + 1;
            r->len = len - (size_t)(b + 1 - line);
        }
    }
}

static int read_file(const char *path, binput *in) {
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!f) {
        fprintf(stderr, "momentd backtest: cannot open %s\n", path);
        return 2;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int rc = 0;
    while ((got = getline(&line, &cap, f)) > 0) {
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) got--;
        if (got == 0) continue;
        if (!add_line(in, line, (size_t)got)) {
            rc = 1;
            break;
        }
    }
    free(line);
    if (f != stdin) fclose(f);
    return rc;
}

/* Reads every partition of the topics from the beginning to their end now. */
static int read_topics(const md_config *cfg, const char *topics, binput *in) {
    char err[512];
    char group[64];
    snprintf(group, sizeof(group), "momentd-backtest-%d", (int)getpid());
    md_kafka_refusal why;
    rd_kafka_conf_t *conf = md_kafka_conf_new(cfg, MD_KAFKA_READER, group, &why);
    if (!conf) {
        fprintf(stderr, "momentd backtest: %s: property %s: %s\n", why.where, why.property, why.error);
        return 2;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "momentd backtest: %s\n", err);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(16);
    char *list = strdup(topics), *save = NULL;
    int rc = list ? 0 : 1;
    for (char *t = list ? strtok_r(list, ",", &save) : NULL; t; t = strtok_r(NULL, ",", &save)) {
        const struct rd_kafka_metadata *md;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, t, NULL);
        if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1 || md->topics[0].err) {
            fprintf(stderr, "momentd backtest: topic %s: not found or broker unreachable (%s)\n", t, cfg->kafka.brokers);
            if (md) rd_kafka_metadata_destroy(md);
            rd_kafka_topic_destroy(rkt);
            rc = 2;
            break;
        }
        for (int p = 0; p < md->topics[0].partition_cnt; p++)
            rd_kafka_topic_partition_list_add(parts, t, md->topics[0].partitions[p].id)->offset = RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
    }
    free(list);
    int open = parts->cnt;
    if (!rc && rd_kafka_assign(rk, parts)) rc = 1;
    while (!rc && open > 0) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 10000);
        if (!m) {
            fprintf(stderr, "momentd backtest: no message for 10 s before the end of the topics\n");
            rc = 1;
            break;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) open--;
        else if (m->err) fprintf(stderr, "momentd backtest: %s\n", rd_kafka_message_errstr(m));
        else {
            /* As "topic|key|json", so that profiles are recognised by topic. */
            const char *tn = rd_kafka_topic_name(m->rkt);
            bool prof = strcmp(tn, cfg->kafka.topic_profiles) == 0;
            size_t len = m->len + m->key_len + 32;
            char *buf = malloc(len);
            if (buf && m->payload) {
                int k = snprintf(buf, len, "%s|%.*s|", prof ? "customer-profiles" : "events", (int)m->key_len, m->key ? (char *)m->key : "");
                memcpy(buf + k, m->payload, m->len);
                if (!add_line(in, buf, (size_t)k + m->len)) rc = 1;
            }
            free(buf);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}

/* The side's funnel, read back from its namespace before it is wiped: what
 * followed its triggers in the history, and its model's quality on those
 * whose attribution window closed before the history's newest event. */
static int measure_side(const md_config *cfg, md_store *store, btally *t, int64_t history_end_ms, char *err, size_t errsz) {
    if (t->total[t->side] == 0) return 0;
    int64_t from = t->first_ms / MD_DAY_MS - 1, to = t->last_ms / MD_DAY_MS + 1;
    if (to - from > 3660) from = to - 3660;
    md_report *rep = md_report_read(store, cfg, from, to, history_end_ms, err, errsz);
    if (!rep) return 1;
    for (size_t c = 0; c < cfg->n_campaigns && c < MD_MAX_CAMPAIGNS; c++) {
        bvalue *v = &t->value[t->side][c];
        md_uplift u;
        md_report_uplift(rep, (int)c, &u);
        v->conversions = u.treated_conversions;
        for (size_t ch = 0; ch < cfg->n_channels; ch++) v->amount_fen += md_report_count(rep, (int)c, (int)ch, MD_STAGE_AMOUNT_FEN);
        v->measured = md_report_model_of(rep, (int)c, cfg->campaigns[c].model.version, &v->model);
    }
    md_report_destroy(rep);
    return 0;
}

static int run_side(const md_config *cfg, const char *redis_url, int side, const binput *in, btally *t, int64_t *rejected,
                    char *err, size_t errsz) {
    char prefix[96];
    snprintf(prefix, sizeof(prefix), "momentd-backtest:%d:%s", (int)getpid(), side ? "candidate" : "live");
    md_cfg_redis rcfg = cfg->redis;
    rcfg.url = (char *)redis_url;
    rcfg.key_prefix = prefix;
    md_store *store = md_store_new(&rcfg, err, errsz);
    md_batch *b = NULL;
    int rc = 1;
    t->side = side;
    t->cfg = cfg;
    md_batch_hooks hooks = {.deliver = tally, .ctx = t};
    if (!store || md_store_connect(store, err, errsz) || md_store_wipe(store, err, errsz)) goto out;
    if (!(b = md_batch_new(cfg, store, BACKTEST_BATCH, MD_BATCH_CLOCK_INPUT, &hooks, NULL, NULL))) goto out;
    *rejected = 0;
    for (size_t i = 0; i < in->n; i++) {
        brec r;
        to_record(in->lines[i], in->lens[i], &r);
        if (r.profile && !r.customer[0]) continue;
        /* As the daemon takes a message, without a watermark (a file has no
         * offsets); an event's key is not checked (plain JSON lines have none). */
        md_message m = {r.profile ? cfg->kafka.topic_profiles : cfg->kafka.topic_payments, 0, -1, r.profile ? r.customer : NULL,
                        r.profile ? strlen(r.customer) : 0, r.json, r.len};
        const char *reason;
        char detail[256];
        if (md_batch_make_room(b, err, errsz)) goto out;
        md_err e = md_batch_add_message(b, &m, 0, &reason, detail, sizeof(detail));
        if (e == MD_ERR_BAD_EVENT) (*rejected)++;
        else if (e) {
            snprintf(err, errsz, "%s", detail);
            goto out;
        }
    }
    if (md_batch_run(b, 0, err, errsz)) goto out;
    if (measure_side(cfg, store, t, md_batch_newest_event(b), err, errsz)) goto out;
    rc = 0;
out:
    if (store && md_store_connected(store)) {
        char werr[256];
        md_store_wipe(store, werr, sizeof(werr));
    }
    md_batch_destroy(b);
    md_store_destroy(store);
    return rc;
}

static int by_row(const void *a, const void *b) {
    const brow *x = a, *y = b;
    int c = strcmp(x->campaign, y->campaign);
    if (!c) c = strcmp(x->channel, y->channel);
    if (!c) c = strcmp(x->day, y->day);
    return c;
}

/* Campaign c of side's configuration, by the other side's name (-1: not in it). */
static int campaign_named(const md_config *cfg, const char *name) {
    for (size_t c = 0; c < cfg->n_campaigns && c < MD_MAX_CAMPAIGNS; c++)
        if (strcmp(cfg->campaigns[c].name, name) == 0) return (int)c;
    return -1;
}

static void print_value(const md_config *live, const md_config *cand, const btally *t) {
    printf("\nvalue per campaign: expected by each side's own model (sum of p_contact; of the moments' priority, yuan),\n"
           "observed in the history after its triggers (conversions within the attribution window, their amount),\n"
           "and the model's calibration on the triggers whose window closed before the history ends\n");
    printf("%-18s %-9s %-34s %8s %10s %12s %9s %12s %7s %11s\n", "campaign", "side", "model", "triggers", "expected", "exp. value", "observed",
           "amount", "AUC", "calib. err");
    for (size_t c = 0; c < live->n_campaigns && c < MD_MAX_CAMPAIGNS; c++) {
        int k = campaign_named(cand, live->campaigns[c].name);
        for (int side = 0; side < 2; side++) {
            const md_config *cfg = side ? cand : live;
            int idx = side ? k : (int)c;
            if (idx < 0) {
                printf("%-18s %-9s (not in this configuration)\n", live->campaigns[c].name, "candidate");
                continue;
            }
            const bvalue *v = &t->value[side][idx];
            printf("%-18s %-9s %-34.34s %8" PRId64 " %10.1f %12.0f %9" PRId64 " %12.2f", live->campaigns[c].name, side ? "candidate" : "live",
                   cfg->campaigns[idx].model.version, v->triggers, v->expected_conversions, v->expected_value, v->conversions,
                   (double)v->amount_fen / 100);
            if (v->measured && v->model.q.n) printf(" %7.3f", v->model.q.auc);
            else printf(" %7s", "-");
            if (v->measured && v->model.q.bins_counted) printf(" %8.1f pp\n", 100 * v->model.q.max_calibration_error);
            else printf(" %11s\n", "-");
        }
    }
}

static void json_side_value(md_jsonw *w, const char *key, const md_config *cfg, int idx, const bvalue *v) {
    md_jsonw_key(w, key);
    if (idx < 0) {
        md_jsonw_null(w);
        return;
    }
    md_jsonw_obj_open(w);
    md_jsonw_kstr(w, "model_version", cfg->campaigns[idx].model.version);
    md_jsonw_kint(w, "triggers", v->triggers);
    md_jsonw_knum(w, "expected_conversions", v->expected_conversions);
    md_jsonw_knum(w, "expected_value", v->expected_value);
    md_jsonw_kint(w, "conversions_after", v->conversions);
    md_jsonw_kint(w, "amount_fen_after", v->amount_fen);
    md_jsonw_kint(w, "labelled_decisions", v->measured ? (int64_t)v->model.q.n : 0);
    md_jsonw_key(w, "auc");
    if (v->measured && v->model.q.n && !isnan(v->model.q.auc)) md_jsonw_num(w, v->model.q.auc);
    else md_jsonw_null(w);
    md_jsonw_key(w, "calibration_error");
    if (v->measured && v->model.q.bins_counted) md_jsonw_num(w, v->model.q.max_calibration_error);
    else md_jsonw_null(w);
    md_jsonw_obj_close(w);
}

static void json_value(md_jsonw *w, const md_config *live, const md_config *cand, const btally *t) {
    md_jsonw_key(w, "value");
    md_jsonw_arr_open(w);
    for (size_t c = 0; c < live->n_campaigns && c < MD_MAX_CAMPAIGNS; c++) {
        int k = campaign_named(cand, live->campaigns[c].name);
        md_jsonw_obj_open(w);
        md_jsonw_kstr(w, "campaign", live->campaigns[c].name);
        json_side_value(w, "live", live, (int)c, &t->value[0][c]);
        json_side_value(w, "candidate", cand, k, k >= 0 ? &t->value[1][k] : NULL);
        md_jsonw_obj_close(w);
    }
    md_jsonw_arr_close(w);
}

int md_backtest(const md_backtest_opts *o) {
    char err[1024];
    md_config *cand = md_config_load(o->candidate, err, sizeof(err));
    if (!cand) {
        fprintf(stderr, "momentd backtest: %s\n", err);
        return 2;
    }
    md_config *live = md_config_load(o->live, err, sizeof(err));
    if (!live) {
        fprintf(stderr, "momentd backtest: %s\n", err);
        md_config_destroy(cand);
        return 2;
    }
    binput in = {0};
    btally t = {0};
    int64_t rejected[2] = {0, 0};
    int rc = o->from_file ? read_file(o->from_file, &in) : read_topics(live, o->from_topics, &in);
    t.rows = calloc(MAX_ROWS, sizeof(brow));
    if (!t.rows) rc = 1;
    const char *url = o->redis_url ? o->redis_url : live->redis.url;
    for (int side = 0; !rc && side < 2; side++)
        if (run_side(side ? cand : live, url, side, &in, &t, &rejected[side], err, sizeof(err))) {
            fprintf(stderr, "momentd backtest: %s configuration: %s\n", side ? "candidate" : "live", err);
            rc = 1;
        }
    if (!rc) {
        qsort(t.rows, t.n, sizeof(brow), by_row);
        if (o->json) {
            md_jsonw w;
            md_jsonw_init(&w);
            md_jsonw_obj_open(&w);
            md_jsonw_kint(&w, "records", (int64_t)in.n);
            md_jsonw_kint(&w, "rejected", rejected[0]);
            md_jsonw_key(&w, "totals");
            md_jsonw_obj_open(&w);
            md_jsonw_kint(&w, "live", t.total[0]);
            md_jsonw_kint(&w, "candidate", t.total[1]);
            md_jsonw_kint(&w, "live_holdout", t.holdouts[0]);
            md_jsonw_kint(&w, "candidate_holdout", t.holdouts[1]);
            md_jsonw_obj_close(&w);
            json_value(&w, live, cand, &t);
            md_jsonw_key(&w, "days");
            md_jsonw_arr_open(&w);
            for (size_t i = 0; i < t.n; i++) {
                md_jsonw_obj_open(&w);
                md_jsonw_kstr(&w, "campaign", t.rows[i].campaign);
                md_jsonw_kstr(&w, "channel", t.rows[i].channel);
                md_jsonw_kstr(&w, "day", t.rows[i].day);
                md_jsonw_kint(&w, "live", t.rows[i].n[0]);
                md_jsonw_kint(&w, "candidate", t.rows[i].n[1]);
                md_jsonw_obj_close(&w);
            }
            md_jsonw_arr_close(&w);
            md_jsonw_obj_close(&w);
            if (!w.oom) printf("%s\n", w.buf);
            md_jsonw_fini(&w);
        } else {
            printf("backtest of %s against %s over %zu records (%" PRId64 " rejected as invalid events)\n", o->candidate, o->live, in.n,
                   rejected[0]);
            printf("\n%-18s %-14s %-10s %8s %10s %8s\n", "campaign", "channel", "day (UTC)", "live", "candidate", "change");
            for (size_t i = 0; i < t.n; i++)
                printf("%-18s %-14s %-10s %8" PRId64 " %10" PRId64 " %+8" PRId64 "\n", t.rows[i].campaign, t.rows[i].channel, t.rows[i].day,
                       t.rows[i].n[0], t.rows[i].n[1], t.rows[i].n[1] - t.rows[i].n[0]);
            printf("\n%-44s %8" PRId64 " %10" PRId64 " %+8" PRId64 "\n", "triggers (contacts)", t.total[0], t.total[1], t.total[1] - t.total[0]);
            printf("%-44s %8" PRId64 " %10" PRId64 " %+8" PRId64 "\n", "holdout decisions (never contacted)", t.holdouts[0], t.holdouts[1],
                   t.holdouts[1] - t.holdouts[0]);
            print_value(live, cand, &t);
        }
    }
    free(t.rows);
    free_input(&in);
    md_config_destroy(cand);
    md_config_destroy(live);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* momentd load-profiles                                                      */

int md_load_profiles(const char *config_path, const char *file, const char *redis_url) {
    char err[1024];
    md_config *cfg = md_config_load(config_path, err, sizeof(err));
    if (!cfg) {
        fprintf(stderr, "momentd load-profiles: %s\n", err);
        return 2;
    }
    FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
    md_cfg_redis rcfg = cfg->redis;
    if (redis_url) rcfg.url = (char *)redis_url;
    md_store *store = md_store_new(&rcfg, err, sizeof(err));
    md_batch *b = NULL;
    md_batch_hooks hooks = {.deliver = no_moments, .ctx = NULL};
    int rc = 1;
    int64_t loaded = 0, bad = 0, lineno = 0;
    if (!f) {
        fprintf(stderr, "momentd load-profiles: cannot open %s\n", file);
        rc = 2;
        goto out;
    }
    if (!store || md_store_connect(store, err, sizeof(err)) || !(b = md_batch_new(cfg, store, BACKTEST_BATCH, MD_BATCH_CLOCK_INPUT, &hooks, NULL, NULL))) {
        fprintf(stderr, "momentd load-profiles: %s\n", store ? err : "out of memory");
        goto out;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    while ((got = getline(&line, &cap, f)) > 0) {
        lineno++;
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = '\0';
        if (got == 0) continue;
        char *bar = strchr(line, '|');
        char detail[256] = "";
        bool ok = bar && bar != line && (size_t)(bar - line) <= MD_CUSTOMER_ID_MAX;
        if (!ok) snprintf(detail, sizeof(detail), "expected CUSTOMER_ID|{...} with an id of 1-%d bytes", MD_CUSTOMER_ID_MAX);
        md_err e = MD_ERR_OK;
        if (ok) {
            *bar = '\0';
            if (!(e = md_batch_make_room(b, err, sizeof(err)))) e = md_batch_add_profile(b, line, bar + 1, NULL, detail, sizeof(detail));
            ok = e != MD_ERR_BAD_EVENT;
        }
        if (!ok) {
            if (bad++ < 10) fprintf(stderr, "momentd load-profiles: %s:%" PRId64 ": %s\n", file, lineno, detail);
            continue;
        }
        if (e) {
            fprintf(stderr, "momentd load-profiles: %s\n", err[0] ? err : detail);
            free(line);
            goto out;
        }
        loaded++;
    }
    free(line);
    if (md_batch_run(b, 0, err, sizeof(err))) {
        fprintf(stderr, "momentd load-profiles: %s\n", err);
        goto out;
    }
    printf("loaded %" PRId64 " profiles, %" PRId64 " lines refused\n", loaded, bad);
    rc = bad ? 2 : 0;
out:
    if (f && f != stdin) fclose(f);
    md_batch_destroy(b);
    md_store_destroy(store);
    md_config_destroy(cfg);
    return rc;
}
