/* SPDX-License-Identifier: MIT */
#include "oidc/b64url.h"

#include <stdint.h>
#include <stdlib.h>

#include "oidc/error.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *lk_b64url_encode(const unsigned char *data, size_t len)
{
        char *out, *p;

        if (len > (SIZE_MAX - 4) / 4 * 3)
                return NULL;
        out = malloc(len / 3 * 4 + 5);
        if (!out)
                return NULL;
        p = out;
        for (size_t i = 0; i < len; i += 3) {
                uint32_t v = (uint32_t)data[i] << 16;
                size_t n = len - i;

                if (n > 1)
                        v |= (uint32_t)data[i + 1] << 8;
                if (n > 2)
                        v |= data[i + 2];
                *p++ = alphabet[(v >> 18) & 63];
                *p++ = alphabet[(v >> 12) & 63];
                if (n > 1)
                        *p++ = alphabet[(v >> 6) & 63];
                if (n > 2)
                        *p++ = alphabet[v & 63];
        }
        *p = 0;
        return out;
}

static int value_of(char c)
{
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '-')
                return 62;
        if (c == '_')
                return 63;
        return -1;
}

int lk_b64url_decode(const char *s, size_t len, unsigned char **ret, size_t *ret_len)
{
        unsigned char *out;
        size_t n = 0;
        uint32_t acc = 0;
        int bits = 0;

        while (len > 0 && s[len - 1] == '=')
                len--;
        if (len % 4 == 1)
                return -LK_ERR_INVALID_ARGUMENT;

        out = malloc(len / 4 * 3 + 3);
        if (!out)
                return -LK_ERR_NOMEM;

        for (size_t i = 0; i < len; i++) {
                int v = value_of(s[i]);

                if (v < 0) {
                        free(out);
                        return -LK_ERR_INVALID_ARGUMENT;
                }
                acc = (acc << 6) | (uint32_t)v;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[n++] = (unsigned char)(acc >> bits);
                }
        }
        /* Leftover bits must be zero, or two encodings would decode the same. */
        if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
                free(out);
                return -LK_ERR_INVALID_ARGUMENT;
        }
        out[n] = 0;
        *ret = out;
        *ret_len = n;
        return 0;
}
