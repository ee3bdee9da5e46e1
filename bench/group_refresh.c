/* SPDX-License-Identifier: MIT */
/*
 * Group 4: refresh storm: 64 clients ask for one near-expiry token at once, while the broker
 * refreshes it in the background (refresh_ahead); beside 64 Pings at once at the same point.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench.h"

struct storm {
        pthread_t thread;
        DBusConnection *conn;
        pthread_barrier_t *barrier;
        int64_t ns;
        bool ping;
        bool answered;
        char *token;
        char error[256];
};

static void *storm_run(void *userdata)
{
        struct storm *s = userdata;
        DBusMessage *reply;
        const char *token;
        dbus_int64_t expires;
        const char *type;
        int64_t t0;

        pthread_barrier_wait(s->barrier);
        t0 = now_ns();
        reply = call(s->conn, s->ping ? bc_new_ping() : new_get_token("bench-storm"), s->error,
                     sizeof(s->error));
        s->ns = now_ns() - t0;
        s->answered = reply != NULL;
        if (reply && !s->ping &&
            dbus_message_get_args(reply, NULL, DBUS_TYPE_STRING, &token, DBUS_TYPE_INT64, &expires,
                                  DBUS_TYPE_STRING, &type, DBUS_TYPE_INVALID))
                s->token = strdup(token);
        if (reply)
                dbus_message_unref(reply);
        return NULL;
}

/* 64 callers at once (after the barrier): each one's call, timed. */
static void storm(DBusConnection **conns, bool ping, struct storm *s, struct lat *l, int *ok)
{
        pthread_barrier_t barrier;

        pthread_barrier_init(&barrier, NULL, MAX_CLIENTS);
        for (int i = 0; i < MAX_CLIENTS; i++) {
                s[i] = (struct storm){.conn = conns[i], .barrier = &barrier, .ping = ping};
                start_thread(&s[i].thread, storm_run, &s[i]);
        }
        for (int i = 0; i < MAX_CLIENTS; i++)
                pthread_join(s[i].thread, NULL);
        pthread_barrier_destroy(&barrier);
        bench_check();
        *ok = 0;
        for (int i = 0; i < MAX_CLIENTS; i++) {
                if (s[i].answered) {
                        (*ok)++;
                        lat_add(l, s[i].ns);
                } else
                        fprintf(stderr, "latchkey-bench: storm %s: %s\n",
                                ping ? "Ping" : "GetToken", s[i].error);
        }
}

void bench_storm(DBusConnection *root, DBusConnection **conns)
{
        struct storm s[MAX_CLIENTS];
        struct lkh_conn *bc = browser_new();
        long r0, r1 = -1;
        int ok = 0, same = 0, pinged = 0;
        struct lat l = {0}, ping = {0};
        _cleanup_free_ char *first = NULL;
        int64_t deadline;

        heading("4. Refresh storm: 64 clients ask for one near-expiry token at once");
        /*
         * A session whose token has 60 s left, under refresh_margin (120 s): the broker refreshes
         * it in the background as soon as it is open, and the refresh takes 200 ms at the IdP.
         * The 64 callers come meanwhile; before background refresh, each waited for it.
         */
        /* Each connection known to the broker (its uid asked once), as after group 1. */
        for (int i = 0; i < MAX_CLIENTS; i++)
                call_or_die(conns[i], new_get_token("bench-main"));
        idp_set("delay_ms", "200");
        idp_set("expires_in", "60");
        r0 = idp_stat("token_refresh");
        (void)broker_login(root, bc, "root", "bench-storm");
        idp_set("expires_in", "3600");
        storm(conns, false, s, &l, &ok);
        for (int i = 0; i < MAX_CLIENTS; i++)
                if (s[i].token) {
                        if (!first)
                                first = xstrdup(s[i].token);
                        same += streq(s[i].token, first);
                        explicit_bzero(s[i].token, strlen(s[i].token));
                        free(s[i].token);
                }
        /* The bus's own round trip for 64 callers at once, at the same point. */
        storm(conns, true, s, &ping, &pinged);
        /* The refresh ends; the provider saw one request for it. */
        for (deadline = now_ns() + (int64_t)10e9; now_ns() < deadline;) {
                char err[256];
                DBusMessage *reply = call(root, new_get_token("bench-storm"), err, sizeof(err));
                const char *token = NULL;

                if (!reply)
                        die("GetToken after the storm: %s", err);
                (void)dbus_message_get_args(reply, NULL, DBUS_TYPE_STRING, &token,
                                            DBUS_TYPE_INVALID);
                if (token && first && !streq(token, first)) {
                        dbus_message_unref(reply);
                        break;
                }
                dbus_message_unref(reply);
                usleep(20 * 1000);
        }
        usleep(300 * 1000);
        r1 = idp_stat("token_refresh");
        idp_set("delay_ms", "0");
        row("4", "refresh requests at the IdP", (double)(r1 - r0), "", NAN, NULL, "exactly 1",
            must(r1 - r0 == 1));
        row("4", "callers answered, all with one token", same, "", ok, "answered", "64 of 64",
            must(ok == MAX_CLIENTS && same == MAX_CLIENTS));
        row("4", "storm GetToken p50 (refresh takes 200 ms)", lat_pct(&l, 0.5), "ms",
            lat_pct(&ping, 0.5), "storm Ping", "<= 2x",
            check(pinged == MAX_CLIENTS && lat_pct(&l, 0.5) <= 2 * lat_pct(&ping, 0.5)));
        if (first)
                explicit_bzero(first, strlen(first));
        free(l.v);
        free(ping.v);
        lkh_conn_free(bc);
}
