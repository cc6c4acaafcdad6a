/* drive.c: the engine and Redis without Kafka (drive.h). */
#include "drive.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define CHUNK 500

typedef enum { D_EVENT, D_OUTCOME, D_PROFILE } dkind;
typedef struct ditem {
    dkind kind;
    int customer; /* index into the chunk's customers */
    md_event ev;  /* D_EVENT; customer_id also set for the others */
    md_outcome oc;
    char *profile; /* D_PROFILE, owned */
} ditem;

struct md_drive {
    const md_config *cfg;
    md_store *store;
    md_drive_trigger_fn on_trigger;
    void *ctx;
    ditem *items;
    size_t n;
    md_cstate **states;
    md_ops *ops;
    const char **ids;
    size_t n_cust;
    md_engine_out out;
    md_apply_req *reqs;
    int *results;
};

md_drive *md_drive_new(const md_config *cfg, md_store *store, md_drive_trigger_fn on_trigger, void *ctx) {
    md_drive *d = calloc(1, sizeof(*d));
    if (!d) return NULL;
    d->cfg = cfg;
    d->store = store;
    d->on_trigger = on_trigger;
    d->ctx = ctx;
    d->items = calloc(CHUNK, sizeof(ditem));
    d->states = calloc(CHUNK, sizeof(md_cstate *));
    d->ops = calloc(CHUNK, sizeof(md_ops));
    d->ids = calloc(CHUNK, sizeof(char *));
    d->reqs = calloc(CHUNK, sizeof(md_apply_req));
    d->results = calloc(CHUNK, sizeof(int));
    md_engine_out_init(&d->out);
    if (!d->items || !d->states || !d->ops || !d->ids || !d->reqs || !d->results) {
        md_drive_destroy(d);
        return NULL;
    }
    for (size_t i = 0; i < CHUNK; i++) {
        md_ops_init(&d->ops[i]);
        if (!(d->states[i] = md_cstate_new(cfg))) {
            md_drive_destroy(d);
            return NULL;
        }
    }
    return d;
}

void md_drive_destroy(md_drive *d) {
    if (!d) return;
    for (size_t i = 0; i < CHUNK; i++) {
        if (d->states) md_cstate_destroy(d->states[i]);
        if (d->ops) md_ops_fini(&d->ops[i]);
        if (d->items) free(d->items[i].profile);
    }
    md_engine_out_fini(&d->out);
    free(d->items);
    free(d->states);
    free(d->ops);
    free(d->ids);
    free(d->reqs);
    free(d->results);
    free(d);
}

static int customer_index(md_drive *d, const char *id) {
    for (size_t i = 0; i < d->n_cust; i++)
        if (strcmp(d->ids[i], id) == 0) return (int)i;
    d->ids[d->n_cust] = id;
    return (int)d->n_cust++;
}

static void report(md_drive *d, const char *customer_id) {
    for (size_t t = 0; t < d->out.n_triggers; t++)
        if (d->on_trigger) d->on_trigger(d->ctx, customer_id, &d->out.triggers[t]);
}

