/* SPDX-License-Identifier: MIT */
/*
 * Provider text on its way into latchkeyd's log and its D-Bus errors (issue 16 item 9): the
 * test IdP issues a `sub` with a newline (which would forge a whole log line) and a
 * preferred_username with a C1 control and a bidi override (U+202E); the broker's log and the
 * error message show them escaped (\n, \u0085, \u202e), never raw. Runs as root.
 */
#include <dbus/dbus.h>
#include <fcntl.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/util.h"
#include "tests/harness/busclient.h"
#include "tests/harness/harness.h"

static DBusConnection *bus;
static char *broker_log;

static int setup(void **state)
{
        static const char *const args[] = {"--debug", NULL};
        struct lkh *h = NULL;

        if (lkh_new(&h) < 0 || lkh_start_idp(h, NULL) < 0 || lkh_write_config(h, NULL) < 0 ||
            lkh_start_bus(h) < 0)
                goto out;
        if (asprintf(&broker_log, "%s/broker-stderr.log", h->dir) < 0)
                goto out;
        if (lkh_start_broker_logging(h, args, broker_log) < 0)
                goto out;
        bus = bc_open(h->bus_address);
        if (!bus)
                goto out;
        *state = h;
        return 0;
out:
        lkh_free(h);
        return -1;
}

static int teardown(void **state)
{
        bc_close(bus);
        free(broker_log);
        lkh_free(*state);
        return 0;
}

static char *read_log(void)
{
        FILE *f = fopen(broker_log, "re");
        char *buf = calloc(1, 1 << 20);

        assert_non_null(f);
        assert_non_null(buf);
        (void)fread(buf, 1, (1 << 20) - 1, f);
        fclose(f);
        return buf;
}

/* The broker's log once it holds needle (it logs after it answers), up to 10 s. */
static char *log_with(const char *needle)
{
        for (int i = 0; i < 200; i++) {
                char *text = read_log();

                if (strstr(text, needle))
                        return text;
                free(text);
                lkh_sleep_ms(50);
        }
        fprintf(stderr, "the broker's log never held \"%s\":\n%s\n", needle, read_log());
        fail();
        return NULL;
}

/* No line of text starts with prefix. */
static bool no_line_starts(const char *text, const char *prefix)
{
        for (const char *p = text; p; p = strchr(p, '\n')) {
                if (*p == '\n')
                        p++;
                if (strncmp(p, prefix, strlen(prefix)) == 0)
                        return false;
        }
        return true;
}

static void test_sub_newline(void **state)
{
        struct lkh *h = *state;
        _cleanup_free_ char *id = NULL, *text = NULL;

        assert_int_equal(lkh_idp_set(h, "sub", "u1\nLogin forged: root signed in\x1b[2J"), 0);
        id = bc_login(h, bus, "root");
        assert_non_null(id);
        text = log_with("signed in at the provider as sub u1");
        assert_non_null(strstr(text, "as sub u1\\nLogin forged: root signed in\\x1b[2J;"));
        assert_true(no_line_starts(text, "Login forged"));
        assert_null(strchr(text, '\x1b'));
        free(bc_call_s(bus, "CancelLogin", id, NULL, NULL, NULL));
        assert_int_equal(lkh_idp_reset(h), 0);
}

static void test_username_bidi(void **state)
{
        struct lkh *h = *state;
        _cleanup_free_ char *id = NULL, *url = NULL, *location = NULL, *e = NULL, *msg = NULL;
        _cleanup_free_ char *text = NULL;
        const char *escaped = "r\\u0085o\\u202eot";

        assert_int_equal(lkh_idp_set(h, "id_token_user", "r\xc2\x85o\xe2\x80\xaeot"), 0);
        e = bc_begin_login(bus, "root", &id, &url);
        assert_null(e);
        assert_int_equal(lkh_browser_login(h, url, "root", false, &location, NULL), 0);
        e = bc_call_s(bus, "CompleteLogin", id, location, NULL, &msg);
        assert_non_null(e);
        assert_string_equal(e, BC_ERR("UserMismatch"));
        assert_non_null(msg);
        if (!strstr(msg, escaped))
                fprintf(stderr, "the error says: %s\n", msg);
        assert_non_null(strstr(msg, escaped));
        assert_null(strstr(msg, "\xe2\x80\xae"));
        assert_null(strstr(msg, "\xc2\x85"));

        text = log_with(escaped);
        assert_null(strstr(text, "\xe2\x80\xae"));
        assert_null(strstr(text, "\xc2\x85"));
        free(bc_call_s(bus, "CancelLogin", id, NULL, NULL, NULL));
        assert_int_equal(lkh_idp_reset(h), 0);
}

/*
 * The bus's own words on their way in (issue 18): a caller gone before the broker asks the
 * bus who it is. The broker is stopped while the call reaches the bus, so that it asks only
 * once the caller has left; the log then names the bus's error and its message, escaped,
 * not "out of memory" or nothing.
 */
static void test_unidentified_caller(void **state)
{
        struct lkh *h = *state;
        _cleanup_free_ char *text = NULL;
        DBusConnection *gone;
        DBusMessage *m;

        assert_int_equal(kill(h->broker_pid, SIGSTOP), 0);
        gone = bc_open(h->bus_address);
        assert_non_null(gone);
        m = bc_new("ListSessions");
        assert_non_null(m);
        assert_true(dbus_connection_send(gone, m, NULL));
        dbus_message_unref(m);
        dbus_connection_flush(gone);
        bc_close(gone);
        assert_int_equal(kill(h->broker_pid, SIGCONT), 0);

        text = log_with("Cannot tell who sent 1 call(s): the bus answered "
                        "org.freedesktop.DBus.Error.NameHasNoOwner: ");
        /* And the broker goes on. */
        lk_strv_free(bc_list_sessions(bus));
        assert_int_equal(kill(h->broker_pid, 0), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_sub_newline),
                cmocka_unit_test(test_username_bidi),
                cmocka_unit_test(test_unidentified_caller),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
