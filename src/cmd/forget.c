/* forget.c: `momentd forget` (forget.h). Erasure is a Redis edge operation
 * (store.c's md_store_forget_customer and forget.lua); this file reads the
 * ids, checks them all first and reports what was erased. The engine keeps
 * its side of the promise: events up to the tombstone and every profile are
 * ignored while it lasts (engine.c, MD_FORGOTTEN). */
#include "forget.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "momentd/config.h"
#include "momentd/event.h"
#include "momentd/jsonw.h"
#include "idlist.h"
#include "store.h"

static int64_t wall_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int md_forget(const md_forget_opts *o) {
    char err[1024];
    if (!o->config || (o->n_customers == 0) == !o->from_file) {
        fprintf(stderr, "momentd forget: needs -c FILE and customer ids, or --from-file FILE (\"-\" = stdin), not both\n");
        return 2;
    }
    md_config *cfg = md_config_load(o->config, err, sizeof(err));
    if (!cfg) {
        fprintf(stderr, "momentd forget: %s\n", err);
        return 2;
    }
    md_idlist ids = {0};
    if (!md_idlist_collect(&ids, MD_ID_CUSTOMER, o->customers, o->n_customers, o->from_file, err, sizeof(err))) {
        fprintf(stderr, "momentd forget: %s; nothing was erased\n", err);
        md_idlist_free(&ids);
        md_config_destroy(cfg);
        return 2;
    }
    int rc = 0;
    md_store *store = md_store_new(&cfg->redis, err, sizeof(err));
    if (!store || md_store_connect(store, err, sizeof(err))) {
        fprintf(stderr, "momentd forget: %s; nothing was erased\n", err);
        rc = 1;
        goto out;
    }
    int64_t now = wall_now_ms();
    char until[32];
    md_format_time(now + cfg->privacy.forget_tombstone_ms, until);
    md_jsonw w;
    md_jsonw_init(&w);
    md_jsonw_obj_open(&w);
    md_jsonw_key(&w, "forgotten");
    md_jsonw_arr_open(&w);
    size_t done = 0, had_state = 0;
    for (size_t i = 0; i < ids.n; i++) {
        md_forget_result r;
        if (md_store_forget_customer(store, ids.ids[i], now, cfg->privacy.forget_tombstone_ms, &r, err, sizeof(err))) {
            fprintf(stderr, "momentd forget: %s: %s; %zu of %zu customers were erased before it\n", ids.ids[i], err, done, ids.n);
            rc = 1;
            break;
        }
        done++;
        had_state += r.fields > 0;
        if (o->json) {
            md_jsonw_obj_open(&w);
            md_jsonw_kstr(&w, "customer_id", ids.ids[i]);
            md_jsonw_kbool(&w, "had_state", r.fields > 0);
            md_jsonw_kint(&w, "fields", r.fields);
            md_jsonw_kint(&w, "outbox_entries", r.outbox);
            md_jsonw_kint(&w, "contact_point_records", r.contact_point_records);
            md_jsonw_kbool(&w, "was_scheduled", r.was_scheduled);
            md_jsonw_kbool(&w, "kept_opt_out", r.kept_opt_out);
            md_jsonw_kstr(&w, "tombstone_until", r.kept_opt_out ? "" : until);
            md_jsonw_obj_close(&w);
        } else {
            printf("%s: %s", ids.ids[i], r.fields > 0 ? "erased" : "no state (tombstone written)");
            if (r.fields > 0)
                printf(" %" PRId64 " fields, %" PRId64 " outbox entries, %" PRId64 " contact-point records%s", r.fields, r.outbox,
                       r.contact_point_records, r.was_scheduled ? ", its schedule entry" : "");
            if (r.kept_opt_out) printf("; the opt-out flag is kept for good");
            else printf("; tombstone until %s", until);
            printf("\n");
        }
    }
    md_jsonw_arr_close(&w);
    md_jsonw_kint(&w, "customers", (int64_t)done);
    md_jsonw_kint(&w, "with_state", (int64_t)had_state);
    md_jsonw_obj_close(&w);
    if (o->json && done) printf("%s\n", w.oom ? "{\"error\":\"out of memory\"}" : w.buf);
    else if (!o->json) printf("%zu customers erased (%zu had state)\n", done, had_state);
    md_jsonw_fini(&w);
out:
    md_store_destroy(store);
    md_idlist_free(&ids);
    md_config_destroy(cfg);
    return rc;
}
