/* idlist.c: ids read for operator commands (idlist.h). */
#include "idlist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "momentd/event.h"

#define MD_CONTACT_POINT_MAX_LEN 256 /* md_profile_check's limit */

bool md_idlist_add(md_idlist *l, md_id_kind kind, const char *id, const char *where, char *err, size_t errsz) {
    char why[160];
    size_t len = strlen(id), max = kind == MD_ID_CUSTOMER ? MD_CUSTOMER_ID_MAX : MD_CONTACT_POINT_MAX_LEN;
    const char *what = kind == MD_ID_CUSTOMER ? "customer id" : "contact point";
    if (len == 0 || len > max) {
        snprintf(err, errsz, "%s: a %s is 1-%zu bytes (got %zu)", where, what, max, len);
        return false;
    }
    if (!md_id_check(id, len, why, sizeof(why))) {
        snprintf(err, errsz, "%s: %s \"%.64s\" %s", where, what, id, why);
        return false;
    }
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        char **ids = realloc(l->ids, nc * sizeof(char *));
        if (!ids) goto oom;
        l->ids = ids;
        l->cap = nc;
    }
    if (!(l->ids[l->n] = strdup(id))) goto oom;
    l->n++;
    return true;
oom:
    snprintf(err, errsz, "out of memory");
    return false;
}

bool md_idlist_read(md_idlist *l, md_id_kind kind, const char *path, char *err, size_t errsz) {
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!f) {
        snprintf(err, errsz, "%s: cannot open it", path);
        return false;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long no = 0;
    bool ok = true;
    while (ok && (len = getline(&line, &cap, f)) >= 0) {
        no++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (len == 0 || line[0] == '#') continue;
        if (strlen(line) != (size_t)len) {
            snprintf(err, errsz, "%s line %ld: contains a NUL byte", path, no);
            ok = false;
            break;
        }
        char where[600];
        snprintf(where, sizeof(where), "%s line %ld", path, no);
        ok = md_idlist_add(l, kind, line, where, err, errsz);
    }
    free(line);
    if (f != stdin) fclose(f);
    return ok;
}

bool md_idlist_collect(md_idlist *l, md_id_kind kind, const char *const *args, int n, const char *path, char *err, size_t errsz) {
    for (int i = 0; i < n; i++) {
        char where[32];
        snprintf(where, sizeof(where), "argument %d", i + 1);
        if (!md_idlist_add(l, kind, args[i], where, err, errsz)) return false;
    }
    return !path || md_idlist_read(l, kind, path, err, errsz);
}

void md_idlist_free(md_idlist *l) {
    for (size_t i = 0; i < l->n; i++) free(l->ids[i]);
    free(l->ids);
    memset(l, 0, sizeof(*l));
}
