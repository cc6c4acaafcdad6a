/* store.c: the Redis edge (store.h), on libvalkey's synchronous API
 * (deps/libvalkey: hiredis's maintained continuation, with TLS).
 *
 * Binary-safe throughout: every command goes through valkeyAppendCommandArgv
 * with explicit lengths; user data never meets a format string.
 *
 * Why 650 lines: the connection (URL, AUTH, TLS, SCRIPT LOAD, reconnects)
 * and every pipelined command momentd sends, so that Redis has one edge. */
#include "store.h"

#include <errno.h>
#include <limits.h>
#include <valkey/valkey.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <string.h>
#include <sys/random.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <valkey/cluster.h>
#include <valkey/tls.h>

extern const char md_lua_apply[];
extern const char md_lua_forget[];
extern const char md_lua_mark[];
extern const char md_lua_capacity[];
extern const char md_lua_codes[];

struct md_store {
    char host[256];
    int port;
    int db;
    char username[256]; /* a Redis ACL user, or "" for AUTH with the password alone */
    char password[256];
    char prefix[64];
    int64_t timeout_ms;
    int64_t wait_replicas, wait_timeout_ms; /* redis.wait_replicas, redis.wait_timeout */
    valkeyContext *c;         /* one node */
    valkeyClusterContext *cc; /* or a cluster (redis+cluster://) */
    bool cluster;
    char seeds[1024];         /* the cluster's seed nodes, "host:port,host:port" */
    char apply_sha[41], capacity_sha[41];
    bool tls;                /* rediss:// */
    char tls_ca[512], tls_cert[512], tls_key[512], tls_name[256];
    SSL_CTX *tls_ctx;        /* made at the first TLS connection, kept */
    /* Argument arrays of the apply commands, kept between calls: a batch's
     * applies are sent in slices, and each slice reallocating them cost
     * more than the requests. Grown as needed, freed by md_store_destroy. */
    const char **argv;
    size_t *lens;
    char (*nums)[24];
    size_t argv_cap;
    /* The pipelined commands a cluster redirected (MOVED, ASK), by their
     * index in the pipeline: sent again one by one once it is read. */
    size_t *redo;
    size_t n_redo, redo_cap;
    uint64_t redirects; /* commands sent again so, since md_store_new */
    md_hash_cache *cache; /* md_store_cache_states: customers' hashes between batches, or NULL */
    md_hash_field *img;   /* one reply's fields, for the cache (grown) */
    size_t img_cap;
    /* Per apply sent since the last collect: when it sets the key's expiry
     * (monotonic ms), or 0 when it leaves a fresh one alone (apply_expiry). */
    int64_t *expiry;
    size_t n_sent, expiry_cap;
    /* Replies md_store_apply_poll took (the first n_taken of those sent),
     * and one it read but left to md_store_apply_collect (not a result). */
    size_t n_taken;
    valkeyReply *held;
    /* The keys of the applies sent since the last collect whose cache
     * entries took them as they were sent (apply_ahead), each with its NUL:
     * what a lost reply drops (ahead_drop), since Redis may not have them. */
    char *ahead;
    size_t ahead_len, ahead_cap;
    char *resp; /* conn_append's command, formatted (grown) */
    size_t resp_cap;
    /* The namespace's short codes, a table for each set of names a
     * configuration read with this store asked for (a reload, simulate's
     * configurations), kept until md_store_destroy: states point at them. */
    md_codes **codes;
    size_t n_codes;
    size_t codes_from; /* the first still valid: a wipe retires those before */
};

static bool parse_url(md_store *s, const char *raw_url, char *errstr, size_t n) {
    const char *p = raw_url;
    char url[512]; /* errors quote it without its password */
    md_redact_url(raw_url, url, sizeof(url));
    static const struct {
        const char *scheme;
        bool tls, cluster;
    } schemes[] = {{"redis://", false, false}, {"rediss://", true, false}, {"redis+cluster://", false, true}, {"rediss+cluster://", true, true}};
    size_t k = 0;
    while (k < sizeof(schemes) / sizeof(schemes[0]) && strncmp(p, schemes[k].scheme, strlen(schemes[k].scheme)) != 0) k++;
    if (k == sizeof(schemes) / sizeof(schemes[0])) {
        snprintf(errstr, n, "redis url \"%s\" must start with redis://, rediss:// (TLS), redis+cluster:// (a cluster) or rediss+cluster://", url);
        return false;
    }
    s->tls = schemes[k].tls;
    s->cluster = schemes[k].cluster;
    p += strlen(schemes[k].scheme);
    /* The credentials end at the last '@': a password may hold '@' and '/'. */
    const char *at = strrchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *pw = colon ? colon + 1 : p;
        size_t len = (size_t)(at - pw), ulen = colon ? (size_t)(colon - p) : 0;
        if (len >= sizeof(s->password) || ulen >= sizeof(s->username)) {
            snprintf(errstr, n, "redis url: user or password too long");
            return false;
        }
        memcpy(s->password, pw, len);
        s->password[len] = '\0';
        memcpy(s->username, p, ulen);
        s->username[ulen] = '\0';
        p = at + 1;
    }
    if (s->cluster) {
        /* host:port[,host:port...]: seeds, any node of the cluster will do;
         * a cluster has database 0 only. */
        size_t sl = strcspn(p, "/");
        if (sl == 0 || sl >= sizeof(s->seeds) || (p[sl] == '/' && p[sl + 1] && strcmp(p + sl, "/0") != 0)) {
            snprintf(errstr, n, "redis url \"%s\": a cluster url is redis+cluster://host:port[,host:port...] (database 0 only)", url);
            return false;
        }
        memcpy(s->seeds, p, sl);
        s->seeds[sl] = '\0';
        for (const char *q = s->seeds; *q;) { /* each seed host:port */
            const char *comma = q + strcspn(q, ",");
            const char *colon = memchr(q, ':', (size_t)(comma - q));
            char *e;
            long port = colon ? strtol(colon + 1, &e, 10) : 0;
            if (!colon || colon == q || e != comma || port < 1 || port > 65535) {
                snprintf(errstr, n, "redis url \"%s\": seed \"%.*s\" is not host:port", url, (int)(comma - q), q);
                return false;
            }
            q = *comma ? comma + 1 : comma;
        }
    }
    const char *end = p + strcspn(p, s->cluster ? ":/," : ":/");
    size_t hl = (size_t)(end - p);
    if (hl == 0 || hl >= sizeof(s->host)) {
        snprintf(errstr, n, "redis url \"%s\": missing or too long host", url);
        return false;
    }
    memcpy(s->host, p, hl);
    s->host[hl] = '\0';
    s->port = 6379;
    p = end;
    if (*p == ':') {
        char *e;
        long port = strtol(p + 1, &e, 10);
        if (e == p + 1 || port < 1 || port > 65535 || (*e && *e != '/' && !(s->cluster && *e == ','))) {
            snprintf(errstr, n, "redis url \"%s\": bad port", url);
            return false;
        }
        s->port = (int)port;
        p = e;
    }
    s->db = 0;
    if (s->cluster) return true;
    if (*p == '/' && p[1]) {
        char *e;
        long db = strtol(p + 1, &e, 10);
        if (*e || db < 0 || db > 1000) {
            snprintf(errstr, n, "redis url \"%s\": bad database number", url);
            return false;
        }
        s->db = (int)db;
    }
    return true;
}

md_store *md_store_new(const md_cfg_redis *cfg, char *errstr, size_t errstr_size) {
    md_store *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    if (!parse_url(s, cfg->url, errstr, errstr_size)) {
        free(s);
        return NULL;
    }
    if (cfg->password && *cfg->password) {
        if (strlen(cfg->password) >= sizeof(s->password)) {
            snprintf(errstr, errstr_size, "redis.password is longer than %zu bytes", sizeof(s->password) - 1);
            free(s);
            return NULL;
        }
        snprintf(s->password, sizeof(s->password), "%s", cfg->password);
    }
    snprintf(s->prefix, sizeof(s->prefix), "%s", cfg->key_prefix);
    snprintf(s->tls_ca, sizeof(s->tls_ca), "%s", cfg->tls_ca_file ? cfg->tls_ca_file : "");
    snprintf(s->tls_cert, sizeof(s->tls_cert), "%s", cfg->tls_cert_file ? cfg->tls_cert_file : "");
    snprintf(s->tls_key, sizeof(s->tls_key), "%s", cfg->tls_key_file ? cfg->tls_key_file : "");
    snprintf(s->tls_name, sizeof(s->tls_name), "%s", cfg->tls_server_name ? cfg->tls_server_name : "");
    s->timeout_ms = cfg->timeout_ms;
    s->wait_replicas = cfg->wait_replicas;
    s->wait_timeout_ms = cfg->wait_timeout_ms;
    return s;
}

static void ahead_drop(md_store *s);

void md_store_disconnect(md_store *s) {
    s->n_sent = s->n_taken = 0; /* the applies in flight went with the connection */
    ahead_drop(s);              /* and with them what the cache took of them */
    if (s->held) freeReplyObject(s->held);
    s->held = NULL;
    if (s->c) valkeyFree(s->c); /* and its TLS connection */
    s->c = NULL;
    if (s->cc) valkeyClusterFree(s->cc);
    s->cc = NULL;
}

/* ---- The connection: one node, or a cluster whose keyed commands
 * libvalkey routes to their slot's node. The rest of this file goes
 * through these, and through each_node for what has no key. ---- */

static bool conn_up(const md_store *s) { return s->c || s->cc; }

static const char *conn_errstr(const md_store *s) {
    const char *e = s->c ? s->c->errstr : s->cc ? s->cc->errstr : "";
    return e[0] ? e : "no reply";
}

/* argv as one RESP command in s->resp (kept, grown as needed); its length,
 * 0 when out of memory. libvalkey's own formatting (sdscatfmt per argument)
 * was 6% of momentd's CPU: every apply has 20 to 40 arguments. */
static size_t resp_format(md_store *s, int argc, const char **argv, const size_t *lens) {
    size_t need = 24;
    for (int i = 0; i < argc; i++) need += lens[i] + 26; /* "$", 20 digits, two CRLFs, the text */
    if (need > s->resp_cap) {
        char *r = realloc(s->resp, need * 2);
        if (!r) return 0;
        s->resp = r;
        s->resp_cap = need * 2;
    }
    char *p = s->resp;
    *p++ = '*';
    p += md_fmt_i64(p, argc);
    *p++ = '\r';
    *p++ = '\n';
    for (int i = 0; i < argc; i++) {
        *p++ = '$';
        p += md_fmt_i64(p, (int64_t)lens[i]);
        *p++ = '\r';
        *p++ = '\n';
        memcpy(p, argv[i], lens[i]);
        p += lens[i];
        *p++ = '\r';
        *p++ = '\n';
    }
    return (size_t)(p - s->resp);
}

static int conn_append(md_store *s, int argc, const char **argv, const size_t *lens) {
    size_t len = resp_format(s, argc, argv, lens);
    if (!len || len > INT_MAX) return VALKEY_ERR;
    return s->cc ? valkeyClusterAppendFormattedCommand(s->cc, s->resp, (int)len) : valkeyAppendFormattedCommand(s->c, s->resp, len);
}

static int conn_reply(md_store *s, void **r) { return s->cc ? valkeyClusterGetReply(s->cc, r) : valkeyGetReply(s->c, r); }

/* After a pipeline's last reply: a cluster context forgets its requests. */
static void conn_pipeline_done(md_store *s) {
    if (s->cc) valkeyClusterReset(s->cc);
}

static void *conn_command(md_store *s, int argc, const char **argv, const size_t *lens) {
    return s->cc ? valkeyClusterCommandArgv(s->cc, argc, argv, lens) : valkeyCommandArgv(s->c, argc, argv, lens);
}

