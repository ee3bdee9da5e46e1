/* SPDX-License-Identifier: MIT */
#include "broker/refresh_ahead.h"

#include <openssl/rand.h>

#include "broker/budget.h"
#include "oidc/log.h"

/* Seconds for one request to come back to a uid's budget (budget.h's refill). */
#define BUDGET_REFILL_S (60 / LK_BUDGET_PER_MINUTE + 1)

static unsigned draw(unsigned span)
{
        uint32_t x = 0;

        if (span == 0 || RAND_bytes((unsigned char *)&x, sizeof(x)) != 1)
                return 0; /* no jitter is still a refresh on time */
        return x % (span + 1);
}

static int64_t max64(int64_t a, int64_t b)
{
        return a > b ? a : b;
}

int64_t lk_refresh_ahead_due(const struct lk_sessions *ss, struct lk_session *s)
{
        unsigned margin = ss->config->refresh_margin;
        int64_t due;

        if (!ss->config->refresh_ahead || s->expired || s->closed || s->refreshing ||
            !s->tokens.refresh_token || s->tokens.expires_at == 0)
                return -1;
        if (s->ahead_jitter_for != s->tokens.expires_at) {
                unsigned span = margin / 4;

                s->ahead_jitter =
                    draw(span < LK_REFRESH_AHEAD_JITTER_MAX ? span : LK_REFRESH_AHEAD_JITTER_MAX);
                s->ahead_jitter_for = s->tokens.expires_at;
        }
        due = s->tokens.expires_at - margin - s->ahead_jitter;
        if (s->refreshed_at != 0) {
                /* The refresh floor, doubled for each failure in a row. */
                int64_t wait = LK_REFRESH_INTERVAL_MIN;

                for (unsigned i = 1; i < s->ahead_failures && wait < LK_REFRESH_AHEAD_BACKOFF_MAX;
                     i++)
                        wait *= 2;
                if (wait > LK_REFRESH_AHEAD_BACKOFF_MAX)
                        wait = LK_REFRESH_AHEAD_BACKOFF_MAX;
                due = max64(due, s->refreshed_at + wait);
        }
        return max64(due, s->ahead_not_before);
}

static void start(struct lk_sessions *ss, struct lk_session *s, int64_t now)
{
        struct lk_error e = {0};

        if (lk_budget_take_spare(ss->budget, s->uid, ss->clock->mono_ms(), LK_BUDGET_AHEAD_RESERVE,
                                 &e) < 0) {
                log_debug("Session %s: background refresh waits: %s", s->id, e.message);
                s->ahead_not_before = now + BUDGET_REFILL_S;
                return;
        }
        if (lk_session_refresh_begin(ss, s, true, &e) < 0) {
                log_warning("Session %s: cannot start the background refresh: %s; trying again "
                            "in %d s",
                            s->id, e.message, LK_REFRESH_INTERVAL_MIN);
                s->ahead_not_before = now + LK_REFRESH_INTERVAL_MIN;
                return;
        }
        log_debug("Session %s: refreshing in the background, %lld s before expiry", s->id,
                  (long long)(s->tokens.expires_at - now));
}

int64_t lk_refresh_ahead_run(struct lk_sessions *ss)
{
        int64_t now = ss->clock->wall_s(), next = -1;

        if (!ss->config->refresh_ahead)
                return -1;
        for (struct lk_session *s = ss->list; s; s = s->next) {
                int64_t due = lk_refresh_ahead_due(ss, s);

                if (due < 0)
                        continue;
                if (due <= now && ss->ahead_busy < LK_REFRESH_AHEAD_MAX) {
                        start(ss, s, now);
                        due = s->refreshing ? -1 : s->ahead_not_before;
                } else if (due <= now)
                        due = now; /* waits for a free slot */
                if (due >= 0 && (next < 0 || due < next))
                        next = due;
        }
        return next;
}
