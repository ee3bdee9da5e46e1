/* SPDX-License-Identifier: MIT */
/*
 * Group 11 (--only p): what pam_latchkey.so costs a PAM transaction for a user who is not an
 * SSO user (issue 15, "SSO only where the admin wants it"): sudo's and login's auth stacks with
 * the module (loading it, reading latchkey.conf, looking the user and a group up, PAM_IGNORE)
 * next to the same stacks without it, each the shortest of many transactions, since other work
 * on the machine only ever adds: a handle each time, as logins have.
 * That the module ignores such a user before any bus call is tested by
 * tests/integration/test_pam_auth_update.c, with a broker stub that records every call.
 */
#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench/bench.h"

#define TRANSACTIONS 500

static int no_conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data)
{
        (void)n;
        (void)msg;
        (void)resp;
        (void)data;
        return PAM_CONV_ERR; /* an ignored user is never asked anything */
}

static const struct pam_conv conv = {no_conv, NULL};

static pam_handle_t *start(const char *dir, const char *service, const char *user)
{
        pam_handle_t *ph = NULL;

        if (pam_start_confdir(service, user, &conv, dir, &ph) != PAM_SUCCESS)
                die("pam_start_confdir(%s) failed", service);
        return ph;
}

static void authenticate(pam_handle_t *ph, const char *service)
{
        int r = pam_authenticate(ph, 0);

        if (r != PAM_SUCCESS)
                die("%s: pam_authenticate: %s", service, pam_strerror(ph, r));
}

/* Milliseconds of the shortest whole transaction (start, authenticate, end). */
static double best_transaction(const char *dir, const char *service, const char *user)
{
        int64_t best = INT64_MAX;

        for (int i = 0; i < TRANSACTIONS && !bench_stopping(); i++) {
                int64_t t0 = now_ns();
                pam_handle_t *ph = start(dir, service, user);

                authenticate(ph, service);
                pam_end(ph, PAM_SUCCESS);
                t0 = now_ns() - t0;
                best = t0 < best ? t0 : best;
        }
        return ms(best);
}

void bench_pam(void)
{
        char *with_dir = xasprintf("%s/pam-with.d", H->dir);
        char *plain_dir = xasprintf("%s/pam-plain.d", H->dir);
        char *conf = xasprintf("%s/pam-bench.conf", H->dir);
        char *with = xasprintf("auth optional %s config=%s\nauth required pam_permit.so\n",
                               LK_PAM_MODULE, conf);
        const char *user = users[0].name; /* root: not in [pam] users nor in its group */
        static const char *const services[] = {"sudo", "login"};
        static const char pam_conf[] = "[pam]\nusers = lkbench-nobody\ngroups = nogroup\n";
        static const char plain[] = "auth required pam_permit.so\n";
        double base, cost;

        heading("11. pam_latchkey.so for a user who is not an SSO user, beside the stack "
                "without it");
        /* login's check looks a group up too (the user is in neither list). */
        write_or_die(conf, pam_conf, strlen(pam_conf));
        if (mkdir(with_dir, 0755) < 0 || mkdir(plain_dir, 0755) < 0)
                die("cannot make the PAM folders: %m");
        for (size_t i = 0; i < 2; i++) {
                char *p = xasprintf("%s/%s", with_dir, services[i]);
                char *q = xasprintf("%s/%s", plain_dir, services[i]);

                write_or_die(p, with, strlen(with));
                write_or_die(q, plain, strlen(plain));
                free(p);
                free(q);
        }
        for (size_t i = 0; i < 2; i++) {
                char *figure = xasprintf("%s auth with the module, added (best of %d)",
                                         services[i], TRANSACTIONS);

                base = best_transaction(plain_dir, services[i], user);
                cost = best_transaction(with_dir, services[i], user) - base;
                row("11", figure, cost, "ms", base, "stack without", "<= 1 ms added",
                    check(cost <= 1.0));
                free(figure);
        }
        free(with_dir);
        free(plain_dir);
        free(conf);
        free(with);
}