/* fn on the one node, or on every primary of the cluster, until one fails. */
static md_err each_node(md_store *s, md_err (*fn)(md_store *s, valkeyContext *c, void *ctx, char *errstr, size_t errstr_size), void *ctx,
                        char *errstr, size_t errstr_size) {
    if (!s->cc) return fn(s, s->c, ctx, errstr, errstr_size);
    valkeyClusterNodeIterator it;
    valkeyClusterInitNodeIterator(&it, s->cc);
    valkeyClusterNode *node;
    size_t n = 0;
    while ((node = valkeyClusterNodeNext(&it))) {
        if (node->role != VALKEY_ROLE_PRIMARY) continue;
        valkeyContext *c = valkeyClusterGetValkeyContext(s->cc, node);
        if (!c) {
            snprintf(errstr, errstr_size, "cannot connect to cluster node %s", node->addr ? node->addr : "?");
            return MD_ERR_REDIS_DOWN;
        }
        md_err e = fn(s, c, ctx, errstr, errstr_size);
        if (e) return e;
        n++;
    }
    if (n == 0) {
        snprintf(errstr, errstr_size, "the cluster at %s has no primary node", s->seeds);
        return MD_ERR_REDIS_DOWN;
    }
    return MD_ERR_OK;
}

static void load_cached_field(void *ctx, const char *f, size_t fl, const char *v, size_t vl) { md_cstate_load_field(ctx, f, fl, v, vl); }

void md_store_destroy(md_store *s) {
    if (!s) return;
    md_store_disconnect(s);
    SSL_CTX_free(s->tls_ctx);
    free(s->argv);
    free(s->lens);
    free(s->nums);
    free(s->redo);
    md_hash_cache_destroy(s->cache);
    free(s->img);
    free(s->expiry);
    free(s->ahead);
    free(s->resp);
    for (size_t i = 0; i < s->n_codes; i++) md_codes_destroy(s->codes[i]);
    free(s->codes);
    free(s);
}

bool md_store_connected(const md_store *s) { return conn_up(s); }

uint64_t md_store_redirects(const md_store *s) { return s->redirects; }

/* OpenSSL's reason for the last failure, after what. */
static void ssl_error(const char *what, char *errstr, size_t n) {
    unsigned long e = ERR_get_error();
    char buf[256] = "";
    if (e) ERR_error_string_n(e, buf, sizeof(buf));
    snprintf(errstr, n, "%s%s%s", what, buf[0] ? ": " : "", buf);
    ERR_clear_error();
}

/* The TLS settings, once per store: TLS 1.2 or newer, the server's
 * certificate verified against redis.tls_ca_file (or the system's CAs),
 * and the client certificate for a Redis with tls-auth-clients. */
static bool tls_context(md_store *s, char *errstr, size_t n) {
    if (s->tls_ctx) return true;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        ssl_error("TLS set-up failed", errstr, n);
        return false;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (s->tls_ca[0] ? SSL_CTX_load_verify_locations(ctx, s->tls_ca, NULL) != 1 : SSL_CTX_set_default_verify_paths(ctx) != 1) {
        ssl_error("cannot load the CA certificates (redis.tls_ca_file)", errstr, n);
        SSL_CTX_free(ctx);
        return false;
    }
    if (s->tls_cert[0] && (SSL_CTX_use_certificate_chain_file(ctx, s->tls_cert) != 1 ||
                           SSL_CTX_use_PrivateKey_file(ctx, s->tls_key[0] ? s->tls_key : s->tls_cert, SSL_FILETYPE_PEM) != 1)) {
        ssl_error("cannot load the client certificate or key (redis.tls_cert_file, redis.tls_key_file)", errstr, n);
        SSL_CTX_free(ctx);
        return false;
    }
    s->tls_ctx = ctx;
    return true;
}

/* TLS on the connected c (to host:port). The certificate must name the
 * host (an IP address or a DNS name; redis.tls_server_name overrides it):
 * libvalkey's own context checks the chain only, so the SSL object is
 * made here. */
static bool tls_start(md_store *s, valkeyContext *c, const char *host, int port, char *errstr, size_t n) {
    if (!tls_context(s, errstr, n)) return false;
    const char *name = s->tls_name[0] ? s->tls_name : host;
    SSL *ssl = SSL_new(s->tls_ctx);
    if (!ssl || SSL_set_tlsext_host_name(ssl, name) != 1 ||
        (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) != 1 && SSL_set1_host(ssl, name) != 1)) {
        ssl_error("TLS set-up failed", errstr, n);
        SSL_free(ssl);
        return false;
    }
    if (valkeyInitiateTLS(c, ssl) == VALKEY_OK) return true; /* c owns ssl now */
    long v = SSL_get_verify_result(ssl);
    if (v != X509_V_OK)
        snprintf(errstr, n, "TLS handshake with %s:%d failed: certificate verification: %s", host, port, X509_verify_cert_error_string(v));
    else snprintf(errstr, n, "TLS handshake with %s:%d failed: %s", host, port, c->errstr[0] ? c->errstr : "closed");
    ERR_clear_error();
    SSL_free(ssl);
    return false;
}

/* libvalkey's hook for each cluster node it connects to (the seeds, and
 * every node of the slot map, again after a failover): the same TLS as a
 * single node's. Its "TLS context" is the store, handed through as an
 * opaque pointer; the reason for a failure goes into c->errstr, which
 * libvalkey copies into the cluster context's error. */
static int tls_start_node(valkeyContext *c, struct valkeyTLSContext *store) {
    char why[512];
    if (tls_start((md_store *)(void *)store, c, c->tcp.host, c->tcp.port, why, sizeof(why))) return VALKEY_OK;
    c->err = VALKEY_ERR_IO;
    size_t len = strlen(why); /* libvalkey's errstr holds 128 bytes: the start of the reason */
    if (len >= sizeof(c->errstr)) len = sizeof(c->errstr) - 1;
    memcpy(c->errstr, why, len);
    c->errstr[len] = '\0';
    return VALKEY_ERR;
}

/* SCRIPT LOAD text on node c, its SHA (the script's, the same on every
 * node) into sha (41 bytes). */
static md_err load_text(valkeyContext *c, const char *text, char *sha, char *errstr, size_t errstr_size) {
    const char *argv[] = {"SCRIPT", "LOAD", text};
    size_t lens[] = {6, 4, strlen(text)};
    valkeyReply *r = valkeyCommandArgv(c, 3, argv, lens);
    if (!r || r->type != VALKEY_REPLY_STRING || r->len != 40) {
        snprintf(errstr, errstr_size, "redis SCRIPT LOAD failed: %s", r && r->str ? r->str : c->errstr);
        if (r) freeReplyObject(r);
        return MD_ERR_REDIS_DOWN;
    }
    snprintf(sha, 41, "%.40s", r->str);
    freeReplyObject(r);
    return MD_ERR_OK;
}

static md_err load_script(md_store *s, valkeyContext *c, void *ctx, char *errstr, size_t errstr_size) {
    (void)ctx;
    md_err e = load_text(c, md_lua_apply, s->apply_sha, errstr, errstr_size);
    return e ? e : load_text(c, md_lua_capacity, s->capacity_sha, errstr, errstr_size);
}

/* A cluster: the slot map from a seed, AUTH on every node libvalkey
 * connects to, and the script on every primary (EVALSHA goes to the
 * customer's slot's node). A resharding later answers MOVED or ASK for
 * some keys: those commands are sent again on their own (redirected). A
 * failover drops the dead primary's connection: the batch is redone
 * (MD_ERR_REDIS_DOWN) on the map libvalkey fetches again. */
static md_err connect_cluster(md_store *s, const struct timeval *tv, char *errstr, size_t errstr_size) {
    valkeyClusterOptions o = {0};
    o.initial_nodes = s->seeds;
    o.connect_timeout = tv;
    o.command_timeout = tv;
    o.username = s->username[0] ? s->username : NULL;
    o.password = s->password[0] ? s->password : NULL;
    o.max_retry = 5;
    if (s->tls) {
        o.tls = (void *)s;
        o.tls_init_fn = tls_start_node;
    }
    s->cc = valkeyClusterConnectWithOptions(&o);
    if (!s->cc || s->cc->err) {
        snprintf(errstr, errstr_size, "cannot connect to the redis cluster at %s: %s", s->seeds, s->cc ? s->cc->errstr : "out of memory");
        md_store_disconnect(s);
        return MD_ERR_REDIS_DOWN;
    }
    md_err e = each_node(s, load_script, NULL, errstr, errstr_size);
    if (e) md_store_disconnect(s);
    return e;
}

md_err md_store_connect(md_store *s, char *errstr, size_t errstr_size) {
    if (conn_up(s)) return MD_ERR_OK;
    struct timeval tv = {(time_t)(s->timeout_ms / 1000), (suseconds_t)((s->timeout_ms % 1000) * 1000)};
    if (s->cluster) return connect_cluster(s, &tv, errstr, errstr_size);
    s->c = valkeyConnectWithTimeout(s->host, s->port, tv);
    if (!s->c || s->c->err) {
        snprintf(errstr, errstr_size, "cannot connect to redis at %s:%d: %s", s->host, s->port,
                 s->c ? s->c->errstr : "out of memory");
        md_store_disconnect(s);
        return MD_ERR_REDIS_DOWN;
    }
    valkeySetTimeout(s->c, tv); /* before the handshake, which it bounds too */
    if (s->tls && !tls_start(s, s->c, s->host, s->port, errstr, errstr_size)) {
        md_store_disconnect(s);
        return MD_ERR_REDIS_DOWN;
    }
    valkeyReply *r;
    if (s->password[0]) {
        /* AUTH USER PASSWORD with a Redis ACL user, so that momentd can run
         * as a least-privilege user; AUTH PASSWORD otherwise. */
        bool user = s->username[0] != '\0';
        const char *argv[] = {"AUTH", user ? s->username : s->password, s->password};
        size_t lens[] = {4, strlen(argv[1]), strlen(s->password)};
        r = conn_command(s, user ? 3 : 2, argv, lens);
        /* The reply may echo nothing secret, but never print the password. */
        if (!r || r->type == VALKEY_REPLY_ERROR) {
            snprintf(errstr, errstr_size, "redis AUTH failed: %s", r ? r->str : s->c->errstr);
            if (r) freeReplyObject(r);
            md_store_disconnect(s);
            return MD_ERR_REDIS_DOWN;
        }
        freeReplyObject(r);
    }
    if (s->db) {
        char db[16];
        snprintf(db, sizeof(db), "%d", s->db);
        const char *argv[] = {"SELECT", db};
        size_t lens[] = {6, strlen(db)};
        r = conn_command(s, 2, argv, lens);
        if (!r || r->type == VALKEY_REPLY_ERROR) {
            snprintf(errstr, errstr_size, "redis SELECT %d failed: %s", s->db, r ? r->str : s->c->errstr);
            if (r) freeReplyObject(r);
            md_store_disconnect(s);
            return MD_ERR_REDIS_DOWN;
        }
        freeReplyObject(r);
    }
    md_err e = load_script(s, s->c, NULL, errstr, errstr_size);
    if (e) md_store_disconnect(s);
    return e;
}

/* The parts (a NULL ends them) one after the other into out, cut to n - 1
 * bytes as snprintf would: keys are built for every customer of every batch,
 * and snprintf's format parsing was a tenth of momentd's CPU. */
static void join(char *out, size_t n, const char *const *parts) {
    size_t o = 0;
    for (; *parts; parts++)
        for (const char *c = *parts; *c && o + 1 < n; c++) out[o++] = *c;
    if (n) out[o] = '\0';
}

void md_store_customer_key(const md_store *s, const char *customer_id, char *out, size_t n) {
    join(out, n, (const char *const[]){s->prefix, ":{", customer_id, "}", NULL});
}

void md_store_contact_point_key(const md_store *s, const char *contact_point, char *out, size_t n) {
    join(out, n, (const char *const[]){s->prefix, ":{cp:", contact_point, "}", NULL});
}

/* Reads one pipelined reply; a transport error drops the connection. */
static md_err get_reply(md_store *s, valkeyReply **out, char *errstr, size_t errstr_size) {
    void *r = NULL;
    if (conn_reply(s, &r) != VALKEY_OK || !r) {
        snprintf(errstr, errstr_size, "redis connection lost: %s", conn_errstr(s));
        md_store_disconnect(s);
        return MD_ERR_REDIS_DOWN;
    }
    *out = r;
    return MD_ERR_OK;
}

/* What the call fails with so far: the first error, except that one which
 * fails the whole call wins over one key's refusal. */
static void keep_error(md_err e, const char *why, md_err *first, char *errstr, size_t errstr_size) {
    if (*first && !(*first == MD_ERR_REDIS_REFUSED && e != MD_ERR_REDIS_REFUSED)) return;
    *first = e;
    snprintf(errstr, errstr_size, "%s", why);
}

