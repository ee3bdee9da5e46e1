/* SPDX-License-Identifier: MIT */
#include "broker/budget.h"

#include <stdlib.h>

#include "base/token_bucket.h"

#define UNIT LK_BUCKET_UNIT
#define FULL ((int64_t)LK_BUDGET_BURST * UNIT)
#define BUCKETS 256

struct entry {
        struct entry *next;
        uid_t uid;
        struct lk_bucket b; /* at most FULL */
};

struct lk_budget {
        struct entry *table[BUCKETS];
        unsigned n;
};

int lk_budget_new(struct lk_budget **ret)
{
        *ret = calloc(1, sizeof(**ret));
        return *ret ? 0 : -LK_ERR_NOMEM;
}

void lk_budget_free(struct lk_budget *g)
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

static void refill(struct entry *x, int64_t now_ms)
{
        lk_bucket_refill(&x->b, now_ms, FULL, LK_BUDGET_PER_MINUTE);
}

/* Forgets the uids whose bucket is full again: they are as good as new. */
static void forget_full(struct lk_budget *g, int64_t now_ms)
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

static struct entry *find(struct lk_budget *g, uid_t uid)
{
        for (struct entry *x = g->table[uid % BUCKETS]; x; x = x->next)
                if (x->uid == uid)
                        return x;
        return NULL;
}

int lk_budget_take(struct lk_budget *g, uid_t uid, int64_t now_ms, struct lk_error *e)
{
        return lk_budget_take_spare(g, uid, now_ms, 0, e);
}

int lk_budget_take_spare(struct lk_budget *g, uid_t uid, int64_t now_ms, unsigned keep,
                         struct lk_error *e)
{
        struct entry *x = find(g, uid);

        if (!x) {
                if (g->n >= LK_BUDGET_UIDS_MAX)
                        forget_full(g, now_ms);
                if (g->n >= LK_BUDGET_UIDS_MAX)
                        return lk_error_set(e, LK_ERR_TOO_MANY_REQUESTS,
                                            "Too many uids have used their requests to the "
                                            "provider; try again later");
                x = calloc(1, sizeof(*x));
                if (!x)
                        return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
                *x = (struct entry){.next = g->table[uid % BUCKETS], .uid = uid, .b = {FULL, now_ms}};
                g->table[uid % BUCKETS] = x;
                g->n++;
        }
        refill(x, now_ms);
        if (keep > 0 && x->b.level < ((int64_t)keep + 1) * UNIT)
                return lk_error_set(e, LK_ERR_TOO_MANY_REQUESTS,
                                    "uid %u has only %lld request(s) to the provider left, kept "
                                    "for callers",
                                    (unsigned)uid, (long long)(x->b.level / UNIT));
        if (x->b.level < UNIT)
                return lk_error_set(e, LK_ERR_TOO_MANY_REQUESTS,
                                    "Too many refused or failed requests to the provider for "
                                    "uid %u (at most %d, then %d a minute); try again in %lld s",
                                    (unsigned)uid, LK_BUDGET_BURST, LK_BUDGET_PER_MINUTE,
                                    (long long)((UNIT - x->b.level) * 60 /
                                                    ((int64_t)LK_BUDGET_PER_MINUTE * UNIT) +
                                                1));
        x->b.level -= UNIT;
        return 0;
}

void lk_budget_refund(struct lk_budget *g, uid_t uid)
{
        struct entry *x = find(g, uid);

        if (x)
                x->b.level = x->b.level + UNIT > FULL ? FULL : x->b.level + UNIT;
}
