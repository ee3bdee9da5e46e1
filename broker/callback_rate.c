/* SPDX-License-Identifier: MIT */
#include "broker/callback_rate.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "base/bucket_table.h"
#include "oidc/error.h"

#define KEY_SIZE 9 /* family, then 4 bytes of IPv4 or the 8 of an IPv6 /64 */

struct lk_callback_rate {
        struct lk_bucket_table *t; /* by client address */
};

int lk_callback_rate_new(struct lk_callback_rate **ret)
{
        struct lk_callback_rate *g = calloc(1, sizeof(*g));

        if (g)
                g->t = lk_bucket_table_new(LK_CALLBACK_RATE_BURST, LK_CALLBACK_RATE_PER_MINUTE,
                                           LK_CALLBACK_CLIENTS_MAX);
        if (!g || !g->t) {
                free(g);
                *ret = NULL;
                return -LK_ERR_NOMEM;
        }
        *ret = g;
        return 0;
}

void lk_callback_rate_free(struct lk_callback_rate *g)
{
        if (!g)
                return;
        lk_bucket_table_free(g->t);
        free(g);
}

/* false for a family that has no key (the listener binds only IPv4 and IPv6). */
static bool key_of(const struct sockaddr *addr, uint8_t key[static KEY_SIZE])
{
        memset(key, 0, KEY_SIZE);
        if (addr->sa_family == AF_INET) {
                const struct sockaddr_in *a = (const struct sockaddr_in *)addr;

                key[0] = 4;
                memcpy(key + 1, &a->sin_addr, 4);
                return true;
        }
        if (addr->sa_family == AF_INET6) {
                const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)addr;

                if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
                        key[0] = 4;
                        memcpy(key + 1, a->sin6_addr.s6_addr + 12, 4);
                } else {
                        key[0] = 6;
                        memcpy(key + 1, a->sin6_addr.s6_addr, 8);
                }
                return true;
        }
        return false;
}

bool lk_callback_rate_take(struct lk_callback_rate *g, const struct sockaddr *addr,
                           int64_t now_ms)
{
        uint8_t key[KEY_SIZE];
        int64_t *level;

        if (!addr || !key_of(addr, key) ||
            lk_bucket_table_level(g->t, key, sizeof(key), now_ms, true, &level) < 0 ||
            *level < LK_BUCKET_UNIT)
                return false;
        *level -= LK_BUCKET_UNIT;
        return true;
}