/* Whether a pipelined reply is a cluster's redirect: MOVED (the slot has
 * moved) or ASK (it is moving, and the key is already on the target). The
 * node did not carry the command out, so the command is noted (redo_note)
 * and, once the pipeline is read, sent again on its own through the call
 * that follows redirects (ASKING first for ASK): nothing runs twice, and a
 * resharding costs those commands a round trip instead of the whole call,
 * which a retry would repeat for as long as a slot is migrating. */
static bool redirected(const md_store *s, const valkeyReply *r) {
    return s->cc && r->type == VALKEY_REPLY_ERROR && r->str && (strncmp(r->str, "MOVED ", 6) == 0 || strncmp(r->str, "ASK ", 4) == 0);
}

/* Notes command i for redo; MD_ERR_NOMEM kept in *first if it cannot. */
static void redo_note(md_store *s, size_t i, md_err *first, char *errstr, size_t errstr_size) {
    if (s->n_redo == s->redo_cap) {
        size_t cap = s->redo_cap ? s->redo_cap * 2 : 64;
        size_t *r = realloc(s->redo, cap * sizeof(*r));
        if (!r) {
            keep_error(MD_ERR_NOMEM, "out of memory", first, errstr, errstr_size);
            return;
        }
        s->redo = r;
        s->redo_cap = cap;
    }
    s->redo[s->n_redo++] = i;
}

/* libvalkey's cluster error for a command redirected or answered TRYAGAIN
 * more than max_retry times (cluster.c's VALKEY_ERR_CLUSTER_TOO_MANY_RETRIES,
 * not in its headers; the vendored version is pinned). */
enum { VALKEY_CLUSTER_TOO_MANY_RETRIES = 100 };

/* A redirected command again, on its own (redirects followed); NULL with
 * errstr when it could not be carried out: the connection went, or the
 * cluster kept answering TRYAGAIN. A command over two keys of a slot being
 * migrated, one moved and one not yet (or not existing), gets TRYAGAIN
 * until the migration ends (Redis's rule): the caller redoes the call after
 * a pause, so a half-moved customer waits for the migration to end. */
static valkeyReply *redo_command(md_store *s, int argc, const char **argv, const size_t *lens, char *errstr, size_t errstr_size) {
    valkeyReply *r = conn_command(s, argc, argv, lens);
    s->redirects++;
    if (r) return r;
    if (s->cc->err == VALKEY_CLUSTER_TOO_MANY_RETRIES) {
        snprintf(errstr, errstr_size, "redis cluster: a redirected command was answered TRYAGAIN (or redirected) again and again: a slot is being migrated");
    } else {
        snprintf(errstr, errstr_size, "redis connection lost following a cluster redirect: %s", conn_errstr(s));
        md_store_disconnect(s);
    }
    return NULL;
}

/* Whether an error reply is one every key would get now and none a moment
 * later (memory full, loading, a busy script, a failover, persistence
 * failing): waited for and retried as if Redis were down. Any other error
 * (WRONGTYPE, CROSSSLOT, a script's own error) belongs to the key it was
 * sent for, and retrying would only get it again. */
static bool transient_error(const char *msg) {
    static const char *const codes[] = {"OOM ",     "LOADING ",     "BUSY ",     "READONLY ", "MASTERDOWN ", "TRYAGAIN ",
                                        "NOSCRIPT ", "CLUSTERDOWN ", "MISCONF ", "MOVED ",    "ASK ",        "NOREPLICAS "};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (strncmp(msg, codes[i], strlen(codes[i])) == 0) return true;
    return false;
}

/* The error an error reply stands for, with errstr "redis <what> <key>: <reply>". */
static md_err reply_error(const valkeyReply *r, const char *what, const char *key, char *errstr, size_t errstr_size) {
    bool is_error = r->type == VALKEY_REPLY_ERROR && r->str;
    snprintf(errstr, errstr_size, "redis %s%s%s: %s", what, key ? " " : "", key ? key : "", is_error ? r->str : "unexpected reply");
    if (!is_error) return MD_ERR_REDIS_REPLY;
    return transient_error(r->str) ? MD_ERR_REDIS_DOWN : MD_ERR_REDIS_REFUSED;
}

static md_err ensure(md_store *s, char *errstr, size_t errstr_size) {
    return conn_up(s) ? MD_ERR_OK : md_store_connect(s, errstr, errstr_size);
}

static md_err ping_node(md_store *s, valkeyContext *c, void *ctx, char *errstr, size_t errstr_size) {
    (void)s;
    (void)ctx;
    const char *argv[] = {"PING"};
    size_t lens[] = {4};
    valkeyReply *r = valkeyCommandArgv(c, 1, argv, lens);
    if (!r || r->type == VALKEY_REPLY_ERROR) {
        snprintf(errstr, errstr_size, "redis PING failed: %s", r && r->str ? r->str : c->errstr);
        if (r) freeReplyObject(r);
        return MD_ERR_REDIS_DOWN;
    }
    freeReplyObject(r);
    return MD_ERR_OK;
}

md_err md_store_ping(md_store *s, char *errstr, size_t errstr_size) {
    md_err err = ensure(s, errstr, errstr_size);
    if (!err) err = each_node(s, ping_node, NULL, errstr, errstr_size); /* every primary of a cluster */
    if (err) md_store_disconnect(s);
    return err;
}

typedef struct memory_ctx {
    int64_t used, max;
    double share; /* the fullest node's used / max so far; -1: none with a limit */
} memory_ctx;

static md_err memory_node(md_store *s, valkeyContext *c, void *ctx, char *errstr, size_t errstr_size) {
    (void)s;
    memory_ctx *m = ctx;
    const char *argv[] = {"INFO", "memory"};
    size_t lens[] = {4, 6};
    valkeyReply *r = valkeyCommandArgv(c, 2, argv, lens);
    if (!r || r->type != VALKEY_REPLY_STRING) {
        snprintf(errstr, errstr_size, "redis INFO memory failed: %s", r && r->str ? r->str : c->errstr);
        if (r) freeReplyObject(r);
        return MD_ERR_REDIS_DOWN;
    }
    const char *u = strstr(r->str, "\nused_memory:"), *x = strstr(r->str, "\nmaxmemory:");
    int64_t used = u ? strtoll(u + 13, NULL, 10) : -1, max = x ? strtoll(x + 11, NULL, 10) : -1;
    freeReplyObject(r);
    /* A cluster is as full as its fullest node: that one refuses writes first. */
    double share = max > 0 && used >= 0 ? (double)used / (double)max : -1;
    if (m->used < 0 || share > m->share) {
        m->used = used;
        m->max = max;
        m->share = share;
    }
    return MD_ERR_OK;
}

md_err md_store_memory(md_store *s, int64_t *used, int64_t *max, char *errstr, size_t errstr_size) {
    md_err err = ensure(s, errstr, errstr_size);
    memory_ctx m = {-1, -1, -1};
    if (!err) err = each_node(s, memory_node, &m, errstr, errstr_size);
    if (err) {
        md_store_disconnect(s);
        return err;
    }
    *used = m.used;
    *max = m.max;
    return MD_ERR_OK;
}

static md_err listpack_node(md_store *s, valkeyContext *c, void *ctx, char *errstr, size_t errstr_size) {
    (void)s;
    int64_t *least = ctx;
    /* hash-max-ziplist-value is the name Redis 6 and older know (7 takes both). */
    const char *argv[] = {"CONFIG", "GET", "hash-max-ziplist-value"};
    size_t lens[] = {6, 3, 22};
    valkeyReply *r = valkeyCommandArgv(c, 3, argv, lens);
    if (!r || r->type != VALKEY_REPLY_ARRAY || r->elements != 2 || r->element[1]->type != VALKEY_REPLY_STRING) {
        snprintf(errstr, errstr_size, "redis CONFIG GET hash-max-ziplist-value failed: %s",
                 !r ? c->errstr : r->type == VALKEY_REPLY_ERROR ? r->str : "an unexpected reply");
        if (r) freeReplyObject(r);
        return MD_ERR_REDIS_REFUSED;
    }
    int64_t v = strtoll(r->element[1]->str, NULL, 10);
    freeReplyObject(r);
    if (*least < 0 || v < *least) *least = v;
    return MD_ERR_OK;
}

md_err md_store_listpack_value(md_store *s, int64_t *bytes, char *errstr, size_t errstr_size) {
    md_err err = ensure(s, errstr, errstr_size);
    int64_t least = -1;
    if (!err) err = each_node(s, listpack_node, &least, errstr, errstr_size);
    if (err) return err;
    *bytes = least;
    return MD_ERR_OK;
}

/* What read_hashes does with each reply: load(ctx, i, reply) for a hash;
 * refuse(ctx, i, why) for a key Redis refused for itself (WRONGTYPE, ...),
 * the others being read all the same; without refuse, a refusal fails the
 * call. */
typedef struct hash_reader {
    void (*load)(void *ctx, size_t i, valkeyReply *r);
    void (*refuse)(void *ctx, size_t i, const char *why);
    void *ctx;
} hash_reader;

/* One HGETALL reply to h: a hash to load, a refusal to refuse, any other
 * error kept in *first. */
static void take_hash(const hash_reader *h, const char *key, size_t i, valkeyReply *r, md_err *first, bool *any_refused, char *errstr,
                      size_t errstr_size) {
    char why[MD_STORE_REFUSAL_MAX];
    if (r->type == VALKEY_REPLY_ARRAY) {
        if (!*first) h->load(h->ctx, i, r);
        return;
    }
    md_err e = reply_error(r, "HGETALL", key, why, sizeof(why));
    if (e == MD_ERR_REDIS_REFUSED && h->refuse) {
        h->refuse(h->ctx, i, why);
        *any_refused = true;
    } else {
        keep_error(e, why, first, errstr, errstr_size);
    }
}

/* Sends n HGETALLs and hands each reply to h. MD_ERR_REDIS_REFUSED when h
 * took a refusal (the rest read); a transient error (OOM, LOADING, ...)
 * fails the call as MD_ERR_REDIS_DOWN. */
static md_err read_hashes(md_store *s, size_t n, const char *const *keys, const hash_reader *h, char *errstr, size_t errstr_size) {
    md_err err = ensure(s, errstr, errstr_size);
    if (err) return err;
    for (size_t i = 0; i < n; i++) {
        const char *argv[] = {"HGETALL", keys[i]};
        size_t lens[] = {7, strlen(keys[i])};
        if (conn_append(s, 2, argv, lens) != VALKEY_OK) {
            snprintf(errstr, errstr_size, "redis: cannot queue command");
            md_store_disconnect(s);
            return MD_ERR_REDIS_DOWN;
        }
    }
    md_err first = MD_ERR_OK;
    bool any_refused = false;
    s->n_redo = 0;
    for (size_t i = 0; i < n; i++) {
        valkeyReply *r;
        /* A lost connection drops what is left of the pipeline with it. */
        if ((err = get_reply(s, &r, errstr, errstr_size))) return err;
        /* Read on to the last reply so the connection stays in step. */
        if (redirected(s, r)) redo_note(s, i, &first, errstr, errstr_size);
        else take_hash(h, keys[i], i, r, &first, &any_refused, errstr, errstr_size);
        freeReplyObject(r);
    }
    conn_pipeline_done(s);
    for (size_t k = 0; k < s->n_redo && !first; k++) {
        size_t i = s->redo[k];
        const char *argv[] = {"HGETALL", keys[i]};
        size_t lens[] = {7, strlen(keys[i])};
        valkeyReply *r = redo_command(s, 2, argv, lens, errstr, errstr_size);
        if (!r) return MD_ERR_REDIS_DOWN;
        take_hash(h, keys[i], i, r, &first, &any_refused, errstr, errstr_size);
        freeReplyObject(r);
    }
    return first ? first : any_refused ? MD_ERR_REDIS_REFUSED : MD_ERR_OK;
}

typedef struct each_ctx {
    md_store_field_fn fn;
    void *ctx;
} each_ctx;

static void each_field(void *ctx, size_t i, valkeyReply *r) {
    each_ctx *e = ctx;
    for (size_t k = 0; k + 1 < r->elements; k += 2)
        e->fn(e->ctx, i, r->element[k]->str, r->element[k]->len, r->element[k + 1]->str, r->element[k + 1]->len);
}

