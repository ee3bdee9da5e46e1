/* SPDX-License-Identifier: MIT */
/*
 * The broker's side of the device flow (RFC 8628 §3.4, §3.5): while a device login waits for
 * the person's approval, the broker polls the token endpoint itself, at the provider's
 * interval (slow_down: LK_DEVICE_SLOW_DOWN_STEP more each time), on the loop's timers. Each
 * poll takes one request from the login's account in the token-endpoint budget (budget.h),
 * given back when it is granted; with the budget spent, the poll waits one interval more
 * instead. The outcome goes to lk_login_finish(): the tokens, access_denied (AccessDenied),
 * expired_token (LoginExpired), another refusal; authorization_pending and a provider that
 * cannot answer just mean polling on, within the login's lifetime.
 */
#pragma once

#include "broker/budget.h"
#include "broker/idp.h"
#include "broker/login.h"
#include "broker/loop.h"

struct lk_device_poll;

struct lk_device_polls {
        struct lk_loop *loop;
        struct lk_idp idp;
        struct lk_budget *budget;
        const struct lk_clock *clock;
        struct lk_device_poll *list;
};

/* Starts polling for l (a device login just begun, pending). */
int lk_device_poll_start(struct lk_device_polls *ps, struct lk_login *l, struct lk_error *e);
/* l has finished (or goes): no more polls for it. Nothing when it has no poller. */
void lk_device_poll_stop(struct lk_device_polls *ps, struct lk_login *l);
/* At the end: the provider is gone already, so no poll calls back. */
void lk_device_polls_free_all(struct lk_device_polls *ps);
