/* SPDX-License-Identifier: MIT */
/*
 * The manager (systemd-logind's Manager): owns the config, the loop, the HTTP engine on it,
 * the provider, the bus, the logins and the sessions, and puts them together: the objects
 * (login.c, session.c) know nothing of it and report through callbacks; the D-Bus face
 * (broker_dbus.c) works on the objects it is given. Also the one-second tick that expires
 * logins and decides when the broker has been idle long enough to exit.
 */
#include "broker/manager.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/accounts_file.h"
#include "base/util.h"
#include "broker/accounts.h"
#include "broker/broker_dbus.h"
#include "broker/budget.h"
#include "broker/device_poll.h"
#include "broker/callback_listener.h"
#include "broker/login.h"
#include "broker/offline.h"
#include "broker/refresh_ahead.h"
#include "broker/session.h"
#include "broker/session_store.h"
#include "oidc/log.h"
#include "oidc/usermap.h"

struct http_watch {
        struct http_watch *next;
        int fd;
        struct lk_io *io;
};

struct broker {
        struct lk_config *config;
        char *state_dir;
        unsigned idle_exit; /* seconds, 0 = never */
        uid_t uid_min;      /* UID_MIN of login.defs: below it, system accounts */

        struct lk_loop *loop;
        struct lk_http *http;
        struct lk_provider *provider;
        struct lk_bus *bus;
        struct lk_budget *budget; /* token-endpoint requests per uid (budget.h) */
        struct lk_session_store *store;
        struct lk_accounts *accounts; /* [accounts] nss: the cache NSS reads; else NULL */
        struct lk_logins logins;
        struct lk_device_polls polls; /* the device flow's pollers (device_poll.h) */
        struct lk_sessions sessions;
        struct lk_offline offline; /* the offline PINs */
        struct lk_broker_dbus dbus; /* what the D-Bus face works on */
        struct lk_callback_listener *callback; /* [callback] listen; NULL: none */

        /* The sessions of the last run, read in slices once the bus name is ours. */
        struct lk_timer *load_timer;
        bool preparing; /* discovery and keys being fetched, calls parked for them */

        struct lk_timer *tick;
        struct lk_timer *ahead_timer; /* background refresh (refresh_ahead.c) */
        struct lk_timer *http_timer;
        struct http_watch *http_watches;
        int64_t last_activity_ms;
};

static void touch(void *userdata)
{
        struct broker *b = userdata;

        b->last_activity_ms = lk_now_ms();
}

/* ---- the provider, as logins and sessions call it (idp.h) ---- */

static const struct lk_endpoints *idp_endpoints(void *idp)
{
        return lk_provider_endpoints(idp);
}

static int idp_exchange_code(void *idp, const char *code, const char *verifier, const char *nonce,
                             lk_provider_grant_fn done, void *userdata)
{
        return lk_provider_exchange_code(idp, code, verifier, nonce, done, userdata);
}

static int idp_refresh(void *idp, const char *refresh_token, const json_t *previous_claims,
                       lk_provider_grant_fn done, void *userdata)
{
        return lk_provider_refresh(idp, refresh_token, previous_claims, done, userdata);
}

static int idp_refresh_for(void *idp, const char *refresh_token, const json_t *previous_claims,
                           const char *scope, const char *audience, lk_provider_grant_fn done,
                           void *userdata)
{
        return lk_provider_refresh_for(idp, refresh_token, previous_claims, scope, audience, done,
                                       userdata);
}

static int idp_revoke(void *idp, const char *token, const char *hint, lk_provider_done_fn done,
                      void *userdata)
{
        return lk_provider_revoke(idp, token, hint, done, userdata);
}

static int idp_device_authorize(void *idp, lk_provider_device_fn done, void *userdata)
{
        return lk_provider_device_authorize(idp, done, userdata);
}

static int idp_device_poll(void *idp, const char *device_code, lk_provider_grant_fn done,
                           void *userdata)
{
        return lk_provider_device_poll(idp, device_code, done, userdata);
}

