/* gen_decisions: N decision records of a campaign, in the trace format
 * `momentd fit --from-trace` reads, drawn from a logistic model whose weights
 * are printed on stderr: the input of the fitter's benchmark (bench/fit).
 *
 *   gen_decisions CONFIG CAMPAIGN N [SEED] > trace.tsv
 *
 * Each feature is a count (Poisson-like, 0-8) and each static attribute a
 * level drawn uniformly; the true weights are 0.5 for every feature and 0.3
 * for every level, the intercept -3. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "momentd/config.h"
#include "momentd/engine.h"
#include "rules.h"

static uint64_t state;
static double uniform(void) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(state >> 11) / 9007199254740992.0;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: gen_decisions CONFIG CAMPAIGN N [SEED]\n");
        return 2;
    }
    char err[1024];
    md_config *cfg = md_config_load(argv[1], err, sizeof(err));
    if (!cfg) {
        fprintf(stderr, "gen_decisions: %s\n", err);
        return 2;
    }
    int c = md_rules_campaign_index(cfg, argv[2]);
    long long n = atoll(argv[3]);
    state = argc > 4 ? strtoull(argv[4], NULL, 10) : 1;
    if (c < 0 || n <= 0) {
        fprintf(stderr, "gen_decisions: no campaign %s, or N not positive\n", argv[2]);
        md_config_destroy(cfg);
        return 2;
    }
    const md_cfg_model *m = &cfg->campaigns[c].model;
    fprintf(stderr, "gen_decisions: true model: intercept -3, every feature (transformed) 0.5, every static level 0.3\n");
    md_decision d;
    memset(&d, 0, sizeof(d));
    snprintf(d.campaign, sizeof(d.campaign), "%s", cfg->campaigns[c].name);
    d.schema = md_model_schema(m);
    char field[128], value[MD_DECISION_MAX_VALUES * 16 + 32];
    for (long long i = 0; i < n; i++) {
        double z = -3;
        d.n_values = 0;
        for (size_t f = 0; f < m->n_features; f++) {
            double x = floor(-log(1 - uniform()) * 2);
            if (x > 8) x = 8;
            d.values[d.n_values++] = x;
            double t = x > m->features[f].cap ? m->features[f].cap : x;
            if (strcmp(m->features[f].transform, "log1p") == 0) t = log1p(t);
            z += 0.5 * t;
        }
        for (size_t s = 0; s < m->n_statics; s++) {
            size_t level = (size_t)(uniform() * (double)(m->statics[s].n_offsets + 1));
            d.values[d.n_values++] = (double)level;
            if (level) z += 0.3;
        }
        d.ts_ms = INT64_C(1772294400000) + (int64_t)(i % 180) * MD_DAY_MS;
        d.kind = uniform() < 0.8 ? MD_DECISION_CONTACTED : MD_DECISION_SAMPLED;
        d.converted = uniform() < 1 / (1 + exp(-z));
        md_decision_format(&d, field, sizeof(field), value, sizeof(value));
        printf("c%07lld\t%s\t%s\n", i / 3, field, value);
    }
    md_config_destroy(cfg);
    return 0;
}
