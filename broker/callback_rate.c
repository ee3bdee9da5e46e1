/* SPDX-License-Identifier: MIT */
#include "broker/callback_rate.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "base/token_bucket.h"
#include "oidc/error.h"

#define UNIT LK_BUCKET_UNIT
#define FULL ((int64_t)LK_CALLBACK_RATE_BURST * UNIT)
#define BUCKETS 256
#define KEY_SIZE 9 /* family, then 4 bytes of IPv4 or the 8 of an IPv6 /64 */

struct entry {
        struct entry *next;
        uint8_t key[KEY_SIZE];
        struct lk_bucket b; /* at most FULL */
};

struct lk_callback_rate {
        struct entry *table[BUCKETS];
        unsigned n;
};

int lk_callback_rate_new(struct lk_callback_rate **ret)
{
        *ret = calloc(1, sizeof(**ret));
        return *ret ? 0 : -LK_ERR_NOMEM;
}

void lk_callback_rate_free(struct lk_callback_rate *g)
{
        if (!g)
                return;
        for (size_t i = 0; i < BUCKETS; i++)
                while (g->table[i]) {
                        struct entry *x = g->table[i];
                        g->table[i] = x->next;
                        free(x);
                }
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

static unsigned hash_of(const uint8_t key[static KEY_SIZE])
{
        unsigned h = 2166136261u;

        for (size_t i = 0; i < KEY_SIZE; i++)
                h = (h ^ key[i]) * 16777619u;
        return h % BUCKETS;
}

static void refill(struct entry *x, int64_t now_ms)
{
        lk_bucket_refill(&x->b, now_ms, FULL, LK_CALLBACK_RATE_PER_MINUTE);
}

static void forget_full(struct lk_callback_rate *g, int64_t now_ms)
{
        for (size_t i = 0; i < BUCKETS; i++)
                for (struct entry **p = &g->table[i]; *p;) {
                        struct entry *x = *p;

                        refill(x, now_ms);
                        if (x->b.level < FULL) {
                                p = &x->next;
                                continue;
                        }
                        *p = x->next;
                        free(x);
                        g->n--;
                }
}

bool lk_callback_rate_take(struct lk_callback_rate *g, const struct sockaddr *addr,
                           int64_t now_ms)
{
        uint8_t key[KEY_SIZE];
        struct entry *x;
        unsigned h;

        if (!addr || !key_of(addr, key))
                return false;
        h = hash_of(key);
        for (x = g->table[h]; x; x = x->next)
                if (memcmp(x->key, key, KEY_SIZE) == 0)
                        break;
        if (!x) {
                if (g->n >= LK_CALLBACK_CLIENTS_MAX)
                        forget_full(g, now_ms);
                if (g->n >= LK_CALLBACK_CLIENTS_MAX)
                        return false;
                x = calloc(1, sizeof(*x));
                if (!x)
                        return false;
                *x = (struct entry){.next = g->table[h], .b = {FULL, now_ms}};
                memcpy(x->key, key, KEY_SIZE);
                g->table[h] = x;
                g->n++;
        }
        refill(x, now_ms);
        if (x->b.level < UNIT)
                return false;
        x->b.level -= UNIT;
        return true;
}
