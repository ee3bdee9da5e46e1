/* SPDX-License-Identifier: MIT */
/*
 * Group 6: start: the first call to a stopped, activatable broker until its reply, with the
 * state dir of group 5, next to the same with an empty sessions dir.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench/bench.h"

/* The first call to a stopped broker, which the bus activates; returns its duration. */
static int64_t cold_call(DBusConnection *root, const char *session_id, bool want_token)
{
        char err[512];
        DBusMessage *reply;
        int64_t t0, t1;

        lkh_stop_broker(H);
        t0 = now_ns();
        reply = call(root, new_get_token(session_id), err, sizeof(err));
        t1 = now_ns();
        if (want_token && !reply)
                die("GetToken to a stopped broker failed: %s", err);
        if (!want_token && !reply && !strstr(err, "NotFound"))
                die("GetToken to a stopped broker with no sessions failed: %s", err);
        if (reply)
                dbus_message_unref(reply);
        return t1 - t0;
}

void bench_start(DBusConnection *root)
{
        _cleanup_free_ char *dir = xasprintf("%s/sessions", H->state_dir);
        _cleanup_free_ char *aside = xasprintf("%s/sessions.bench", H->state_dir);
        struct lat full = {0}, empty = {0};
        long rss = -1;
        char fig[96];

        snprintf(fig, sizeof(fig), "6. Start: first call to a stopped broker, %d sessions on disk",
                 P.sessions);
        heading(fig);
        if (lkh_stop_process(&H->broker_pid, 5000) < 0)
                die("cannot stop the broker");
        for (int k = 0; k < P.starts; k++) {
                bench_check();
                /* The reference: the same, with an empty sessions dir. */
                if (rename(dir, aside) < 0 || mkdir(dir, 0700) < 0)
                        die("cannot set the sessions aside: %m");
                lat_add(&empty, cold_call(root, "b00000", false));
                lkh_stop_broker(H);
                if (rmdir(dir) < 0 || rename(aside, dir) < 0)
                        die("cannot put the sessions back: %m");
                lat_add(&full, cold_call(root, "b00000", true));
        }
        /* The broker answers first and reads the rest of the sessions after; ListSessions
         * waits until it has them all, so the RSS below is that of every session loaded. */
        {
                char err[512];
                DBusMessage *reply = call(root, bc_new("ListSessions"), err, sizeof(err));

                if (!reply)
                        die("ListSessions after the start failed: %s", err);
                dbus_message_unref(reply);
        }
        rss = vm_rss_kib(broker_pid());
        snprintf(fig, sizeof(fig), "start to first reply, %d sessions (median)", P.sessions);
        row("6", fig, lat_pct(&full, 0.5), "ms", lat_pct(&empty, 0.5), "no sessions",
            "<= 100 ms", check(lat_pct(&full, 0.5) <= 100));
        snprintf(fig, sizeof(fig), "start to first reply, %d sessions (worst)", P.sessions);
        row("6", fig, lat_pct(&full, 1.0), "ms", lat_pct(&empty, 1.0), "no sessions",
            "<= 100 ms", check(lat_pct(&full, 1.0) <= 100));
        snprintf(fig, sizeof(fig), "broker RSS after loading %d sessions", P.sessions);
        row("6", fig, rss / 1024.0, "MiB", NAN, NULL, "<= 64 MiB",
            check(rss >= 0 && rss <= 64 * 1024));
        free(full.v);
        free(empty.v);
}
