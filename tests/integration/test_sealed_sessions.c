/* SPDX-License-Identifier: MIT */
/*
 * Session files sealed at rest, with the real latchkeyd (issue 22 item 4): a key rotation
 * (latchkeyd --rotate-key) whose start is killed (SIGKILL) after two of four files, then a
 * start that finishes it: every session kept, with its tokens; and the sessions dir without its
 * key (as a copy to another machine has it): the broker reads none of them, says why, and leaves
 * the files, so that the key brought back brings the sessions back.
 */
#include <dbus/dbus.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/util.h"
#include "tests/harness/busclient.h"
#include "tests/harness/harness.h"

#define N 4

static int setup(void **state)
{
        return lkh_setup_broker(state, NULL, NULL);
}

static DBusConnection *bus_open(struct lkh *h)
{
        DBusConnection *c = bc_open(h->bus_address);

        assert_non_null(c);
        return c;
}

static char *read_text(const char *path, size_t *ret_len)
{
        FILE *f = fopen(path, "re");
        char *buf = calloc(1, 512 * 1024);
        size_t n;

        assert_non_null(f);
        assert_non_null(buf);
        n = fread(buf, 1, 512 * 1024 - 1, f);
        fclose(f);
        if (ret_len)
                *ret_len = n;
        return buf;
}

/* The number of keys in the key file. */
static int keys_in_file(struct lkh *h)
{
        _cleanup_free_ char *path = lkh_xasprintf("%s/session-key", h->state_dir);
        _cleanup_free_ char *text = read_text(path, NULL);
        int n = 0;

        for (char *p = text; *p; p++)
                n += *p == '\n';
        explicit_bzero(text, strlen(text));
        return n - 1; /* the header line */
}

static void rotate(struct lkh *h)
{
        const char *argv[] = {lkh_latchkeyd_path(), "--rotate-key", "--state-dir", h->state_dir,
                              NULL};
        pid_t pid;
        int status;

        assert_int_equal(lkh_spawn(argv, -1, &pid), 0);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static char *sid_of(int i)
{
        return lkh_xasprintf("sk-%d", i);
}

/* Each session answers GetToken with its token of before; no file holds it. */
static void assert_sessions(struct lkh *h, char *tokens[N])
{
        DBusConnection *c = bus_open(h);

        for (int i = 0; i < N; i++) {
                _cleanup_free_ char *sid = sid_of(i), *t = NULL, *e = NULL, *m = NULL;
                _cleanup_free_ char *path = lkh_xasprintf("%s/sessions/%s.json", h->state_dir, sid);
                _cleanup_free_ char *file = NULL;
                size_t len = 0;

                e = bc_get_token(c, sid, 0, &t, NULL, &m);
                if (e)
                        fail_msg("GetToken %s: %s: %s", sid, e, m);
                assert_string_equal(t, tokens[i]);
                file = read_text(path, &len);
                assert_memory_equal(file, "LKSF", 4);
                assert_null(memmem(file, len, t, strlen(t)));
        }
        bc_close(c);
}

static void test_rotation_killed(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = bus_open(h);
        char *tokens[N];

        for (int i = 0; i < N; i++) {
                _cleanup_free_ char *sid = sid_of(i), *e = NULL;

                assert_int_equal(bc_open_session(h, c, "root", sid), 0);
                e = bc_get_token(c, sid, 0, &tokens[i], NULL, NULL);
                assert_null(e);
        }
        bc_close(c);
        lkh_stop_broker(h);
        assert_int_equal(keys_in_file(h), 1);
        rotate(h);
        assert_int_equal(keys_in_file(h), 2);

        /* A start that dies after sealing two files under the new key, as SIGKILL leaves it. */
        setenv("LATCHKEY_TEST_KILL_AFTER_REWRITES", "2", 1);
        (void)lkh_start_broker(h, NULL);
        for (int i = 0; i < 100 && lkh_broker_pid(h) > 0; i++)
                lkh_sleep_ms(50);
        unsetenv("LATCHKEY_TEST_KILL_AFTER_REWRITES");
        lkh_stop_broker(h);
        assert_int_equal(keys_in_file(h), 2);

        /* The next start finishes it: every session, one key left. */
        assert_int_equal(lkh_start_broker(h, NULL), 0);
        assert_sessions(h, tokens);
        assert_int_equal(keys_in_file(h), 1);
        for (int i = 0; i < N; i++)
                free(tokens[i]);
}

static void test_without_the_key(void **state)
{
        struct lkh *h = *state;
        _cleanup_free_ char *key = lkh_xasprintf("%s/session-key", h->state_dir);
        _cleanup_free_ char *aside = lkh_xasprintf("%s/session-key.away", h->state_dir);
        _cleanup_free_ char *log_path = lkh_xasprintf("%s/broker-nokey.log", h->dir);
        _cleanup_free_ char *log = NULL;
        char *tokens[N];
        DBusConnection *c = bus_open(h);

        for (int i = 0; i < N; i++) {
                _cleanup_free_ char *sid = sid_of(i), *e = NULL;

                e = bc_get_token(c, sid, 0, &tokens[i], NULL, NULL);
                assert_null(e);
        }
        bc_close(c);
        lkh_stop_broker(h);
        assert_int_equal(rename(key, aside), 0);
        assert_int_equal(
            lkh_start_broker_logging(h, (const char *const[]){"--debug", NULL}, log_path), 0);
        c = bus_open(h);
        {
                _cleanup_strv_ char **l = bc_list_sessions(c);

                for (int i = 0; i < N; i++) {
                        _cleanup_free_ char *sid = sid_of(i);

                        assert_false(bc_strv_has(l, sid));
                }
        }
        bc_close(c);
        lkh_stop_broker(h);
        log = read_text(log_path, NULL);
        assert_non_null(strstr(log, "is sealed under key"));
        assert_non_null(strstr(log, "leaving it in place"));
        for (int i = 0; i < N; i++) {
                _cleanup_free_ char *sid = sid_of(i);
                _cleanup_free_ char *path = lkh_xasprintf("%s/sessions/%s.json", h->state_dir, sid);

                assert_int_equal(access(path, F_OK), 0);
        }

        /* The key back: the sessions back. */
        assert_int_equal(rename(aside, key), 0);
        assert_int_equal(lkh_start_broker(h, NULL), 0);
        assert_sessions(h, tokens);
        for (int i = 0; i < N; i++)
                free(tokens[i]);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_rotation_killed),
            cmocka_unit_test(test_without_the_key),
        };

        return cmocka_run_group_tests(tests, setup, lkh_teardown);
}
