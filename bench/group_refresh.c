/* SPDX-License-Identifier: MIT */
/* Group 4: refresh storm: 64 clients ask for one near-expiry token at once. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"

struct storm {
        pthread_t thread;
        DBusConnection *conn;
        pthread_barrier_t *barrier;
        int64_t ns;
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
        reply = call(s->conn, new_get_token("bench-storm"), s->error, sizeof(s->error));
        s->ns = now_ns() - t0;
        if (reply && dbus_message_get_args(reply, NULL, DBUS_TYPE_STRING, &token, DBUS_TYPE_INT64,
                                           &expires, DBUS_TYPE_STRING, &type, DBUS_TYPE_INVALID))
                s->token = strdup(token);
        if (reply)
                dbus_message_unref(reply);
        return NULL;
}

void bench_storm(DBusConnection *root, DBusConnection **conns)
{
        struct storm s[MAX_CLIENTS];
        pthread_barrier_t barrier;
        struct lkh_conn *bc = browser_new();
        long r0, r1;
        int ok = 0, same = 0;
        struct lat l = {0};

        heading("4. Refresh storm: 64 clients ask for one near-expiry token at once");
        /* A session whose token has 60 s left, under refresh_margin (120 s). */
        idp_set("expires_in", "60");
        (void)broker_login(root, bc, "root", "bench-storm");
        idp_set("expires_in", "3600");
        /* The refresh takes 200 ms at the IdP, so every caller surely waits on the one. */
        idp_set("delay_ms", "200");
        r0 = idp_stat("token_refresh");
        pthread_barrier_init(&barrier, NULL, MAX_CLIENTS);
        for (int i = 0; i < MAX_CLIENTS; i++) {
                s[i] = (struct storm){.conn = conns[i], .barrier = &barrier};
                start_thread(&s[i].thread, storm_run, &s[i]);
        }
        for (int i = 0; i < MAX_CLIENTS; i++)
                pthread_join(s[i].thread, NULL);
        pthread_barrier_destroy(&barrier);
        r1 = idp_stat("token_refresh");
        idp_set("delay_ms", "0");
        for (int i = 0; i < MAX_CLIENTS; i++) {
                if (s[i].token) {
                        ok++;
                        same += s[0].token && streq(s[i].token, s[0].token);
                        lat_add(&l, s[i].ns);
                } else
                        fprintf(stderr, "latchkey-bench: storm GetToken: %s\n", s[i].error);
        }
        row("4", "refresh requests at the IdP", (double)(r1 - r0), "", NAN, NULL, "exactly 1",
            must(r1 - r0 == 1));
        row("4", "callers answered, all with one token", same, "", ok, "answered", "64 of 64",
            must(ok == MAX_CLIENTS && same == MAX_CLIENTS));
        row("4", "storm GetToken p50 (refresh takes 200 ms)", lat_pct(&l, 0.5), "ms", NAN, NULL,
            NULL, V_INFO);
        for (int i = 0; i < MAX_CLIENTS; i++)
                if (s[i].token) {
                        explicit_bzero(s[i].token, strlen(s[i].token));
                        free(s[i].token);
                }
        free(l.v);
        lkh_conn_free(bc);
}