md_err md_store_hgetall_each(md_store *s, size_t n, const char *const *keys, md_store_field_fn fn, void *ctx, char *errstr,
                             size_t errstr_size) {
    each_ctx e = {fn, ctx};
    hash_reader h = {each_field, NULL, &e};
    return read_hashes(s, n, keys, &h, errstr, errstr_size);
}

bool md_store_cache_states(md_store *s, size_t bytes) {
    md_hash_cache_destroy(s->cache);
    s->cache = NULL;
    s->ahead_len = 0; /* entries of the cache that went */
    if (!bytes) return true;
    uint64_t key[2];
    if (getrandom(key, sizeof(key), 0) != (ssize_t)sizeof(key)) {
        struct timespec ts; /* weaker, still not public */
        clock_gettime(CLOCK_MONOTONIC, &ts);
        key[0] = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ULL ^ (uint64_t)(uintptr_t)s;
        key[1] = (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)&ts;
    }
    if (!(s->cache = md_hash_cache_new(bytes, key))) return false;
    md_hash_cache_watch(s->cache, md_cstate_contact_point_field());
    return true;
}

void md_store_cache_drop(md_store *s, const char *customer_id) {
    char key[400];
    md_store_customer_key(s, customer_id, key, sizeof(key));
    if (s->cache) md_hash_cache_drop(s->cache, key);
}

bool md_store_load_entry(const md_hash_cache_entry *entry, const char *customer_id, md_cstate *cs) {
    md_cstate_reset(cs);
    md_cstate_set_customer(cs, customer_id);
    md_hash_cache_entry_each(entry, load_cached_field, cs);
    md_cstate_set_key_expiry(cs, md_hash_cache_entry_expires_at(entry)); /* for apply_expiry */
    return md_cstate_outbox_clear(cs);
}

bool md_store_held_contact_point(const md_hash_cache_entry *held, char *out, size_t n) {
    const char *v;
    size_t vl;
    if (!md_hash_cache_watched(held, &v, &vl) || vl == 0 || vl >= n) return false; /* none, or empty (none either) */
    memcpy(out, v, vl);
    out[vl] = '\0';
    return true;
}

md_hash_cache_stats md_store_cache_stats_get(const md_store *s) {
    return s->cache ? md_hash_cache_stats_get(s->cache) : (md_hash_cache_stats){0, 0, 0, 0};
}

bool md_store_cache_each(md_store *s, const char *customer_id, md_hash_cache_field_fn fn, void *ctx) {
    char key[400];
    md_store_customer_key(s, customer_id, key, sizeof(key));
    return s->cache && md_hash_cache_each(s->cache, key, fn, ctx);
}

typedef struct cust_load {
    md_store *s;
    md_cstate *const *states;
    const char *const *ids;
    const char *const *keys;   /* each customer's key */
    md_store_refusal *refused; /* NULL: a refusal fails the read */
    const size_t *which;       /* the k-th hash read belongs to customer which[k] */
    const md_hash_cache_entry **held; /* NULL, or held[i] set for a customer read into the cache, not decoded */
} cust_load;

/* A customer's hash as Redis sent it, for the next batch: only one whose
 * outbox was left empty (T's mark), since the cache does not keep outboxes.
 * Held (and returned) when hold: NULL when not kept. */
static const md_hash_cache_entry *cache_reply(md_store *s, const char *key, const valkeyReply *r, bool hold) {
    size_t n = r->elements / 2;
    if (n > s->img_cap) {
        md_hash_field *img = realloc(s->img, n * 2 * sizeof(*img));
        if (!img) {
            md_hash_cache_drop(s->cache, key);
            return NULL;
        }
        s->img = img;
        s->img_cap = n * 2;
    }
    for (size_t k = 0; k < n; k++)
        s->img[k] = (md_hash_field){r->element[2 * k]->str, r->element[2 * k + 1]->str, r->element[2 * k]->len, r->element[2 * k + 1]->len};
    if (hold) return md_hash_cache_put_held(s->cache, key, s->img, n);
    md_hash_cache_put(s->cache, key, s->img, n);
    return NULL;
}

static void load_customer(void *ctx, size_t k, valkeyReply *r) {
    cust_load *cl = ctx;
    size_t i = cl->which[k];
    /* Where the caller holds the cache's entries, a customer whose outbox is
     * empty goes into the cache held, like one the cache had, and is decoded
     * at its first input into a state still in the processor's cache
     * (batch.c, load_held). Decoded here, each customer read cold took a
     * state of its own, and all 2,000 of a batch kept buffers as large as the
     * largest customer they had read (BENCHMARKS.md, 2026-12-07, what the
     * peak RSS is made of). */
    if (cl->held && cl->s->cache) {
        bool clear = false;
        for (size_t e = 0; !clear && e + 1 < r->elements; e += 2)
            clear = md_cstate_probe_outbox_clear(cl->states[i], r->element[e]->str, r->element[e]->len, r->element[e + 1]->str,
                                                 r->element[e + 1]->len);
        if (clear && (cl->held[i] = cache_reply(cl->s, cl->keys[i], r, true))) return;
    }
    md_cstate_reset(cl->states[i]);
    md_cstate_set_customer(cl->states[i], cl->ids[i]);
    for (size_t e = 0; e + 1 < r->elements; e += 2)
        md_cstate_load_field(cl->states[i], r->element[e]->str, r->element[e]->len, r->element[e + 1]->str, r->element[e + 1]->len);
    if (!cl->s->cache) return;
    if (md_cstate_outbox_clear(cl->states[i])) cache_reply(cl->s, cl->keys[i], r, false);
    else md_hash_cache_drop(cl->s->cache, cl->keys[i]);
}

/* Customer i from the cache: true when it held the customer, whose outbox
 * it knows to be empty. */
static bool load_cached(md_store *s, const char *key, const char *id, md_cstate *cs) {
    const md_hash_cache_entry *e = s->cache ? md_hash_cache_get(s->cache, key) : NULL;
    if (!e) return false;
    if (md_store_load_entry(e, id, cs)) return true;
    md_hash_cache_drop(s->cache, key); /* cannot happen: entries are kept with the empty-outbox mark only */
    md_cstate_reset(cs);
    md_cstate_set_customer(cs, id);
    return false;
}

static void load_outbox(void *ctx, size_t k, valkeyReply *r) {
    cust_load *cl = ctx;
    md_cstate *cs = cl->states[cl->which[k]];
    for (size_t e = 0; e + 1 < r->elements; e += 2)
        md_cstate_load_outbox(cs, r->element[e]->str, r->element[e]->len, r->element[e + 1]->str, r->element[e + 1]->len);
}

/* A refused customer reads as nobody, never as what an earlier batch left
 * in the same state object. */
static void refuse_customer(void *ctx, size_t k, const char *why) {
    cust_load *cl = ctx;
    size_t i = cl->which[k];
    snprintf(cl->refused[i], MD_STORE_REFUSAL_MAX, "%s", why);
    md_cstate_reset(cl->states[i]);
    md_cstate_set_customer(cl->states[i], cl->ids[i]);
    if (cl->s->cache) md_hash_cache_drop(cl->s->cache, cl->keys[i]);
}

static md_err command_checked(md_store *s, int argc, const char **argv, int want, valkeyReply **out, char *errstr, size_t errstr_size);

/* The namespace's short codes for cfg (engine.h, md_codes): a table made
 * before for the same names, or the registry's answer (codes.lua on
 * "<prefix>:meta", which gives the names it has not seen yet theirs). */
static md_err codes_for(md_store *s, const md_config *cfg, const md_codes **out, char *errstr, size_t errstr_size) {
    uint64_t id = md_codes_config_id(cfg);
    for (size_t i = s->codes_from; i < s->n_codes; i++)
        if (md_codes_id(s->codes[i]) == id) {
            *out = s->codes[i];
            return MD_ERR_OK;
        }
    size_t n = 0;
    char *wanted = md_codes_wanted(cfg, &n);
    if (!wanted) {
        snprintf(errstr, errstr_size, "out of memory");
        return MD_ERR_NOMEM;
    }
    char meta[128];
    snprintf(meta, sizeof(meta), "%s:meta", s->prefix);
    const char *eval[] = {"EVAL", md_lua_codes, "1", meta, wanted};
    valkeyReply *r = NULL;
    md_err e = command_checked(s, 5, eval, VALKEY_REPLY_ARRAY, &r, errstr, errstr_size);
    free(wanted);
    if (e) return e;
    const char **shorts = calloc(n + 1, sizeof(char *));
    md_codes **grown = realloc(s->codes, (s->n_codes + 1) * sizeof(*grown));
    if (grown) s->codes = grown;
    md_codes *codes = NULL;
    if (!shorts || !grown) {
        snprintf(errstr, errstr_size, "out of memory");
        e = MD_ERR_NOMEM;
    } else if (r->elements != n) {
        snprintf(errstr, errstr_size, "redis codes.lua on %s: %zu short codes for %zu names", meta, r->elements, n);
        e = MD_ERR_REDIS_REPLY;
    } else {
        for (size_t i = 0; i < n && !e; i++) {
            if (r->element[i]->type != VALKEY_REPLY_STRING) {
                snprintf(errstr, errstr_size, "redis codes.lua on %s: short code %zu is not a string", meta, i);
                e = MD_ERR_REDIS_REPLY;
            } else {
                shorts[i] = r->element[i]->str;
            }
        }
        if (!e && !(codes = md_codes_new(cfg, shorts, n, errstr, errstr_size))) e = MD_ERR_REDIS_REPLY;
    }
    free(shorts);
    freeReplyObject(r);
    if (e) return e;
    s->codes[s->n_codes++] = codes;
    *out = codes;
    return MD_ERR_OK;
}

/* Gives each state the short codes of its configuration's namespace. */
static md_err states_codes(md_store *s, size_t n, md_cstate *const *states, char *errstr, size_t errstr_size) {
    const md_config *cfg = NULL;
    const md_codes *codes = NULL;
    for (size_t i = 0; i < n; i++) {
        if (md_cstate_config(states[i]) != cfg) {
            cfg = md_cstate_config(states[i]);
            md_err e = codes_for(s, cfg, &codes, errstr, errstr_size);
            if (e) return e;
        }
        md_cstate_set_codes(states[i], codes);
    }
    return MD_ERR_OK;
}

md_err md_store_read_customers(md_store *s, size_t n, const char *const *customer_ids, md_cstate *const *states,
                               md_store_refusal *refused, bool *cached, char *errstr, size_t errstr_size) {
    return md_store_read_customers_held(s, n, customer_ids, states, NULL, refused, cached, errstr, errstr_size);
}

