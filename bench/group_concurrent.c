/* SPDX-License-Identifier: MIT */
/*
 * Group 3: many logins at once with the IdP delaying each token response by 500 ms, and the
 * GetToken latency of other sessions meanwhile (paced clients, latency measured from the
 * planned send time, so a stalled broker cannot hide). Root begins every login, as sshd,
 * login and greeters do, for many users (at most 16 pending logins per user, SPEC §4), on one
 * connection per user as a login program has one per person.
 */
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench.h"

/* ---- paced GetToken load: latency from the planned send time ---- */

struct paced {
        pthread_t thread;
        DBusConnection *conn;
        const char *session_id;
        int64_t period_ns;
        atomic_bool *stop;
        struct lat lat;
        long errors;
        char error[256];
};

static void *paced_run(void *userdata)
{
        struct paced *p = userdata;
        int64_t next = now_ns();

        while (!atomic_load(p->stop) && !bench_stopping()) {
                struct timespec ts = {.tv_sec = next / 1000000000, .tv_nsec = next % 1000000000};
                DBusMessage *reply;

                while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
                        ;
                reply = call(p->conn, new_get_token(p->session_id), p->error, sizeof(p->error));
                if (reply) {
                        lat_add(&p->lat, now_ns() - next);
                        dbus_message_unref(reply);
                } else
                        p->errors++;
                next += p->period_ns;
        }
        return NULL;
}

#define PACED_PERIOD_NS 2000000 /* each client: one call every 2 ms */

struct paced_load {
        struct paced p[PACED_CLIENTS];
        atomic_bool stop;
};

static void paced_start(struct paced_load *l, DBusConnection **conns, const char *const *sids)
{
        atomic_init(&l->stop, false);
        for (int i = 0; i < PACED_CLIENTS; i++) {
                l->p[i] = (struct paced){.conn = conns[i], .session_id = sids[i],
                                         .period_ns = PACED_PERIOD_NS, .stop = &l->stop};
                start_thread(&l->p[i].thread, paced_run, &l->p[i]);
        }
}

static void paced_stop(struct paced_load *l, struct lat *all, long *errors)
{
        atomic_store(&l->stop, true);
        *errors = 0;
        for (int i = 0; i < PACED_CLIENTS; i++) {
                pthread_join(l->p[i].thread, NULL);
                lat_merge(all, &l->p[i].lat);
                *errors += l->p[i].errors;
                if (l->p[i].errors)
                        fprintf(stderr, "latchkey-bench: paced GetToken: %s\n", l->p[i].error);
                free(l->p[i].lat.v);
        }
        bench_check();
}

/* ---- many logins at once ---- */

struct burst_login {
        DBusConnection *conn; /* root's, one per user */
        const char *user;
        char *id, *location;
        DBusPendingCall *pending;
};

