/* drive.h (private): runs events, outcomes and profiles through the real
 * engine and the real Redis state, without Kafka, for `momentd simulate` and
 * `momentd backtest`.
 *
 * The same steps as the daemon's batch (read every customer of a chunk with
 * one pipelined HGETALL, decide in order, apply each customer's changes with
 * the versioned script), with the input handed over directly and the
 * decisions handed back through a callback instead of produced to Kafka;
 * the outbox entries are then deleted as if Kafka had acknowledged them.
 * Time is the input's event time: nothing waits for the wall clock. */
#ifndef MOMENTD_DRIVE_H
#define MOMENTD_DRIVE_H

#include <stdbool.h>
#include <stddef.h>

#include "momentd/config.h"
#include "momentd/engine.h"
#include "momentd/event.h"
#include "store.h"

typedef struct md_drive md_drive;

/* Called for every trigger decided (customer_id, the trigger with its
 * payload; both valid only during the call). */
typedef void (*md_drive_trigger_fn)(void *ctx, const char *customer_id, const md_trigger *tr);

/* cfg and store are borrowed. NULL on OOM. */
md_drive *md_drive_new(const md_config *cfg, md_store *store, md_drive_trigger_fn on_trigger, void *ctx);
void md_drive_destroy(md_drive *d); /* accepts NULL; does not flush */

/* Queue input (copied); a full chunk is processed at once. MD_ERR_OK or a
 * Redis/OOM error with errstr set. */
md_err md_drive_event(md_drive *d, const md_event *ev, char *errstr, size_t errstr_size);
md_err md_drive_outcome(md_drive *d, const md_outcome *oc, char *errstr, size_t errstr_size);
md_err md_drive_profile(md_drive *d, const char *customer_id, const char *json, char *errstr, size_t errstr_size);
/* Processes whatever is queued. */
md_err md_drive_flush(md_drive *d, char *errstr, size_t errstr_size);

/* Deletes every key under the store's prefix (SCAN + UNLINK). */
md_err md_drive_wipe(md_store *store, const char *prefix, char *errstr, size_t errstr_size);

#endif