md_err md_drive_flush(md_drive *d, char *errstr, size_t errstr_size) {
    if (d->n == 0) return MD_ERR_OK;
    md_err e = MD_ERR_OK;
    d->n_cust = 0;
    for (size_t i = 0; i < d->n; i++) {
        ditem *it = &d->items[i];
        it->customer = customer_index(d, it->kind == D_OUTCOME ? it->oc.customer_id : it->ev.customer_id);
    }
    if ((e = md_store_read_customers(d->store, d->n_cust, d->ids, d->states, errstr, errstr_size))) goto out;
    for (size_t c = 0; c < d->n_cust; c++) md_ops_clear(&d->ops[c]);
    for (size_t i = 0; i < d->n; i++) {
        ditem *it = &d->items[i];
        md_cstate *cs = d->states[it->customer];
        md_ops *ops = &d->ops[it->customer];
        if (it->kind == D_PROFILE) {
            if ((e = md_cstate_set_profile(cs, it->profile, ops, errstr, errstr_size))) goto out;
        } else if (it->kind == D_OUTCOME) {
            md_outcome_applied oa;
            if ((e = md_engine_outcome(d->cfg, cs, NULL, &it->oc, NULL, it->oc.ts_ms, ops, NULL, &oa, &d->out))) {
                snprintf(errstr, errstr_size, "out of memory");
                goto out;
            }
            report(d, it->oc.customer_id);
            md_engine_out_fini(&d->out);
        } else {
            if ((e = md_engine_process(d->cfg, cs, NULL, &it->ev, NULL, it->ev.ts_ms, ops, NULL, &d->out))) {
                snprintf(errstr, errstr_size, "out of memory");
                goto out;
            }
            report(d, it->ev.customer_id);
            md_engine_out_fini(&d->out);
        }
    }
    size_t nreq = 0;
    for (size_t c = 0; c < d->n_cust; c++) {
        md_cstate_flush(d->states[c], &d->ops[c]);
        if (d->ops[c].oom) {
            snprintf(errstr, errstr_size, "out of memory");
            e = MD_ERR_NOMEM;
            goto out;
        }
        if (d->ops[c].n == 0) continue;
        md_store_customer_key(d->store, d->ids[c], d->reqs[nreq].key, sizeof(d->reqs[nreq].key));
        d->reqs[nreq].ops = &d->ops[c];
        d->reqs[nreq].expect_version = md_cstate_version(d->states[c]);
        d->reqs[nreq].ttl_ms = md_cstate_ttl_ms(d->states[c]);
        nreq++;
    }
    if ((e = md_store_apply(d->store, nreq, d->reqs, d->results, errstr, errstr_size))) goto out;
    for (size_t q = 0; q < nreq; q++)
        if (d->results[q] != 1) {
            /* One writer per namespace: a conflict means someone else writes here. */
            snprintf(errstr, errstr_size, "%s changed under us: is another process using this key prefix?", d->reqs[q].key);
            e = MD_ERR_REDIS_REPLY;
            goto out;
        }
    /* The outbox as Kafka would have acknowledged it: forget it. */
    e = md_store_forget_outbox(d->store, d->n_cust, d->ids, d->states, errstr, errstr_size);
out:
    for (size_t i = 0; i < d->n; i++) {
        free(d->items[i].profile);
        d->items[i].profile = NULL;
    }
    d->n = 0;
    return e;
}

static ditem *next_item(md_drive *d, char *errstr, size_t errstr_size, md_err *e) {
    *e = MD_ERR_OK;
    if (d->n == CHUNK && (*e = md_drive_flush(d, errstr, errstr_size))) return NULL;
    return &d->items[d->n++];
}

md_err md_drive_event(md_drive *d, const md_event *ev, char *errstr, size_t errstr_size) {
    md_err e;
    ditem *it = next_item(d, errstr, errstr_size, &e);
    if (!it) return e;
    it->kind = D_EVENT;
    it->ev = *ev;
    return MD_ERR_OK;
}

md_err md_drive_outcome(md_drive *d, const md_outcome *oc, char *errstr, size_t errstr_size) {
    md_err e;
    ditem *it = next_item(d, errstr, errstr_size, &e);
    if (!it) return e;
    it->kind = D_OUTCOME;
    it->oc = *oc;
    return MD_ERR_OK;
}

md_err md_drive_profile(md_drive *d, const char *customer_id, const char *json, char *errstr, size_t errstr_size) {
    md_err e;
    ditem *it = next_item(d, errstr, errstr_size, &e);
    if (!it) return e;
    it->kind = D_PROFILE;
    snprintf(it->ev.customer_id, sizeof(it->ev.customer_id), "%s", customer_id);
    if (!(it->profile = strdup(json))) {
        d->n--;
        snprintf(errstr, errstr_size, "out of memory");
        return MD_ERR_NOMEM;
    }
    return MD_ERR_OK;
}

md_err md_drive_wipe(md_store *store, const char *prefix, char *errstr, size_t errstr_size) {
    char pattern[256], cursor[32] = "0";
    snprintf(pattern, sizeof(pattern), "%s:*", prefix);
    do {
        const char *argv[] = {"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"};
        size_t lens[6];
        for (int i = 0; i < 6; i++) lens[i] = strlen(argv[i]);
        redisReply *r = md_store_command_argv(store, 6, argv, lens);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            if (r) freeReplyObject(r);
            snprintf(errstr, errstr_size, "SCAN failed while wiping %s", pattern);
            return MD_ERR_REDIS_DOWN;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        redisReply *keys = r->element[1];
        if (keys->elements) {
            const char **av = calloc(keys->elements + 1, sizeof(char *));
            size_t *al = calloc(keys->elements + 1, sizeof(size_t));
            if (av && al) {
                av[0] = "UNLINK";
                al[0] = 6;
                for (size_t i = 0; i < keys->elements; i++) {
                    av[i + 1] = keys->element[i]->str;
                    al[i + 1] = keys->element[i]->len;
                }
                redisReply *u = md_store_command_argv(store, (int)keys->elements + 1, av, al);
                if (u) freeReplyObject(u);
            }
            free(av);
            free(al);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return MD_ERR_OK;
}