void bench_burst(DBusConnection **load_conns, const char *const *load_sids)
{
        size_t n_owners = ((size_t)P.burst + LOGINS_PER_UID - 1) / LOGINS_PER_UID;
        DBusConnection **owner_conn;
        struct burst_login *bl;
        struct lkh_conn *bc = browser_new();
        struct paced_load load;
        struct lat idle = {0}, busy = {0};
        long idle_err = 0, busy_err = 0, code0, code1;
        int ok = 0;
        char failed[512] = "";
        int64_t t0, t1;
        double idle_p99, busy_p99, all_ms;
        char fig[96];

        snprintf(fig, sizeof(fig), "3. %d logins at once, IdP delaying each token response %d ms",
                 P.burst, DELAY_MS);
        heading(fig);
        if (n_owners > n_users)
                die("%d logins at once need %zu local users with at most %d pending logins each; "
                    "the bench made %zu",
                    P.burst, n_owners, LOGINS_PER_UID, n_users);
        owner_conn = xmalloc(n_owners * sizeof(*owner_conn));
        for (size_t i = 0; i < n_owners; i++)
                owner_conn[i] = bus_connect_as(0, 0);
        bl = calloc((size_t)P.burst, sizeof(*bl));
        if (!bl)
                die("out of memory");
        /* Begun and signed in at the IdP beforehand: only CompleteLogin is timed. */
        for (int i = 0; i < P.burst; i++) {
                _cleanup_free_ char *url = NULL;
                size_t o = (size_t)i % n_owners;

                bl[i].conn = owner_conn[o];
                bl[i].user = users[o].name;
                begin_login(bl[i].conn, bl[i].user, &bl[i].id, &url);
                bl[i].location = browser(bc, url, bl[i].user);
        }

        /* The idle reference: the same paced load, nothing else going on. */
        paced_start(&load, load_conns, load_sids);
        lkh_sleep_ms(quick ? 400 : 1500);
        paced_stop(&load, &idle, &idle_err);

        idp_set("delay_ms", "500");
        code0 = idp_stat("token_code");
        paced_start(&load, load_conns, load_sids);
        lkh_sleep_ms(50);
        t0 = now_ns();
        for (int i = 0; i < P.burst; i++) {
                DBusMessage *m = bc_new("CompleteLogin");
                if (!dbus_message_append_args(m, DBUS_TYPE_STRING, &bl[i].id, DBUS_TYPE_STRING,
                                              &bl[i].location, DBUS_TYPE_INVALID) ||
                    !dbus_connection_send_with_reply(bl[i].conn, m, &bl[i].pending,
                                                     CALL_TIMEOUT_MS) ||
                    !bl[i].pending)
                        die("cannot send CompleteLogin");
                dbus_message_unref(m);
        }
        for (size_t i = 0; i < n_owners; i++)
                dbus_connection_flush(owner_conn[i]);
        for (int i = 0; i < P.burst; i++) {
                DBusMessage *reply;

                dbus_pending_call_block(bl[i].pending);
                reply = dbus_pending_call_steal_reply(bl[i].pending);
                if (reply && dbus_message_get_type(reply) == DBUS_MESSAGE_TYPE_METHOD_RETURN) {
                        ok++;
                } else if (!failed[0]) {
                        DBusError err = DBUS_ERROR_INIT;

                        if (reply)
                                dbus_set_error_from_message(&err, reply);
                        snprintf(failed, sizeof(failed), "CompleteLogin for %s failed: %s: %s",
                                 bl[i].user, err.name ? err.name : "no reply",
                                 err.message ? err.message : "");
                        dbus_error_free(&err);
                }
                if (reply)
                        dbus_message_unref(reply);
                dbus_pending_call_unref(bl[i].pending);
        }
        t1 = now_ns();
        lkh_sleep_ms(50);
        paced_stop(&load, &busy, &busy_err);
        /* A login that failed ends the run, with its words: nothing after it would mean much. */
        if (failed[0])
                die("%s", failed);
        idp_set("delay_ms", "0");
        code1 = idp_stat("token_code");

        for (int i = 0; i < P.burst; i++) {
                DBusMessage *m = bc_new("CancelLogin");

                if (!dbus_message_append_args(m, DBUS_TYPE_STRING, &bl[i].id, DBUS_TYPE_INVALID))
                        die("out of memory");
                call_or_die(bl[i].conn, m);
                free(bl[i].id);
                explicit_bzero(bl[i].location, strlen(bl[i].location));
                free(bl[i].location);
        }
        for (size_t i = 0; i < n_owners; i++)
                bc_close(owner_conn[i]);
        free(owner_conn);
        free(bl);
        lkh_conn_free(bc);

        all_ms = ms(t1 - t0);
        idle_p99 = lat_pct(&idle, 0.99);
        busy_p99 = lat_pct(&busy, 0.99);
        snprintf(fig, sizeof(fig), "%d CompleteLogin calls, all done", P.burst);
        row("3", fig, all_ms, "ms", DELAY_MS, "IdP delay", "<= 3x delay",
            check(all_ms <= 3.0 * DELAY_MS));
        snprintf(fig, sizeof(fig), "logins that succeeded (begun by root for %zu users)", n_owners);
        row("3", fig, ok, "", NAN, NULL, "all", must(ok == P.burst));
        row("3", "token requests at the IdP", (double)(code1 - code0), "", NAN, NULL,
            "one per login", must(code1 - code0 == P.burst));
        row("3", "other sessions' GetToken p99 meanwhile", busy_p99, "ms", idle_p99,
            "idle p99", "<= 3x idle p99", check(busy_p99 <= 3.0 * idle_p99));
        row("3", "other sessions' GetToken p50 meanwhile", lat_pct(&busy, 0.5), "ms",
            lat_pct(&idle, 0.5), "idle p50", NULL, V_INFO);
        if (idle_err || busy_err)
                row("3", "failed GetToken calls", (double)(idle_err + busy_err), "", NAN, NULL,
                    "0", V_FAILED);
        free(idle.v);
        free(busy.v);
}
