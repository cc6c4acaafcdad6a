/* http.c: the HTTP endpoint (http.h). Every response is built in memory and
 * handed to libmicrohttpd as a copy; nothing here parses HTTP itself. */
#include "http.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "momentd/jsonw.h"
#include "report_store.h"
#include "rules.h"
#include "store.h"

extern const char md_web_index_html[];
extern const char md_web_app_js[];
extern const char md_web_chart_js[];

struct md_http {
    struct MHD_Daemon *mhd;
    md_status *st; /* also holds the running configuration (it changes on reload) */
    /* One Redis connection for every report, made at the first and kept
     * (each report opened one, with AUTH and SCRIPT LOAD, before); reports
     * take turns on it. Remade when the configuration's Redis changes
     * (a reload cannot change it: restart-only; kept simple all the same). */
    pthread_mutex_t store_lock;
    md_store *store;
};

/* Threads answering requests: a report that waits on Redis holds one, and
 * /healthz and /readyz are answered by the others. */
#define MD_HTTP_THREADS 4
#define MD_HTTP_MAX_CONNECTIONS 64
#define MD_HTTP_MAX_CONNECTIONS_PER_IP 16
/* The longest report the API serves: a report reads days x campaigns
 * hashes, and a ten-year range was 7,322 reads and 712 KB of JSON. */
#define MD_HTTP_REPORT_MAX_DAYS 366

