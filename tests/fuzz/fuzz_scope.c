/* SPDX-License-Identifier: MIT */
/*
 * GetToken's scope and audience checks (broker/token_cache.c) on anything, up to a NUL: a
 * scope that normalizes is sorted, each word once, words of RFC 6749 §3.3 characters, one
 * space between, and normalizing it again changes nothing; it is within itself, and the
 * subset check against it passes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/token_cache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct lk_error e = {0};
        char *in = malloc(size + 1), *out = NULL, *again = NULL;

        if (!in)
                return 0;
        memcpy(in, data, size);
        in[size] = 0;
        (void)lk_audience_check(in, &e);
        if (lk_scope_normalize(in, &out, &e) == 0) {
                if (!out[0] || out[0] == ' ' || out[strlen(out) - 1] == ' ' || strstr(out, "  "))
                        __builtin_trap();
                if (lk_scope_normalize(out, &again, &e) != 0 || strcmp(out, again) != 0)
                        __builtin_trap();
                if (!lk_scope_within(out, out) || lk_scope_check_subset(out, out, &e) != 0)
                        __builtin_trap();
                /* Sorted, each word once: every word is greater than the one before. */
                for (const char *p = out, *prev = NULL; *p;) {
                        size_t l = strcspn(p, " ");

                        if (prev) {
                                size_t pl = strcspn(prev, " ");
                                int c = strncmp(prev, p, pl < l ? pl : l);

                                if (c > 0 || (c == 0 && pl >= l))
                                        __builtin_trap();
                        }
                        prev = p;
                        p += l;
                        p += strspn(p, " ");
                }
                free(again);
                free(out);
        }
        free(in);
        return 0;
}
