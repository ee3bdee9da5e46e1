/* SPDX-License-Identifier: MIT */
/*
 * Signing in again inside a session (issue 21 item 4), end to end: a session's refresh token
 * is refused, SessionChanged "expired" comes once, `latchkeyctl watch` shows exactly one
 * desktop notification (a fake org.freedesktop.Notifications on a private session bus records
 * every Notify), `latchkeyctl status` says "your sign-in has expired: sign in again",
 * `latchkeyctl login --session` renews the same session id through the paste flow, and
 * GetToken for that id works again; a second expiry is told once more.
 */
#include <dbus/dbus.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/util.h"
#include "tests/harness/busclient.h"
#include "tests/harness/harness.h"

#ifndef LATCHKEYCTL_PATH
#error "LATCHKEYCTL_PATH must be defined by meson"
#endif

#define SESSION "reauth-1"

static struct lkh *H;
static DBusConnection *bus;
static char *me;
static char *session_bus_address;
static char *notes; /* one line per Notify the fake server got */
static pid_t session_bus_pid, notifier_pid, watch_pid;
static int watch_stderr = -1;
static char *runtime_dir, *path_env, *opened; /* the fake desktop */

/*
 * A desktop for latchkeyctl: $XDG_RUNTIME_DIR of its own and an xdg-open on $PATH that keeps
 * a copy of the file it was given (opened) and its argv (opened.argv).
 */
static int make_desktop(void)
{
        _cleanup_free_ char *bin = lkh_xasprintf("%s/bin", H->dir);
        _cleanup_free_ char *script = lkh_xasprintf("%s/xdg-open", bin);
        FILE *f;

        runtime_dir = lkh_xasprintf("%s/run", H->dir);
        opened = lkh_xasprintf("%s/opened", H->dir);
        path_env = lkh_xasprintf("%s:%s", bin, getenv("PATH") ?: "/usr/bin:/bin");
        if (mkdir(runtime_dir, 0700) < 0 || mkdir(bin, 0755) < 0 || !(f = fopen(script, "we")))
                return -1;
        fprintf(f, "#!/bin/sh\ncp \"$1\" '%s'\necho \"$@\" > '%s.argv'\n", opened, opened);
        if (fclose(f) != 0 || chmod(script, 0755) < 0)
                return -1;
        return 0;
}

/* ---- a private session bus and a fake notification server on it ---- */

static int start_session_bus(void)
{
        _cleanup_free_ char *path = lkh_xasprintf("%s/session-bus", H->dir);
        _cleanup_free_ char *listen = lkh_xasprintf("--address=unix:path=%s", path);
        const char *argv[] = {"/usr/bin/dbus-daemon", "--session", "--nofork", "--nopidfile", listen, NULL};
        struct stat st;

        session_bus_address = lkh_xasprintf("unix:path=%s", path);
        if (lkh_spawn(argv, -1, &session_bus_pid) < 0)
                return -1;
        for (int i = 0; i < 500; i++, lkh_sleep_ms(10))
                if (stat(path, &st) == 0)
                        return 0;
        return -1;
}

/* In a child: owns org.freedesktop.Notifications; each Notify becomes a line in notes. */
static void notifier_main(int ready)
{
        DBusError err = DBUS_ERROR_INIT;
        DBusConnection *c = dbus_connection_open_private(session_bus_address, &err);
        dbus_uint32_t id = 0;

        if (!c || !dbus_bus_register(c, &err) ||
            dbus_bus_request_name(c, "org.freedesktop.Notifications",
                                  DBUS_NAME_FLAG_DO_NOT_QUEUE, &err) !=
                    DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER)
                _exit(1);
        (void)!write(ready, "1", 1);
        close(ready);
        while (dbus_connection_read_write(c, -1)) {
                DBusMessage *m;

                while ((m = dbus_connection_pop_message(c))) {
                        const char *app, *icon, *summary, *body;
                        dbus_uint32_t replaces;

                        if (dbus_message_is_method_call(m, "org.freedesktop.Notifications",
                                                        "Notify") &&
                            dbus_message_get_args(m, NULL, DBUS_TYPE_STRING, &app,
                                                  DBUS_TYPE_UINT32, &replaces, DBUS_TYPE_STRING,
                                                  &icon, DBUS_TYPE_STRING, &summary,
                                                  DBUS_TYPE_STRING, &body, DBUS_TYPE_INVALID)) {
                                FILE *f = fopen(notes, "ae");
                                DBusMessage *reply = dbus_message_new_method_return(m);

                                if (f) {
                                        fprintf(f, "%s|%s|%s\n", app, summary, body);
                                        fclose(f);
                                }
                                id++;
                                dbus_message_append_args(reply, DBUS_TYPE_UINT32, &id,
                                                         DBUS_TYPE_INVALID);
                                dbus_connection_send(c, reply, NULL);
                                dbus_message_unref(reply);
                        }
                        dbus_message_unref(m);
                }
        }
        _exit(0);
}

