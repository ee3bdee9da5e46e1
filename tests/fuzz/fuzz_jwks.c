/* SPDX-License-Identifier: MIT */
/* lk_jwks_parse() on anything: it must refuse or return keys that are all usable. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "oidc/jwks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct lk_jwks *s = NULL;
        struct lk_error e = {0};
        int r;

        r = lk_jwks_parse((const char *)data, size, &s, &e);
        if (r == 0) {
                if (!s || s->n == 0 || s->n > LK_JWKS_MAX_KEYS)
                        abort();
                for (size_t i = 0; i < s->n; i++)
                        if (!s->keys[i].pkey ||
                            !(s->keys[i].verify[LK_JWK_SHA256] || s->keys[i].verify[LK_JWK_SHA384] ||
                              s->keys[i].verify[LK_JWK_SHA512]) ||
                            (s->keys[i].kty != LK_KTY_RSA && s->keys[i].kty != LK_KTY_EC))
                                abort();
                lk_jwks_free(s);
        } else if (s || e.code == 0 || !e.message[0]) {
                abort();
        }
        return 0;
}
