/* status.c: the daemon's published status (status.h). */
#include "status.h"

#include <pthread.h>
#include <stdlib.h>

const double md_hist_bounds_s[MD_HIST_BOUNDS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                  0.1,    0.25,  0.5,    1,     2.5,  5};

void md_hist_observe(md_hist *h, double seconds) {
    int i = 0;
    while (i < MD_HIST_BOUNDS && seconds > md_hist_bounds_s[i]) i++;
    h->counts[i]++;
    h->count++;
    h->sum_s += seconds;
}

struct md_status {
    pthread_mutex_t mu;
    md_status_snapshot snap;
    /* A reload swaps the configuration under the write lock; the HTTP thread
     * holds the read lock while it renders from it, so it never sees one
     * being freed. */
    pthread_rwlock_t cfg_lock;
    const struct md_config *cfg;
};

md_status *md_status_new(const struct md_config *cfg) {
    md_status *st = calloc(1, sizeof(*st));
    if (!st) return NULL;
    if (pthread_mutex_init(&st->mu, NULL) != 0) {
        free(st);
        return NULL;
    }
    if (pthread_rwlock_init(&st->cfg_lock, NULL) != 0) {
        pthread_mutex_destroy(&st->mu);
        free(st);
        return NULL;
    }
    st->cfg = cfg;
    return st;
}

void md_status_destroy(md_status *st) {
    if (!st) return;
    pthread_rwlock_destroy(&st->cfg_lock);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

const struct md_config *md_status_config_acquire(md_status *st) {
    pthread_rwlock_rdlock(&st->cfg_lock);
    return st->cfg;
}

void md_status_config_release(md_status *st) { pthread_rwlock_unlock(&st->cfg_lock); }

void md_status_config_swap(md_status *st, const struct md_config *cfg) {
    pthread_rwlock_wrlock(&st->cfg_lock);
    st->cfg = cfg;
    pthread_rwlock_unlock(&st->cfg_lock);
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
