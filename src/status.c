/* status.c: the daemon's published status (status.h). */
#include "status.h"

#include <pthread.h>
#include <stdlib.h>

struct md_status {
    pthread_mutex_t mu;
    md_status_snapshot snap;
};

md_status *md_status_new(void) {
    md_status *st = calloc(1, sizeof(*st));
    if (!st) return NULL;
    if (pthread_mutex_init(&st->mu, NULL) != 0) {
        free(st);
        return NULL;
    }
    return st;
}

void md_status_destroy(md_status *st) {
    if (!st) return;
    pthread_mutex_destroy(&st->mu);
    free(st);
}

void md_status_publish(md_status *st, const md_status_snapshot *snap) {
    pthread_mutex_lock(&st->mu);
    st->snap = *snap;
    pthread_mutex_unlock(&st->mu);
}

void md_status_read(md_status *st, md_status_snapshot *out) {
    pthread_mutex_lock(&st->mu);
    *out = st->snap;
    pthread_mutex_unlock(&st->mu);
}
