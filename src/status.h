/* status.h (private): what the daemon publishes for the HTTP endpoint.
 *
 * The daemon counts in its own thread without locks and, once per batch,
 * copies its counters into the shared md_status under a mutex; the HTTP
 * thread copies them out the same way. A scrape therefore sees one batch's
 * consistent totals, never a half-updated set. */
#ifndef MOMENTD_STATUS_H
#define MOMENTD_STATUS_H

#include <stdbool.h>
#include <stdint.h>

#include "momentd/engine.h"
#include "momentd/event.h"

#define MD_STATUS_MAX_CHANNELS 16

typedef struct md_counters {
    uint64_t consumed, accepted, dead_lettered, duplicates, too_late, profiles, triggers, holdouts, batches, redis_retries,
        conflicts, outcomes, outcome_duplicates, outcomes_unknown, conversions, profile_rejects, follow_ups;
    uint64_t rejects[MD_REJECT_COUNT];
    uint64_t suppressed[MD_SUPPRESS_COUNT];
    uint64_t fired[MD_MAX_CAMPAIGNS][MD_STATUS_MAX_CHANNELS]; /* by campaign and channel, holdout excluded */
} md_counters;

typedef struct md_status_snapshot {
    md_counters n;
    bool redis_ok;           /* the last Redis call succeeded */
    int assigned_partitions; /* partitions this consumer owns now */
    int64_t started_ms;
    int64_t last_batch_ms;   /* wall clock of the last committed batch; 0 = none yet */
} md_status_snapshot;

typedef struct md_status md_status;

md_status *md_status_new(void); /* NULL on OOM */
void md_status_destroy(md_status *st); /* accepts NULL */
void md_status_publish(md_status *st, const md_status_snapshot *snap);
void md_status_read(md_status *st, md_status_snapshot *out);

#endif
