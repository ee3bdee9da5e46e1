/* SPDX-License-Identifier: MIT */
#include "base/bucket_table.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 256

struct entry {
        struct entry *next;
        uint8_t key[LK_BUCKET_KEY_MAX];
        size_t key_len;
        int64_t level; /* in LK_BUCKET_UNITs, at most t->full */
        int64_t at_ms; /* when level was computed */
};

struct lk_bucket_table {
        struct entry *slots[SLOTS];
        unsigned n, max_keys, per_minute;
        int64_t full;
};

struct lk_bucket_table *lk_bucket_table_new(unsigned burst, unsigned per_minute,
                                            unsigned max_keys)
{
        struct lk_bucket_table *t = calloc(1, sizeof(*t));

        if (!t)
                return NULL;
        t->full = (int64_t)burst * LK_BUCKET_UNIT;
        t->per_minute = per_minute;
        t->max_keys = max_keys;
        return t;
}

void lk_bucket_table_free(struct lk_bucket_table *t)
{
        if (!t)
                return;
        for (size_t i = 0; i < SLOTS; i++)
                while (t->slots[i]) {
                        struct entry *x = t->slots[i];

                        t->slots[i] = x->next;
                        free(x);
                }
        free(t);
}

int64_t lk_bucket_table_full(const struct lk_bucket_table *t)
{
        return t->full;
}

/* The clock moves on only by the time the units added stand for: no fraction is lost, however
 * often this runs. A clock that went back adds nothing. */
static void refill(const struct lk_bucket_table *t, struct entry *x, int64_t now_ms)
{
        int64_t add;

        if (now_ms <= x->at_ms)
                return;
        add = (now_ms - x->at_ms) * t->per_minute * LK_BUCKET_UNIT / 60000;
        if (add >= t->full - x->level) {
                x->level = t->full;
                x->at_ms = now_ms;
                return;
        }
        x->level += add;
        x->at_ms += add * 60000 / ((int64_t)t->per_minute * LK_BUCKET_UNIT);
}

static void forget_full(struct lk_bucket_table *t, int64_t now_ms)
{
        for (size_t i = 0; i < SLOTS; i++)
                for (struct entry **p = &t->slots[i]; *p;) {
                        struct entry *x = *p;

                        refill(t, x, now_ms);
                        if (x->level < t->full) {
                                p = &x->next;
                                continue;
                        }
                        *p = x->next;
                        free(x);
                        t->n--;
                }
}

static unsigned slot_of(const uint8_t *key, size_t len)
{
        unsigned h = 2166136261u; /* FNV-1a */

        for (size_t i = 0; i < len; i++)
                h = (h ^ key[i]) * 16777619u;
        return h % SLOTS;
}

int lk_bucket_table_level(struct lk_bucket_table *t, const void *key, size_t key_len,
                          int64_t now_ms, bool create, int64_t **ret_level)
{
        unsigned h;
        struct entry *x;

        if (key_len > LK_BUCKET_KEY_MAX)
                return -EINVAL;
        h = slot_of(key, key_len);
        for (x = t->slots[h]; x; x = x->next)
                if (x->key_len == key_len && memcmp(x->key, key, key_len) == 0)
                        break;
        if (!x) {
                if (!create)
                        return -ENOENT;
                if (t->n >= t->max_keys)
                        forget_full(t, now_ms);
                if (t->n >= t->max_keys)
                        return -ENOSPC;
                x = calloc(1, sizeof(*x));
                if (!x)
                        return -ENOMEM;
                memcpy(x->key, key, key_len);
                x->key_len = key_len;
                x->level = t->full;
                x->at_ms = now_ms;
                x->next = t->slots[h];
                t->slots[h] = x;
                t->n++;
        }
        refill(t, x, now_ms);
        *ret_level = &x->level;
        return 0;
}