static const struct lk_idp_ops provider_ops = {
        .endpoints = idp_endpoints,
        .exchange_code = idp_exchange_code,
        .refresh = idp_refresh,
        .refresh_for = idp_refresh_for,
        .revoke = idp_revoke,
        .device_authorize = idp_device_authorize,
        .device_poll = idp_device_poll,
};

/* A login finished, whichever way: its poller stops, its WaitLogin calls hear. */
static void on_login_finished(void *userdata, struct lk_login *l, const char *user, int r,
                              const struct lk_error *e)
{
        struct broker *b = userdata;

        lk_device_poll_stop(&b->polls, l);
        lk_broker_login_finished(l, user, r, e);
}

/*
 * A session changed: the bus says so. A refresh brings the account's groups up to date; an
 * expiry is always the provider refusing the refresh (session.c), so the account step
 * refuses the account until it signs in again.
 */
static void on_session_changed(void *userdata, const struct lk_session *s, const char *event)
{
        struct broker *b = userdata;

        if (streq(event, "refreshed"))
                lk_accounts_refreshed(b->accounts, s->user, s->claims);
        else if (streq(event, "expired")) {
                /* The provider refused the session's refresh: the account loses offline
                 * access, and its provider account is marked refused. */
                lk_offline_note_refused(&b->offline, s->uid);
                lk_accounts_refused(b->accounts, s->user);
        }

        lk_broker_emit_session_changed(b->bus, s->id, event);
        /* A new token, or a slot free: the background refresh looks again at once. */
        if (streq(event, "opened") || streq(event, "refreshed"))
                lk_timer_set_in(b->ahead_timer, 0);
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
        lk_bus_unpark(b->bus, LK_BROKER_PARK_PROVIDER, &e);
}

static int prepare_provider(void *userdata, struct lk_error *e)
{
        struct broker *b = userdata;
        int r;

        if (b->preparing)
                return 0;
        r = lk_provider_prepare(b->provider, on_prepared, b);
        if (r < 0)
                return lk_error_set(e, r, "Cannot start fetching the provider's configuration");
        b->preparing = true;
        return 0;
}

/* ---- the sessions of the last run, read after the start ---- */

/* One slice of session files per loop round: calls are served between slices. */
#define LOAD_SLICE_US 2000

static void on_load_timer(struct lk_timer *t, void *userdata)
{
        struct broker *b = userdata;

        if (!lk_store_load_some(b->store, LOAD_SLICE_US)) {
                lk_timer_set_in(t, 0);
                return;
        }
        log_info("All %zu session(s) of the last run are read", b->sessions.n);
        lk_bus_unpark(b->bus, LK_BROKER_PARK_SESSIONS, NULL);
}

/* ---- background refresh ---- */

/*
 * Once a second (due times are wall seconds; a refresh that failed frees its slot without an
 * event, and sessions of the last run come in slices), and at once on "opened" and
 * "refreshed". A scan of 10,000 sessions takes well under a millisecond.
 */
static void on_ahead_timer(struct lk_timer *t, void *userdata)
{
        struct broker *b = userdata;

        (void)lk_refresh_ahead_run(&b->sessions);
        lk_timer_set_in(t, 1000);
}

/* ---- the tick: login expiry and idle exit ---- */

