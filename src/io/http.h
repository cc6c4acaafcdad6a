/* http.h (private): momentd's HTTP endpoint, on libmicrohttpd.
 *
 *   GET /healthz         200 while the process runs
 *   GET /readyz          200 when Redis answers, partitions are assigned and lag is under
 *                        http.ready_max_lag; else 503 and why
 *   GET /metrics         Prometheus text format
 *   GET /api/report      the report as JSON (?from=YYYY-MM-DD&to=YYYY-MM-DD; default the last 30 days)
 *   GET /                the report page (charts drawn in the browser from /api/report)
 *
 * libmicrohttpd runs the server in a thread of its own; this module reads
 * the daemon's state only through md_status, and opens its own Redis
 * connection per report request (libvalkey contexts are not shared between
 * threads). */
#ifndef MOMENTD_HTTP_H
#define MOMENTD_HTTP_H

#include <stddef.h>

#include "momentd/config.h"
#include "status.h"

typedef struct md_http md_http;

/* Starts serving on listen ("127.0.0.1:9464", http.listen). st is borrowed
 * and must outlive the server; the configuration is read through it. Returns NULL with errstr set when
 * the address is bad or cannot be bound; NULL with errstr "" when listen is
 * empty (the endpoint is disabled). */
md_http *md_http_start(const char *listen, md_status *st, char *errstr, size_t errstr_size);
void md_http_stop(md_http *h); /* accepts NULL; waits for requests in flight */

#endif
