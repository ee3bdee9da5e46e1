/* SPDX-License-Identifier: MIT */
#include "oidc/secret.h"

#include <assert.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "oidc/b64url.h"
#include "oidc/error.h"

int lk_random_b64url(size_t nbytes, char **ret)
{
        unsigned char buf[64];
        char *s;

        /* Callers ask for a fixed size: anything else is a bug, not input. */
        assert(nbytes > 0 && nbytes <= sizeof(buf));
        if (RAND_bytes(buf, (int)nbytes) != 1)
                return -LK_ERR_IO;
        s = lk_b64url_encode(buf, nbytes);
        explicit_bzero(buf, sizeof(buf));
        if (!s)
                return -LK_ERR_NOMEM;
        *ret = s;
        return 0;
}

bool lk_secret_equal(const char *a, const char *b)
{
        size_t la, lb;

        if (!a || !b)
                return false;
        la = strlen(a);
        lb = strlen(b);
        if (la != lb)
                return false;
        return CRYPTO_memcmp(a, b, la) == 0;
}

void lk_fingerprint(const char *s, char out[LK_FINGERPRINT_SIZE])
{
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;

        if (!s || EVP_Digest(s, strlen(s), md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen < 6) {
                snprintf(out, LK_FINGERPRINT_SIZE, "sha256:-");
                return;
        }
        snprintf(out, LK_FINGERPRINT_SIZE, "sha256:%02x%02x%02x%02x%02x%02x", md[0], md[1], md[2],
                 md[3], md[4], md[5]);
}

int lk_sha256_b64url(const char *s, char **ret)
{
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        char *out;

        if (EVP_Digest(s, strlen(s), md, &mdlen, EVP_sha256(), NULL) != 1)
                return -LK_ERR_IO;
        out = lk_b64url_encode(md, mdlen);
        if (!out)
                return -LK_ERR_NOMEM;
        *ret = out;
        return 0;
}
