/* lists.h: `momentd dnc` and `momentd list`, the do-not-contact lists and
 * the campaigns' include and exclude lists. */
#ifndef MOMENTD_LISTS_H
#define MOMENTD_LISTS_H

#include <stdbool.h>

typedef struct md_lists_opts {
    const char *config;
    bool dnc;              /* momentd dnc; else momentd list */
    const char *channel;   /* dnc: a configured channel, or NULL with all_channels */
    bool all_channels;
    bool contact_points;   /* dnc: the ids are contact points (else customers) */
    const char *campaign;  /* list */
    int which;             /* list: 'i' include, 'e' exclude */
    bool remove;
    const char *const *ids; /* from the command line */
    int n_ids;
    const char *from_file;  /* or: one id per line ("-" = stdin) */
    bool json;
} md_lists_opts;

/* Every id and option is checked before anything is written: exit 2 and
 * nothing changed on the first bad one. Then every entry is written
 * (md_store_mark) and counted. Exit 0, 1 on a Redis error (saying how many
 * were written before it). */
int md_lists(const md_lists_opts *o);

#endif
