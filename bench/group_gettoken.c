/* SPDX-License-Identifier: MIT */
/*
 * Group 1: GetToken on a cached token vs org.freedesktop.DBus.Peer.Ping to the broker,
 * 1 / 8 / 64 concurrent clients (threads, one private connection each), in short cells that
 * alternate between the two; calls/s is the median over the cells.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench/bench.h"

void bench_lookups(DBusConnection **conns)
{
        static const int counts[] = {1, 8, 64};
        char fig[96];

        heading("1. GetToken on a cached token vs Peer.Ping to the broker (closed loop)");
        for (size_t k = 0; k < ELEMENTSOF(counts); k++) {
                int n = counts[k];
                struct lat lp = {0}, lg = {0};
                long errors = 0;
                /* calls/s of each cell: their medians are the throughputs */
                double *rp = xmalloc(sizeof(double) * (size_t)P.rounds);
                double *rg = xmalloc(sizeof(double) * (size_t)P.rounds);
                double p50p, p99p, p50g, p99g, tp, tg;
                char err[256] = "";

                for (int r = 0; r < P.rounds; r++) {
                        for (int o = 0; o < 2; o++) {
                                struct run_result res;
                                /* Ping first in even rounds, GetToken first in odd ones. */
                                enum op op = (o + r) % 2 == 0 ? OP_PING : OP_GET_TOKEN;

                                run_clients(conns, n, op, "bench-main", P.cell_s, 0, &res);
                                lat_merge(op == OP_PING ? &lp : &lg, &res.lat);
                                (op == OP_PING ? rp : rg)[r] =
                                        res.seconds > 0 ? (double)res.calls / res.seconds : 0;
                                errors += res.errors;
                                if (res.errors && !err[0])
                                        snprintf(err, sizeof(err), "%s", res.error);
                                free(res.lat.v);
                        }
                }
                p50p = lat_pct(&lp, 0.50);
                p99p = lat_pct(&lp, 0.99);
                p50g = lat_pct(&lg, 0.50);
                p99g = lat_pct(&lg, 0.99);
                tp = median(rp, P.rounds);
                tg = median(rg, P.rounds);
                snprintf(fig, sizeof(fig), "GetToken p50, %d client%s", n, n > 1 ? "s" : "");
                row("1", fig, p50g, "ms", p50p, "Ping p50", "<= 1.30x Ping",
                    check(p50g <= 1.3 * p50p));
                snprintf(fig, sizeof(fig), "GetToken p99, %d client%s", n, n > 1 ? "s" : "");
                row("1", fig, p99g, "ms", p99p, "Ping p99", NULL, V_INFO);
                snprintf(fig, sizeof(fig), "GetToken calls/s, %d client%s", n, n > 1 ? "s" : "");
                row("1", fig, tg, "1/s", tp, "Ping calls/s", ">= 0.80x Ping",
                    check(tg >= 0.8 * tp));
                if (errors) {
                        snprintf(fig, sizeof(fig), "failed calls, %d clients", n);
                        row("1", fig, (double)errors, "", NAN, NULL, "0", V_FAILED);
                        fprintf(stderr, "latchkey-bench: first error: %s\n", err);
                }
                free(lp.v);
                free(lg.v);
                free(rp);
                free(rg);
        }
}