static int start_notifier(void)
{
        int fds[2];
        char ok = 0;

        if (pipe2(fds, O_CLOEXEC) < 0)
                return -1;
        notifier_pid = fork();
        if (notifier_pid < 0)
                return -1;
        if (notifier_pid == 0) {
                close(fds[0]);
                notifier_main(fds[1]);
        }
        close(fds[1]);
        (void)!read(fds[0], &ok, 1);
        close(fds[0]);
        return ok == '1' ? 0 : -1;
}

static unsigned count_notes(void)
{
        FILE *f = fopen(notes, "re");
        unsigned n = 0;
        int c;

        if (!f)
                return 0;
        while ((c = fgetc(f)) != EOF)
                n += c == '\n';
        fclose(f);
        return n;
}

/* Waits up to ms for at least n notifications; how many there are. */
static unsigned wait_notes(unsigned n, long ms)
{
        for (long waited = 0; count_notes() < n && waited < ms; waited += 50)
                lkh_sleep_ms(50);
        return count_notes();
}

/* ---- latchkeyctl ---- */

/* Runs latchkeyctl with LATCHKEY_SESSION and the private session bus in its environment; for
 * `login`, plays the browser for the address it shows and pastes the answer. The exit status;
 * stdout in *ret_out (may be NULL). */
