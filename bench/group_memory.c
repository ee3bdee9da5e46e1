/* SPDX-License-Identifier: MIT */
/*
 * Group 5: broker RSS with many open sessions (made by real logins, for the bench's accounts
 * in turn), and its growth over many GetToken calls.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench/bench.h"

#define MAKERS 16 /* root's pending logins at once: SPEC §4 allows 16 per uid */

struct maker {
        pthread_t thread;
        DBusConnection *conn;
        int first, step, total;
};

static void *maker_run(void *userdata)
{
        struct maker *m = userdata;
        struct lkh_conn *bc = browser_new();

        for (int i = m->first; i < m->total; i += m->step) {
                char sid[32];

                snprintf(sid, sizeof(sid), "b%05d", i);
                (void)broker_login(m->conn, bc, users[(size_t)i % n_users].name, sid);
        }
        lkh_conn_free(bc);
        return NULL;
}

static char **session_ids(int n, int spread)
{
        char **ids = xmalloc((size_t)spread * sizeof(*ids));

        for (int i = 0; i < spread; i++)
                ids[i] = xasprintf("b%05d", (int)((long)i * n / spread));
        return ids;
}

/* Closed-loop GetToken over several sessions, count calls per client. */
struct spread_worker {
        pthread_t thread;
        DBusConnection *conn;
        char **ids;
        int n_ids;
        long count;
        long errors;
        char error[256];
};

static void *spread_run(void *userdata)
{
        struct spread_worker *w = userdata;

        for (long i = 0; i < w->count && !bench_stopping(); i++) {
                DBusMessage *reply = call(w->conn, new_get_token(w->ids[i % w->n_ids]), w->error,
                                          sizeof(w->error));
                if (reply)
                        dbus_message_unref(reply);
                else
                        w->errors++;
        }
        return NULL;
}

static long spread_calls(DBusConnection **conns, int clients, long total, char **ids, int n_ids)
{
        struct spread_worker w[8];
        long errors = 0;

        for (int i = 0; i < clients; i++) {
                w[i] = (struct spread_worker){.conn = conns[i], .ids = ids, .n_ids = n_ids,
                                              .count = total / clients};
                start_thread(&w[i].thread, spread_run, &w[i]);
        }
        for (int i = 0; i < clients; i++) {
                pthread_join(w[i].thread, NULL);
                errors += w[i].errors;
                if (w[i].errors)
                        fprintf(stderr, "latchkey-bench: GetToken: %s\n", w[i].error);
        }
        bench_check();
        return errors;
}

void bench_memory(DBusConnection **conns)
{
        struct maker mk[MAKERS];
        pid_t pid = broker_pid();
        long rss0, rss1, rss_a, rss_b, errors;
        int64_t t0, t1;
        char **ids;
        int n_ids = 64;
        char fig[96];
        struct run_result rp, rg;

        snprintf(fig, sizeof(fig), "5. Broker memory with %d open sessions", P.sessions);
        heading(fig);
        rss0 = vm_rss_kib(pid);
        t0 = now_ns();
        for (int i = 0; i < MAKERS; i++) {
                mk[i] = (struct maker){.conn = conns[i], .first = i, .step = MAKERS,
                                       .total = P.sessions};
                start_thread(&mk[i].thread, maker_run, &mk[i]);
        }
        for (int i = 0; i < MAKERS; i++)
                pthread_join(mk[i].thread, NULL);
        bench_check();
        t1 = now_ns();
        rss1 = vm_rss_kib(pid);
        snprintf(fig, sizeof(fig), "time to open %d sessions by full logins", P.sessions);
        row("5", fig, (double)(t1 - t0) / 1e9, "s", NAN, NULL, NULL, V_INFO);
        row("5", "logins per second (16 at once)", P.sessions / ((double)(t1 - t0) / 1e9), "1/s",
            NAN, NULL, NULL, V_INFO);
        snprintf(fig, sizeof(fig), "broker RSS with %d sessions", P.sessions);
        row("5", fig, rss1 / 1024.0, "MiB", rss0 / 1024.0, "RSS before", "<= 64 MiB",
            check(rss1 >= 0 && rss1 <= 64 * 1024));

        ids = session_ids(P.sessions, n_ids);
        errors = spread_calls(conns, 8, 2000, ids, n_ids); /* warm-up */
        rss_a = vm_rss_kib(pid);
        errors += spread_calls(conns, 8, P.get_token_calls, ids, n_ids);
        rss_b = vm_rss_kib(pid);
        snprintf(fig, sizeof(fig), "RSS growth over %ld GetToken calls", P.get_token_calls);
        row("5", fig, (rss_b - rss_a) / 1024.0, "MiB", NAN, NULL, "<= 1 MiB",
            check(rss_b - rss_a <= 1024));
        if (errors)
                row("5", "failed GetToken calls", (double)errors, "", NAN, NULL, "0", V_FAILED);

        /* How a lookup fares among that many sessions, next to Ping. */
        run_clients(conns, 1, OP_PING, NULL, P.cell_s, 0, &rp);
        run_clients(conns, 1, OP_GET_TOKEN, ids[n_ids / 2], P.cell_s, 0, &rg);
        snprintf(fig, sizeof(fig), "GetToken p50 among %d sessions, 1 client", P.sessions);
        row("5", fig, lat_pct(&rg.lat, 0.5), "ms", lat_pct(&rp.lat, 0.5), "Ping p50", NULL,
            V_INFO);
        free(rp.lat.v);
        free(rg.lat.v);
        for (int i = 0; i < n_ids; i++)
                free(ids[i]);
        free(ids);
}
