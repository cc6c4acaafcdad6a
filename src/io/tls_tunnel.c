/* tls_tunnel.c: TLS to Redis for hiredis 0.14 (tls_tunnel.h). */
#include "tls_tunnel.h"

#include <errno.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

struct md_tls_tunnel {
    SSL_CTX *ctx;
    SSL *ssl;
    int tcp;   /* to Redis */
    int plain; /* our end of the pair; hiredis has the other */
    pthread_t thread;
};

static void ssl_error(const char *what, char *errstr, size_t n) {
    unsigned long e = ERR_get_error();
    char buf[256] = "";
    if (e) ERR_error_string_n(e, buf, sizeof(buf));
    snprintf(errstr, n, "%s%s%s", what, e ? ": " : "", buf);
    ERR_clear_error();
}

static int tcp_connect(const char *host, int port, int64_t timeout_ms, char *errstr, size_t n) {
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    char ps[16];
    snprintf(ps, sizeof(ps), "%d", port);
    int rc = getaddrinfo(host, ps, &hints, &res);
    if (rc) {
        snprintf(errstr, n, "cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd < 0) continue;
        /* Connect, send and receive all bounded by the store's timeout. */
        struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)((timeout_ms % 1000) * 1000)};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
        snprintf(errstr, n, "cannot connect to %s:%d: %s", host, port, strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* Copies bytes both ways until either side closes or fails. */
static void *pump(void *arg) {
    md_tls_tunnel *t = arg;
    char buf[16384];
    for (;;) {
        if (SSL_pending(t->ssl) == 0) {
            struct pollfd p[2] = {{t->plain, POLLIN, 0}, {t->tcp, POLLIN, 0}};
            if (poll(p, 2, -1) < 0) {
                if (errno == EINTR) continue;
                break;
            }
            if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
                ssize_t got = read(t->plain, buf, sizeof(buf));
                if (got <= 0) break; /* hiredis closed its end */
                if (SSL_write(t->ssl, buf, (int)got) <= 0) break;
            }
            if (!(p[1].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        }
        int got = SSL_read(t->ssl, buf, sizeof(buf));
        if (got <= 0) {
            int e = SSL_get_error(t->ssl, got);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) continue; /* a non-data record */
            break; /* Redis closed, or the TLS connection failed */
        }
        for (ssize_t off = 0; off < got;) {
            ssize_t w = write(t->plain, buf + off, (size_t)(got - off));
            if (w <= 0) goto done;
            off += w;
        }
    }
done:
    /* Wakes hiredis up with end-of-file if it is still waiting. */
    shutdown(t->plain, SHUT_RDWR);
    return NULL;
}

md_tls_tunnel *md_tls_tunnel_open(const char *host, int port, int64_t timeout_ms, const md_tls_opts *o, int *fd, char *errstr,
                                  size_t errstr_size) {
    md_tls_tunnel *t = calloc(1, sizeof(*t));
    int pair[2] = {-1, -1};
    if (!t) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    t->tcp = t->plain = -1;
    if (!(t->ctx = SSL_CTX_new(TLS_client_method()))) {
        ssl_error("TLS set-up failed", errstr, errstr_size);
        goto fail;
    }
    SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
    /* Without this, SSL_read on our blocking socket goes on waiting after it
     * processed records that carry no data (TLS 1.3 session tickets arrive
     * just after the handshake), while hiredis's request waits on the other
     * side of the pair: a stall until the socket timeout. With it, SSL_read
     * returns WANT_READ and the loop polls both sides again. */
    SSL_CTX_clear_mode(t->ctx, SSL_MODE_AUTO_RETRY);
    SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
    if (o->ca_file && *o->ca_file ? SSL_CTX_load_verify_locations(t->ctx, o->ca_file, NULL) != 1
                                  : SSL_CTX_set_default_verify_paths(t->ctx) != 1) {
        ssl_error("cannot load the CA certificates (redis.tls_ca_file)", errstr, errstr_size);
        goto fail;
    }
    if (o->cert_file && *o->cert_file &&
        (SSL_CTX_use_certificate_chain_file(t->ctx, o->cert_file) != 1 ||
         SSL_CTX_use_PrivateKey_file(t->ctx, o->key_file && *o->key_file ? o->key_file : o->cert_file, SSL_FILETYPE_PEM) != 1)) {
        ssl_error("cannot load the client certificate or key (redis.tls_cert_file, redis.tls_key_file)", errstr, errstr_size);
        goto fail;
    }
    if ((t->tcp = tcp_connect(host, port, timeout_ms, errstr, errstr_size)) < 0) goto fail;
    const char *name = o->server_name && *o->server_name ? o->server_name : host;
    if (!(t->ssl = SSL_new(t->ctx)) || SSL_set_fd(t->ssl, t->tcp) != 1 || SSL_set_tlsext_host_name(t->ssl, name) != 1) {
        ssl_error("TLS set-up failed", errstr, errstr_size);
        goto fail;
    }
    /* The certificate must name the host: an IP address or a DNS name. */
    X509_VERIFY_PARAM *vp = SSL_get0_param(t->ssl);
    if (X509_VERIFY_PARAM_set1_ip_asc(vp, name) != 1 && SSL_set1_host(t->ssl, name) != 1) {
        ssl_error("TLS set-up failed", errstr, errstr_size);
        goto fail;
    }
    if (SSL_connect(t->ssl) != 1) {
        long v = SSL_get_verify_result(t->ssl);
        if (v != X509_V_OK) {
            snprintf(errstr, errstr_size, "TLS handshake with %s:%d failed: certificate verification: %s", host, port,
                     X509_verify_cert_error_string(v));
            ERR_clear_error();
        } else {
            char what[128];
            snprintf(what, sizeof(what), "TLS handshake with %s:%d failed", host, port);
            ssl_error(what, errstr, errstr_size);
        }
        goto fail;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) != 0) {
        snprintf(errstr, errstr_size, "socketpair: %s", strerror(errno));
        goto fail;
    }
    t->plain = pair[1];
    if (pthread_create(&t->thread, NULL, pump, t) != 0) {
        snprintf(errstr, errstr_size, "cannot start the TLS thread");
        goto fail;
    }
    *fd = pair[0];
    return t;
fail:
    if (pair[0] >= 0) close(pair[0]);
    if (pair[1] >= 0) close(pair[1]);
    t->plain = -1;
    if (t->ssl) SSL_free(t->ssl);
    if (t->tcp >= 0) close(t->tcp);
    if (t->ctx) SSL_CTX_free(t->ctx);
    free(t);
    return NULL;
}

void md_tls_tunnel_close(md_tls_tunnel *t) {
    if (!t) return;
    /* hiredis has closed its end: the thread reads end-of-file and returns. */
    shutdown(t->plain, SHUT_RDWR);
    pthread_join(t->thread, NULL);
    SSL_shutdown(t->ssl);
    SSL_free(t->ssl);
    close(t->tcp);
    close(t->plain);
    SSL_CTX_free(t->ctx);
    free(t);
}