static int64_t wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status, const char *type, const char *body, size_t len,
                               bool copy) {
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, copy ? MHD_RESPMEM_MUST_COPY : MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    /* The page loads only its own script and chart library; nothing may
     * frame it, sniff a type or leak a referrer. */
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result respond_text(struct MHD_Connection *conn, unsigned status, const char *text) {
    return respond(conn, status, "text/plain; charset=utf-8", text, strlen(text), true);
}

/* {"error": text}, escaped by the JSON writer (the text may quote user input). */
static enum MHD_Result respond_error(struct MHD_Connection *conn, unsigned status, const char *text) {
    md_jsonw w;
    md_jsonw_init(&w);
    md_jsonw_obj_open(&w);
    md_jsonw_kstr(&w, "error", text);
    md_jsonw_obj_close(&w);
    enum MHD_Result ret = w.oom ? respond_text(conn, 500, "out of memory\n")
                                : respond(conn, status, "application/json", w.buf, strlen(w.buf), true);
    md_jsonw_fini(&w);
    return ret;
}

/* ------------------------------------------------------------------------- */
/* /metrics                                                                   */

static void counter(FILE *f, const char *name, const char *help, uint64_t v) {
    fprintf(f, "# HELP %s %s\n# TYPE %s counter\n%s %" PRIu64 "\n", name, help, name, name, v);
}

static void gauge(FILE *f, const char *name, const char *help, double v) {
    fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n%s %.17g\n", name, help, name, name, v);
}

static void histogram(FILE *f, const char *name, const char *help, const md_hist *h) {
    fprintf(f, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (int i = 0; i < MD_HIST_BOUNDS; i++) {
        cum += h->counts[i];
        fprintf(f, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, md_hist_bounds_s[i], cum);
    }
    fprintf(f, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n%s_sum %.9g\n%s_count %" PRIu64 "\n", name, h->count, name, h->sum_s, name,
            h->count);
}

static const char *const latency_names[] = {
#define MD_LATENCY_NAME(id, name, help) name,
    MD_LATENCY_MAP(MD_LATENCY_NAME)};
static const char *const latency_helps[] = {
#define MD_LATENCY_HELP(id, name, help) help,
    MD_LATENCY_MAP(MD_LATENCY_HELP)};

/* Prometheus label values escape backslash, quote and newline; topic names
 * cannot hold them, but campaign names come from a file. */
static void label(FILE *f, const char *v) {
    for (; *v; v++) {
        if (*v == '\\' || *v == '"') fputc('\\', f);
        if (*v == '\n') {
            fputs("\\n", f);
            continue;
        }
        fputc(*v, f);
    }
}

static void render_metrics(FILE *f, const md_status_snapshot *sp, const md_config *cfg) {
    const md_counters *n = &sp->n;
#define MD_COUNTER_METRIC(field, stat, metric, help) \
    if (metric) counter(f, metric, help, n->field);
    MD_COUNTER_MAP(MD_COUNTER_METRIC)
#undef MD_COUNTER_METRIC
    fprintf(f, "# HELP momentd_events_accepted_total Events that parsed and validated, by type.\n"
               "# TYPE momentd_events_accepted_total counter\n");
    for (int t = 0; t < MD_EVENT_TYPE_COUNT; t++)
        fprintf(f, "momentd_events_accepted_total{type=\"%s\"} %" PRIu64 "\n", md_event_type_name((md_event_type)t), n->accepted_by_type[t]);
    fprintf(f, "# HELP momentd_dead_letters_total Messages sent to the dead-letter topic, by reason.\n"
               "# TYPE momentd_dead_letters_total counter\n");
    for (int r = 1; r < MD_REJECT_COUNT; r++)
        fprintf(f, "momentd_dead_letters_total{reason=\"%s\"} %" PRIu64 "\n", md_reject_code((md_reject)r), n->rejects[r]);
    fprintf(f, "# HELP momentd_triggers_total Marketing moments produced, by campaign and channel.\n"
               "# TYPE momentd_triggers_total counter\n");
    for (size_t c = 0; c < cfg->n_campaigns && c < MD_MAX_CAMPAIGNS; c++)
        for (size_t ch = 0; ch < cfg->n_channels && ch < MD_STATUS_MAX_CHANNELS; ch++) {
            fputs("momentd_triggers_total{campaign=\"", f);
            label(f, cfg->campaigns[c].name);
            fputs("\",channel=\"", f);
            label(f, cfg->channels[ch].name);
            fprintf(f, "\"} %" PRIu64 "\n", n->fired[c][ch]);
        }
    fprintf(f, "# HELP momentd_suppressions_total Campaign evaluations that did not fire, by the first rule that blocked.\n"
               "# TYPE momentd_suppressions_total counter\n");
    for (int r = 1; r < MD_SUPPRESS_COUNT; r++)
        fprintf(f, "momentd_suppressions_total{reason=\"%s\"} %" PRIu64 "\n", md_suppress_name((md_suppress)r), n->suppressed[r]);
    fprintf(f, "# HELP momentd_outcomes_total Outcomes reported by the channels, by what became of them.\n"
               "# TYPE momentd_outcomes_total counter\n"
               "momentd_outcomes_total{result=\"applied\"} %" PRIu64 "\n"
               "momentd_outcomes_total{result=\"duplicate\"} %" PRIu64 "\n"
               "momentd_outcomes_total{result=\"unknown_trigger\"} %" PRIu64 "\n",
            n->outcomes, n->outcome_duplicates, n->outcomes_unknown);
    gauge(f, "momentd_redis_up", "1 when the last Redis call succeeded.", sp->redis_ok ? 1 : 0);
    gauge(f, "momentd_redis_used_memory_bytes", "Redis's used_memory (INFO memory, every 5 s; -1 not known yet).",
          (double)sp->redis_used_memory);
    gauge(f, "momentd_redis_maxmemory_bytes", "Redis's maxmemory (0: no limit; -1 not known yet).", (double)sp->redis_maxmemory);
    fprintf(f, "# HELP momentd_state_reads_total Customers' states read for a batch, from the state cache or from Redis (every 5 s).\n"
               "# TYPE momentd_state_reads_total counter\n"
               "momentd_state_reads_total{from=\"cache\"} %" PRIu64 "\n"
               "momentd_state_reads_total{from=\"redis\"} %" PRIu64 "\n",
            sp->state_cache.hits, sp->state_cache.misses);
    gauge(f, "momentd_state_cache_entries", "Customers whose state the cache holds (redis.state_cache_mb).", (double)sp->state_cache.entries);
    gauge(f, "momentd_state_cache_bytes", "Bytes the state cache holds, against redis.state_cache_mb.", (double)sp->state_cache.bytes);
    gauge(f, "momentd_resident_memory_bytes", "This process's resident memory (VmRSS, every 5 s; -1 not known): about redis.state_cache_mb once the cache is full, plus the batch and the consumer's prefetch.", (double)sp->resident_bytes);
    gauge(f, "momentd_peak_resident_memory_bytes", "The most resident memory this process has held (VmHWM, every 5 s; -1 not known).", (double)sp->peak_resident_bytes);
    gauge(f, "momentd_assigned_partitions", "Partitions this consumer owns.", sp->assigned_partitions);
    gauge(f, "momentd_last_batch_timestamp_seconds", "Wall clock of the last committed batch (0: none yet).",
          (double)sp->last_batch_ms / 1000.0);
    gauge(f, "momentd_start_time_seconds", "When the daemon started.", (double)sp->started_ms / 1000.0);
    fprintf(f, "# HELP momentd_config_reloads_total Configuration reloads on SIGHUP, by result.\n"
               "# TYPE momentd_config_reloads_total counter\n"
               "momentd_config_reloads_total{result=\"applied\"} %" PRIu64 "\n"
               "momentd_config_reloads_total{result=\"refused\"} %" PRIu64 "\n",
            n->reloads, n->reload_failures);
    gauge(f, "momentd_config_loaded_timestamp_seconds", "When the running configuration was loaded.", (double)sp->config_loaded_ms / 1000.0);
    fprintf(f, "# HELP momentd_model_info The running model version of each campaign (value 1).\n# TYPE momentd_model_info gauge\n");
    for (size_t c = 0; c < cfg->n_campaigns; c++) {
        fputs("momentd_model_info{campaign=\"", f);
        label(f, cfg->campaigns[c].name);
        fputs("\",version=\"", f);
        label(f, cfg->campaigns[c].model.version);
        fputs("\"} 1\n", f);
    }
    fprintf(f, "# HELP momentd_campaign_paused 1 while an operator has paused the campaign (momentd pause).\n# TYPE momentd_campaign_paused gauge\n");
    for (size_t c = 0; c < cfg->n_campaigns && c < 32; c++) {
        fputs("momentd_campaign_paused{campaign=\"", f);
        label(f, cfg->campaigns[c].name);
        fprintf(f, "\"} %d\n", (sp->paused_campaigns >> c) & 1u ? 1 : 0);
    }
    static const char *const model_metrics[3][2] = {
        {"momentd_model_labelled_decisions", "Treated decisions of the running model in the last 30 days whose attribution window has closed."},
        {"momentd_model_calibration_error", "Largest gap between predicted and observed conversion over the running model's deciles of learning.calibration_min decisions (a share; absent while none has that many)."},
        {"momentd_model_drifting", "1 while the running model's calibration error is above learning.calibration_bound."}};
    for (int k = 0; k < 3; k++) {
        fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n", model_metrics[k][0], model_metrics[k][1], model_metrics[k][0]);
        for (size_t c = 0; c < cfg->n_campaigns && c < MD_MAX_CAMPAIGNS; c++) {
            const md_model_status *m = &sp->models[c];
            if (!m->measured || (k == 1 && isnan(m->calibration_error))) continue;
            fprintf(f, "%s{campaign=\"", model_metrics[k][0]);
            label(f, cfg->campaigns[c].name);
            fputs("\",version=\"", f);
            label(f, cfg->campaigns[c].model.version);
            if (k == 0) fprintf(f, "\"} %" PRId64 "\n", m->decisions);
            else if (k == 1) fprintf(f, "\"} %.6f\n", m->calibration_error);
            else fprintf(f, "\"} %d\n", m->drifting ? 1 : 0);
        }
    }
    gauge(f, "momentd_outbox_pending", "Triggers, dead letters and funnel counts of the batch in hand not yet acknowledged by Kafka.",
          (double)sp->outbox_pending);
    fprintf(f, "# HELP momentd_consumer_lag Messages between a partition's high watermark and this consumer's position.\n"
               "# TYPE momentd_consumer_lag gauge\n");
    for (int i = 0; i < sp->n_lag; i++)
        if (sp->lag[i].lag >= 0)
            fprintf(f, "momentd_consumer_lag{topic=\"%s\",partition=\"%" PRId32 "\"} %" PRId64 "\n", sp->lag[i].topic, sp->lag[i].partition,
                    sp->lag[i].lag);
    for (int k = 0; k < MD_LAT_COUNT; k++) histogram(f, latency_names[k], latency_helps[k], &sp->latency[k]);
}

static enum MHD_Result serve_metrics(md_http *h, struct MHD_Connection *conn) {
    md_status_snapshot *s = malloc(sizeof(*s));
    if (!s) return respond_text(conn, 500, "out of memory\n");
    md_status_read(h->st, s);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        free(s);
        return respond_text(conn, 500, "out of memory\n");
    }
    const md_config *cfg = md_status_config_acquire(h->st);
    render_metrics(f, s, cfg);
    md_status_config_release(h->st);
    free(s);
    fclose(f);
    enum MHD_Result ret = respond(conn, 200, "text/plain; version=0.0.4; charset=utf-8", buf, len, true);
    free(buf);
    return ret;
}

/* ------------------------------------------------------------------------- */
/* /readyz                                                                    */

static enum MHD_Result serve_ready(md_http *h, struct MHD_Connection *conn) {
    md_status_snapshot *s = malloc(sizeof(*s));
    if (!s) return respond_text(conn, 500, "out of memory\n");
    md_status_read(h->st, s);
    const md_config *cfg = md_status_config_acquire(h->st);
    int64_t max_lag = cfg->http.ready_max_lag;
    double max_mem = cfg->http.ready_max_redis_memory;
    md_status_config_release(h->st);
    /* Every reason at once: an operator fixing Redis should learn about the
     * backlog waiting behind it too. */
    char why[600] = "";
    size_t w = 0;
    if (!s->redis_ok) w += (size_t)snprintf(why + w, sizeof(why) - w, "not ready: redis is not answering\n");
    if (s->assigned_partitions <= 0 && w < sizeof(why))
        w += (size_t)snprintf(why + w, sizeof(why) - w, "not ready: no partitions assigned yet\n");
    if (max_lag > 0 && s->max_lag > max_lag && w < sizeof(why))
        w += (size_t)snprintf(why + w, sizeof(why) - w, "not ready: consumer lag %" PRId64 " is above http.ready_max_lag %" PRId64 "\n",
                              s->max_lag, max_lag);
    if (max_mem > 0 && s->redis_maxmemory > 0 && (double)s->redis_used_memory > max_mem * (double)s->redis_maxmemory && w < sizeof(why))
        snprintf(why + w, sizeof(why) - w,
                 "not ready: redis uses %" PRId64 " of its maxmemory %" PRId64 " bytes, above http.ready_max_redis_memory %g\n",
                 s->redis_used_memory, s->redis_maxmemory, max_mem);
    free(s);
    return why[0] ? respond_text(conn, 503, why) : respond_text(conn, 200, "ready\n");
}

/* ------------------------------------------------------------------------- */
/* /api/report                                                                */

static enum MHD_Result serve_report(md_http *h, struct MHD_Connection *conn) {
    const char *from = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "from");
    const char *to = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "to");
    int64_t d_from, d_to;
    char err[512] = "";
    const md_config *cfg = md_status_config_acquire(h->st);
    md_report *rep = NULL;
    bool range_ok = md_report_range(from, to, cfg->rules->default_utc_offset_min, wall_ms(), &d_from, &d_to, err, sizeof(err));
    if (range_ok && d_to - d_from + 1 > MD_HTTP_REPORT_MAX_DAYS) {
        snprintf(err, sizeof(err), "a report covers at most %d days (asked for %lld)", MD_HTTP_REPORT_MAX_DAYS, (long long)(d_to - d_from + 1));
        range_ok = false;
    }
    if (range_ok) {
        pthread_mutex_lock(&h->store_lock);
        if (!h->store) h->store = md_store_new(&cfg->redis, err, sizeof(err));
        rep = h->store ? md_report_read(h->store, cfg, d_from, d_to, wall_ms(), err, sizeof(err)) : NULL;
        pthread_mutex_unlock(&h->store_lock);
    }
    md_status_config_release(h->st);
    if (!range_ok) return respond_error(conn, 400, err);
    if (!rep) return respond_error(conn, 503, "report unavailable: redis is not answering");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        md_report_destroy(rep);
        return respond_text(conn, 500, "out of memory\n");
    }
    md_report_print_json(rep, f);
    fclose(f);
    md_report_destroy(rep);
    enum MHD_Result ret = respond(conn, 200, "application/json", buf, len, true);
    free(buf);
    return ret;
}

