/* SPDX-License-Identifier: MIT */
/*
 * latchkeyd's start with many sessions on disk (broker/session_store.c, lazy loading): the broker
 * takes its bus name at once and reads the session files in slices; a call naming a session
 * reads that file on demand, ListSessions and GetToken without session_id wait for the end.
 *
 * A few real sessions are opened through the broker, then one of its files is copied under
 * 3,000 new ids (same boot id, so they are valid); the first file of the listing is made
 * corrupt, one of another boot is added. The broker is then started by D-Bus activation with
 * four calls already queued. Runs as root; the second uid is nobody (65534).
 */
#include <dbus/dbus.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/util.h"
#include "tests/harness/busclient.h"
#include "tests/harness/harness.h"
#include "tests/harness/session_files.h"

#define N_COPIES 3000
#define COPY_FMT "st-%04d"
#define NOBODY 65534

static char *sessions_path(struct lkh *h, const char *id, const char *suffix)
{
        return lkh_xasprintf("%s/sessions/%s%s", h->state_dir, id, suffix);
}

static json_t *read_session(struct lkh *h, const char *id)
{
        json_t *o = lkh_read_session(h, id);

        if (!o)
                fail_msg("cannot read session %s", id);
        return o;
}

/* Written in place, sealed as the broker would, as the broker would find it after a crash-free
 * stop. */
static void write_session(struct lkh *h, const char *id, json_t *o)
{
        assert_int_equal(lkh_write_session(h, id, o), 0);
}

static void write_text(struct lkh *h, const char *id, const char *text)
{
        _cleanup_free_ char *path = sessions_path(h, id, ".json");
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        assert_int_equal(close(fd), 0);
}

static void set_int(json_t *o, const char *key, json_int_t v)
{
        assert_int_equal(json_object_set_new(o, key, json_integer(v)), 0);
}

static void set_str(json_t *o, const char *key, const char *v)
{
        assert_int_equal(json_object_set_new(o, key, json_string(v)), 0);
}

/* The copies' ids in the order readdir() gives them, which is the order the broker reads. */
static char **copies_in_listing_order(struct lkh *h, size_t *ret_n)
{
        _cleanup_free_ char *dir = lkh_xasprintf("%s/sessions", h->state_dir);
        DIR *d = opendir(dir);
        struct dirent *de;
        char **ids = calloc(N_COPIES + 1, sizeof(char *));
        size_t n = 0;

        assert_non_null(d);
        assert_non_null(ids);
        while ((de = readdir(d))) {
                size_t len = strlen(de->d_name);

                if (len != strlen("st-0000.json") || strncmp(de->d_name, "st-", 3) != 0 ||
                    strspn(de->d_name + 3, "0123456789") != 4 || !lk_endswith(de->d_name, ".json"))
                        continue;
                assert_true(n < N_COPIES);
                ids[n] = strndup(de->d_name, len - 5);
                assert_non_null(ids[n]);
                n++;
        }
        closedir(d);
        *ret_n = n;
        return ids;
}

static void strv_free(char **l)
{
        for (size_t i = 0; l && l[i]; i++)
                free(l[i]);
        free(l);
}

static size_t strv_len(char **l)
{
        size_t n = 0;

        while (l && l[n])
                n++;
        return n;
}

/* Calls sent at once, their replies taken in the order they arrive (not pending calls: libdbus
 * completes those in the order one waits for them, which hides the order of the replies). */
enum { Q_LIST, Q_NAMED, Q_CLOSE, Q_LATEST, Q_N };

struct queued {
        dbus_uint32_t serial[Q_N];
        DBusMessage *reply[Q_N];
        int arrived[Q_N]; /* 1 for the first reply to arrive, ... */
};

static void send_call(DBusConnection *c, DBusMessage *m, struct queued *q, int k)
{
        assert_true(dbus_connection_send(c, m, &q->serial[k]));
        dbus_message_unref(m);
}

static void collect_replies(DBusConnection *c, struct queued *q, int64_t limit_ms)
{
        int64_t end = lkh_now_ms() + limit_ms;
        int got = 0;

        while (got < Q_N) {
                DBusMessage *m;

                if (lkh_now_ms() > end)
                        fail_msg("only %d of %d replies within %lld ms", got, Q_N,
                                 (long long)limit_ms);
                assert_true(dbus_connection_read_write(c, 100));
                while ((m = dbus_connection_pop_message(c))) {
                        int t = dbus_message_get_type(m);
                        int k = Q_N;

                        if (t == DBUS_MESSAGE_TYPE_METHOD_RETURN || t == DBUS_MESSAGE_TYPE_ERROR)
                                for (k = 0; k < Q_N; k++)
                                        if (q->serial[k] == dbus_message_get_reply_serial(m))
                                                break;
                        if (k == Q_N || q->reply[k]) {
                                dbus_message_unref(m);
                                continue;
                        }
                        q->reply[k] = m;
                        q->arrived[k] = ++got;
                }
        }
}

