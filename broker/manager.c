/* SPDX-License-Identifier: MIT */
/*
 * The broker's parts put together: config, state, the HTTP engine on the
 * loop, the provider, the bus; the one-second tick that expires logins and
 * decides when the broker has been idle long enough to exit.
 */
#include "broker/manager.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/broker_dbus.h"
#include "broker/budget.h"
#include "broker/daemon.h"
#include "broker/login.h"
#include "broker/session.h"
#include "broker/session_store.h"
#include "oidc/log.h"
#include "oidc/usermap.h"

struct http_watch {
        struct http_watch *next;
        int fd;
        struct lk_io *io;
};

int64_t lk_now_wall(void)
{
        return (int64_t)time(NULL);
}

void broker_touch(struct broker *b)
{
        b->last_activity_ms = lk_now_ms();
}

void broker_caller_left(struct broker *b, const char *name)
{
        lk_logins_caller_left(b, name);
}

/* ---- lk_http on the loop ---- */

static void on_http_io(struct lk_io *io, int fd, short revents, void *userdata)
{
        struct broker *b = userdata;
        int what = 0;

        if (revents & (POLLIN | POLLERR | POLLHUP))
                what |= LK_HTTP_WATCH_IN;
        if (revents & POLLOUT)
                what |= LK_HTTP_WATCH_OUT;
        lk_http_on_socket(b->http, fd, what);
}

static void http_watch_socket(void *loop, int fd, int what)
{
        struct broker *b = loop;
        short events =
            (what & LK_HTTP_WATCH_IN ? POLLIN : 0) | (what & LK_HTTP_WATCH_OUT ? POLLOUT : 0);
        struct http_watch **p, *w;

        for (p = &b->http_watches; *p; p = &(*p)->next)
                if ((*p)->fd == fd)
                        break;
        w = *p;
        if (!events) {
                if (w) {
                        lk_io_free(w->io);
                        *p = w->next;
                        free(w);
                }
                return;
        }
        if (w) {
                lk_io_set_events(w->io, events);
                return;
        }
        w = calloc(1, sizeof(*w));
        if (!w || !(w->io = lk_io_new(b->loop, fd, events, on_http_io, b))) {
                /* The exchange then ends by its timeout. */
                log_error("Out of memory watching an HTTP socket");
                free(w);
                return;
        }
        w->fd = fd;
        w->next = b->http_watches;
        b->http_watches = w;
}

static void http_set_timer(void *loop, long timeout_ms)
{
        struct broker *b = loop;

        if (timeout_ms < 0)
                lk_timer_set(b->http_timer, -1);
        else
                lk_timer_set_in(b->http_timer, timeout_ms);
}

static void on_http_timer(struct lk_timer *t, void *userdata)
{
        struct broker *b = userdata;

        lk_http_on_timeout(b->http);
}

/* ---- discovery and keys, once for every call that needs them ---- */

static void on_prepared(void *userdata, const struct lk_error *err)
{
        struct broker *b = userdata;
        struct lk_error e = {0};

        b->preparing = false;
        if (err && err->code) {
                log_warning("Cannot reach the provider's discovery or keys: %s", err->message);
                e = *err;
        } else if (!lk_provider_endpoints(b->provider))
                lk_error_set(&e, LK_ERR_PROVIDER_UNAVAILABLE,
                             "The provider's endpoints are unknown");
        lk_bus_unpark(b->bus, LK_NEED_PROVIDER, &e);
}

int broker_need_provider(struct broker *b, struct lk_call *call, struct lk_error *e)
{
        int r;

        if (lk_provider_endpoints(b->provider))
                return 0;
        if (!b->preparing) {
                r = lk_provider_prepare(b->provider, on_prepared, b);
                if (r < 0)
                        return lk_error_set(e, r,
                                            "Cannot start fetching the provider's "
                                            "configuration");
                b->preparing = true;
        }
        r = lk_call_park(call, LK_NEED_PROVIDER, "the provider", e);
        return r < 0 ? r : LK_CALL_LATER;
}

/* ---- the sessions of the last run, read after the start ---- */

/* One slice of session files per loop round: calls are served between slices. */
#define LOAD_SLICE_US 2000

static void on_load_timer(struct lk_timer *t, void *userdata)
{
        struct broker *b = userdata;

        if (!lk_store_load_some(b, LOAD_SLICE_US)) {
                lk_timer_set_in(t, 0);
                return;
        }
        log_info("All %zu session(s) of the last run are read", b->n_sessions);
        lk_bus_unpark(b->bus, LK_NEED_SESSIONS, NULL);
}

int broker_need_sessions(struct broker *b, struct lk_call *call, struct lk_error *e)
{
        int r;

        if (!b->loader)
                return 0;
        r = lk_call_park(call, LK_NEED_SESSIONS, "the sessions to be read", e);
        return r < 0 ? r : LK_CALL_LATER;
}

