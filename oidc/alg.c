/* SPDX-License-Identifier: MIT */
/* Names of the id_token signing algorithms latchkey knows. "none" is not one of them. */
#include "oidc/config.h"

static const struct {
        const char *name;
        unsigned alg;
} algs[] = {
        { "RS256", LK_ALG_RS256 }, { "RS384", LK_ALG_RS384 }, { "RS512", LK_ALG_RS512 },
        { "ES256", LK_ALG_ES256 }, { "ES384", LK_ALG_ES384 }, { "ES512", LK_ALG_ES512 },
        { "HS256", LK_ALG_HS256 }, { "HS384", LK_ALG_HS384 }, { "HS512", LK_ALG_HS512 },
};

unsigned lk_alg_from_name(const char *name)
{
        if (!name)
                return 0;
        for (size_t i = 0; i < ELEMENTSOF(algs); i++)
                if (streq(algs[i].name, name))
                        return algs[i].alg;
        return 0;
}

const char *lk_alg_name(unsigned alg)
{
        for (size_t i = 0; i < ELEMENTSOF(algs); i++)
                if (algs[i].alg == alg)
                        return algs[i].name;
        return NULL;
}
