/* daemon.h (private): `momentd run`, the consume-decide-produce loop. */
#ifndef MOMENTD_DAEMON_H
#define MOMENTD_DAEMON_H

#include <signal.h>

#include "momentd/config.h"

/* Runs until *stop becomes non-zero (set by a signal handler). cfg is
 * borrowed. Returns a process exit code: 0 after a clean shutdown, 1 on a
 * fatal error (logged). */
int md_daemon_run(const md_config *cfg, volatile sig_atomic_t *stop);

#endif