md_err md_store_read_customers_held(md_store *s, size_t n, const char *const *customer_ids, md_cstate *const *states,
                                    const md_hash_cache_entry **held, md_store_refusal *refused, bool *cached, char *errstr,
                                    size_t errstr_size) {
    if (held && s->cache) md_hash_cache_release(s->cache); /* the last call's */
    md_err codes_err = states_codes(s, n, states, errstr, errstr_size);
    if (codes_err) {
        if (held) memset(held, 0, n * sizeof(*held));
        return codes_err;
    }
    /* First every customer's hash, from the cache or from Redis; then, in a
     * second round trip, the outbox of those whose hash does not say it was
     * left empty (after a trigger, or a crash before one was produced): one
     * HGETALL per customer instead of two, none for a customer cached. */
    enum { KEY_MAX = 420 }; /* md_store_customer_key's limit (400) plus ":x" */
    const char **keys = calloc(2 * n + 1, sizeof(char *));
    char (*buf)[KEY_MAX] = malloc((2 * n + 1) * KEY_MAX); /* one block for every key, not one each */
    size_t *which = calloc(n + 1, sizeof(size_t));
    md_err err = keys && buf && which ? MD_ERR_OK : MD_ERR_NOMEM;
    const char **misses = calloc(n + 1, sizeof(char *));
    if (!misses) err = MD_ERR_NOMEM;
    size_t m = 0;
    for (size_t i = 0; i < n && !err; i++) {
        md_store_customer_key(s, customer_ids[i], buf[i], 400);
        keys[i] = buf[i];
    }
    if (!err && held) {
        if (s->cache) md_hash_cache_hold_many(s->cache, n, keys, held);
        else memset(held, 0, n * sizeof(*held));
    }
    for (size_t i = 0; i < n && !err; i++) {
        if (refused) refused[i][0] = '\0';
        bool hit = held && held[i] ? true : load_cached(s, keys[i], customer_ids[i], states[i]);
        if (cached) cached[i] = hit;
        if (hit) continue;
        misses[m] = keys[i];
        which[m++] = i;
    }
    cust_load cl = {s, states, customer_ids, keys, refused, which, held};
    hash_reader hashes = {load_customer, refused ? refuse_customer : NULL, &cl};
    if (!err && m) err = read_hashes(s, m, misses, &hashes, errstr, errstr_size);
    free(misses);
    bool any_refused = err == MD_ERR_REDIS_REFUSED;
    if (any_refused) err = MD_ERR_OK;
    m = 0;
    for (size_t i = 0; i < n && !err; i++) {
        if ((held && held[i]) || (refused && refused[i][0]) || md_cstate_outbox_clear(states[i])) continue;
        join(buf[n + m], KEY_MAX, (const char *const[]){keys[i], ":x", NULL});
        keys[n + m] = buf[n + m];
        which[m++] = i;
    }
    hash_reader outboxes = {load_outbox, refused ? refuse_customer : NULL, &cl};
    if (!err && m) err = read_hashes(s, m, keys + n, &outboxes, errstr, errstr_size);
    if (err == MD_ERR_REDIS_REFUSED) {
        any_refused = true;
        err = MD_ERR_OK;
    }
    free(keys);
    free(buf);
    free(which);
    return !err && any_refused ? MD_ERR_REDIS_REFUSED : err;
}

typedef struct cp_load {
    md_cpstate *const *cps;
    md_store_refusal *refused;
} cp_load;

static void load_cp(void *ctx, size_t i, valkeyReply *r) {
    cp_load *cl = ctx;
    md_cpstate_reset(cl->cps[i]);
    for (size_t k = 0; k + 1 < r->elements; k += 2) md_cpstate_load_field(cl->cps[i], r->element[k]->str, r->element[k + 1]->str);
}

static void refuse_cp(void *ctx, size_t i, const char *why) {
    cp_load *cl = ctx;
    snprintf(cl->refused[i], MD_STORE_REFUSAL_MAX, "%s", why);
    md_cpstate_reset(cl->cps[i]);
}

md_err md_store_read_contact_points(md_store *s, size_t n, const char *const *contact_points, md_cpstate *const *cps,
                                    md_store_refusal *refused, char *errstr, size_t errstr_size) {
    char **keys = calloc(n ? n : 1, sizeof(char *));
    if (!keys) return MD_ERR_NOMEM;
    md_err err = MD_ERR_OK;
    for (size_t i = 0; i < n && !err; i++) {
        keys[i] = malloc(400);
        if (!keys[i]) err = MD_ERR_NOMEM;
        else md_store_contact_point_key(s, contact_points[i], keys[i], 400);
        if (refused) refused[i][0] = '\0';
    }
    cp_load cl = {cps, refused};
    hash_reader h = {load_cp, refused ? refuse_cp : NULL, &cl};
    if (!err) err = read_hashes(s, n, (const char *const *)keys, &h, errstr, errstr_size);
    for (size_t i = 0; i < n; i++) free(keys[i]);
    free(keys);
    return err;
}

md_err md_store_apply(md_store *s, size_t n, const md_apply_req *reqs, int *results, md_store_refusal *refused, char *errstr,
                      size_t errstr_size) {
    md_err err = md_store_apply_send(s, n, reqs, errstr, errstr_size);
    return err ? err : md_store_apply_collect(s, n, reqs, results, refused, errstr, errstr_size);
}

static int64_t monotonic_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* An outbox known to be empty, with nothing for it: the key is absent,
 * and apply.lua goes without it (its expiry costs a call otherwise). */
static bool uses_outbox(const md_apply_req *q) {
    bool outbox = !q->outbox_empty;
    for (size_t i = 0; i < q->ops->n && !outbox; i++) outbox = q->ops->ops[i].kind == MD_OP_OUTBOX_SET;
    return outbox;
}

/* When q's apply is to set its key's expiry: the monotonic time it will
 * expire (now + ttl); 0 when the cache knows an expiry set by an earlier
 * apply that is within the slack of that, so the apply leaves it alone.
 * Only a customer's key whose apply writes nothing to the outbox and whose
 * TTL is finite qualifies: a contact point, an outbox or a PERSIST always
 * goes to Redis. -1: a PERSIST (no expiry). */
static int64_t apply_expiry(const md_store *s, const md_apply_req *q, bool outbox, int64_t now) {
    if (q->ttl_ms <= 0) return -1;
    if (!s->cache || q->expect_version < 0 || outbox) return now + q->ttl_ms;
    return md_expiry_to_set(q->known_expiry, now, q->ttl_ms);
}

/* The apply command of q in s->argv and s->lens (kept, grown as needed),
 * with its outbox key in outbox_key (420 bytes): EVALSHA sha numkeys key
 * outbox ttl version next-version nd ns nx, the leading runs of deletes, sets and outbox
 * sets as plain arguments, then op field value per remaining op (apply.lua's
 * layout); ttl "" when expiry is 0 (apply_expiry: the key's expiry is left
 * as it is). Its argument count, 0 when out of memory. */
static size_t apply_argv(md_store *s, const md_apply_req *q, int64_t expiry, char *outbox_key) {
    enum { FIXED_ARGS = 11 };
    const md_ops *ops = q->ops;
    size_t argc = FIXED_ARGS + 3 * ops->n;
    if (argc > s->argv_cap) {
        size_t cap = argc * 2;
        const char **na = realloc(s->argv, cap * sizeof(*na));
        if (na) s->argv = na;
        size_t *nl = realloc(s->lens, cap * sizeof(*nl));
        if (nl) s->lens = nl;
        char (*nn)[24] = realloc(s->nums, cap * sizeof(*nn));
        if (nn) s->nums = nn;
        if (!na || !nl || !nn) return 0;
        s->argv_cap = cap;
    }
    /* The runs: as long as the list keeps to deletes, then sets, then
     * outbox sets (a compacted list does, but for its incremented fields). */
    size_t run[3] = {0, 0, 0}, o = 0;
    static const char run_kind[3] = {MD_OP_DEL, MD_OP_SET, MD_OP_OUTBOX_SET};
    for (size_t r = 0; r < 3; r++)
        while (o < ops->n && ops->ops[o].kind == run_kind[r]) run[r]++, o++;
    const char **argv = s->argv;
    char (*nums)[24] = s->nums;
    size_t a = 0, k = 0;
    bool outbox = uses_outbox(q);
    argv[a++] = "EVALSHA";
    argv[a++] = s->apply_sha;
    argv[a++] = outbox ? "2" : "1";
    argv[a++] = q->key;
    join(outbox_key, 420, (const char *const[]){q->key, ":x", NULL});
    if (outbox) argv[a++] = outbox_key;
    if (expiry == 0) nums[k][0] = '\0';
    else md_fmt_i64(nums[k], q->ttl_ms);
    argv[a++] = nums[k++];
    /* The version read, then the one the apply writes (which settle() gives
     * the cache); "-" for a contact point, which has none. */
    for (int64_t next = 0; next <= 1; next++) {
        if (q->expect_version < 0) memcpy(nums[k], "-", 2);
        else md_fmt_i64(nums[k], q->expect_version + next);
        argv[a++] = nums[k++];
    }
    for (size_t r = 0; r < 3; r++) {
        md_fmt_i64(nums[k], (int64_t)run[r]);
        argv[a++] = nums[k++];
    }
    size_t *lens = s->lens;
    for (size_t x = 0; x < a; x++) lens[x] = strlen(argv[x]);
    for (size_t i = 0; i < o; i++) {
        lens[a] = ops->ops[i].field_len;
        argv[a++] = md_ops_field(ops, i);
        if (ops->ops[i].kind == MD_OP_DEL) continue;
        lens[a] = ops->ops[i].value_len;
        argv[a++] = md_ops_value(ops, i);
    }
    for (size_t i = o; i < ops->n; i++) {
        char *kind = nums[k++];
        kind[0] = ops->ops[i].kind;
        kind[1] = '\0';
        lens[a] = 1;
        argv[a++] = kind;
        lens[a] = ops->ops[i].field_len;
        argv[a++] = md_ops_field(ops, i);
        lens[a] = ops->ops[i].value_len;
        argv[a++] = md_ops_value(ops, i);
    }
    /* a <= argc by construction; argv/lens/nums hold cap >= argc. */
    return a;
}

/* The cache entry of q's customer takes q's writes and the version once the
 * apply is written to Redis, not when Redis answers it: the entry was
 * decoded moments before and is still in the processor's cache, where by
 * the reply it had left it (looking it up again and reading its lines were four fifths of
 * md_hash_cache_applied's time, which was 13% of momentd's CPU in bench/run,
 * BENCHMARKS.md). A refusal or a conflict drops the entry at its reply
 * (settle); a lost reply drops every entry taken ahead since the last
 * collect (ahead_drop), so that no entry outlives a version Redis may not
 * have. Nothing reads the entries in between: a batch's customers are
 * each applied once, and the next batch reads after the collect. */
static void apply_ahead(md_store *s, const md_apply_req *q, int64_t expiry) {
    if (!s->cache || q->expect_version < 0) return; /* a contact point: not cached */
    size_t kl = strlen(q->key) + 1;
    if (s->ahead_len + kl > s->ahead_cap) {
        size_t cap = (s->ahead_len + kl) * 2;
        char *a = realloc(s->ahead, cap);
        if (!a) { /* it could not be dropped later: it goes now, and is read again */
            md_hash_cache_drop(s->cache, q->key);
            return;
        }
        s->ahead = a;
        s->ahead_cap = cap;
    }
    memcpy(s->ahead + s->ahead_len, q->key, kl);
    s->ahead_len += kl;
    md_hash_cache_applied(s->cache, q->key, q->ops, q->expect_version + 1, expiry);
}

/* Every entry apply_ahead gave an apply whose reply was lost goes. */
static void ahead_drop(md_store *s) {
    for (size_t o = 0; s->cache && o < s->ahead_len; o += strlen(s->ahead + o) + 1) md_hash_cache_drop(s->cache, s->ahead + o);
    s->ahead_len = 0;
}

md_err md_store_apply_send(md_store *s, size_t n, const md_apply_req *reqs, char *errstr, size_t errstr_size) {
    md_err err = ensure(s, errstr, errstr_size);
    if (err) return err;
    char outbox_key[420]; /* argv is copied by valkeyAppendCommandArgv */
    if (s->n_sent + n > s->expiry_cap) {
        size_t cap = (s->n_sent + n) * 2;
        int64_t *x = realloc(s->expiry, cap * sizeof(*x));
        if (!x) {
            snprintf(errstr, errstr_size, "out of memory");
            return MD_ERR_NOMEM;
        }
        s->expiry = x;
        s->expiry_cap = cap;
    }
    int64_t now = monotonic_ms();
    for (size_t i = 0; i < n; i++) {
        int64_t expiry = s->expiry[s->n_sent + i] = apply_expiry(s, &reqs[i], uses_outbox(&reqs[i]), now);
        size_t a = apply_argv(s, &reqs[i], expiry, outbox_key);
        if (!a) {
            err = MD_ERR_NOMEM;
            break;
        }
        if (conn_append(s, (int)a, s->argv, s->lens) != VALKEY_OK) {
            snprintf(errstr, errstr_size, "redis: cannot queue command");
            md_store_disconnect(s);
            err = MD_ERR_REDIS_DOWN;
            break;
        }
    }
    if (err) {
        md_store_disconnect(s); /* half a pipeline was queued: start clean */
        return err;
    }
    /* Hand the commands to Redis now (the socket is blocking: this returns
     * once the kernel holds them), not at the first read of a reply. */
    for (int done = s->cc != NULL; !done;) /* a cluster context writes at its first reply */
        if (valkeyBufferWrite(s->c, &done) != VALKEY_OK) {
            snprintf(errstr, errstr_size, "redis connection lost: %s", s->c->errstr[0] ? s->c->errstr : "write failed");
            md_store_disconnect(s);
            return MD_ERR_REDIS_DOWN;
        }
    /* Redis works on them while the cache takes them: taken before the
     * write, they held Redis back, and the batch ran slower (BENCHMARKS.md). */
    for (size_t i = 0; i < n; i++) apply_ahead(s, &reqs[i], s->expiry[s->n_sent + i]);
    s->n_sent += n;
    return MD_ERR_OK;
}

