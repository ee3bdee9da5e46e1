/* SPDX-License-Identifier: MIT */
/* lk_http_parse_cache_control() on any header value: never reads past it, never a negative age. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "oidc/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        /* An exact-size copy, so ASan sees any read past the value's end. */
        char *v = malloc(size ? size : 1);
        long max_age = -1;
        bool no_store = false;

        if (!v)
                return 0;
        memcpy(v, data, size);
        lk_http_parse_cache_control(v, size, &max_age, &no_store);
        if (max_age < -1)
                abort();
        free(v);
        return 0;
}