static int latchkeyctl(const char *const *args, char **ret_out, char **ret_err)
{
        const char *argv[8] = {LATCHKEYCTL_PATH};
        int in[2], out[2], err[2], status;
        _cleanup_free_ char *o = NULL, *e = NULL;
        size_t olen = 0, elen = 0, n = 1;
        bool answered = false;
        pid_t pid;

        for (size_t i = 0; args[i] && n < 7; i++)
                argv[n++] = args[i];
        argv[n] = NULL;
        assert_int_equal(pipe2(in, O_CLOEXEC), 0);
        assert_int_equal(pipe2(out, O_CLOEXEC), 0);
        assert_int_equal(pipe2(err, O_CLOEXEC), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                dup2(in[0], STDIN_FILENO);
                dup2(out[1], STDOUT_FILENO);
                dup2(err[1], STDERR_FILENO);
                setenv("LATCHKEY_SESSION", SESSION, 1);
                setenv("DBUS_SESSION_BUS_ADDRESS", session_bus_address, 1);
                /* a desktop: the fake xdg-open of make_desktop() */
                setenv("DISPLAY", ":lkt", 1);
                setenv("XDG_RUNTIME_DIR", runtime_dir, 1);
                setenv("PATH", path_env, 1);
                execv(argv[0], (char *const *)argv);
                _exit(127);
        }
        close(in[0]);
        close(out[1]);
        close(err[1]);
        while (out[0] >= 0 || err[0] >= 0) {
                struct pollfd p[2] = {{.fd = out[0], .events = POLLIN},
                                      {.fd = err[0], .events = POLLIN}};

                assert_true(poll(p, 2, 30000) > 0);
                if (p[0].revents)
                        (void)lkh_read_more(&out[0], &o, &olen, 1 << 20);
                if (p[1].revents)
                        (void)lkh_read_more(&err[0], &e, &elen, 1 << 20);
                if (!answered && e && strstr(e, "https://")) {
                        const char *u = strstr(e, "https://");
                        _cleanup_free_ char *url = strndup(u, strcspn(u, " \n"));
                        _cleanup_free_ char *location = NULL;

                        if (!strchr(u, '\n'))
                                continue; /* the whole line first */
                        assert_int_equal(lkh_browser_login(H, url, me, false, &location, NULL),
                                         0);
                        assert_true(write(in[1], location, strlen(location)) > 0);
                        assert_int_equal(write(in[1], "\n", 1), 1);
                        answered = true;
                }
        }
        close(in[1]);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (e && *e)
                print_message("latchkeyctl %s: %s", args[0], e);
        if (ret_out)
                *ret_out = TAKE_PTR(o);
        if (ret_err)
                *ret_err = TAKE_PTR(e);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* ---- setup ---- */

static int group_setup(void **state)
{
        struct passwd *pw = getpwuid(getuid());
        _cleanup_free_ char *extra = NULL;
        const char *watch_argv[] = {LATCHKEYCTL_PATH, "watch", NULL};

        if (!pw || lkh_new(&H) < 0)
                return -1;
        me = strdup(pw->pw_name);
        notes = lkh_xasprintf("%s/notifications", H->dir);
        extra = lkh_xasprintf("timeout = 2\n[users]\nallowed_users = %s\n"
                              "[offline]\npin = yes\nargon2_memory = 8192\nargon2_time = 1\n",
                              me);
        if (lkh_start_idp(H, NULL) < 0 || lkh_write_config(H, extra) < 0 ||
            lkh_start_bus(H) < 0 || lkh_start_broker(H, NULL) < 0 || start_session_bus() < 0 ||
            start_notifier() < 0 || make_desktop() < 0)
                return -1;
        bus = dbus_bus_get_private(DBUS_BUS_SYSTEM, NULL);
        if (!bus || bc_open_session(H, bus, me, SESSION) < 0)
                return -1;
        /* The desktop's helper, started with the session; ready once it says it watches. */
        {
                int fds[2];
                _cleanup_free_ char *said = NULL;
                size_t len = 0;
                int64_t until = lkh_now_ms() + 15000;

                if (pipe2(fds, O_CLOEXEC) < 0)
                        return -1;
                watch_pid = fork();
                if (watch_pid < 0)
                        return -1;
                if (watch_pid == 0) {
                        dup2(fds[1], STDERR_FILENO);
                        setenv("DBUS_SESSION_BUS_ADDRESS", session_bus_address, 1);
                        execv(watch_argv[0], (char *const *)watch_argv);
                        _exit(127);
                }
                close(fds[1]);
                while (fds[0] >= 0 && !(said && strstr(said, "watching your sessions")) &&
                       lkh_now_ms() < until) {
                        struct pollfd p = {.fd = fds[0], .events = POLLIN};
                        if (poll(&p, 1, 1000) > 0)
                                (void)lkh_read_more(&fds[0], &said, &len, 65536);
                }
                if (!said || !strstr(said, "watching your sessions"))
                        return -1;
                /* its later lines go nowhere: the pipe's reading end stays open, unread */
                watch_stderr = fds[0];
        }
        return 0;
}

static int group_teardown(void **state)
{
        lkh_stop_process(&watch_pid, 2000);
        if (watch_stderr >= 0)
                close(watch_stderr);
        lkh_stop_process(&notifier_pid, 2000);
        lkh_stop_process(&session_bus_pid, 2000);
        if (bus)
                bc_close(bus);
        lkh_free(H);
        free(me);
        free(notes);
        free(session_bus_address);
        free(runtime_dir);
        free(path_env);
        free(opened);
        return 0;
}

/* The provider refuses the refresh token: GetToken says TokenExpired, for good. */
static void expire(void)
{
        _cleanup_free_ char *e = NULL, *e2 = NULL;

        assert_int_equal(lkh_idp_set(H, "refuse_refresh", "400:invalid_grant"), 0);
        e = bc_get_token(bus, SESSION, 86400, NULL, NULL, NULL);
        assert_string_equal(e, "org.latchkey.Broker1.Error.TokenExpired");
        /* asked again: still expired, and no second signal */
        e2 = bc_get_token(bus, SESSION, 0, NULL, NULL, NULL);
        assert_string_equal(e2, "org.latchkey.Broker1.Error.TokenExpired");
        assert_int_equal(lkh_idp_set(H, "refuse_refresh", ""), 0);
}

static void test_expired_renewed_in_the_same_session(void **state)
{
        const char *status_args[] = {"status", NULL};
        const char *login_args[] = {"login", "--session", "--no-qr", NULL};
        _cleanup_free_ char *out = NULL, *err = NULL, *renewed = NULL, *token = NULL, *e = NULL;
        _cleanup_free_ char *text = NULL;
        size_t len = 0;

        assert_int_equal(count_notes(), 0);
        expire();

        /* One notification, plain, saying what to do; none more while it stays expired. */
        assert_int_equal(wait_notes(1, 5000), 1);
        lkh_sleep_ms(1500);
        assert_int_equal(count_notes(), 1);
        {
                int fd = open(notes, O_RDONLY | O_CLOEXEC);
                assert_true(fd >= 0);
                assert_int_equal(lkh_read_more(&fd, &text, &len, 4096), 0);
                if (fd >= 0)
                        close(fd);
        }
        assert_non_null(strstr(text, "latchkey|Sign-in expired|Your sign-in has expired: sign "
                                     "in again with \"latchkeyctl login --session\""));

        /* status says which failure it is, in its one error line, with exit code 4 */
        assert_int_equal(latchkeyctl(status_args, &out, &err), 4);
        assert_true(!out || !*out);
        assert_non_null(err);
        assert_non_null(strstr(err, "latchkeyctl status: your sign-in has expired: sign in "
                                    "again (latchkeyctl login --session) (TokenExpired)\n"));

        /* the same session id, signed in again, without PAM */
        assert_int_equal(latchkeyctl(login_args, &renewed, NULL), 0);
        assert_non_null(renewed);
        assert_string_equal(renewed, SESSION "\n");

        /* on the desktop the browser got the address through a file, never through argv, and
         * the file is gone once the login is over */
        {
                _cleanup_free_ char *page = NULL, *argv_text = NULL;
                _cleanup_free_ char *argv_path = lkh_xasprintf("%s.argv", opened);
                int fd = open(opened, O_RDONLY | O_CLOEXEC), fd2;
                size_t n = 0, n2 = 0;
                DIR *d;
                struct dirent *de;

                assert_true(fd >= 0);
                assert_int_equal(lkh_read_more(&fd, &page, &n, 65536), 0);
                if (fd >= 0)
                        close(fd);
                assert_non_null(strstr(page, "http-equiv=\"refresh\" content=\"0;url=https://"));
                assert_non_null(strstr(page, "&amp;state="));
                fd2 = open(argv_path, O_RDONLY | O_CLOEXEC);
                assert_true(fd2 >= 0);
                assert_int_equal(lkh_read_more(&fd2, &argv_text, &n2, 65536), 0);
                if (fd2 >= 0)
                        close(fd2);
                assert_null(strstr(argv_text, "state="));
                assert_non_null(strstr(argv_text, "/latchkey-login-"));
                d = opendir(runtime_dir);
                assert_non_null(d);
                while ((de = readdir(d)))
                        assert_null(strstr(de->d_name, "latchkey-login-"));
                closedir(d);
        }

        /* the applications' next GetToken works, for the same id */
        e = bc_get_token(bus, SESSION, 0, &token, NULL, NULL);
        assert_null(e);
        assert_true(token && strlen(token) > 10);
        assert_int_equal(count_notes(), 1);

        /* a new expiry is a new notification, once */
        expire();
        assert_int_equal(wait_notes(2, 5000), 2);
        lkh_sleep_ms(1000);
        assert_int_equal(count_notes(), 2);
}

/* Renewing is for one's own session only: an id no one has is NotFound, nothing made. */
static void test_renew_needs_an_own_session(void **state)
{
        const char *argv[] = {"login", "--session", "--no-qr", NULL};
        char **before = bc_list_sessions(bus), **after;
        int status;

        assert_non_null(before);
        setenv("LATCHKEY_SESSION", "no-such-session-lkt", 1);
        {
                /* run without the helper's fixed LATCHKEY_SESSION */
                pid_t pid = fork();
                assert_true(pid >= 0);
                if (pid == 0) {
                        const char *a[] = {LATCHKEYCTL_PATH, argv[0], argv[1], argv[2], NULL};
                        int null = open("/dev/null", O_RDWR);
                        dup2(null, STDIN_FILENO);
                        dup2(null, STDOUT_FILENO);
                        execv(a[0], (char *const *)a);
                        _exit(127);
                }
                assert_int_equal(waitpid(pid, &status, 0), pid);
        }
        unsetenv("LATCHKEY_SESSION");
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 4);
        after = bc_list_sessions(bus);
        assert_non_null(after);
        for (size_t i = 0; after[i]; i++)
                assert_true(bc_strv_has(before, after[i]));
        for (size_t i = 0; before[i]; i++)
                free(before[i]);
        for (size_t i = 0; after[i]; i++)
                free(after[i]);
        free(before);
        free(after);
}

