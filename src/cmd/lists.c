/* lists.c: `momentd dnc` and `momentd list` (lists.h). The entries live in
 * the hashes the engine already reads for each decision (the customer's, or
 * its contact point's), so a list costs the daemon no extra read: a
 * customer's "dn:<channel>" and "ls:<campaign>", a contact point's
 * "dn:<channel>" (store.c's md_store_mark, mark.lua). The engine turns them
 * into suppressions: do_not_contact (the route is skipped for the next one),
 * excluded and not_included (engine.c, channel_block and decide). */
#include "lists.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "idlist.h"
#include "momentd/config.h"
#include "momentd/jsonw.h"
#include "rules.h"
#include "store.h"

static int64_t wall_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The options against the configuration: the field and value to write. */
static bool entry_of(const md_lists_opts *o, const md_config *cfg, char *field, size_t fsz, char *value, size_t vsz, char *err,
                     size_t errsz) {
    if (o->dnc) {
        if (!o->channel == !o->all_channels) {
            snprintf(err, errsz, "needs one of --channel NAME or --all-channels");
            return false;
        }
        if (o->channel) {
            size_t ch = 0;
            while (ch < cfg->n_channels && strcmp(cfg->channels[ch].name, o->channel) != 0) ch++;
            if (ch == cfg->n_channels) {
                snprintf(err, errsz, "--channel %s: no such channel in the configuration", o->channel);
                return false;
            }
        }
        snprintf(field, fsz, "dn:%s", o->channel ? o->channel : "*");
        if (o->remove) snprintf(value, vsz, "%s", "");
        else snprintf(value, vsz, "%lld", (long long)wall_now_ms());
        return true;
    }
    if (!o->campaign || !o->which) {
        snprintf(err, errsz, "needs --campaign NAME and one of --include or --exclude");
        return false;
    }
    size_t c = 0;
    while (c < cfg->n_campaigns && strcmp(cfg->campaigns[c].name, o->campaign) != 0) c++;
    if (c == cfg->n_campaigns) {
        snprintf(err, errsz, "--campaign %s: no such campaign in the configuration", o->campaign);
        return false;
    }
    snprintf(field, fsz, "ls:%s", o->campaign);
    snprintf(value, vsz, "%s", o->which == 'i' ? "include" : "exclude");
    return true;
}

int md_lists(const md_lists_opts *o) {
    const char *cmd = o->dnc ? "dnc" : "list";
    char err[1024], field[160], value[32];
    if (!o->config || (o->n_ids == 0) == !o->from_file) {
        fprintf(stderr, "momentd %s: needs -c FILE and ids, or --from-file FILE (\"-\" = stdin), not both\n", cmd);
        return 2;
    }
    md_config *cfg = md_config_load(o->config, err, sizeof(err));
    if (!cfg) {
        fprintf(stderr, "momentd %s: %s\n", cmd, err);
        return 2;
    }
    md_id_kind kind = o->dnc && o->contact_points ? MD_ID_CONTACT_POINT : MD_ID_CUSTOMER;
    md_idlist ids = {0};
    if (!entry_of(o, cfg, field, sizeof(field), value, sizeof(value), err, sizeof(err)) ||
        !md_idlist_collect(&ids, kind, o->ids, o->n_ids, o->from_file, err, sizeof(err))) {
        fprintf(stderr, "momentd %s: %s; nothing was changed\n", cmd, err);
        md_idlist_free(&ids);
        md_config_destroy(cfg);
        return 2;
    }
    int rc = 0;
    size_t changed = 0;
    md_store *store = md_store_new(&cfg->redis, err, sizeof(err));
    /* A hash no entry keeps any more expires as the daemon would let it. */
    int64_t ttl = kind == MD_ID_CUSTOMER ? cfg->rules->state_ttl_ms : md_cpstate_ttl_ms(cfg);
    if (!store || md_store_connect(store, err, sizeof(err)) ||
        md_store_mark(store, kind, ids.n, (const char *const *)ids.ids,
                      !o->remove, field, value, ttl, &changed, err, sizeof(err))) {
        fprintf(stderr, "momentd %s: %s; %zu entries were changed before it\n", cmd, err, changed);
        rc = 1;
    } else if (o->json) {
        md_jsonw w;
        md_jsonw_init(&w);
        md_jsonw_obj_open(&w);
        md_jsonw_kstr(&w, "entry", field);
        md_jsonw_kstr(&w, "action", o->remove ? "removed" : "added");
        md_jsonw_kint(&w, "ids", (int64_t)ids.n);
        md_jsonw_kint(&w, "changed", (int64_t)changed);
        md_jsonw_obj_close(&w);
        printf("%s\n", w.oom ? "{\"error\":\"out of memory\"}" : w.buf);
        md_jsonw_fini(&w);
    } else {
        const char *what = kind == MD_ID_CUSTOMER ? "customers" : "contact points";
        if (o->dnc)
            printf("%zu %s %s the do-not-contact list for %s (%zu %s so already)\n", ids.n, what, o->remove ? "off" : "on",
                   o->channel ? o->channel : "every channel", ids.n - changed, ids.n - changed == 1 ? "was" : "were");
        else
            printf("%zu customers %s %s's %s list (%zu %s so already)\n", ids.n, o->remove ? "off" : "on", o->campaign, value,
                   ids.n - changed, ids.n - changed == 1 ? "was" : "were");
    }
    md_store_destroy(store);
    md_idlist_free(&ids);
    md_config_destroy(cfg);
    return rc;
}
