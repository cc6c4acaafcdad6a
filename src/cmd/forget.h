/* forget.h: `momentd forget`, erasing customers (GDPR / PIPL). */
#ifndef MOMENTD_FORGET_H
#define MOMENTD_FORGET_H

#include <stdbool.h>

typedef struct md_forget_opts {
    const char *config;
    const char *const *customers; /* from the command line */
    int n_customers;
    const char *from_file; /* or: one customer id per line ("-" = stdin) */
    bool json;
} md_forget_opts;

/* Every id is checked before anything is erased: one bad id (or a file that
 * cannot be read) is exit 2 and nothing changes. Then each customer is erased
 * (md_store_forget_customer) and reported, one line each (or JSON). Exit 0,
 * 1 on a Redis error (the customers before it are erased, and named). */
int md_forget(const md_forget_opts *o);

#endif
