/* SPDX-License-Identifier: MIT */
/*
 * Group 7: one offline PIN check (Argon2id, broker/pin_worker.c's lk_pin_verify_now, the work
 * a worker thread does per CheckPin) with the configured parameters: its time, and its peak
 * memory beside argon2_memory; then LK_PIN_THREADS checks at once, as the broker runs them, and
 * the memory they take together. Each measurement runs in a child of its own, so that its peak
 * RSS is its own.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench.h"
#include "broker/pin_record.h"
#include "broker/pin_worker.h"
#include "oidc/config.h"

struct pin_run {
        int64_t ns;      /* wall time of the slowest check */
        double peak_mib; /* the child's peak RSS growth over the checks */
        int r;           /* 0 when every check said "right PIN" */
};

static void *verify_thread(void *hash)
{
        return (void *)(intptr_t)lk_pin_verify_now(hash, "2468-bench");
}

/* In a child: threads checks of the PIN at once. */
static struct pin_run measure(const char *hash, int threads)
{
        struct pin_run run = {.r = -1};
        int fds[2];
        pid_t pid;

        if (pipe(fds) < 0)
                die("pipe: %m");
        pid = fork();
        if (pid < 0)
                die("fork: %m");
        if (pid == 0) {
                struct rusage before, after;
                pthread_t t[LK_PIN_THREADS];
                int64_t start;

                close(fds[0]);
                getrusage(RUSAGE_SELF, &before);
                start = now_ns();
                run.r = 0;
                for (int i = 0; i < threads; i++)
                        start_thread(&t[i], verify_thread, (void *)hash);
                for (int i = 0; i < threads; i++) {
                        void *r;
                        pthread_join(t[i], &r);
                        if ((intptr_t)r != 0)
                                run.r = (int)(intptr_t)r;
                }
                run.ns = now_ns() - start;
                getrusage(RUSAGE_SELF, &after);
                run.peak_mib = (double)(after.ru_maxrss - before.ru_maxrss) / 1024.0;
                (void)!write(fds[1], &run, sizeof(run));
                _exit(0);
        }
        close(fds[1]);
        if (read(fds[0], &run, sizeof(run)) != (ssize_t)sizeof(run))
                run.r = -1;
        close(fds[0]);
        waitpid(pid, NULL, 0);
        return run;
}

void bench_pin(void)
{
        struct lk_config *c = NULL;
        struct lk_error e = {0};
        struct lk_pin_params p;
        char hash[LK_PIN_HASH_MAX + 1], figure[128];
        double config_mib;
        struct lat lat = {0};
        struct pin_run one = {0}, all;
        int n = quick ? 3 : 7;

        heading("7. One offline PIN check (Argon2id) with the default [offline] parameters");
        if (lk_config_load_string("[provider]\nissuer = https://idp.example.com\n"
                                  "client_id = bench\nredirect_uri = https://x.example.com/cb\n",
                                  "defaults", &c, NULL, &e) < 0)
                die("cannot load the default config: %s", e.message);
        p = (struct lk_pin_params){.memory_kib = c->argon2_memory, .time = c->argon2_time,
                                   .lanes = c->argon2_parallelism};
        lk_config_free(c);
        config_mib = p.memory_kib / 1024.0;
        if (lk_pin_hash_now(&p, "2468-bench", hash, sizeof(hash)) < 0)
                die("cannot hash a PIN");

        for (int i = 0; i < n; i++) {
                struct pin_run r = measure(hash, 1);
                if (r.r != 0)
                        die("a PIN check failed (%d)", r.r);
                lat_add(&lat, r.ns);
                if (r.peak_mib > one.peak_mib)
                        one.peak_mib = r.peak_mib;
        }
        snprintf(figure, sizeof(figure), "PIN check p50 (m=%u KiB, t=%u, p=%u)", p.memory_kib,
                 p.time, p.lanes);
        row("7", figure, lat_pct(&lat, 0.50), "ms", NAN, "", "<= 1000 ms (a person waits)",
            check(lat_pct(&lat, 0.50) <= 1000));
        row("7", "PIN check: peak memory", one.peak_mib, "MiB", config_mib, "argon2_memory",
            "<= 1.1x argon2_memory", must(one.peak_mib <= config_mib * 1.1 + 4));

        all = measure(hash, LK_PIN_THREADS);
        if (all.r != 0)
                die("a PIN check failed (%d)", all.r);
        snprintf(figure, sizeof(figure), "%d checks at once (LK_PIN_THREADS): slowest",
                 LK_PIN_THREADS);
        row("7", figure, (double)all.ns / 1e6, "ms", lat_pct(&lat, 0.50), "one check", "info", V_INFO);
        row("7", "... their peak memory together", all.peak_mib, "MiB",
            config_mib * LK_PIN_THREADS, "threads x argon2_memory", "<= 1.1x",
            must(all.peak_mib <= config_mib * LK_PIN_THREADS * 1.1 + 4));
        free(lat.v);
}
