/* SPDX-License-Identifier: MIT */
/*
 * Group 10 (--only 0): the device flow (RFC 8628): from the person's approval at the provider to the
 * WaitLogin reply, beside the poll interval it must stay within (issue 19: a device-flow
 * login completes within one poll interval of approval). A stack of its own, whose provider
 * offers the device flow (so flow = auto picks it), polled every DEVICE_INTERVAL_S.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"

#define DEVICE_INTERVAL_S 1

static struct lkh *D;

static long device_polls(void)
{
        long v = 0;

        if (lkh_idp_stat(D, "token_device", &v) < 0)
                die("cannot read the IdP counter token_device");
        return v;
}

/* One login: BeginLogin, WaitLogin sent, the approval, the reply; the approval-to-reply time. */
static int64_t device_login(DBusConnection *c)
{
        _cleanup_free_ char *id = NULL, *url = NULL, *e = NULL;
        const char *user = "root", *idp;
        DBusPendingCall *pending = NULL;
        DBusMessage *m, *reply;
        int64_t approved, answered;

        e = bc_begin_login(c, user, &id, &url);
        if (e)
                die("device BeginLogin failed: %s", e);
        m = bc_new("WaitLogin");
        idp = id;
        if (!m || !dbus_message_append_args(m, DBUS_TYPE_STRING, &idp, DBUS_TYPE_INVALID) ||
            !dbus_connection_send_with_reply(c, m, &pending, CALL_TIMEOUT_MS) || !pending)
                die("cannot send WaitLogin");
        dbus_message_unref(m);
        dbus_connection_flush(c);
        /* The person signs in on the phone some time into the polling. */
        lkh_sleep_ms(300 + rand() % 700);
        if (lkh_device_approve(D, url, user, false) < 0)
                die("the test IdP did not take the approval");
        approved = now_ns();
        dbus_pending_call_block(pending);
        answered = now_ns();
        reply = dbus_pending_call_steal_reply(pending);
        dbus_pending_call_unref(pending);
        if (!reply || dbus_message_get_type(reply) != DBUS_MESSAGE_TYPE_METHOD_RETURN)
                die("WaitLogin failed: %s", reply ? dbus_message_get_error_name(reply) : "none");
        dbus_message_unref(reply);
        e = bc_call_s(c, "CancelLogin", id, NULL, NULL, NULL);
        return answered - approved;
}

void bench_device(void)
{
        int n = quick ? 3 : 20;
        struct lat lat = {0};
        DBusConnection *c;
        double interval_ms = DEVICE_INTERVAL_S * 1000.0, worst;
        _cleanup_free_ char *interval = xasprintf("%d", DEVICE_INTERVAL_S);

        heading("10. device flow: approval to WaitLogin's reply");
        if (lkh_new(&D) < 0 || lkh_start_idp(D, NULL) < 0 ||
            lkh_idp_set(D, "device_discovery", "1") < 0 ||
            lkh_idp_set(D, "device_interval", interval) < 0 ||
            lkh_write_config(D, USERS_CONFIG) < 0 || lkh_start_bus(D) < 0 ||
            lkh_start_broker(D, NULL) < 0)
                die("cannot start the device-flow stack");
        c = bc_open(D->bus_address);
        if (!c)
                die("cannot connect to the device-flow stack's bus");
        for (int i = 0; i < n && !bench_stopping(); i++)
                lat_add(&lat, device_login(c));
        bench_check();
        worst = lat_pct(&lat, 1.0);
        row("10", "approval to login done, median", lat_pct(&lat, 0.5), "ms", interval_ms,
            "poll interval", "<= 1 interval", check(lat_pct(&lat, 0.5) <= interval_ms));
        row("10", "approval to login done, worst", worst, "ms", interval_ms, "poll interval",
            "<= 1 interval", check(worst <= interval_ms));
        row("10", "token polls per login", (double)device_polls() / n, "",
            NAN, "", "info", V_INFO);
        bc_close(c);
        lkh_free(D);
        D = NULL;
        free(lat.v);
}