/* ---- the tick: login expiry and idle exit ---- */

static void on_tick(struct lk_timer *t, void *userdata)
{
        struct broker *b = userdata;
        unsigned live = lk_logins_sweep(b);
        int64_t now = lk_now_ms();

        lk_timer_set_in(t, 1000);
        if (b->idle_exit == 0 || live > 0 || b->busy_ops > 0 || b->preparing || b->loader ||
            lk_http_pending(b->http) > 0 || lk_bus_busy(b->bus) > 0)
                return;
        if (now - b->last_activity_ms < (int64_t)b->idle_exit * 1000)
                return;
        log_info("Idle for %u s, exiting; the bus starts the broker again when needed",
                 b->idle_exit);
        lk_bus_release_name(b->bus);
        lk_loop_quit(b->loop, 0);
}

/* ---- life ---- */

void broker_free(struct broker *b)
{
        if (!b)
                return;
        lk_store_loader_free(b);
        /* Cancels every exchange without calling back; then what they pointed at can go. */
        lk_provider_free(b->provider);
        lk_http_free(b->http);
        lk_logins_free_all(b);
        lk_sessions_free_all(b);
        lk_budget_free(b->budget);
        lk_bus_free(b->bus);
        while (b->http_watches) {
                struct http_watch *w = b->http_watches;
                b->http_watches = w->next;
                free(w);
        }
        lk_loop_free(b->loop);
        lk_config_free(b->config);
        free(b->state_dir);
        free(b->sessions_dir);
        free(b);
}

int broker_new(const struct broker_options *o, struct broker **ret, struct lk_error *e)
{
        struct broker *b;
        int r;

        b = calloc(1, sizeof(*b));
        if (!b)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");

        r = lk_config_load(o->config_path, &b->config, NULL, e);
        if (r < 0)
                goto fail;
        b->idle_exit = o->idle_exit >= 0 ? (unsigned)o->idle_exit : b->config->idle_exit;
        if (lk_login_defs_uid_min(LK_LOGIN_DEFS_PATH, &b->uid_min, e) < 0) {
                log_warning("%s; taking UID_MIN %d, as shadow does", e->message,
                            LK_UID_MIN_DEFAULT);
                lk_error_clear(e);
                b->uid_min = LK_UID_MIN_DEFAULT;
        }

        b->state_dir = strdup(o->state_dir);
        if (!b->state_dir || asprintf(&b->sessions_dir, "%s/sessions", o->state_dir) < 0) {
                b->sessions_dir = NULL;
                r = lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
                goto fail;
        }
        r = lk_store_read_boot_id(b->boot_id, sizeof(b->boot_id), e);
        if (r < 0)
                goto fail;
        r = lk_store_init(b, e);
        if (r < 0)
                goto fail;

        r = lk_loop_new(&b->loop);
        if (r < 0) {
                r = lk_error_set(e, LK_ERR_IO, "Cannot set up the event loop: %s", strerror(-r));
                goto fail;
        }
        b->tick = lk_timer_new(b->loop, on_tick, b);
        b->http_timer = lk_timer_new(b->loop, on_http_timer, b);
        b->load_timer = lk_timer_new(b->loop, on_load_timer, b);
        if (!b->tick || !b->http_timer || !b->load_timer) {
                r = lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
                goto fail;
        }

        r = lk_http_new(&b->http);
        if (r < 0) {
                r = lk_error_set(e, r, "Cannot set up HTTP");
                goto fail;
        }
        lk_http_set_loop(b->http, http_watch_socket, http_set_timer, b);
        if (lk_budget_new(&b->budget) < 0) {
                r = lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
                goto fail;
        }
        r = lk_provider_new(b->config, b->http, b->state_dir, &b->provider, e);
        if (r < 0)
                goto fail;

        /* Only opens the directory: the files are read once callers are served (session_store.c). */
        r = lk_store_load_begin(b, e);
        if (r < 0)
                goto fail;

        /* Last: once we own the name, callers may come. */
        r = lk_bus_new(b->loop, &lk_broker_bus_ops, b, &b->bus, e);
        if (r < 0)
                goto fail;
        lk_store_remove_leftovers(b);
        lk_timer_set_in(b->load_timer, 0);

        broker_touch(b);
        lk_timer_set_in(b->tick, 1000);
        *ret = b;
        return 0;

fail:
        broker_free(b);
        return r;
}

int broker_run(struct broker *b)
{
        log_info("latchkeyd %s ready on the system bus as %s; sessions of the last run being "
                 "read, state in %s, idle exit %s",
                 LATCHKEY_VERSION, LK_BUS_NAME, b->state_dir, b->idle_exit ? "on" : "off");
        return lk_loop_run(b->loop);
}