static void on_tick(struct lk_timer *t, void *userdata)
{
        struct broker *b = userdata;
        unsigned live = lk_logins_sweep(&b->logins);
        int64_t now = lk_now_ms();

        lk_timer_set_in(t, 1000);
        if (b->idle_exit == 0 || live > 0 || b->logins.exchanging > 0 ||
            b->sessions.busy > 0 || b->preparing ||
            (b->offline.worker && lk_pin_worker_busy(b->offline.worker) > 0) || lk_sessions_loading(&b->sessions) ||
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
        /* Cancels every exchange without calling back; then what they pointed at can go. */
        lk_provider_free(b->provider);
        lk_http_free(b->http);
        /* Their callers still get an answer, while the bus is still there. */
        lk_device_polls_free_all(&b->polls);
        lk_logins_free_all(&b->logins);
        /* After the logins: a callback waiting for its exchange has had its answer. */
        lk_callback_listener_free(b->callback);
        lk_sessions_free_all(&b->sessions);
        lk_offline_done(&b->offline);
        lk_store_free(b->store);
        lk_accounts_free(b->accounts);
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
        free(b);
}

int broker_new(const struct broker_options *o, struct broker **ret, struct lk_error *e)
{
        char boot_id[40];
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
        if (!b->state_dir) {
                r = lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
                goto fail;
        }
        r = lk_store_read_boot_id(boot_id, sizeof(boot_id), e);
        if (r < 0)
                goto fail;
        r = lk_store_new(b->state_dir, boot_id, &b->store, e);
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
        b->ahead_timer = lk_timer_new(b->loop, on_ahead_timer, b);
        if (!b->tick || !b->http_timer || !b->load_timer || !b->ahead_timer) {
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

        /* Seals the offline records under the session keys: before the sessions' load ends,
         * which drops the older keys only if no record still needs them. */
        r = lk_offline_init(&b->offline, b->config, &lk_clock_system, b->state_dir,
                            lk_store_keys(b->store), b->loop, e);
        if (r < 0)
                goto fail;
        lk_store_hold_older_keys(b->store, b->offline.n_older);
        if (b->config->nss) {
                r = lk_accounts_new(b->config, lk_accounts_path(), &b->accounts, e);
                if (r < 0)
                        goto fail;
        }

        b->logins = (struct lk_logins){.clock = &lk_clock_system, .config = b->config,
                                       .uid_min = b->uid_min, .accounts = b->accounts,
                                       .idp = {&provider_ops, b->provider},
                                       .finished = on_login_finished, .userdata = b};
        b->polls = (struct lk_device_polls){.loop = b->loop, .idp = {&provider_ops, b->provider},
                                            .budget = b->budget, .clock = &lk_clock_system};
        b->sessions = (struct lk_sessions){.clock = &lk_clock_system, .config = b->config,
                                           .uid_min = b->uid_min,
                                           .idp = {&provider_ops, b->provider},
                                           .budget = b->budget, .store = b->store,
                                           .changed = on_session_changed, .userdata = b};
        b->dbus = (struct lk_broker_dbus){.config = b->config, .uid_min = b->uid_min,
                                          .clock = &lk_clock_system, .logins = &b->logins,
                                          .sessions = &b->sessions, .budget = b->budget,
                                          .polls = &b->polls,
                                          .offline = &b->offline, .http = b->http,
                                          .accounts = b->accounts,
                                          .idp = {&provider_ops, b->provider},
                                          .prepare_provider = prepare_provider, .touch = touch,
                                          .manager = b};

        /* Only opens the directory: the files are read once callers are served. */
        r = lk_sessions_load_begin(&b->sessions, e);
        if (r < 0)
                goto fail;

        /* The callback listener: without it, pasting still works, so the broker serves on. */
        if (b->config->callback_listen) {
                struct lk_callback_deps cd = {.config = b->config, .loop = b->loop,
                                              .clock = &lk_clock_system, .logins = &b->logins,
                                              .budget = b->budget};

                if (lk_callback_listener_new(&cd, &b->callback, e) < 0) {
                        log_error("%s; the provider's callback must be pasted until this is "
                                  "fixed", e->message);
                        lk_error_clear(e);
                }
        }
        /* GetLoginInfo says callback = true only when the listener really runs. */
        b->dbus.callback_listener = b->callback != NULL;

        /* Last: once we own the name, callers may come. */
        r = lk_bus_new(b->loop, &lk_broker_bus_ops, &b->dbus, &b->bus, e);
        if (r < 0)
                goto fail;
        lk_store_remove_leftovers(b->store);
        lk_timer_set_in(b->load_timer, 0);

        touch(b);
        lk_timer_set_in(b->tick, 1000);
        lk_timer_set_in(b->ahead_timer, 1000);
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
