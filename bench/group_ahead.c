/* SPDX-License-Identifier: MIT */
/*
 * Group 7: background refresh under load (issue 22 item 3). The broker restarted with a short
 * refresh_margin; sessions whose refresh times fall one after another within a window of a few
 * seconds; closed-loop callers meanwhile, in cells that alternate GetToken (across those
 * sessions) and Peer.Ping, so that both see the same moments of the run: GetToken's p99 beside
 * Ping's, and the refresh requests the provider saw, one per session.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench.h"

#define AHEAD_MARGIN 10 /* refresh_margin: its quarter, the jitter, is 2 s */
#define AHEAD_CLIENTS 8
#define CELL_NS (250 * 1000 * 1000)
#define PROVIDER_DELAY "20" /* ms each refresh takes at the IdP */

struct ahead_client {
        pthread_t thread;
        DBusConnection *conn;
        char **sids;
        int n_sids, index;
        int64_t start_ns, end_ns;
        struct lat get, ping;
        long errors;
        char error[256];
};

static void *ahead_run(void *userdata)
{
        struct ahead_client *c = userdata;
        DBusMessage *ping = bc_new_ping();
        DBusMessage **gets = xmalloc((size_t)c->n_sids * sizeof(*gets));

        for (int k = 0; k < c->n_sids; k++)
                gets[k] = new_get_token(c->sids[k]);
        for (long i = c->index; !bench_stopping(); i++) {
                int64_t t0 = now_ns();
                bool is_ping = ((t0 - c->start_ns) / CELL_NS) % 2 == 1;
                DBusMessage *m, *reply;

                if (t0 >= c->end_ns)
                        break;
                m = dbus_message_copy(is_ping ? ping : gets[i % c->n_sids]);
                if (!m)
                        die("out of memory");
                reply = call(c->conn, m, c->error, sizeof(c->error));
                if (!reply) {
                        c->errors++;
                        continue;
                }
                dbus_message_unref(reply);
                lat_add(is_ping ? &c->ping : &c->get, now_ns() - t0);
        }
        for (int k = 0; k < c->n_sids; k++)
                dbus_message_unref(gets[k]);
        free(gets);
        dbus_message_unref(ping);
        return NULL;
}

void bench_ahead(DBusConnection *root, DBusConnection **conns)
{
        int n = quick ? 16 : 64;
        double window_s = quick ? 3 : 8;
        _cleanup_free_ char *conf = NULL;
        struct ahead_client c[AHEAD_CLIENTS];
        struct lkh_conn *bc = browser_new();
        char **sids = xmalloc((size_t)n * sizeof(*sids));
        struct lat get = {0}, ping = {0};
        long r0, r1, run0, run1, errors = 0;
        int64_t start, end;
        char fig[96], err[256] = "";

        snprintf(fig, sizeof(fig),
                 "8. Background refresh: %d sessions' refresh times within %.0f s, callers "
                 "meanwhile",
                 n, window_s);
        heading(fig);
        conf = xasprintf(USERS_CONFIG "[sessions]\nrefresh_ahead = yes\nrefresh_margin = %d\n",
                         AHEAD_MARGIN);
        lkh_stop_broker(H);
        if (lkh_write_config(H, conf) < 0 || lkh_start_broker(H, NULL) < 0)
                die("cannot restart the broker with refresh_margin = %d", AHEAD_MARGIN);

        /*
         * Session i is due 3 to 5 s (the jitter) after its login plus i/n of the window: after
         * the last login, so that every refresh falls into the run. Counted from before the
         * logins (their code exchanges are not refreshes).
         */
        r0 = idp_stat("token_refresh");
        for (int i = 0; i < n; i++) {
                char life[32];

                snprintf(life, sizeof(life), "%d", AHEAD_MARGIN + 5 + (int)(window_s * i / n));
                idp_set("expires_in", life);
                sids[i] = xasprintf("bench-ahead-%02d", i);
                (void)broker_login(root, bc, "root", sids[i]);
        }
        /* Each refreshed token lives an hour: one refresh per session. */
        idp_set("expires_in", "3600");
        idp_set("delay_ms", PROVIDER_DELAY);
        run0 = idp_stat("token_refresh");
        start = now_ns();
        end = start + (int64_t)((window_s + 6) * 1e9);
        for (int i = 0; i < AHEAD_CLIENTS; i++) {
                c[i] = (struct ahead_client){.conn = conns[i],
                                             .sids = sids,
                                             .n_sids = n,
                                             .index = i * n / AHEAD_CLIENTS,
                                             .start_ns = start,
                                             .end_ns = end};
                start_thread(&c[i].thread, ahead_run, &c[i]);
        }
        for (int i = 0; i < AHEAD_CLIENTS; i++) {
                pthread_join(c[i].thread, NULL);
                lat_merge(&get, &c[i].get);
                lat_merge(&ping, &c[i].ping);
                errors += c[i].errors;
                if (c[i].errors && !err[0])
                        snprintf(err, sizeof(err), "%s", c[i].error);
                free(c[i].get.v);
                free(c[i].ping.v);
        }
        run1 = idp_stat("token_refresh");
        bench_check();
        /* The last refreshes end (each takes PROVIDER_DELAY at the IdP). */
        for (int64_t deadline = now_ns() + (int64_t)10e9;
             idp_stat("token_refresh") - r0 < n && now_ns() < deadline;)
                usleep(50 * 1000);
        usleep(500 * 1000);
        r1 = idp_stat("token_refresh");
        idp_set("delay_ms", "0");
        if (errors)
                fprintf(stderr, "latchkey-bench: group 8 GetToken: %s\n", err);

        snprintf(fig, sizeof(fig), "GetToken p99 while %d sessions refresh", n);
        row("8", fig, lat_pct(&get, 0.99), "ms", lat_pct(&ping, 0.99), "Ping p99", "<= 3x",
            check(lat_pct(&get, 0.99) <= 3 * lat_pct(&ping, 0.99)));
        row("8", "GetToken p50, the same cells", lat_pct(&get, 0.5), "ms", lat_pct(&ping, 0.5),
            "Ping p50", NULL, V_INFO);
        row("8", "refresh requests at the IdP per session", (double)(r1 - r0) / n, "", NAN, NULL,
            "exactly 1", must(r1 - r0 == n));
        row("8", "of them sent while the callers ran", (double)(run1 - run0), "", (double)n,
            "sessions", NULL, V_INFO);
        row("8", "failed GetToken calls", (double)errors, "", (double)get.n, "calls", "0",
            must(errors == 0));
        for (int i = 0; i < n; i++)
                free(sids[i]);
        free(sids);
        free(get.v);
        free(ping.v);
        lkh_conn_free(bc);
}
