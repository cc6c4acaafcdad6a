/* tls_tunnel.h (private): TLS to Redis for hiredis 0.14, which has none.
 *
 * Debian 12 ships hiredis 0.14, whose contexts only speak plain sockets, but
 * it can adopt a connected descriptor (redisConnectFd). The tunnel connects
 * to Redis with TCP, completes a verified TLS handshake with OpenSSL, and
 * hands hiredis one end of a local socketpair; a thread of its own copies
 * bytes between the other end and the TLS connection. When hiredis closes
 * its end (disconnect, timeout), the thread sees end-of-file, closes the TLS
 * connection and exits; when Redis goes away, it closes the pair and hiredis
 * sees the connection drop like any other. */
#ifndef MOMENTD_TLS_TUNNEL_H
#define MOMENTD_TLS_TUNNEL_H

#include <stddef.h>
#include <stdint.h>

typedef struct md_tls_opts {
    const char *ca_file;     /* CA bundle that signs the server's certificate; "" = the system's */
    const char *cert_file;   /* client certificate (Redis tls-auth-clients); "" = none */
    const char *key_file;    /* its private key */
    const char *server_name; /* name the certificate must carry; "" = the host */
} md_tls_opts;

typedef struct md_tls_tunnel md_tls_tunnel;

/* Connects and verifies. On success returns the tunnel and sets *fd to the
 * descriptor to give hiredis (which owns and closes it). NULL with errstr
 * set otherwise (connection refused, handshake or verification failed). */
md_tls_tunnel *md_tls_tunnel_open(const char *host, int port, int64_t timeout_ms, const md_tls_opts *o, int *fd, char *errstr,
                                  size_t errstr_size);

/* Waits for the tunnel's thread (call after hiredis closed its descriptor)
 * and frees it. Accepts NULL. */
void md_tls_tunnel_close(md_tls_tunnel *t);

#endif