/* ChangePin({session_id}, pin) as latchkeyctl pin sends it. */
static char *change_pin(const char *session_id, const char *pin)
{
        DBusMessage *m = bc_new("ChangePin");
        DBusMessageIter it, dict, entry, v;
        const char *key = "session_id";
        struct bc_reply r;

        dbus_message_iter_init_append(m, &it);
        dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{sv}", &dict);
        dbus_message_iter_open_container(&dict, DBUS_TYPE_DICT_ENTRY, NULL, &entry);
        dbus_message_iter_append_basic(&entry, DBUS_TYPE_STRING, &key);
        dbus_message_iter_open_container(&entry, DBUS_TYPE_VARIANT, "s", &v);
        dbus_message_iter_append_basic(&v, DBUS_TYPE_STRING, &session_id);
        dbus_message_iter_close_container(&entry, &v);
        dbus_message_iter_close_container(&dict, &entry);
        dbus_message_iter_close_container(&it, &dict);
        dbus_message_append_args(m, DBUS_TYPE_STRING, &pin, DBUS_TYPE_INVALID);
        if (bc_call(bus, m, 20000, &r) == 0) {
                bc_reply_clear(&r);
                return NULL;
        }
        return bc_take_error(&r, NULL);
}

/*
 * latchkeyctl status in the words of each failure: the provider stopped while a PIN is
 * ready, then the account refused (a refused refresh with a PIN record).
 */