/* WAIT on node c: its writes on this connection (the batch's applies) are
 * on redis.wait_replicas replicas, or the batch is redone. A primary that
 * dies after answering an apply cannot then take it along: its replica,
 * promoted, holds it. Applies redone are recognised by their version. */
static md_err wait_node(md_store *s, valkeyContext *c, void *ctx, char *errstr, size_t errstr_size) {
    (void)ctx;
    char want[24], ms[24];
    snprintf(want, sizeof(want), "%lld", (long long)s->wait_replicas);
    snprintf(ms, sizeof(ms), "%lld", (long long)s->wait_timeout_ms);
    const char *argv[] = {"WAIT", want, ms};
    size_t lens[] = {4, strlen(want), strlen(ms)};
    valkeyReply *r = valkeyCommandArgv(c, 3, argv, lens);
    if (!r) {
        snprintf(errstr, errstr_size, "redis connection lost at WAIT: %s", c->errstr);
        md_store_disconnect(s);
        return MD_ERR_REDIS_DOWN;
    }
    md_err e = MD_ERR_OK;
    if (r->type != VALKEY_REPLY_INTEGER) e = reply_error(r, "WAIT", NULL, errstr, errstr_size);
    else if (r->integer < s->wait_replicas) {
        snprintf(errstr, errstr_size, "redis WAIT: %lld of the %lld replicas (redis.wait_replicas) took the batch within %lld ms on %s:%d",
                 (long long)r->integer, (long long)s->wait_replicas, (long long)s->wait_timeout_ms, c->tcp.host ? c->tcp.host : "?",
                 c->tcp.port);
        e = MD_ERR_REDIS_DOWN;
    }
    if (e == MD_ERR_REDIS_REFUSED) e = MD_ERR_REDIS_DOWN; /* no key's fault: wait and redo */
    freeReplyObject(r);
    return e;
}

/* What apply_collect has made of the replies so far. */
typedef struct apply_outcome {
    int *results;
    md_store_refusal *refused;
    md_err first;
    bool any_refused, noscript;
} apply_outcome;

/* The reply to apply i: its result, its refusal, or an error kept. */
static void take_apply(apply_outcome *o, const md_apply_req *reqs, size_t i, const valkeyReply *r, char *errstr, size_t errstr_size) {
    if (o->refused) o->refused[i][0] = '\0';
    if (r->type == VALKEY_REPLY_INTEGER) {
        o->results[i] = (int)r->integer;
        return;
    }
    char why[MD_STORE_REFUSAL_MAX];
    o->results[i] = -1;
    md_err e = reply_error(r, "apply on", reqs[i].key, why, sizeof(why));
    o->noscript |= r->type == VALKEY_REPLY_ERROR && strncmp(r->str, "NOSCRIPT ", 9) == 0;
    if (e == MD_ERR_REDIS_REFUSED && o->refused) {
        /* apply.lua checks before its first write, so a refused apply
         * wrote nothing. */
        snprintf(o->refused[i], MD_STORE_REFUSAL_MAX, "%s", why);
        o->any_refused = true;
    } else {
        keep_error(e, why, &o->first, errstr, errstr_size);
    }
}

/* The cache follows each reply: an applied customer's entry took the
 * writes and the new version when the apply was sent (apply_ahead); one
 * refused, in conflict or failed goes, and is read again. */
static void settle(md_store *s, const md_apply_req *reqs, size_t i, bool applied) {
    if (applied || !s->cache || reqs[i].expect_version < 0) return; /* applied: taken ahead; a contact point: not cached */
    md_hash_cache_drop(s->cache, reqs[i].key);
}

void md_store_apply_poll(md_store *s, const md_apply_req *reqs, int *results, md_store_refusal *refused) {
    /* One plain connection only: a cluster's replies come from several, and
     * TLS may hold part of a record (the read would wait for the rest). */
    if (!s->c || s->cc || s->tls || s->held) return;
    while (s->n_taken < s->n_sent) {
        void *r = NULL;
        if (valkeyGetReplyFromReader(s->c, &r) != VALKEY_OK) return; /* collect says why */
        if (!r) {
            struct pollfd p = {.fd = s->c->fd, .events = POLLIN};
            if (poll(&p, 1, 0) != 1 || valkeyBufferRead(s->c) != VALKEY_OK) return;
            continue;
        }
        valkeyReply *rep = r;
        if (rep->type != VALKEY_REPLY_INTEGER) { /* a refusal or an error: collect's to judge */
            s->held = rep;
            return;
        }
        size_t i = s->n_taken++;
        results[i] = (int)rep->integer;
        if (refused) refused[i][0] = '\0';
        settle(s, reqs, i, results[i] == 1);
        freeReplyObject(rep);
    }
}

size_t md_store_apply_taken(const md_store *s) { return s->n_taken; }

static md_err collect(md_store *s, size_t n, const md_apply_req *reqs, int *results, md_store_refusal *refused, char *errstr,
                      size_t errstr_size);

md_err md_store_apply_collect(md_store *s, size_t n, const md_apply_req *reqs, int *results, md_store_refusal *refused, char *errstr,
                              size_t errstr_size) {
    md_err e = collect(s, n, reqs, results, refused, errstr, errstr_size);
    /* Each apply answered was settled; a refusal is one key's. Anything else
     * may have left replies unread or redirects not done: every entry taken
     * ahead goes then. */
    if (e && e != MD_ERR_REDIS_REFUSED) ahead_drop(s);
    s->ahead_len = 0;
    return e;
}

static md_err collect(md_store *s, size_t n, const md_apply_req *reqs, int *results, md_store_refusal *refused, char *errstr,
                      size_t errstr_size) {
    md_err err;
    if (!conn_up(s) && n) { /* never reconnect here: the replies went with the old connection */
        snprintf(errstr, errstr_size, "redis connection lost before the applies were answered");
        return MD_ERR_REDIS_DOWN;
    }
    apply_outcome o = {results, refused, MD_ERR_OK, false, false};
    const int64_t *expiry = s->n_sent == n ? s->expiry : NULL;
    s->n_redo = 0;
    for (size_t i = s->n_taken < n ? s->n_taken : n; i < n; i++) { /* after those md_store_apply_poll took */
        valkeyReply *r = s->held;
        s->held = NULL;
        if (!r && (err = get_reply(s, &r, errstr, errstr_size))) return err;
        if (redirected(s, r)) {
            redo_note(s, i, &o.first, errstr, errstr_size);
        } else {
            take_apply(&o, reqs, i, r, errstr, errstr_size);
            settle(s, reqs, i, results[i] == 1);
        }
        freeReplyObject(r);
    }
    conn_pipeline_done(s);
    s->n_sent = s->n_taken = 0;
    char outbox_key[420];
    size_t k = 0;
    for (; k < s->n_redo && !o.first; k++) {
        size_t i = s->redo[k], a = apply_argv(s, &reqs[i], expiry ? expiry[i] : -1, outbox_key);
        if (!a) {
            snprintf(errstr, errstr_size, "out of memory");
            return MD_ERR_NOMEM;
        }
        valkeyReply *r = redo_command(s, (int)a, s->argv, s->lens, errstr, errstr_size);
        if (!r) return MD_ERR_REDIS_DOWN;
        take_apply(&o, reqs, i, r, errstr, errstr_size);
        settle(s, reqs, i, results[i] == 1);
        freeReplyObject(r);
    }
    if (k < s->n_redo) ahead_drop(s); /* redirected applies not sent again: their entries are ahead of Redis */
    /* NOSCRIPT: the script cache was flushed (or a new primary took over a
     * cluster's slots). Reconnecting loads it again, and the caller's retry
     * redoes the batch safely. */
    if (o.noscript) md_store_disconnect(s);
    else if (!o.first && n && s->wait_replicas) o.first = each_node(s, wait_node, NULL, errstr, errstr_size);
    return o.first ? o.first : o.any_refused ? MD_ERR_REDIS_REFUSED : MD_ERR_OK;
}

/* One command (connecting first if need be), its reply checked for a type:
 * MD_ERR_OK with *out (the caller frees it), MD_ERR_REDIS_DOWN when the
 * connection went, MD_ERR_REDIS_REPLY for another reply; errstr says why. */
static md_err command_checked(md_store *s, int argc, const char **argv, int want, valkeyReply **out, char *errstr, size_t errstr_size) {
    md_err e = ensure(s, errstr, errstr_size);
    if (e) return e;
    size_t lens[8];
    for (int i = 0; i < argc && i < 8; i++) lens[i] = strlen(argv[i]);
    valkeyReply *r = conn_command(s, argc, argv, lens);
    if (!r) {
        snprintf(errstr, errstr_size, "redis: %s", conn_errstr(s));
        md_store_disconnect(s);
        return MD_ERR_REDIS_DOWN;
    }
    if (r->type != want) {
        snprintf(errstr, errstr_size, "redis %s: %s", argv[0], r->type == VALKEY_REPLY_ERROR ? r->str : "unexpected reply");
        freeReplyObject(r);
        return MD_ERR_REDIS_REPLY;
    }
    *out = r;
    return MD_ERR_OK;
}

md_err md_store_dedupe_key(md_store *s, uint64_t key[2], char *errstr, size_t errstr_size) {
    unsigned char raw[16];
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
        snprintf(errstr, errstr_size, "cannot draw a random key: %s", strerror(errno));
        return MD_ERR_IO;
    }
    char hex[33], meta[128];
    for (size_t i = 0; i < sizeof(raw); i++) snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    snprintf(meta, sizeof(meta), "%s:meta", s->prefix);
    /* The first process on a namespace makes the key; every other one (and
     * every later start) reads that one. */
    const char *setnx[] = {"HSETNX", meta, "dedupe_key", hex};
    valkeyReply *r;
    md_err e = command_checked(s, 4, setnx, VALKEY_REPLY_INTEGER, &r, errstr, errstr_size);
    if (e) return e;
    freeReplyObject(r);
    const char *get[] = {"HGET", meta, "dedupe_key"};
    if ((e = command_checked(s, 3, get, VALKEY_REPLY_STRING, &r, errstr, errstr_size))) return e;
    bool ok = r->len == 32 && strspn(r->str, "0123456789abcdef") == 32;
    if (ok) {
        char half[17];
        for (int k = 0; k < 2; k++) {
            memcpy(half, r->str + 16 * k, 16);
            half[16] = '\0';
            key[k] = strtoull(half, NULL, 16);
        }
    } else {
        snprintf(errstr, errstr_size, "redis %s field dedupe_key is not 32 lowercase hex digits: it is not momentd's", meta);
    }
    freeReplyObject(r);
    return ok ? MD_ERR_OK : MD_ERR_REDIS_REPLY;
}

/* SCRIPT LOAD mark.lua on one node; its SHA to ctx (41 bytes). */
static md_err load_mark(md_store *s, valkeyContext *c, void *ctx, char *errstr, size_t errstr_size) {
    (void)s;
    return load_text(c, md_lua_mark, ctx, errstr, errstr_size);
}

