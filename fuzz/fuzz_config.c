/* fuzz_config.c: libFuzzer target for the configuration loader: any text is
 * either a configuration the engine can run or an error naming where it is
 * wrong. A loaded one is printed (the summary walks every part) and freed.
 * Inputs that reference files are skipped: "${file:/dev/stdin}" would block,
 * and the reference resolution is unit-tested. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "momentd/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 65536) return 0;
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0'; /* yajl's tree parser needs NUL-terminated input */
    if (strstr(text, "${file:")) {
        free(text);
        return 0;
    }
    char err[1024];
    md_config *cfg = md_config_load_string(text, "fuzz.json", err, sizeof(err));
    if (!cfg) {
        FUZZ_ASSERT(memchr(err, '\0', sizeof(err)) != NULL);
        FUZZ_ASSERT(strncmp(err, "fuzz.json", 9) == 0);
    } else {
        FILE *devnull = fopen("/dev/null", "w");
        if (devnull) {
            md_config_print_summary(cfg, devnull);
            fclose(devnull);
        }
        md_config_destroy(cfg);
    }
    free(text);
    return 0;
}