/* The token of a GetToken reply; fails the test on an error reply. */
static char *token_of(DBusMessage *m)
{
        DBusError err;
        const char *token, *type;
        dbus_int64_t exp;
        char *out;

        assert_non_null(m);
        dbus_error_init(&err);
        if (dbus_set_error_from_message(&err, m))
                fail_msg("GetToken: %s: %s", err.name, err.message);
        assert_true(dbus_message_get_args(m, NULL, DBUS_TYPE_STRING, &token, DBUS_TYPE_INT64, &exp,
                                          DBUS_TYPE_STRING, &type, DBUS_TYPE_INVALID));
        out = strdup(token);
        return out;
}

/* The error name of a reply, or NULL for a method return. */
static char *error_of(DBusMessage *m)
{
        assert_non_null(m);
        if (dbus_message_get_type(m) == DBUS_MESSAGE_TYPE_ERROR)
                return strdup(dbus_message_get_error_name(m));
        return NULL;
}

static char **list_of(DBusMessage *m)
{
        assert_non_null(m);
        assert_int_equal(dbus_message_get_type(m), DBUS_MESSAGE_TYPE_METHOD_RETURN);
        return bc_session_ids(m);
}

static int setup(void **state)
{
        struct lkh *h = NULL;

        if (lkh_new(&h) < 0 || lkh_start_idp(h, NULL) < 0 ||
            lkh_write_config(h, "[sessions]\nrefresh_margin = 60\n") < 0 || lkh_start_bus(h) < 0 ||
            lkh_start_broker(h, NULL) < 0) {
                lkh_free(h);
                return -1;
        }
        *state = h;
        return 0;
}