static void test_status_words(void **state)
{
        const char *status_args[] = {"status", "--session", "reauth-2", NULL};
        const char *third_args[] = {"status", "--session", "reauth-3", NULL};
        _cleanup_free_ char *err = NULL, *err2 = NULL, *e = NULL;
        int code;

        assert_int_equal(lkh_idp_set(H, "expires_in", "1"), 0);
        assert_int_equal(bc_open_session(H, bus, me, "reauth-2"), 0);
        assert_int_equal(lkh_idp_set(H, "expires_in", "3600"), 0);
        e = change_pin("reauth-2", "2468-lkt");
        assert_null(e);
        lkh_sleep_ms(1500); /* the access token has expired: GetToken must refresh */

        assert_int_equal(kill(H->idp_pid, SIGSTOP), 0);
        code = latchkeyctl(status_args, NULL, &err);
        assert_int_equal(kill(H->idp_pid, SIGCONT), 0);
        assert_int_equal(code, 1);
        assert_non_null(strstr(err, "latchkeyctl status: the provider cannot be reached (offline "
                                    "PIN possible until "));
        assert_non_null(strstr(err, "(ProviderUnavailable)\n"));

        /* the provider refuses a session's refresh: with a PIN record, the account is
         * disabled (another session: reauth-2 had its one refresh of 30 s) */
        assert_int_equal(lkh_idp_set(H, "expires_in", "1"), 0);
        assert_int_equal(bc_open_session(H, bus, me, "reauth-3"), 0);
        assert_int_equal(lkh_idp_set(H, "expires_in", "3600"), 0);
        lkh_sleep_ms(1500);
        assert_int_equal(lkh_idp_set(H, "refuse_refresh", "400:invalid_grant"), 0);
        code = latchkeyctl(third_args, NULL, &err2);
        assert_int_equal(lkh_idp_set(H, "refuse_refresh", ""), 0);
        assert_int_equal(code, 4);
        assert_non_null(strstr(err2, "latchkeyctl status: account disabled at the provider"));
        assert_non_null(strstr(err2, "(TokenExpired)\n"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_expired_renewed_in_the_same_session),
                cmocka_unit_test(test_renew_needs_an_own_session),
                cmocka_unit_test(test_status_words),
        };

        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
