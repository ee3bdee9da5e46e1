/* SPDX-License-Identifier: MIT */
#include "broker/device_poll.h"

#include <stdlib.h>

#include "oidc/device.h"
#include "oidc/log.h"
#include "oidc/secret.h"

struct lk_device_poll {
        struct lk_device_poll *next;
        struct lk_device_polls *owner;
        struct lk_login *login; /* NULL once stopped while a poll is under way */
        struct lk_timer *timer;
        bool busy;              /* a poll under way: its answer frees a stopped poller */
};

static void poll_free(struct lk_device_poll *p)
{
        struct lk_device_polls *ps = p->owner;

        for (struct lk_device_poll **x = &ps->list; *x; x = &(*x)->next)
                if (*x == p) {
                        *x = p->next;
                        break;
                }
        lk_timer_free(p->timer);
        free(p);
}

static void poll_again(struct lk_device_poll *p)
{
        lk_timer_set_in(p->timer, (int64_t)p->login->device->interval * 1000);
}

/* The provider's final answer: ends (or completes) the login, which stops p (frees it). */
static void poll_finish(struct lk_device_poll *p, struct lk_grant *grant, int code,
                        const char *message, const struct lk_error *err)
{
        struct lk_error e = {0}, out = {0};

        if (!grant && !err) {
                lk_error_set(&e, code, "%s", message);
                err = &e;
        }
        lk_login_finish(p->login, grant, err, &out);
}

static void on_polled(void *userdata, struct lk_grant *grant, const struct lk_error *err)
{
        struct lk_device_poll *p = userdata;
        struct lk_device_polls *ps = p->owner;
        struct lk_login *l = p->login;
        char fp[LK_FINGERPRINT_SIZE];

        p->busy = false;
        if (!l) {
                lk_grant_free(grant);
                poll_free(p);
                return;
        }
        if (grant) {
                /* A real sign-in: it spends nothing (budget.h). */
                lk_budget_refund(ps->budget, lk_login_account(l));
                poll_finish(p, grant, 0, NULL, NULL);
                return;
        }
        lk_fingerprint(l->id, fp);
        switch (lk_device_outcome(err)) {
        case LK_DEVICE_PENDING:
                break;
        case LK_DEVICE_SLOW_DOWN:
                if (l->device->interval + LK_DEVICE_SLOW_DOWN_STEP <= LK_DEVICE_INTERVAL_MAX)
                        l->device->interval += LK_DEVICE_SLOW_DOWN_STEP;
                else
                        l->device->interval = LK_DEVICE_INTERVAL_MAX;
                log_info("Login %s: the provider asked to poll more slowly; every %u s now", fp,
                         l->device->interval);
                break;
        case LK_DEVICE_RETRY:
                log_warning("Login %s: polling the token endpoint failed, polling on: %s", fp,
                            err->message);
                break;
        case LK_DEVICE_DENIED:
                poll_finish(p, NULL, LK_ERR_ACCESS_DENIED,
                            "The sign-in was refused at the provider", NULL);
                return;
        case LK_DEVICE_EXPIRED:
                poll_finish(p, NULL, LK_ERR_LOGIN_EXPIRED,
                            "The device code expired at the provider before the sign-in; begin "
                            "a new login",
                            NULL);
                return;
        case LK_DEVICE_FAILED:
                poll_finish(p, NULL, 0, NULL, err);
                return;
        }
        poll_again(p);
}

static void on_timer(struct lk_timer *t, void *userdata)
{
        struct lk_device_poll *p = userdata;
        struct lk_device_polls *ps = p->owner;
        struct lk_login *l = p->login;
        uid_t account = lk_login_account(l);
        struct lk_error e = {0};
        int r;

        if (l->state != LK_LOGIN_PENDING || !l->device)
                return; /* finishing: stop() comes */
        if (lk_budget_take(ps->budget, account, ps->clock->mono_ms(), &e) < 0) {
                log_debug("Device login poll for uid %u waits: %s", (unsigned)account, e.message);
                poll_again(p);
                return;
        }
        r = ps->idp.ops->device_poll(ps->idp.idp, l->device->device_code, on_polled, p);
        if (r < 0) {
                lk_budget_refund(ps->budget, account);
                log_warning("Cannot poll the token endpoint for a device login: %s",
                            lk_err_name(r));
                poll_again(p);
                return;
        }
        p->busy = true;
}

int lk_device_poll_start(struct lk_device_polls *ps, struct lk_login *l, struct lk_error *e)
{
        struct lk_device_poll *p;

        if (!l->device || !ps->idp.ops->device_poll)
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT, "Not a device login");
        p = calloc(1, sizeof(*p));
        if (!p || !(p->timer = lk_timer_new(ps->loop, on_timer, p))) {
                free(p);
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        }
        p->owner = ps;
        p->login = l;
        p->next = ps->list;
        ps->list = p;
        poll_again(p);
        return 0;
}

void lk_device_poll_stop(struct lk_device_polls *ps, struct lk_login *l)
{
        for (struct lk_device_poll *p = ps->list; p; p = p->next)
                if (p->login == l) {
                        if (p->busy) {
                                /* The answer frees it: the provider cannot cancel one op. */
                                p->login = NULL;
                                lk_timer_set(p->timer, -1);
                        } else
                                poll_free(p);
                        return;
                }
}

void lk_device_polls_free_all(struct lk_device_polls *ps)
{
        while (ps->list)
                poll_free(ps->list);
}