/* ------------------------------------------------------------------------- */
/* Routing                                                                    */

/* Whether the request may read data: always without http.token; with it,
 * only with "Authorization: Bearer <token>", compared in time that does not
 * depend on where the first difference is. */
static bool authorized(md_http *h, struct MHD_Connection *conn) {
    const md_config *cfg = md_status_config_acquire(h->st);
    const char *token = cfg && cfg->http.token ? cfg->http.token : "";
    bool ok = true;
    if (*token) {
        const char *got = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
        ok = false;
        if (got && strncmp(got, "Bearer ", 7) == 0) {
            got += 7;
            size_t tl = strlen(token), gl = strlen(got);
            unsigned char diff = (unsigned char)(tl != gl);
            for (size_t i = 0; i < tl; i++) diff |= (unsigned char)(token[i] ^ (i < gl ? got[i] : 0));
            ok = diff == 0;
        }
    }
    md_status_config_release(h->st);
    return ok;
}

static enum MHD_Result respond_unauthorized(struct MHD_Connection *conn) {
    static const char body[] = "{\"error\":\"this endpoint needs http.token: send Authorization: Bearer TOKEN (the page: open /#token=TOKEN)\"}";
    struct MHD_Response *r = MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"momentd\"");
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_UNAUTHORIZED, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method, const char *version,
                              const char *upload_data, size_t *upload_data_size, void **con_cls) {
    md_http *h = cls;
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)con_cls;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) return respond_text(conn, 405, "only GET\n");
    if (strcmp(url, "/healthz") == 0) return respond_text(conn, 200, "ok\n");
    if (strcmp(url, "/readyz") == 0) return serve_ready(h, conn);
    /* The data; the page and its scripts hold none, and the page sends the
     * token it was opened with. */
    bool data = strcmp(url, "/metrics") == 0 || strcmp(url, "/api/report") == 0;
    if (data && !authorized(h, conn)) return respond_unauthorized(conn);
    if (strcmp(url, "/metrics") == 0) return serve_metrics(h, conn);
    if (strcmp(url, "/api/report") == 0) return serve_report(h, conn);
    if (strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0)
        return respond(conn, 200, "text/html; charset=utf-8", md_web_index_html, strlen(md_web_index_html), false);
    if (strcmp(url, "/app.js") == 0)
        return respond(conn, 200, "text/javascript; charset=utf-8", md_web_app_js, strlen(md_web_app_js), false);
    if (strcmp(url, "/vendor/chart.umd.min.js") == 0)
        return respond(conn, 200, "text/javascript; charset=utf-8", md_web_chart_js, strlen(md_web_chart_js), false);
    return respond_text(conn, 404, "not found\n");
}

