/* idlist.h: the ids an operator command reads (momentd forget, dnc, list):
 * from arguments or a file of one id per line, every one checked before the
 * command changes anything. */
#ifndef MOMENTD_IDLIST_H
#define MOMENTD_IDLIST_H

#include <stdbool.h>
#include <stddef.h>

#include "momentd/event.h" /* md_id_kind */

typedef struct md_idlist {
    char **ids;
    size_t n, cap;
} md_idlist;

/* Adds id after checking it as kind must be (a customer id: 1-64 bytes; a
 * contact point: 1-256 bytes; both md_id_check's rule). false with err
 * naming where ("argument 2", "FILE line 7") and why. */
bool md_idlist_add(md_idlist *l, md_id_kind kind, const char *id, const char *where, char *err, size_t errsz);
/* Every line of path ("-" = stdin): blank lines and lines starting with
 * '#' skipped, a trailing \r dropped. false at the first bad line. */
bool md_idlist_read(md_idlist *l, md_id_kind kind, const char *path, char *err, size_t errsz);
/* The n ids of args (named "argument 1", ...), then those of path when it
 * is not NULL: a command's ids, however the operator gave them. */
bool md_idlist_collect(md_idlist *l, md_id_kind kind, const char *const *args, int n, const char *path, char *err, size_t errsz);
void md_idlist_free(md_idlist *l);

#endif
