/* SPDX-License-Identifier: MIT */
#include "broker/budget.h"

#include <errno.h>
#include <stdlib.h>

#include "base/bucket_table.h"

#define UNIT LK_BUCKET_UNIT

struct lk_budget {
        struct lk_bucket_table *t; /* by uid */
};

int lk_budget_new(struct lk_budget **ret)
{
        struct lk_budget *g = calloc(1, sizeof(*g));

        if (g)
                g->t = lk_bucket_table_new(LK_BUDGET_BURST, LK_BUDGET_PER_MINUTE,
                                           LK_BUDGET_UIDS_MAX);
        if (!g || !g->t) {
                free(g);
                *ret = NULL;
                return -LK_ERR_NOMEM;
        }
        *ret = g;
        return 0;
}

void lk_budget_free(struct lk_budget *g)
{
        if (!g)
                return;
        lk_bucket_table_free(g->t);
        free(g);
}

int lk_budget_take(struct lk_budget *g, uid_t uid, int64_t now_ms, struct lk_error *e)
{
        return lk_budget_take_spare(g, uid, now_ms, 0, e);
}

int lk_budget_take_spare(struct lk_budget *g, uid_t uid, int64_t now_ms, unsigned keep,
                         struct lk_error *e)
{
        int64_t *level;
        int r = lk_bucket_table_level(g->t, &uid, sizeof(uid), now_ms, true, &level);

        if (r == -ENOSPC)
                return lk_error_set(e, LK_ERR_TOO_MANY_REQUESTS,
                                    "Too many uids have used their requests to the provider; try "
                                    "again later");
        if (r < 0)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        if (keep > 0 && *level < ((int64_t)keep + 1) * UNIT)
                return lk_error_set(e, LK_ERR_TOO_MANY_REQUESTS,
                                    "uid %u has only %lld request(s) to the provider left, kept "
                                    "for callers",
                                    (unsigned)uid, (long long)(*level / UNIT));
        if (*level < UNIT)
                return lk_error_set(e, LK_ERR_TOO_MANY_REQUESTS,
                                    "Too many refused or failed requests to the provider for "
                                    "uid %u (at most %d, then %d a minute); try again in %lld s",
                                    (unsigned)uid, LK_BUDGET_BURST, LK_BUDGET_PER_MINUTE,
                                    (long long)((UNIT - *level) * 60 /
                                                    ((int64_t)LK_BUDGET_PER_MINUTE * UNIT) +
                                                1));
        *level -= UNIT;
        return 0;
}

void lk_budget_refund(struct lk_budget *g, uid_t uid)
{
        int64_t *level, full = lk_bucket_table_full(g->t);

        if (lk_bucket_table_level(g->t, &uid, sizeof(uid), INT64_MIN, false, &level) == 0)
                *level = *level + UNIT > full ? full : *level + UNIT;
}