static void test_start_with_many_sessions(void **state)
{
        static const char *const real[] = {"real-1", "real-2", "real-nobody"};
        struct lkh *h = *state;
        int64_t t_start = lkh_now_ms(), t_seeded, t_replies;
        struct queued q = {0};
        DBusConnection *c;
        DBusMessage *m;
        json_t *proto;
        json_int_t t0 = (json_int_t)time(NULL);
        _cleanup_free_ char *first_aside = NULL, *first_file = NULL, *victim_file = NULL;
        _cleanup_free_ char *old_boot_file = NULL, *tok = NULL, *err = NULL, *want = NULL;
        char **ids, **list;
        const char *first, *named, *victim, *newest;
        size_t n_ids;

        /* Three real sessions, through the broker; then it stops. */
        c = bc_open(h->bus_address);
        assert_non_null(c);
        assert_int_equal(bc_open_session(h, c, "root", real[0]), 0);
        assert_int_equal(bc_open_session(h, c, "root", real[1]), 0);
        assert_int_equal(bc_open_session(h, c, "nobody", real[2]), 0);
        bc_close(c);
        lkh_stop_broker(h);

        /* Older than any copy's opened_at, so the newest is one of the copies. */
        for (size_t i = 0; i < ELEMENTSOF(real); i++) {
                json_t *o = read_session(h, real[i]);

                set_int(o, "opened_at", t0 - 100000);
                write_session(h, real[i], o);
                json_decref(o);
        }

        /* The copies: the broker's own format and boot id, each with its own token. */
        proto = read_session(h, real[0]);
        assert_non_null(json_object_get(proto, "boot_id"));
        for (int i = 0; i < N_COPIES; i++) {
                char id[32], token[48];

                snprintf(id, sizeof(id), COPY_FMT, i);
                snprintf(token, sizeof(token), "token-of-%s", id);
                set_str(proto, "session_id", id);
                set_str(proto, "access_token", token);
                set_int(proto, "opened_at", t0 - 1000 - i);
                write_session(h, id, proto);
        }
        /* One of another boot: dropped and removed. */
        set_str(proto, "session_id", "st-oldboot");
        set_str(proto, "boot_id", "00000000-0000-0000-0000-000000000000");
        write_session(h, "st-oldboot", proto);
        json_decref(proto);
        old_boot_file = sessions_path(h, "st-oldboot", ".json");

        /*
         * In the order the broker reads them: the first is made corrupt (the load must go on
         * past it); near the end, one is asked for by id, one is closed during the load, and
         * one becomes the newest (for GetToken without session_id).
         */
        ids = copies_in_listing_order(h, &n_ids);
        assert_int_equal(n_ids, N_COPIES);
        first = ids[0];
        named = ids[n_ids - 1];
        victim = ids[n_ids - 2];
        newest = ids[n_ids - 3];
        write_text(h, first, "{\"version\": 1, \"session_id\": \"");
        {
                json_t *o = read_session(h, newest);

                set_int(o, "opened_at", t0);
                write_session(h, newest, o);
                json_decref(o);
        }
        first_file = sessions_path(h, first, ".json");
        first_aside = sessions_path(h, first, ".json.corrupt");
        victim_file = sessions_path(h, victim, ".json");
        t_seeded = lkh_now_ms();

        /*
         * Queued before the broker runs: the first call activates it. ListSessions goes first
         * and must wait for the whole load; the calls naming sessions must not.
         */
        c = bc_open(h->bus_address);
        assert_non_null(c);
        send_call(c, bc_new("ListSessions"), &q, Q_LIST);
        m = bc_new("GetToken");
        bc_append_options(m, named, 0);
        send_call(c, m, &q, Q_NAMED);
        m = bc_new("CloseSession");
        assert_true(dbus_message_append_args(m, DBUS_TYPE_STRING, &victim, DBUS_TYPE_INVALID));
        send_call(c, m, &q, Q_CLOSE);
        m = bc_new("GetToken");
        bc_append_options(m, NULL, 0);
        send_call(c, m, &q, Q_LATEST);
        dbus_connection_flush(c);
        collect_replies(c, &q, 15000);
        t_replies = lkh_now_ms();
        print_message("seeded %d files in %lld ms; all replies %lld ms later, in the order "
                      "ListSessions %d, named GetToken %d, CloseSession %d, GetToken %d\n",
                      N_COPIES, (long long)(t_seeded - t_start),
                      (long long)(t_replies - t_seeded), q.arrived[Q_LIST], q.arrived[Q_NAMED],
                      q.arrived[Q_CLOSE], q.arrived[Q_LATEST]);

        tok = token_of(q.reply[Q_NAMED]);
        want = lkh_xasprintf("token-of-%s", named);
        assert_string_equal(tok, want);
        /*
         * Answered before ListSessions, which was sent first: served while the load ran, and
         * ListSessions (and GetToken without session_id) waited for its end.
         */
        assert_true(q.arrived[Q_NAMED] < q.arrived[Q_LIST]);
        assert_true(q.arrived[Q_CLOSE] < q.arrived[Q_LIST]);
        assert_true(q.arrived[Q_LIST] < q.arrived[Q_LATEST]);

        err = error_of(q.reply[Q_CLOSE]);
        if (err)
                fail_msg("CloseSession(%s): %s", victim, err);
        assert_int_not_equal(access(victim_file, F_OK), 0);

        list = list_of(q.reply[Q_LIST]);
        /* Every copy but the corrupt one and the closed one, and the real ones. */
        assert_int_equal(strv_len(list), N_COPIES - 2 + ELEMENTSOF(real));
        assert_true(bc_strv_has(list, named));
        assert_true(bc_strv_has(list, newest));
        assert_true(bc_strv_has(list, ids[1]));
        for (size_t i = 0; i < ELEMENTSOF(real); i++)
                assert_true(bc_strv_has(list, real[i]));
        assert_false(bc_strv_has(list, first));
        assert_false(bc_strv_has(list, victim));
        assert_false(bc_strv_has(list, "st-oldboot"));
        strv_free(list);

        /* The newest by opened_at, though read late. */
        free(tok);
        tok = token_of(q.reply[Q_LATEST]);
        free(want);
        want = lkh_xasprintf("token-of-%s", newest);
        assert_string_equal(tok, want);

        /* The corrupt file set aside, the old boot's removed. */
        assert_int_equal(access(first_aside, F_OK), 0);
        assert_int_not_equal(access(first_file, F_OK), 0);
        assert_int_not_equal(access(old_boot_file, F_OK), 0);

        for (int k = 0; k < Q_N; k++)
                dbus_message_unref(q.reply[k]);

        /* The closed one is gone for good: not in memory, not after the next start. */
        free(err);
        err = bc_get_token(c, victim, 0, NULL, NULL, NULL);
        assert_non_null(err);
        assert_string_equal(err, BC_ERR("NotFound"));
        bc_close(c);
        lkh_stop_broker(h);

        c = bc_open(h->bus_address);
        assert_non_null(c);
        list = bc_list_sessions(c);
        assert_non_null(list);
        assert_int_equal(strv_len(list), N_COPIES - 2 + ELEMENTSOF(real));
        assert_false(bc_strv_has(list, victim));
        assert_true(bc_strv_has(list, named));
        strv_free(list);
        bc_close(c);

        strv_free(ids);
        print_message("whole test: %lld ms\n", (long long)(lkh_now_ms() - t_start));
        assert_true(lkh_now_ms() - t_start < 20000 || getenv("LATCHKEY_TEST_VALGRIND"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_start_with_many_sessions),
        };

        if (geteuid() != 0) {
                fprintf(stderr, "test-startup needs root (a second uid, a system-like bus); "
                                "skipping\n");
                return 77;
        }
        return cmocka_run_group_tests_name("broker start, 3,000 sessions on disk", tests, setup,
                                           lkh_teardown);
}