md_http *md_http_start(const char *listen, md_status *st, char *errstr, size_t errstr_size) {
    errstr[0] = '\0';
    if (!listen || !*listen) return NULL;
    const char *colon = strrchr(listen, ':');
    char host[64];
    long port = colon ? strtol(colon + 1, NULL, 10) : 0;
    if (!colon || (size_t)(colon - listen) >= sizeof(host) || port < 1 || port > 65535) {
        snprintf(errstr, errstr_size, "http.listen \"%s\" must be IPv4-ADDRESS:PORT", listen);
        return NULL;
    }
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        snprintf(errstr, errstr_size, "http.listen \"%s\": \"%s\" is not an IPv4 address", listen, host);
        return NULL;
    }
    md_http *h = calloc(1, sizeof(*h));
    if (!h) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    h->st = st;
    pthread_mutex_init(&h->store_lock, NULL);
    h->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, (uint16_t)port, NULL, NULL, handle, h, MHD_OPTION_SOCK_ADDR,
                              (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_THREAD_POOL_SIZE,
                              (unsigned)MD_HTTP_THREADS, MHD_OPTION_CONNECTION_LIMIT, (unsigned)MD_HTTP_MAX_CONNECTIONS,
                              MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)MD_HTTP_MAX_CONNECTIONS_PER_IP, MHD_OPTION_END);
    if (!h->mhd) {
        snprintf(errstr, errstr_size, "cannot listen on %s (address in use?)", listen);
        pthread_mutex_destroy(&h->store_lock);
        free(h);
        return NULL;
    }
    return h;
}

void md_http_stop(md_http *h) {
    if (!h) return;
    MHD_stop_daemon(h->mhd);
    md_store_destroy(h->store);
    pthread_mutex_destroy(&h->store_lock);
    free(h);
}
