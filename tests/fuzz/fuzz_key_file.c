/* SPDX-License-Identifier: MIT */
/*
 * The session key file (broker/session_key.h) as anyone might have written it: refused with a
 * reason, or 1 to LK_SESSION_KEYS_MAX distinct keys, each with its id.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/session_key.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct lk_session_keys ks = {0};
        const char *why = NULL;

        if (lk_session_keys_parse((const char *)data, size, &ks, &why) == 0) {
                if (ks.n < 1 || ks.n > LK_SESSION_KEYS_MAX)
                        abort();
                for (size_t i = 0; i < ks.n; i++) {
                        struct lk_session_key k = ks.keys[i];

                        lk_session_key_make_id(&k);
                        if (memcmp(k.id, ks.keys[i].id, sizeof(k.id)) != 0)
                                abort();
                        for (size_t j = 0; j < i; j++)
                                if (memcmp(ks.keys[j].id, ks.keys[i].id, sizeof(k.id)) == 0)
                                        abort();
                }
        } else if (!why || ks.n != 0)
                abort();
        lk_session_keys_clear(&ks);
        return 0;
}