md_err md_store_mark(md_store *s, md_id_kind kind, size_t n, const char *const *ids, bool add, const char *field,
                     const char *value, int64_t ttl_ms, size_t *changed, char *errstr, size_t errstr_size) {
    *changed = 0;
    md_err err = ensure(s, errstr, errstr_size);
    if (err) return err;
    char sha[41];
    if ((err = each_node(s, load_mark, sha, errstr, errstr_size))) return err;
    valkeyReply *r;
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%lld", (long long)ttl_ms);
    /* Pipelined in slices, so that a list of millions neither waits on a
     * round trip per id nor holds all its replies at once. */
    enum { SLICE = 1000 };
    for (size_t from = 0; from < n; from += SLICE) {
        size_t to = from + SLICE < n ? from + SLICE : n;
        char key[420];
        for (size_t i = from; i < to; i++) {
            if (kind == MD_ID_CUSTOMER) md_store_customer_key(s, ids[i], key, sizeof(key));
            else md_store_contact_point_key(s, ids[i], key, sizeof(key));
            const char *argv[] = {"EVALSHA", sha, "1", key, add ? "add" : "remove", field, value, kind == MD_ID_CUSTOMER ? "1" : "0", ttl};
            size_t lens[9];
            for (int a = 0; a < 9; a++) lens[a] = strlen(argv[a]);
            if (conn_append(s, 9, argv, lens) != VALKEY_OK) {
                snprintf(errstr, errstr_size, "redis: cannot queue command");
                md_store_disconnect(s);
                return MD_ERR_REDIS_DOWN;
            }
        }
        md_err first = MD_ERR_OK;
        for (size_t i = from; i < to; i++) {
            if ((err = get_reply(s, &r, errstr, errstr_size))) return err;
            if (r->type == VALKEY_REPLY_INTEGER) {
                *changed += r->integer == 1;
            } else if (!first) {
                char key_of[420];
                if (kind == MD_ID_CUSTOMER) md_store_customer_key(s, ids[i], key_of, sizeof(key_of));
                else md_store_contact_point_key(s, ids[i], key_of, sizeof(key_of));
                first = reply_error(r, "mark", key_of, errstr, errstr_size);
            }
            freeReplyObject(r);
        }
        conn_pipeline_done(s);
        if (first) return first; /* the ids before this slice are done; the caller says how many */
    }
    return MD_ERR_OK;
}

void md_store_capacity_key(const md_store *s, const char *channel, int64_t per_ms, int64_t slot, char *out, size_t n) {
    snprintf(out, n, "%s:capacity:{%s}:%lld:%lld", s->prefix, channel, (long long)per_ms, (long long)slot);
}

md_err md_store_capacity(md_store *s, size_t n, const char *const *keys, const int64_t *max, const int64_t *ttl_ms, int64_t give_back,
                         int64_t want, int64_t *granted, size_t *tightest, char *errstr, size_t errstr_size) {
    enum { MOST = 3 + 3 * 4 };
    const char *argv[MOST];
    char nums[2 + 2 * 4][24], count[8];
    if (n == 0 || n > 4) {
        snprintf(errstr, errstr_size, "capacity: %zu limits (1 to 4)", n);
        return MD_ERR_CONFIG;
    }
    int a = 0;
    snprintf(count, sizeof(count), "%zu", n);
    argv[a++] = "EVALSHA";
    argv[a++] = s->capacity_sha;
    argv[a++] = count;
    for (size_t i = 0; i < n; i++) argv[a++] = keys[i];
    snprintf(nums[0], 24, "%lld", (long long)give_back);
    snprintf(nums[1], 24, "%lld", (long long)want);
    argv[a++] = nums[0];
    argv[a++] = nums[1];
    for (size_t i = 0; i < n; i++) {
        snprintf(nums[2 + 2 * i], 24, "%lld", (long long)max[i]);
        snprintf(nums[3 + 2 * i], 24, "%lld", (long long)ttl_ms[i]);
        argv[a++] = nums[2 + 2 * i];
        argv[a++] = nums[3 + 2 * i];
    }
    size_t lens[MOST];
    for (int i = 0; i < a; i++) lens[i] = strlen(argv[i]);
    md_err e = ensure(s, errstr, errstr_size);
    if (e) return e;
    valkeyReply *r = conn_command(s, a, argv, lens);
    if (!r) {
        snprintf(errstr, errstr_size, "redis: %s", conn_errstr(s));
        md_store_disconnect(s);
        return MD_ERR_REDIS_DOWN;
    }
    if (r->type == VALKEY_REPLY_ERROR) {
        /* Waited for and retried whatever it is: the counters are momentd's
         * own, and NOSCRIPT (a flushed cache, a new primary) is loaded again
         * by reconnecting. */
        snprintf(errstr, errstr_size, "redis capacity script on %s: %s", keys[0], r->str);
        if (strncmp(r->str, "NOSCRIPT", 8) == 0) md_store_disconnect(s);
        freeReplyObject(r);
        return MD_ERR_REDIS_DOWN;
    }
    if (r->type != VALKEY_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != VALKEY_REPLY_INTEGER || r->element[1]->type != VALKEY_REPLY_INTEGER) {
        snprintf(errstr, errstr_size, "redis capacity script: unexpected reply");
        freeReplyObject(r);
        return MD_ERR_REDIS_REPLY;
    }
    *granted = r->element[0]->integer;
    *tightest = r->element[1]->integer >= 1 ? (size_t)(r->element[1]->integer - 1) : 0;
    freeReplyObject(r);
    return MD_ERR_OK;
}

void md_store_funnel_key(const md_store *s, const char *campaign, const char *day, char *out, size_t n) {
    snprintf(out, n, "%s:funnel:%s:%s", s->prefix, campaign, day);
}

/* Sends n commands built by build(i, argv, lens) (at most 4 arguments) and
 * reads every reply. With check_replies, an error reply is reported after
 * the pipeline drained; without, only the transport can fail. */
/* A checked pipeline's reply: a transient refusal (OOM, ...) is waited
 * for; any other error here is a bug or a foreign write to a shared key. */
static void take_checked(const valkeyReply *r, md_err *first, char *errstr, size_t errstr_size) {
    if (r->type != VALKEY_REPLY_ERROR || *first) return;
    *first = reply_error(r, "pipelined command", NULL, errstr, errstr_size);
    if (*first == MD_ERR_REDIS_REFUSED) *first = MD_ERR_REDIS_REPLY;
}

static md_err pipeline(md_store *s, size_t n, int (*build)(void *, size_t, const char **, size_t *, char (*)[64]), void *ctx,
                       bool check_replies, char *errstr, size_t errstr_size) {
    md_err err = ensure(s, errstr, errstr_size);
    if (err) return err;
    for (size_t i = 0; i < n; i++) {
        const char *argv[4];
        size_t lens[4];
        char bufs[4][64];
        int argc = build(ctx, i, argv, lens, bufs);
        if (conn_append(s, argc, argv, lens) != VALKEY_OK) {
            snprintf(errstr, errstr_size, "redis: cannot queue command");
            md_store_disconnect(s);
            return MD_ERR_REDIS_DOWN;
        }
    }
    md_err first = MD_ERR_OK;
    s->n_redo = 0;
    for (size_t i = 0; i < n; i++) {
        valkeyReply *r;
        if ((err = get_reply(s, &r, errstr, errstr_size))) return err;
        if (redirected(s, r)) redo_note(s, i, &first, errstr, errstr_size);
        else if (check_replies) take_checked(r, &first, errstr, errstr_size);
        freeReplyObject(r);
    }
    conn_pipeline_done(s);
    for (size_t k = 0; k < s->n_redo && !first; k++) {
        const char *argv[4];
        size_t lens[4];
        char bufs[4][64];
        int argc = build(ctx, s->redo[k], argv, lens, bufs);
        valkeyReply *r = redo_command(s, argc, argv, lens, errstr, errstr_size);
        if (!r) return MD_ERR_REDIS_DOWN;
        if (check_replies) take_checked(r, &first, errstr, errstr_size);
        freeReplyObject(r);
    }
    return first;
}

typedef struct funnel_ctx {
    md_store *s;
    const char *const *campaigns, *const *days, *const *fields;
    const int64_t *deltas;
    char key[256];
} funnel_ctx;

/* Command 2i is the HINCRBY, 2i+1 the PEXPIRE of the same key. */
static int build_funnel(void *ctx, size_t j, const char **argv, size_t *lens, char (*bufs)[64]) {
    funnel_ctx *f = ctx;
    size_t i = j / 2;
    md_store_funnel_key(f->s, f->campaigns[i], f->days[i], f->key, sizeof(f->key));
    argv[1] = f->key;
    if (j % 2 == 0) {
        argv[0] = "HINCRBY";
        argv[2] = f->fields[i];
        snprintf(bufs[3], 64, "%lld", (long long)f->deltas[i]);
        argv[3] = bufs[3];
    } else {
        argv[0] = "PEXPIRE";
        argv[2] = "34560000000"; /* 400 days: a year of reports and some */
    }
    int argc = j % 2 == 0 ? 4 : 3;
    for (int k = 0; k < argc; k++) lens[k] = strlen(argv[k]);
    return argc;
}

md_err md_store_funnel_add(md_store *s, size_t n, const char *const *campaigns, const char *const *days,
                           const char *const *fields, const int64_t *deltas, char *errstr, size_t errstr_size) {
    funnel_ctx f = {s, campaigns, days, fields, deltas, ""};
    return pipeline(s, 2 * n, build_funnel, &f, true, errstr, errstr_size);
}

typedef struct due_ctx {
    const char *const *ids;
    const int64_t *due;
    char key[256];
} due_ctx;

static int build_due(void *ctx, size_t i, const char **argv, size_t *lens, char (*bufs)[64]) {
    due_ctx *d = ctx;
    argv[1] = d->key;
    if (d->due[i] > 0) {
        argv[0] = "ZADD";
        snprintf(bufs[2], 64, "%lld", (long long)d->due[i]);
        argv[2] = bufs[2];
        argv[3] = d->ids[i];
    } else {
        argv[0] = "ZREM";
        argv[2] = d->ids[i];
    }
    int argc = d->due[i] > 0 ? 4 : 3;
    for (int k = 0; k < argc; k++) lens[k] = strlen(argv[k]);
    return argc;
}

md_err md_store_due_sync(md_store *s, size_t n, const char *const *customer_ids, const int64_t *due, char *errstr, size_t errstr_size) {
    if (n == 0) return MD_ERR_OK;
    due_ctx d = {customer_ids, due, ""};
    snprintf(d.key, sizeof(d.key), "%s:due", s->prefix);
    return pipeline(s, n, build_due, &d, true, errstr, errstr_size);
}

md_err md_store_due_take(md_store *s, int64_t until_ms, size_t max, void (*fn)(void *ctx, const char *customer_id, size_t len),
                         void *ctx, char *errstr, size_t errstr_size) {
    char key[256], until[32], limit[32];
    snprintf(key, sizeof(key), "%s:due", s->prefix);
    snprintf(until, sizeof(until), "%lld", (long long)until_ms);
    snprintf(limit, sizeof(limit), "%zu", max);
    const char *argv[] = {"ZRANGEBYSCORE", key, "-inf", until, "LIMIT", "0", limit};
    valkeyReply *r;
    md_err e = command_checked(s, 7, argv, VALKEY_REPLY_ARRAY, &r, errstr, errstr_size);
    if (e) return e;
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type == VALKEY_REPLY_STRING) fn(ctx, r->element[i]->str, r->element[i]->len);
    freeReplyObject(r);
    return MD_ERR_OK;
}

typedef struct hdel_ctx {
    const char *const *keys, *const *fields;
} hdel_ctx;

static int build_hdel(void *ctx, size_t i, const char **argv, size_t *lens, char (*bufs)[64]) {
    const hdel_ctx *h = ctx;
    (void)bufs;
    argv[0] = "HDEL";
    argv[1] = h->keys[i];
    argv[2] = h->fields[i];
    for (int k = 0; k < 3; k++) lens[k] = strlen(argv[k]);
    return 3;
}

md_err md_store_hdel(md_store *s, size_t n, const char *const *keys, const char *const *fields, char *errstr,
                     size_t errstr_size) {
    hdel_ctx h = {keys, fields};
    /* A field already gone is no error, and a foreign value in the key is
     * not worth retrying: only a lost connection fails this. */
    return pipeline(s, n, build_hdel, &h, false, errstr, errstr_size);
}

void *md_store_command_argv(md_store *s, int argc, const char **argv, const size_t *argvlen) {
    char err[256];
    if (ensure(s, err, sizeof(err))) return NULL;
    valkeyReply *r = conn_command(s, argc, argv, argvlen);
    if (!r) md_store_disconnect(s);
    return r;
}

