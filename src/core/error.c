/* error.c: text and classification of md_err codes. */
#include "momentd/error.h"

const char *md_err2str(md_err err) {
    switch (err) {
#define MD_ERR_CASE(name, text) \
    case MD_ERR_##name:         \
        return text;
        MD_ERR_MAP(MD_ERR_CASE)
#undef MD_ERR_CASE
    }
    return "unknown error";
}

int md_err_is_retriable(md_err err) { return err == MD_ERR_REDIS_DOWN || err == MD_ERR_KAFKA; }
