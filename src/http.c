/* http.c: the HTTP endpoint (http.h). Every response is built in memory and
 * handed to libmicrohttpd as a copy; nothing here parses HTTP itself. */
#include "http.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
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
    const md_config *cfg;
    md_status *st;
};

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

static enum MHD_Result serve_metrics(md_http *h, struct MHD_Connection *conn) {
    md_status_snapshot s;
    md_status_read(h->st, &s);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return respond_text(conn, 500, "out of memory\n");
    const md_counters *n = &s.n;
    counter(f, "momentd_messages_consumed_total", "Kafka messages consumed (events, profiles, outcomes).", n->consumed);
    counter(f, "momentd_events_accepted_total", "Events that parsed and validated.", n->accepted);
    fprintf(f, "# HELP momentd_dead_letters_total Messages sent to the dead-letter topic, by reason.\n"
               "# TYPE momentd_dead_letters_total counter\n");
    for (int r = 1; r < MD_REJECT_COUNT; r++)
        fprintf(f, "momentd_dead_letters_total{reason=\"%s\"} %" PRIu64 "\n", md_reject_code((md_reject)r), n->rejects[r]);
    counter(f, "momentd_profile_dead_letters_total", "Profile messages sent to the dead-letter topic (bad key, size or JSON).",
            n->profile_rejects);
    counter(f, "momentd_duplicates_total", "Events recognised as redeliveries or re-publications.", n->duplicates);
    counter(f, "momentd_too_late_total", "Events older than limits.max_lateness behind the customer's newest.", n->too_late);
    counter(f, "momentd_profiles_total", "Profile updates applied.", n->profiles);
    counter(f, "momentd_holdout_decisions_total", "Triggers recorded for holdout customers (never sent).", n->holdouts);
    fprintf(f, "# HELP momentd_triggers_total Marketing moments produced, by campaign and channel.\n"
               "# TYPE momentd_triggers_total counter\n");
    for (size_t c = 0; c < h->cfg->n_campaigns && c < MD_MAX_CAMPAIGNS; c++)
        for (size_t ch = 0; ch < h->cfg->n_channels && ch < MD_STATUS_MAX_CHANNELS; ch++)
            fprintf(f, "momentd_triggers_total{campaign=\"%s\",channel=\"%s\"} %" PRIu64 "\n", h->cfg->campaigns[c].name,
                    h->cfg->channels[ch].name, n->fired[c][ch]);
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
    counter(f, "momentd_follow_ups_total", "Follow-up moments chained on outcomes (also in momentd_triggers_total).", n->follow_ups);
    counter(f, "momentd_conversions_total", "Conversions observed in the event stream and attributed to a trigger.", n->conversions);
    counter(f, "momentd_batches_total", "Batches committed.", n->batches);
    counter(f, "momentd_redis_retries_total", "Redis calls retried after a failure.", n->redis_retries);
    counter(f, "momentd_conflicts_total", "Batches re-decided because another consumer changed a customer meanwhile.", n->conflicts);
    gauge(f, "momentd_redis_up", "1 when the last Redis call succeeded.", s.redis_ok ? 1 : 0);
    gauge(f, "momentd_assigned_partitions", "Partitions this consumer owns.", s.assigned_partitions);
    gauge(f, "momentd_last_batch_timestamp_seconds", "Wall clock of the last committed batch (0: none yet).",
          (double)s.last_batch_ms / 1000.0);
    gauge(f, "momentd_start_time_seconds", "When the daemon started.", (double)s.started_ms / 1000.0);
    fclose(f);
    enum MHD_Result ret = respond(conn, 200, "text/plain; version=0.0.4; charset=utf-8", buf, len, true);
    free(buf);
    return ret;
}

/* ------------------------------------------------------------------------- */
/* /readyz                                                                    */

static enum MHD_Result serve_ready(md_http *h, struct MHD_Connection *conn) {
    md_status_snapshot s;
    md_status_read(h->st, &s);
    if (!s.redis_ok) return respond_text(conn, 503, "not ready: redis is not answering\n");
    if (s.assigned_partitions <= 0) return respond_text(conn, 503, "not ready: no partitions assigned yet\n");
    return respond_text(conn, 200, "ready\n");
}

/* ------------------------------------------------------------------------- */
/* /api/report                                                                */

static enum MHD_Result serve_report(md_http *h, struct MHD_Connection *conn) {
    const char *from = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "from");
    const char *to = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "to");
    int64_t d_from, d_to;
    char err[512] = "";
    if (!md_report_range(from, to, h->cfg->rules->default_utc_offset_min, wall_ms(), &d_from, &d_to, err, sizeof(err)))
        return respond_error(conn, 400, err);
    md_store *store = md_store_new(&h->cfg->redis, err, sizeof(err));
    md_report *rep = store ? md_report_read(store, h->cfg, d_from, d_to, err, sizeof(err)) : NULL;
    md_store_destroy(store);
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

md_http *md_http_start(const md_config *cfg, md_status *st, char *errstr, size_t errstr_size) {
    errstr[0] = '\0';
    const char *listen = cfg->http.listen;
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
    h->cfg = cfg;
    h->st = st;
    h->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, (uint16_t)port, NULL, NULL, handle, h, MHD_OPTION_SOCK_ADDR,
                              (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
    if (!h->mhd) {
        snprintf(errstr, errstr_size, "cannot listen on %s (address in use?)", listen);
        free(h);
        return NULL;
    }
    return h;
}

void md_http_stop(md_http *h) {
    if (!h) return;
    MHD_stop_daemon(h->mhd);
    free(h);
}