md_err md_store_forget_outbox(md_store *s, size_t n, const char *const *customer_ids, md_cstate *const *states, char *errstr,
                              size_t errstr_size) {
    size_t total = 0;
    for (size_t c = 0; c < n; c++) total += md_cstate_pending_count(states[c]) + md_cstate_incr_count(states[c]);
    if (total == 0) return MD_ERR_OK;
    const char **keys = calloc(total, sizeof(char *)), **fields = calloc(total, sizeof(char *));
    char(*keybuf)[420] = calloc(n, 420); /* one outbox key per customer */
    md_err e = MD_ERR_NOMEM;
    if (!keys || !fields || !keybuf) {
        snprintf(errstr, errstr_size, "out of memory");
        goto out;
    }
    size_t k = 0;
    for (size_t c = 0; c < n; c++) {
        size_t np = md_cstate_pending_count(states[c]), ni = md_cstate_incr_count(states[c]);
        if (np + ni == 0) continue;
        snprintf(keybuf[c], 420, "%s:{%s}:x", s->prefix, customer_ids[c]);
        for (size_t p = 0; p < np + ni; p++) {
            const char *name, *a, *b, *f;
            int64_t delta;
            if (p < np) md_cstate_pending(states[c], p, &name, &a, &b);
            else md_cstate_incr(states[c], p - np, &name, &a, &b, &f, &delta);
            keys[k] = keybuf[c];
            fields[k++] = name;
        }
    }
    e = md_store_hdel(s, k, keys, fields, errstr, errstr_size);
out:
    free(keys);
    free(fields);
    free(keybuf);
    return e;
}

/* Calls page(ctx, keys) for every page of SCAN MATCH pattern: of the one
 * node, or of every primary of a cluster (a SCAN sees one node's keys). */
typedef struct scan_ctx {
    const char *pattern;
    md_err (*page)(md_store *s, valkeyReply *keys, void *ctx, char *errstr, size_t errstr_size);
    void *ctx;
} scan_ctx;

static md_err scan_node(md_store *s, valkeyContext *c, void *ctx, char *errstr, size_t errstr_size) {
    scan_ctx *sc = ctx;
    char cursor[32] = "0";
    do {
        const char *argv[] = {"SCAN", cursor, "MATCH", sc->pattern, "COUNT", "1000"};
        size_t lens[6];
        for (int i = 0; i < 6; i++) lens[i] = strlen(argv[i]);
        valkeyReply *r = valkeyCommandArgv(c, 6, argv, lens);
        if (!r || r->type != VALKEY_REPLY_ARRAY || r->elements != 2) {
            if (r) freeReplyObject(r);
            snprintf(errstr, errstr_size, "SCAN failed on %s", sc->pattern);
            return MD_ERR_REDIS_DOWN;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        md_err e = sc->page(s, r->element[1], sc->ctx, errstr, errstr_size);
        freeReplyObject(r);
        if (e != MD_ERR_OK) return e;
    } while (strcmp(cursor, "0") != 0);
    return MD_ERR_OK;
}

static md_err scan_pages(md_store *s, const char *pattern, md_err (*page)(md_store *s, valkeyReply *keys, void *ctx, char *errstr, size_t errstr_size),
                         void *ctx, char *errstr, size_t errstr_size) {
    md_err e = ensure(s, errstr, errstr_size);
    if (e) return e;
    scan_ctx sc = {pattern, page, ctx};
    return each_node(s, scan_node, &sc, errstr, errstr_size);
}

typedef struct scan_page {
    char (*ids)[MD_CUSTOMER_ID_MAX + 1];
    md_store_customer_field_fn fn;
    void *ctx;
} scan_page;

static void scan_field(void *ctx, size_t i, const char *field, size_t flen, const char *value, size_t vlen) {
    scan_page *p = ctx;
    p->fn(p->ctx, p->ids[i], field, flen, value, vlen);
}

typedef struct customers_scan {
    md_store_customer_field_fn fn;
    void *ctx;
} customers_scan;

static md_err customers_page(md_store *s, valkeyReply *keys, void *ctx, char *errstr, size_t errstr_size) {
    customers_scan *cs = ctx;
    size_t plen = strlen(s->prefix);
    const char **kv = calloc(keys->elements + 1, sizeof(char *));
    scan_page page = {calloc(keys->elements + 1, MD_CUSTOMER_ID_MAX + 1), cs->fn, cs->ctx};
    md_err e = MD_ERR_OK;
    if (!kv || !page.ids) {
        snprintf(errstr, errstr_size, "out of memory");
        e = MD_ERR_NOMEM;
        goto out;
    }
    size_t n = 0;
    for (size_t i = 0; i < keys->elements; i++) {
        const char *k = keys->element[i]->str;
        size_t kl = keys->element[i]->len;
        /* "<prefix>:{<id>}" exactly: not "{cp:...}", not the outbox "...}:x" */
        if (kl < plen + 4 || k[plen + 1] != '{' || k[kl - 1] != '}' || kl - plen - 3 > MD_CUSTOMER_ID_MAX) continue;
        if (kl - plen - 3 >= 3 && memcmp(k + plen + 2, "cp:", 3) == 0) continue;
        memcpy(page.ids[n], k + plen + 2, kl - plen - 3);
        page.ids[n][kl - plen - 3] = '\0';
        kv[n++] = k;
    }
    if (n) e = md_store_hgetall_each(s, n, kv, scan_field, &page, errstr, errstr_size);
out:
    free(kv);
    free(page.ids);
    return e;
}

md_err md_store_scan_customers(md_store *s, md_store_customer_field_fn fn, void *ctx, char *errstr, size_t errstr_size) {
    char pattern[256];
    snprintf(pattern, sizeof(pattern), "%s:{*}", s->prefix); /* a customer's hash; its outbox ends in ":x" */
    customers_scan cs = {fn, ctx};
    return scan_pages(s, pattern, customers_page, &cs, errstr, errstr_size);
}

static int build_unlink(void *ctx, size_t i, const char **argv, size_t *lens, char (*bufs)[64]) {
    const valkeyReply *keys = ctx;
    (void)bufs;
    argv[0] = "UNLINK";
    argv[1] = keys->element[i]->str;
    lens[0] = 6;
    lens[1] = keys->element[i]->len;
    return 2;
}

/* One UNLINK per key, pipelined: the keys of one SCAN page lie in many
 * slots, and a cluster refuses a command over keys of several (CROSSSLOT). */
static md_err unlink_page(md_store *s, valkeyReply *keys, void *ctx, char *errstr, size_t errstr_size) {
    (void)ctx;
    return pipeline(s, keys->elements, build_unlink, keys, false, errstr, errstr_size);
}

md_err md_store_wipe(md_store *s, char *errstr, size_t errstr_size) {
    char pattern[256];
    snprintf(pattern, sizeof(pattern), "%s:*", s->prefix);
    md_hash_cache_clear(s->cache);
    s->codes_from = s->n_codes; /* the registry goes with the namespace: asked again at the next read */
    return scan_pages(s, pattern, unlink_page, NULL, errstr, errstr_size);
}

/* ------------------------------------------------------------------------- */
/* Erasure                                                                    */


/* The customer's part of a contact-point contact field, "k:<ts>:<customer>:<campaign>"
 * (campaign names have no ':'): whether it is customer_id's. */
static bool contact_of(const char *field, size_t len, const char *customer_id) {
    if (len < 4 || field[0] != 'k' || field[1] != ':') return false;
    const char *p = field + 2, *end = field + len;
    while (p < end && *p >= '0' && *p <= '9') p++;
    if (p == field + 2 || p == end || *p != ':') return false;
    p++;
    const char *last = end;
    while (last > p && last[-1] != ':') last--;
    if (last == p) return false;
    size_t cl = (size_t)(last - 1 - p);
    return cl == strlen(customer_id) && memcmp(p, customer_id, cl) == 0;
}

md_err md_store_forget_customer(md_store *s, const char *customer_id, int64_t now_ms, int64_t tombstone_ms, md_forget_result *out,
                                char *errstr, size_t errstr_size) {
    memset(out, 0, sizeof(*out));
    char key[256], outbox[260], at[32], ttl[32];
    md_store_customer_key(s, customer_id, key, sizeof(key));
    snprintf(outbox, sizeof(outbox), "%s:x", key);
    snprintf(at, sizeof(at), "%lld", (long long)now_ms);
    snprintf(ttl, sizeof(ttl), "%lld", (long long)tombstone_ms);
    const char *eval[] = {"EVAL", md_lua_forget, "2", key, outbox, at, ttl};
    valkeyReply *r;
    md_err e = command_checked(s, 7, eval, VALKEY_REPLY_ARRAY, &r, errstr, errstr_size);
    if (e) return e;
    if (r->elements != 4 || r->element[3]->type != VALKEY_REPLY_STRING) {
        snprintf(errstr, errstr_size, "redis: forget.lua: unexpected reply");
        freeReplyObject(r);
        return MD_ERR_REDIS_REPLY;
    }
    out->fields = r->element[0]->integer;
    out->outbox = r->element[1]->integer;
    out->kept_opt_out = r->element[2]->integer != 0;
    snprintf(out->contact_point, sizeof(out->contact_point), "%s", r->element[3]->str);
    freeReplyObject(r);
    /* Its contacts on the contact point's key (another slot: a second step;
     * a crash between the two leaves records that age out with the caps). */
    if (out->contact_point[0]) {
        char cpkey[400];
        md_store_contact_point_key(s, out->contact_point, cpkey, sizeof(cpkey));
        const char *hgetall[] = {"HGETALL", cpkey};
        if ((e = command_checked(s, 2, hgetall, VALKEY_REPLY_ARRAY, &r, errstr, errstr_size))) return e;
        for (size_t i = 0; i + 1 < r->elements; i += 2) {
            const valkeyReply *f = r->element[i];
            if (f->type != VALKEY_REPLY_STRING || !contact_of(f->str, f->len, customer_id)) continue;
            const char *hdel[] = {"HDEL", cpkey, f->str};
            valkeyReply *d;
            if ((e = command_checked(s, 3, hdel, VALKEY_REPLY_INTEGER, &d, errstr, errstr_size))) {
                freeReplyObject(r);
                return e;
            }
            out->contact_point_records += d->integer;
            freeReplyObject(d);
        }
        freeReplyObject(r);
    }
    char due[128];
    snprintf(due, sizeof(due), "%s:due", s->prefix);
    const char *zrem[] = {"ZREM", due, customer_id};
    if ((e = command_checked(s, 3, zrem, VALKEY_REPLY_INTEGER, &r, errstr, errstr_size))) return e;
    out->was_scheduled = r->integer > 0;
    freeReplyObject(r);
    return MD_ERR_OK;
}

/* ------------------------------------------------------------------------- */
/* Run-time control                                                           */

md_err md_store_paused(md_store *s, const md_config *cfg, uint32_t *mask, int64_t *since_ms, char *errstr, size_t errstr_size) {
    *mask = 0;
    if (since_ms) memset(since_ms, 0, cfg->n_campaigns * sizeof(int64_t));
    char key[128];
    snprintf(key, sizeof(key), "%s:control", s->prefix);
    const char *argv[] = {"HGETALL", key};
    valkeyReply *r;
    md_err e = command_checked(s, 2, argv, VALKEY_REPLY_ARRAY, &r, errstr, errstr_size);
    if (e) return e;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const valkeyReply *f = r->element[i], *v = r->element[i + 1];
        if (f->type != VALKEY_REPLY_STRING || v->type != VALKEY_REPLY_STRING || f->len < 8 || memcmp(f->str, "paused:", 7) != 0) continue;
        for (size_t c = 0; c < cfg->n_campaigns && c < 32; c++)
            if (strcmp(cfg->campaigns[c].name, f->str + 7) == 0) {
                *mask |= 1u << c;
                if (since_ms) since_ms[c] = strtoll(v->str, NULL, 10);
            }
    }
    freeReplyObject(r);
    return MD_ERR_OK;
}

md_err md_store_set_paused(md_store *s, const char *campaign, bool paused, int64_t now_ms, char *errstr, size_t errstr_size) {
    char key[128], field[160], at[32];
    snprintf(key, sizeof(key), "%s:control", s->prefix);
    snprintf(field, sizeof(field), "paused:%s", campaign);
    snprintf(at, sizeof(at), "%lld", (long long)now_ms);
    /* HSETNX: pausing again keeps the first pause's time. */
    const char *set[] = {"HSETNX", key, field, at}, *del[] = {"HDEL", key, field};
    valkeyReply *r;
    md_err e = command_checked(s, paused ? 4 : 3, paused ? set : del, VALKEY_REPLY_INTEGER, &r, errstr, errstr_size);
    if (e) return e;
    freeReplyObject(r);
    return MD_ERR_OK;
}

