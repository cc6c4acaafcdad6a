/* run.h (private): `momentd run`, the consume-decide-produce loop. */
#ifndef MOMENTD_RUN_H
#define MOMENTD_RUN_H

#include <signal.h>

#include "momentd/config.h"

/* Runs until *stop becomes non-zero (set by a signal handler). Whenever
 * *reload becomes non-zero (SIGHUP) the daemon resets it and, between two
 * batches, loads cfg->path again: a file that loads replaces the running
 * configuration (rules, campaigns, limits, log level; not the connections,
 * which take a restart), one that does not is logged and changes nothing.
 * cfg is owned: the daemon frees it, or its successor, before returning.
 * Returns a process exit code: 0 after a clean shutdown, 1 on a fatal error
 * (logged). */
int md_daemon_run(md_config *cfg, volatile sig_atomic_t *stop, volatile sig_atomic_t *reload);

#endif
