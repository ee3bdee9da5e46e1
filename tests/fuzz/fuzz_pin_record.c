/* SPDX-License-Identifier: MIT */
/*
 * An offline record (broker/pin_record.c) as if anything at all had been written into
 * STATE_DIR/offline: refused with a reason, or parsed into a record that formats back to text
 * the parser takes again, with the same values, and whose hash never asks Argon2id for more
 * than the bounds.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "broker/pin_record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct lk_pin_record r, again;
        struct lk_error e = {0};
        char text[LK_PIN_RECORD_MAX];
        int n;

        if (lk_pin_record_parse((const char *)data, size, &r, &e) < 0) {
                assert(e.code != 0 && e.message[0]);
                return 0;
        }
        assert(strlen(r.user) > 0 && strlen(r.user) <= LK_PIN_USER_MAX);
        if (r.hash[0]) {
                unsigned m, t, p;
                assert(lk_pin_hash_params(r.hash, &m, &t, &p));
                assert(m <= LK_PIN_MEMORY_MAX && t <= LK_PIN_TIME_MAX && p <= LK_PIN_LANES_MAX);
        }
        n = lk_pin_record_format(&r, text, sizeof(text));
        assert(n > 0);
        memset(&e, 0, sizeof(e));
        assert(lk_pin_record_parse(text, (size_t)n, &again, &e) == 0);
        assert(again.uid == r.uid && again.online_at == r.online_at &&
               again.failures == r.failures && again.locked_until == r.locked_until &&
               again.disabled == r.disabled && strcmp(again.user, r.user) == 0 &&
               strcmp(again.hash, r.hash) == 0);
        return 0;
}
