/* SPDX-License-Identifier: MIT */
/*
 * latchkeyctl watch: the small helper of a desktop session. It listens for SessionChanged on
 * the system bus and, when one of the caller's sessions expires (its refresh token died), shows
 * one desktop notification (org.freedesktop.Notifications on the session bus, never modal)
 * saying to sign in again with `latchkeyctl login --session`. One per expiry: the session is
 * remembered until it is opened, refreshed or closed again.
 */
#include <dbus/dbus.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/cleanup_dbus.h"
#include "cli/latchkeyctl.h"

#define WATCH_NOTIFIED_MAX 64 /* expired sessions remembered, so none is told twice */
#define NOTIFY_TIMEOUT_MS 5000

static const char options_help[] =
        "Runs until stopped, in a desktop session (e.g. from autostart). When one of\n"
        "your sessions' sign-in expires, shows one desktop notification saying to\n"
        "run `latchkeyctl login --session`; never again for the same expiry.\n\n"
        "Options:\n"
        "  --help    show this help\n";

struct watch {
        struct latchkey *lk;
        DBusConnection *session_bus; /* NULL until the first notification */
        char *notified[WATCH_NOTIFIED_MAX];
        size_t n_notified;
};

static bool was_notified(struct watch *w, const char *id, bool forget)
{
        for (size_t i = 0; i < w->n_notified; i++)
                if (streq(w->notified[i], id)) {
                        if (forget) {
                                free(w->notified[i]);
                                w->notified[i] = w->notified[--w->n_notified];
                        }
                        return true;
                }
        return false;
}

static bool mine(struct watch *w, const char *id)
{
        struct latchkey_session *list = NULL;
        size_t n = 0;
        bool found = false;

        if (latchkey_list_sessions(w->lk, &list, &n) < 0)
                return false;
        for (size_t i = 0; i < n; i++)
                found |= streq(list[i].session_id, id) && list[i].uid == getuid();
        latchkey_free_sessions(list, n);
        return found;
}

/* Notify(app, replaces, icon, summary, body, actions, hints, timeout): one plain message. */
static int notify(struct watch *w, const char *id)
{
        _cleanup_(dbus_message_unrefp) DBusMessage *m = NULL, *reply = NULL;
        const char *app = "latchkey", *icon = "dialog-password", *summary = "Sign-in expired";
        _cleanup_free_ char *body = NULL;
        dbus_uint32_t replaces = 0;
        dbus_int32_t timeout = -1;
        DBusMessageIter it, sub;
        DBusError err = DBUS_ERROR_INIT;

        if (asprintf(&body, "Your sign-in has expired: sign in again with "
                            "\"latchkeyctl login --session\" (session %.64s).", id) < 0)
                return -ENOMEM;
        if (!w->session_bus) {
                w->session_bus = dbus_bus_get_private(DBUS_BUS_SESSION, &err);
                if (!w->session_bus) {
                        fprintf(stderr, "%s watch: no session bus: %s\n", program_name,
                                err.message);
                        dbus_error_free(&err);
                        return -EIO;
                }
                dbus_connection_set_exit_on_disconnect(w->session_bus, FALSE);
        }
        m = dbus_message_new_method_call("org.freedesktop.Notifications",
                                         "/org/freedesktop/Notifications",
                                         "org.freedesktop.Notifications", "Notify");
        if (!m)
                return -ENOMEM;
        dbus_message_iter_init_append(m, &it);
        if (!dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &app) ||
            !dbus_message_iter_append_basic(&it, DBUS_TYPE_UINT32, &replaces) ||
            !dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &icon) ||
            !dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &summary) ||
            !dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &body) ||
            !dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "s", &sub) ||
            !dbus_message_iter_close_container(&it, &sub) ||
            !dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{sv}", &sub) ||
            !dbus_message_iter_close_container(&it, &sub) ||
            !dbus_message_iter_append_basic(&it, DBUS_TYPE_INT32, &timeout))
                return -ENOMEM;
        reply = dbus_connection_send_with_reply_and_block(w->session_bus, m, NOTIFY_TIMEOUT_MS,
                                                          &err);
        if (!reply) {
                fprintf(stderr, "%s watch: the notification failed: %s\n", program_name,
                        err.message);
                dbus_error_free(&err);
                return -EIO;
        }
        return 0;
}

static void on_changed(void *userdata, const char *id, const char *event)
{
        struct watch *w = userdata;

        if (!streq(event, "expired")) {
                /* A session signed in again (or gone): its next expiry is told again. */
                (void)was_notified(w, id, true);
                return;
        }
        if (was_notified(w, id, false) || !mine(w, id))
                return;
        if (notify(w, id) < 0)
                return;
        if (w->n_notified == WATCH_NOTIFIED_MAX) {
                free(w->notified[0]);
                w->notified[0] = w->notified[--w->n_notified];
        }
        w->notified[w->n_notified] = strdup(id);
        if (w->notified[w->n_notified])
                w->n_notified++;
        fprintf(stderr, "%s watch: session %.64s expired; told the desktop\n", program_name, id);
}

int cmd_watch(int argc, char *argv[])
{
        static const struct option longopts[] = {
                { "help", no_argument, NULL, 'h' },
                {},
        };
        struct watch w = {0};
        int c, fd, r;

        opterr = 0;
        while ((c = getopt_long(argc, argv, "+", longopts, NULL)) >= 0) {
                if (c == 'h')
                        return command_help("watch", options_help);
                return usage_error("watch", "unknown option '%s'", argv[optind - 1]);
        }
        if (optind != argc)
                return usage_error("watch", "unexpected argument '%s'", argv[optind]);
        if (latchkey_open(&w.lk) < 0)
                return fail("watch", EXIT_ERROR, "out of memory");
        fd = latchkey_watch_fd(w.lk);
        if (fd < 0) {
                r = fail_lk("watch", w.lk, fd);
                latchkey_close(w.lk);
                return r;
        }
        /* Subscribed: from here no expiry is missed. */
        fprintf(stderr, "%s watch: watching your sessions\n", program_name);
        r = EXIT_OK;
        for (;;) {
                struct pollfd p = {.fd = fd, .events = POLLIN};
                int n = latchkey_dispatch(w.lk, on_changed, &w);

                if (n < 0) {
                        r = fail_lk("watch", w.lk, n);
                        break;
                }
                if (poll(&p, 1, -1) < 0 && errno != EINTR) {
                        r = fail("watch", EXIT_ERROR, "poll: %m");
                        break;
                }
        }
        for (size_t i = 0; i < w.n_notified; i++)
                free(w.notified[i]);
        if (w.session_bus) {
                dbus_connection_close(w.session_bus);
                dbus_connection_unref(w.session_bus);
        }
        latchkey_close(w.lk);
        return r;
}
