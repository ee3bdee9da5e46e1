/* SPDX-License-Identifier: MIT */
/*
 * liblatchkey and latchkeyctl against the real broker and the test IdP on a
 * private system bus (tests/harness). Runs as root. Every library function,
 * SessionChanged through the watch descriptor, every latchkeyctl command's
 * output and its errors (no session, expired session, no broker), and
 * check-config on broken configurations and a provider that names another
 * issuer.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <dbus/dbus.h>

#include "base/util.h"
#include "lib/latchkey.h"
#include "tests/harness/harness.h"

#ifndef LATCHKEYCTL_PATH
#error "LATCHKEYCTL_PATH must name the latchkeyctl binary"
#endif

#define OUTPUT_MAX (1024 * 1024)

/* ---- running latchkeyctl ---- */

struct proc {
        pid_t pid;
        int in, out, err; /* our ends; -1 once closed */
        char *out_text, *err_text;
        size_t out_len, err_len;
};

/* Starts latchkeyctl with args (NULL-terminated) and extra environment ("K=V" or "K" to
 * unset; NULL-terminated, may be NULL). */
static void proc_start(struct proc *p, const char *const *env, const char *const *args)
{
        int in[2], out[2], err[2];
        const char *argv[32];
        size_t n = 0;

        argv[n++] = LATCHKEYCTL_PATH;
        for (; args && *args && n < ELEMENTSOF(argv) - 1; args++)
                argv[n++] = *args;
        argv[n] = NULL;

        assert_int_equal(pipe2(in, O_CLOEXEC), 0);
        assert_int_equal(pipe2(out, O_CLOEXEC), 0);
        assert_int_equal(pipe2(err, O_CLOEXEC), 0);
        *p = (struct proc){0};
        p->pid = fork();
        assert_true(p->pid >= 0);
        if (p->pid == 0) {
                dup2(in[0], 0);
                dup2(out[1], 1);
                dup2(err[1], 2);
                for (; env && *env; env++) {
                        const char *eq = strchr(*env, '=');

                        if (eq) {
                                char name[128];

                                snprintf(name, sizeof(name), "%.*s", (int)(eq - *env), *env);
                                setenv(name, eq + 1, 1);
                        } else
                                unsetenv(*env);
                }
                execv(argv[0], (char *const *)argv);
                _exit(127);
        }
        close(in[0]);
        close(out[1]);
        close(err[1]);
        p->in = in[1];
        p->out = out[0];
        p->err = err[0];
        p->out_text = calloc(1, 1);
        p->err_text = calloc(1, 1);
        assert_non_null(p->out_text);
        assert_non_null(p->err_text);
}

static void append_fd(int *fd, char **text, size_t *len)
{
        assert_int_equal(lkh_read_more(fd, text, len, OUTPUT_MAX), 0);
}

/* Reads output until stderr holds needle (when not NULL) or both pipes are closed. */
static void proc_read(struct proc *p, const char *needle)
{
        while (p->out >= 0 || p->err >= 0) {
                struct pollfd f[2] = { { .fd = p->out, .events = POLLIN },
                                       { .fd = p->err, .events = POLLIN } };

                if (needle && strstr(p->err_text, needle))
                        return;
                assert_true(poll(f, 2, 60000) > 0);
                if (f[0].revents)
                        append_fd(&p->out, &p->out_text, &p->out_len);
                if (f[1].revents)
                        append_fd(&p->err, &p->err_text, &p->err_len);
        }
}

static void proc_write(struct proc *p, const char *text)
{
        size_t len = strlen(text);

        assert_int_equal(write(p->in, text, len), (ssize_t)len);
}

/* Closes stdin, reads everything, waits; returns the exit code. */
static int proc_finish(struct proc *p)
{
        int status;

        if (p->in >= 0) {
                close(p->in);
                p->in = -1;
        }
        proc_read(p, NULL);
        assert_int_equal(waitpid(p->pid, &status, 0), p->pid);
        assert_true(WIFEXITED(status));
        return WEXITSTATUS(status);
}

static void proc_clear(struct proc *p)
{
        free(p->out_text);
        free(p->err_text);
        *p = (struct proc){0};
}

struct run {
        int code;
        char *out, *err;
};

static void run_clear(struct run *r)
{
        free(r->out);
        free(r->err);
        *r = (struct run){0};
}

/* Runs latchkeyctl to the end; env as for proc_start. */
static struct run run_env(const char *const *env, const char *const *args)
{
        struct proc p;
        struct run r;

        proc_start(&p, env, args);
        r.code = proc_finish(&p);
        r.out = TAKE_PTR(p.out_text);
        r.err = TAKE_PTR(p.err_text);
        proc_clear(&p);
        if (getenv("LATCHKEY_TEST_VERBOSE"))
                fprintf(stderr, "latchkeyctl %s -> %d\n--- out\n%s--- err\n%s---\n",
                        args[0] ? args[0] : "", r.code, r.out, r.err);
        return r;
}

#define RUN(...) run_env(NULL, (const char *const[]){ __VA_ARGS__, NULL })
#define RUN_ENV(env, ...) run_env(env, (const char *const[]){ __VA_ARGS__, NULL })

/* An error: the exit code, nothing on stdout, one line on stderr holding what. */
static void assert_failure(struct run *r, int code, const char *what)
{
        if (r->code != code || !strstr(r->err, what))
                fprintf(stderr, "expected exit %d and '%s'; got %d, stderr: %s", code, what,
                        r->code, r->err);
        assert_int_equal(r->code, code);
        assert_string_equal(r->out, "");
        assert_non_null(strstr(r->err, what));
        assert_non_null(strchr(r->err, '\n'));
        assert_true(strchr(r->err, '\n') == r->err + strlen(r->err) - 1); /* one line */
        assert_int_equal(strncmp(r->err, "latchkeyctl ", 12), 0);
}

static json_t *parse_json(const char *text)
{
        json_error_t jerr;
        json_t *j = json_loads(text, 0, &jerr);

        if (!j)
                fprintf(stderr, "not JSON (%s): %s\n", jerr.text, text);
        assert_non_null(j);
        return j;
}

/* ---- the harness ---- */

static struct lkh *H;

static int setup(void **state)
{
        if (lkh_new(&H) < 0 || lkh_start_idp(H, NULL) < 0 ||
            lkh_write_config(H, "[sessions]\nrefresh_margin = 60\n") < 0 ||
            lkh_start_bus(H) < 0 || lkh_start_broker(H, NULL) < 0) {
                lkh_free(H);
                H = NULL;
                return -1;
        }
        unsetenv("LATCHKEY_SESSION");
        return 0;
}

static int teardown(void **state)
{
        lkh_free(H);
        H = NULL;
        return 0;
}

/* A whole login through the library, and a session under sid. */
static void open_session(struct latchkey *lk, const char *user, const char *sid)
{
        _cleanup_free_ char *id = NULL, *url = NULL, *location = NULL, *who = NULL;

        assert_int_equal(latchkey_begin_login(lk, user, &id, &url), 0);
        assert_int_equal(strncmp(url, "https://", 8), 0);
        assert_int_equal(lkh_browser_login(H, url, user, false, &location, NULL), 0);
        assert_int_equal(latchkey_complete_login(lk, id, location, &who), 0);
        assert_string_equal(who, user);
        assert_int_equal(latchkey_open_session(lk, id, sid), 0);
}

static void open_session_new(const char *sid)
{
        struct latchkey *lk;

        assert_int_equal(latchkey_open(&lk), 0);
        open_session(lk, "root", sid);
        latchkey_close(lk);
}

/* ---- liblatchkey ---- */

struct events {
        char seen[16][96];
        int n;
};

static void on_changed(void *userdata, const char *sid, const char *event)
{
        struct events *ev = userdata;

        if (ev->n < 16)
                snprintf(ev->seen[ev->n++], sizeof(ev->seen[0]), "%s:%s", sid, event);
}

static bool events_has(const struct events *ev, const char *what)
{
        for (int i = 0; i < ev->n; i++)
                if (streq(ev->seen[i], what))
                        return true;
        return false;
}

/* Waits on the descriptor (as a main loop would) until what arrives, up to 10 s. */
static void wait_event(struct latchkey *lk, int fd, struct events *ev, const char *what)
{
        for (int i = 0; i < 100 && !events_has(ev, what); i++) {
                struct pollfd p = { .fd = fd, .events = POLLIN };

                if (poll(&p, 1, 100) > 0)
                        assert_true(latchkey_dispatch(lk, on_changed, ev) >= 0);
        }
        if (!events_has(ev, what))
                fprintf(stderr, "no SessionChanged %s (saw %d)\n", what, ev->n);
        assert_true(events_has(ev, what));
}

static void test_lib_flow(void **state)
{
        struct latchkey *lk = NULL, *watcher = NULL;
        _cleanup_free_ char *type = NULL, *claims_text = NULL, *version = NULL;
        char *token = NULL, *token2 = NULL;
        struct latchkey_session *list = NULL;
        struct events ev = {0};
        json_t *claims;
        int64_t exp = 0;
        size_t n = 0;
        bool found = false;
        int fd;

        assert_int_equal(latchkey_open(&lk), 0);
        assert_string_equal(latchkey_last_error_message(lk), "");
        assert_int_equal(latchkey_open(&watcher), 0);
        fd = latchkey_watch_fd(watcher);
        assert_true(fd >= 0);
        assert_true(latchkey_dispatch(watcher, on_changed, &ev) >= 0);

        open_session(lk, "root", "lib-1");
        wait_event(watcher, fd, &ev, "lib-1:opened");

        assert_int_equal(latchkey_get_token(lk, "lib-1", 0, &token, &exp, &type), 0);
        assert_true(strlen(token) > 10);
        assert_string_equal(type, "Bearer");
        assert_true(exp > time(NULL) + 600);
        /* No id, no LATCHKEY_SESSION: the broker's default, our newest session. */
        assert_int_equal(latchkey_get_token(lk, NULL, 0, &token2, NULL, NULL), 0);
        assert_string_equal(token, token2);
        latchkey_free_secret(token2);
        /* LATCHKEY_SESSION is honoured. */
        setenv("LATCHKEY_SESSION", "no-such-session", 1);
        assert_int_equal(latchkey_get_token(lk, NULL, 0, &token2, NULL, NULL),
                         LATCHKEY_ERROR_NOT_FOUND);
        setenv("LATCHKEY_SESSION", "lib-1", 1);
        assert_int_equal(latchkey_get_token(lk, NULL, 0, &token2, NULL, NULL), 0);
        assert_string_equal(token, token2);
        latchkey_free_secret(token2);
        unsetenv("LATCHKEY_SESSION");
        /* Output parameters may be NULL. */
        assert_int_equal(latchkey_get_token(lk, "lib-1", 0, NULL, NULL, NULL), 0);

        assert_int_equal(latchkey_get_claims(lk, "lib-1", &claims_text), 0);
        claims = parse_json(claims_text);
        assert_string_equal(json_string_value(json_object_get(claims, "preferred_username")),
                            "root");
        assert_string_equal(json_string_value(json_object_get(claims, "iss")), H->issuer);
        json_decref(claims);

        assert_int_equal(latchkey_list_sessions(lk, &list, &n), 0);
        for (size_t i = 0; i < n; i++)
                if (streq(list[i].session_id, "lib-1")) {
                        found = true;
                        assert_string_equal(list[i].user, "root");
                        assert_int_equal(list[i].uid, 0);
                        assert_true(list[i].opened_at > time(NULL) - 120);
                        assert_int_equal(list[i].expires_at, exp);
                }
        assert_true(found);
        latchkey_free_sessions(list, n);

        assert_int_equal(latchkey_broker_version(lk, &version), 0);
        assert_string_equal(version, LATCHKEY_VERSION);

        /* CloseSession, and its signal through the descriptor. */
        assert_int_equal(latchkey_close_session(lk, "lib-1"), 0);
        wait_event(watcher, fd, &ev, "lib-1:closed");
        assert_int_equal(latchkey_get_token(lk, "lib-1", 0, &token2, NULL, NULL),
                         LATCHKEY_ERROR_NOT_FOUND);
        assert_string_not_equal(latchkey_last_error_message(lk), "");
        assert_int_equal(latchkey_get_claims(lk, "lib-1", &claims_text), LATCHKEY_ERROR_NOT_FOUND);
        assert_int_equal(latchkey_close_session(lk, "lib-1"), LATCHKEY_ERROR_NOT_FOUND);

        latchkey_free_secret(token);
        latchkey_close(watcher);
        latchkey_close(lk);
}

static void test_lib_login_errors(void **state)
{
        struct latchkey *lk = NULL;
        _cleanup_free_ char *id = NULL, *url = NULL, *user = NULL;
        char long_id[LATCHKEY_ID_MAX + 2];

        assert_int_equal(latchkey_open(&lk), 0);
        /* A wrong code: the provider refuses it. */
        assert_int_equal(latchkey_begin_login(lk, "root", &id, &url), 0);
        assert_int_equal(latchkey_complete_login(lk, id, "not-a-code", &user),
                         LATCHKEY_ERROR_INVALID_GRANT);
        assert_non_null(strstr(latchkey_last_error_message(lk), "invalid_grant"));
        (void)latchkey_cancel_login(lk, id);
        free(id);
        free(url);
        id = url = NULL;

        /* CancelLogin forgets it. */
        assert_int_equal(latchkey_begin_login(lk, "root", &id, &url), 0);
        assert_int_equal(latchkey_cancel_login(lk, id), 0);
        assert_int_equal(latchkey_complete_login(lk, id, "x", NULL), LATCHKEY_ERROR_NOT_FOUND);
        assert_int_equal(latchkey_open_session(lk, id, "never"), LATCHKEY_ERROR_NOT_FOUND);

        /* An unknown local user. */
        assert_int_equal(latchkey_begin_login(lk, "no-such-user-xyz", &id, &url) < 0, 1);

        /* Checked before anything is sent (libdbus would abort on bad UTF-8). */
        memset(long_id, 'a', sizeof(long_id) - 1);
        long_id[sizeof(long_id) - 1] = '\0';
        assert_int_equal(latchkey_get_token(lk, long_id, 0, NULL, NULL, NULL),
                         LATCHKEY_ERROR_INVALID_ARGUMENT);
        assert_int_equal(latchkey_get_token(lk, "\xff\xfe", 0, NULL, NULL, NULL),
                         LATCHKEY_ERROR_INVALID_ARGUMENT);
        assert_int_equal(latchkey_begin_login(lk, "ro\xc0ot", &id, &url),
                         LATCHKEY_ERROR_INVALID_ARGUMENT);
        assert_int_equal(latchkey_close_session(lk, NULL), LATCHKEY_ERROR_INVALID_ARGUMENT);
        assert_int_equal(latchkey_dispatch(lk, on_changed, NULL), LATCHKEY_ERROR_INVALID_ARGUMENT);

        assert_string_equal(latchkey_error_name(LATCHKEY_ERROR_NO_BROKER), "NoBroker");
        assert_string_equal(latchkey_error_name(LATCHKEY_ERROR_TOKEN_EXPIRED), "TokenExpired");
        assert_string_equal(latchkey_error_name(0), "OK");
        assert_string_equal(latchkey_error_name(-1000), "Unknown");
        assert_string_equal(latchkey_error_name(7), "Unknown");
        latchkey_close(lk);
}

static void test_lib_expired(void **state)
{
        struct latchkey *lk = NULL;
        struct events ev = {0};
        char *token = NULL;
        int fd;

        assert_int_equal(latchkey_open(&lk), 0);
        fd = latchkey_watch_fd(lk);
        assert_true(fd >= 0);
        assert_true(latchkey_dispatch(lk, on_changed, &ev) >= 0);
        open_session(lk, "root", "lib-exp");
        assert_int_equal(lkh_idp_set(H, "refresh_invalid_grant", "1"), 0);
        assert_int_equal(latchkey_get_token(lk, "lib-exp", 7200, &token, NULL, NULL),
                         LATCHKEY_ERROR_TOKEN_EXPIRED);
        assert_null(token);
        wait_event(lk, fd, &ev, "lib-exp:expired");
        assert_int_equal(lkh_idp_reset(H), 0);
        /* It stays expired. */
        assert_int_equal(latchkey_get_token(lk, "lib-exp", 0, &token, NULL, NULL),
                         LATCHKEY_ERROR_TOKEN_EXPIRED);
        assert_int_equal(latchkey_close_session(lk, "lib-exp"), 0);
        latchkey_close(lk);
}

/* ---- forged SessionChanged (issue 16 item 5) ---- */

#define NOBODY 65534

struct forgery {
        char dest[8][64]; /* our own connections' unique names */
        size_t n_dest;
        const char *tag;  /* the session id the forger's signals carry */
};

static DBusConnection *raw_connect(void)
{
        DBusConnection *c = dbus_connection_open_private(H->bus_address, NULL);

        if (c && !dbus_bus_register(c, NULL)) {
                dbus_connection_close(c);
                dbus_connection_unref(c);
                return NULL;
        }
        return c;
}

static void raw_close(DBusConnection *c)
{
        dbus_connection_close(c);
        dbus_connection_unref(c);
}

/* SessionChanged(tag-unicast, "expired") to each of f->dest, and tag-broadcast to everyone; then
 * a round trip to the bus, after which it has routed both. 0 when all was sent. */
static int forge(void *userdata)
{
        const struct forgery *f = userdata;
        DBusConnection *c = raw_connect();
        DBusMessage *m, *reply;
        char sid[96];
        const char *id = sid, *event = "expired";
        int r = 0;

        if (!c)
                return 1;
        for (size_t i = 0; i <= f->n_dest; i++) {
                m = dbus_message_new_signal("/org/latchkey/Broker1", "org.latchkey.Broker1",
                                            "SessionChanged");
                snprintf(sid, sizeof(sid), "%s-%s", f->tag, i < f->n_dest ? "unicast" : "broadcast");
                if (!m || (i < f->n_dest && !dbus_message_set_destination(m, f->dest[i])) ||
                    !dbus_message_append_args(m, DBUS_TYPE_STRING, &id, DBUS_TYPE_STRING, &event,
                                              DBUS_TYPE_INVALID) ||
                    !dbus_connection_send(c, m, NULL))
                        r = 2;
                if (m)
                        dbus_message_unref(m);
        }
        m = dbus_message_new_method_call("org.freedesktop.DBus", "/org/freedesktop/DBus",
                                         "org.freedesktop.DBus", "GetId");
        reply = m ? dbus_connection_send_with_reply_and_block(c, m, 10000, NULL) : NULL;
        if (!reply)
                r = 3;
        else
                dbus_message_unref(reply);
        if (m)
                dbus_message_unref(m);
        raw_close(c);
        return r;
}

/* The unique names of this process's connections to the bus but c's own. */
static void own_connections(DBusConnection *c, struct forgery *f)
{
        DBusMessage *m, *reply;
        DBusMessageIter it, a;

        m = dbus_message_new_method_call("org.freedesktop.DBus", "/org/freedesktop/DBus",
                                         "org.freedesktop.DBus", "ListNames");
        assert_non_null(m);
        reply = dbus_connection_send_with_reply_and_block(c, m, 10000, NULL);
        dbus_message_unref(m);
        assert_non_null(reply);
        assert_true(dbus_message_iter_init(reply, &it));
        dbus_message_iter_recurse(&it, &a);
        for (; dbus_message_iter_get_arg_type(&a) == DBUS_TYPE_STRING; dbus_message_iter_next(&a)) {
                const char *name;
                dbus_uint32_t pid = 0;
                DBusMessage *q, *pr;

                dbus_message_iter_get_basic(&a, &name);
                if (name[0] != ':' || streq(name, dbus_bus_get_unique_name(c)))
                        continue;
                q = dbus_message_new_method_call("org.freedesktop.DBus", "/org/freedesktop/DBus",
                                                 "org.freedesktop.DBus",
                                                 "GetConnectionUnixProcessID");
                assert_non_null(q);
                assert_true(dbus_message_append_args(q, DBUS_TYPE_STRING, &name,
                                                     DBUS_TYPE_INVALID));
                pr = dbus_connection_send_with_reply_and_block(c, q, 10000, NULL);
                dbus_message_unref(q);
                if (pr && dbus_message_get_args(pr, NULL, DBUS_TYPE_UINT32, &pid,
                                                DBUS_TYPE_INVALID) &&
                    pid == (dbus_uint32_t)getpid() && f->n_dest < ELEMENTSOF(f->dest))
                        snprintf(f->dest[f->n_dest++], sizeof(f->dest[0]), "%s", name);
                if (pr)
                        dbus_message_unref(pr);
        }
        dbus_message_unref(reply);
}

/*
 * Another uid (nobody) and another connection of root send SessionChanged "expired" straight
 * to the watching connection, and broadcast one: none of it reaches the application; the
 * broker's own signal does.
 */
static void test_lib_forged_signals(void **state)
{
        struct latchkey *lk = NULL, *watcher = NULL;
        struct forgery f = {0};
        struct events ev = {0};
        DBusConnection *c;
        int fd, result = -1;

        assert_int_equal(latchkey_open(&lk), 0);
        assert_int_equal(latchkey_open(&watcher), 0);
        fd = latchkey_watch_fd(watcher);
        assert_true(fd >= 0);
        assert_true(latchkey_dispatch(watcher, on_changed, &ev) >= 0);

        c = raw_connect();
        assert_non_null(c);
        own_connections(c, &f);
        assert_true(f.n_dest >= 1); /* the watch connection at least */
        raw_close(c);

        f.tag = "forged-nobody";
        assert_int_equal(lkh_run_as(NOBODY, NOBODY, forge, &f, &result), 0);
        assert_int_equal(result, 0);
        f.tag = "forged-root";
        assert_int_equal(forge(&f), 0);

        /* The real one comes after the forgeries (the bus has routed them already). */
        open_session(lk, "root", "lib-forge");
        wait_event(watcher, fd, &ev, "lib-forge:opened");
        assert_true(latchkey_dispatch(watcher, on_changed, &ev) >= 0);
        for (int i = 0; i < ev.n; i++) {
                if (strncmp(ev.seen[i], "forged-", 7) == 0)
                        fprintf(stderr, "delivered a forgery: %s\n", ev.seen[i]);
                assert_int_not_equal(strncmp(ev.seen[i], "forged-", 7), 0);
        }

        assert_int_equal(latchkey_close_session(lk, "lib-forge"), 0);
        wait_event(watcher, fd, &ev, "lib-forge:closed");
        latchkey_close(watcher);
        latchkey_close(lk);
}

/* Separate handles in separate threads are independent. */
static void *token_thread(void *arg)
{
        struct latchkey *lk = NULL;
        intptr_t bad = 0;

        if (latchkey_open(&lk) < 0)
                return (void *)1;
        for (int i = 0; i < 20; i++) {
                char *token = NULL;

                if (latchkey_get_token(lk, "lib-thr", 0, &token, NULL, NULL) < 0 ||
                    !streq(token, (const char *)arg))
                        bad++;
                latchkey_free_secret(token);
        }
        latchkey_close(lk);
        return (void *)bad;
}

static void test_lib_threads(void **state)
{
        struct latchkey *lk = NULL;
        pthread_t t[4];
        char *token = NULL;

        assert_int_equal(latchkey_open(&lk), 0);
        open_session(lk, "root", "lib-thr");
        assert_int_equal(latchkey_get_token(lk, "lib-thr", 0, &token, NULL, NULL), 0);
        for (size_t i = 0; i < ELEMENTSOF(t); i++)
                assert_int_equal(pthread_create(&t[i], NULL, token_thread, token), 0);
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                void *bad;

                assert_int_equal(pthread_join(t[i], &bad), 0);
                assert_null(bad);
        }
        latchkey_free_secret(token);
        assert_int_equal(latchkey_close_session(lk, "lib-thr"), 0);
        latchkey_close(lk);
}

static void test_lib_no_broker(void **state)
{
        _cleanup_free_ char *bad = NULL;
        const char *good = getenv("DBUS_SYSTEM_BUS_ADDRESS");
        _cleanup_free_ char *saved = strdup(good);
        struct latchkey *lk = NULL;
        struct latchkey_session *list;
        size_t n;

        assert_int_equal(asprintf(&bad, "unix:path=%s/no-bus-here", H->dir) > 0, 1);
        setenv("DBUS_SYSTEM_BUS_ADDRESS", bad, 1);
        assert_int_equal(latchkey_open(&lk), 0);
        assert_int_equal(latchkey_get_token(lk, NULL, 0, NULL, NULL, NULL),
                         LATCHKEY_ERROR_NO_BROKER);
        assert_non_null(strstr(latchkey_last_error_message(lk), "system bus"));
        assert_int_equal(latchkey_list_sessions(lk, &list, &n), LATCHKEY_ERROR_NO_BROKER);
        assert_int_equal(latchkey_watch_fd(lk), LATCHKEY_ERROR_NO_BROKER);
        /* The handle connects again once the bus is there. */
        setenv("DBUS_SYSTEM_BUS_ADDRESS", saved, 1);
        assert_int_equal(latchkey_list_sessions(lk, &list, &n), 0);
        latchkey_free_sessions(list, n);
        latchkey_close(lk);
}

/* ---- latchkeyctl ---- */

static void test_ctl_help_and_usage(void **state)
{
        static const char *const cmds[] = { "token", "status", "claims", "sessions", "logout",
                                            "login", "check-config" };
        struct run r;

        struct run top = RUN("--help");

        assert_int_equal(top.code, 0);
        assert_non_null(strstr(top.out, "Exit status:"));
        assert_non_null(strstr(top.out, "4  no such session"));
        for (size_t i = 0; i < ELEMENTSOF(cmds); i++) {
                char want[64];

                assert_non_null(strstr(top.out, cmds[i]));
                r = RUN(cmds[i], "--help");
                snprintf(want, sizeof(want), "Usage: latchkeyctl %s", cmds[i]);
                assert_int_equal(r.code, 0);
                assert_int_equal(strncmp(r.out, want, strlen(want)), 0);
                assert_non_null(strstr(r.out, "Exit status"));
                run_clear(&r);
        }
        run_clear(&top);

        r = RUN("frobnicate");
        assert_int_equal(r.code, 2);
        run_clear(&r);
        r = run_env(NULL, (const char *const[]){ NULL });
        assert_int_equal(r.code, 2);
        run_clear(&r);
        r = RUN("token", "--min-valid", "soon");
        assert_failure(&r, 2, "--min-valid");
        run_clear(&r);
        r = RUN("token", "extra");
        assert_failure(&r, 2, "unexpected argument");
        run_clear(&r);
        r = RUN("sessions", "--session", "x");
        assert_failure(&r, 2, "--session");
        run_clear(&r);
        r = RUN("login");
        assert_failure(&r, 2, "USER");
        run_clear(&r);
        r = RUN("--version");
        assert_int_equal(r.code, 0);
        assert_non_null(strstr(r.out, LATCHKEY_VERSION));
        run_clear(&r);
}

static void test_ctl_session_commands(void **state)
{
        struct latchkey *lk = NULL;
        char *token = NULL;
        _cleanup_free_ char *line = NULL;
        int64_t exp;
        struct run r;
        json_t *j, *v;
        size_t i;
        bool found = false;

        open_session_new("ctl-1");
        assert_int_equal(latchkey_open(&lk), 0);
        assert_int_equal(latchkey_get_token(lk, "ctl-1", 0, &token, &exp, NULL), 0);

        /* token: the token and a newline, nothing else. */
        r = RUN("token", "--session", "ctl-1");
        assert_int_equal(r.code, 0);
        assert_int_equal(asprintf(&line, "%s\n", token) > 0, 1);
        assert_string_equal(r.out, line);
        assert_string_equal(r.err, "");
        run_clear(&r);
        r = RUN_ENV(((const char *const[]){ "LATCHKEY_SESSION=ctl-1", NULL }), "token");
        assert_int_equal(r.code, 0);
        assert_string_equal(r.out, line);
        run_clear(&r);
        r = RUN("token", "--session", "ctl-1", "--min-valid", "60");
        assert_int_equal(r.code, 0);
        assert_string_equal(r.out, line);
        run_clear(&r);

        /* status */
        r = RUN("status", "--session", "ctl-1");
        assert_int_equal(r.code, 0);
        assert_non_null(strstr(r.out, "Session:  ctl-1\n"));
        assert_non_null(strstr(r.out, "User:     root (uid 0)\n"));
        assert_non_null(strstr(r.out, "Token:    Bearer, valid until"));
        assert_null(strstr(r.out, token));
        run_clear(&r);
        r = RUN("status", "--session", "ctl-1", "--json");
        assert_int_equal(r.code, 0);
        j = parse_json(r.out);
        assert_string_equal(json_string_value(json_object_get(j, "session_id")), "ctl-1");
        assert_string_equal(json_string_value(json_object_get(j, "user")), "root");
        assert_int_equal(json_integer_value(json_object_get(j, "uid")), 0);
        assert_int_equal(json_integer_value(json_object_get(j, "expires_at")), exp);
        assert_string_equal(json_string_value(json_object_get(j, "token_type")), "Bearer");
        assert_string_equal(json_string_value(json_object_get(j, "broker_version")),
                            LATCHKEY_VERSION);
        json_decref(j);
        run_clear(&r);

        /* claims */
        r = RUN("claims", "--session", "ctl-1");
        assert_int_equal(r.code, 0);
        assert_non_null(strstr(r.out, "preferred_username: root\n"));
        assert_non_null(strstr(r.out, "name: Test User root\n"));
        run_clear(&r);
        r = RUN("claims", "--session", "ctl-1", "--json");
        assert_int_equal(r.code, 0);
        j = parse_json(r.out);
        assert_string_equal(json_string_value(json_object_get(j, "preferred_username")), "root");
        assert_string_equal(json_string_value(json_object_get(j, "aud")), H->client_id);
        json_decref(j);
        run_clear(&r);

        /* sessions */
        r = RUN("sessions");
        assert_int_equal(r.code, 0);
        assert_int_equal(strncmp(r.out, "SESSION", 7), 0);
        assert_non_null(strstr(r.out, "\nctl-1 "));
        run_clear(&r);
        r = RUN("sessions", "--json");
        assert_int_equal(r.code, 0);
        j = parse_json(r.out);
        assert_true(json_is_array(j));
        json_array_foreach(j, i, v) {
                if (streq_ptr(json_string_value(json_object_get(v, "session_id")), "ctl-1")) {
                        found = true;
                        assert_string_equal(json_string_value(json_object_get(v, "user")), "root");
                        assert_int_equal(json_integer_value(json_object_get(v, "expires_at")),
                                         exp);
                }
        }
        assert_true(found);
        json_decref(j);
        run_clear(&r);

        /* logout, and the commands after it: no session. */
        r = RUN("logout", "--session", "ctl-1");
        assert_int_equal(r.code, 0);
        assert_string_equal(r.out, "Closed session ctl-1.\n");
        run_clear(&r);
        r = RUN("token", "--session", "ctl-1");
        assert_failure(&r, 4, "(NotFound)");
        run_clear(&r);
        r = RUN("status", "--session", "ctl-1");
        assert_failure(&r, 4, "(NotFound)");
        run_clear(&r);
        r = RUN("claims", "--session", "ctl-1");
        assert_failure(&r, 4, "(NotFound)");
        run_clear(&r);
        r = RUN("claims", "--session", "ctl-1", "--json");
        assert_failure(&r, 4, "(NotFound)");
        run_clear(&r);
        r = RUN("logout", "--session", "ctl-1");
        assert_failure(&r, 4, "(NotFound)");
        run_clear(&r);
        r = RUN_ENV(((const char *const[]){ "LATCHKEY_SESSION=ctl-1", NULL }), "token");
        assert_failure(&r, 4, "(NotFound)");
        run_clear(&r);

        latchkey_free_secret(token);
        latchkey_close(lk);
}

/* logout without an id closes our newest session; then no session is left to close. */
/* Claims the provider chose reach the terminal escaped: no bidi override, no C1 control. */
static void test_ctl_claims_escaped(void **state)
{
        static const char *const raw[] = { "\xe2\x80\xae", "\xc2\x85", "\n\n" };
        struct run r;

        assert_int_equal(lkh_idp_set(H, "sub", "s\xe2\x80\xae\xc2\x85x\n"), 0);
        assert_int_equal(lkh_idp_set(H, "groups", "ad\xe2\x80\xaemins"), 0);
        open_session_new("ctl-bidi");
        assert_int_equal(lkh_idp_reset(H), 0);

        r = RUN("claims", "--session", "ctl-bidi");
        assert_int_equal(r.code, 0);
        assert_non_null(strstr(r.out, "\nsub: s\\u202e\\u0085x\\n\n"));
        assert_non_null(strstr(r.out, "\ngroups: [\"ad\\u202Emins\"]\n")); /* JSON_ENSURE_ASCII */
        for (size_t i = 0; i < ELEMENTSOF(raw); i++)
                assert_null(strstr(r.out, raw[i]));
        run_clear(&r);
        r = RUN("claims", "--session", "ctl-bidi", "--json");
        assert_int_equal(r.code, 0);
        assert_non_null(strstr(r.out, "\"s\\u202E\\u0085x\\n\""));
        for (size_t i = 0; i < ELEMENTSOF(raw); i++)
                assert_null(strstr(r.out, raw[i]));
        run_clear(&r);
        r = RUN("logout", "--session", "ctl-bidi");
        assert_int_equal(r.code, 0);
        run_clear(&r);
}

static void test_ctl_logout_default(void **state)
{
        struct latchkey_session *list = NULL;
        struct latchkey *lk = NULL;
        size_t n = 0;
        struct run r;

        /* Start from nothing: close whatever root has. */
        assert_int_equal(latchkey_open(&lk), 0);
        assert_int_equal(latchkey_list_sessions(lk, &list, &n), 0);
        for (size_t i = 0; i < n; i++)
                assert_int_equal(latchkey_close_session(lk, list[i].session_id), 0);
        latchkey_free_sessions(list, n);

        r = RUN("logout");
        assert_failure(&r, 4, "no session");
        run_clear(&r);
        r = RUN("token");
        assert_failure(&r, 4, "(NotFound)");
        run_clear(&r);
        r = RUN("status");
        assert_failure(&r, 4, "(NotFound)");
        run_clear(&r);
        r = RUN("sessions");
        assert_int_equal(r.code, 0);
        assert_string_equal(r.out, "No sessions.\n");
        run_clear(&r);
        r = RUN("sessions", "--json");
        assert_int_equal(r.code, 0);
        assert_string_equal(r.out, "[]\n");
        run_clear(&r);

        open_session_new("ctl-old");
        sleep(1); /* opened_at has a resolution of seconds */
        open_session_new("ctl-new");
        r = RUN("logout");
        assert_int_equal(r.code, 0);
        assert_string_equal(r.out, "Closed session ctl-new.\n");
        run_clear(&r);
        r = RUN("token", "--session", "ctl-old");
        assert_int_equal(r.code, 0);
        run_clear(&r);
        r = RUN("logout");
        assert_int_equal(r.code, 0);
        assert_string_equal(r.out, "Closed session ctl-old.\n");
        run_clear(&r);
        latchkey_close(lk);
}

static void test_ctl_expired(void **state)
{
        struct run r;

        open_session_new("ctl-exp");
        assert_int_equal(lkh_idp_set(H, "refresh_invalid_grant", "1"), 0);
        r = RUN("token", "--session", "ctl-exp", "--min-valid", "7200");
        assert_failure(&r, 4, "(TokenExpired)");
        run_clear(&r);
        assert_int_equal(lkh_idp_reset(H), 0);
        r = RUN("token", "--session", "ctl-exp");
        assert_failure(&r, 4, "(TokenExpired)");
        run_clear(&r);
        r = RUN("status", "--session", "ctl-exp");
        assert_failure(&r, 4, "(TokenExpired)");
        run_clear(&r);
        r = RUN("status", "--session", "ctl-exp", "--json");
        assert_failure(&r, 4, "(TokenExpired)");
        run_clear(&r);
        /* The verified claims stay readable; the session is still listed until logout. */
        r = RUN("claims", "--session", "ctl-exp");
        assert_int_equal(r.code, 0);
        assert_non_null(strstr(r.out, "preferred_username: root\n"));
        run_clear(&r);
        r = RUN("sessions");
        assert_int_equal(r.code, 0);
        assert_non_null(strstr(r.out, "ctl-exp"));
        run_clear(&r);
        r = RUN("logout", "--session", "ctl-exp");
        assert_int_equal(r.code, 0);
        run_clear(&r);
}

static void test_ctl_no_broker(void **state)
{
        static const char *const cmds[][4] = {
                { "token" }, { "status" }, { "status", "--json" }, { "claims" },
                { "claims", "--json" }, { "sessions" }, { "sessions", "--json" },
                { "logout" }, { "logout", "--session", "x" },
        };
        _cleanup_free_ char *bad = NULL;
        struct run r;

        assert_int_equal(asprintf(&bad, "DBUS_SYSTEM_BUS_ADDRESS=unix:path=%s/no-bus-here",
                                  H->dir) > 0, 1);
        for (size_t i = 0; i < ELEMENTSOF(cmds); i++) {
                r = run_env((const char *const[]){ bad, NULL }, cmds[i]);
                assert_failure(&r, 3, "(NoBroker)");
                run_clear(&r);
        }
        r = run_env((const char *const[]){ bad, NULL },
                    (const char *const[]){ "login", "root", NULL });
        assert_failure(&r, 3, "(NoBroker)");
        run_clear(&r);
}

/* Plays the person at the terminal: reads the address, signs in, pastes answer(s). */
static struct run ctl_login(const char *user, bool qr, const char *answer_override)
{
        _cleanup_free_ char *url = NULL, *location = NULL;
        const char *p, *e;
        struct proc pr;
        struct run r;

        if (qr)
                proc_start(&pr, NULL, (const char *const[]){ "login", user, NULL });
        else
                proc_start(&pr, NULL, (const char *const[]){ "login", "--no-qr", user, NULL });
        proc_read(&pr, "Then paste");
        p = strstr(pr.err_text, "https://");
        assert_non_null(p);
        e = strchr(p, '\n');
        assert_non_null(e);
        url = strndup(p, (size_t)(e - p));
        if (qr)
                assert_non_null(strstr(pr.err_text, "\u2588"));
        else
                assert_null(strstr(pr.err_text, "\u2588"));
        if (answer_override)
                proc_write(&pr, answer_override);
        else {
                assert_int_equal(lkh_browser_login(H, url, user, false, &location, NULL), 0);
                proc_write(&pr, "  ");
                proc_write(&pr, location);
                proc_write(&pr, "\n");
        }
        r.code = proc_finish(&pr);
        r.out = TAKE_PTR(pr.out_text);
        r.err = TAKE_PTR(pr.err_text);
        proc_clear(&pr);
        return r;
}

static void test_ctl_login(void **state)
{
        char sid[64];
        struct run r;

        r = ctl_login("root", true, NULL);
        if (r.code != 0)
                fprintf(stderr, "login: %s", r.err);
        assert_int_equal(r.code, 0);
        assert_int_equal(strncmp(r.out, "lk-", 3), 0);
        assert_int_equal(strlen(r.out), 3 + 16 + 1);
        snprintf(sid, sizeof(sid), "%.*s", 19, r.out);
        assert_non_null(strstr(r.err, "Logged in as root"));
        run_clear(&r);

        r = RUN("token", "--session", sid);
        assert_int_equal(r.code, 0);
        run_clear(&r);
        r = RUN("logout", "--session", sid);
        assert_int_equal(r.code, 0);
        run_clear(&r);

        /* A code the provider refuses. */
        r = ctl_login("root", false, "not-a-code\n");
        assert_int_equal(r.code, 1);
        assert_string_equal(r.out, "");
        assert_non_null(strstr(r.err, "(InvalidGrant)"));
        run_clear(&r);
        /* No answer at all. */
        r = ctl_login("root", false, "");
        assert_int_equal(r.code, 1);
        assert_non_null(strstr(r.err, "no answer"));
        run_clear(&r);
        /* An unknown local user. */
        r = RUN("login", "no-such-user-xyz");
        assert_failure(&r, 1, "no-such-user-xyz");
        run_clear(&r);
}

/* ---- check-config ---- */

/* Writes DIR/name with text; mode 0644. Returns the path. */
static char *write_file(const char *name, const char *text)
{
        char *path;
        FILE *f;

        assert_int_equal(asprintf(&path, "%s/%s", H->dir, name) > 0, 1);
        f = fopen(path, "we");
        assert_non_null(f);
        fputs(text, f);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(chmod(path, 0644), 0);
        return path;
}

/* The lines every test config starts with (1..6); the broken line comes after. */
static char *base_config(bool with_ca)
{
        char *s;

        assert_int_equal(asprintf(&s,
                                  "[provider]\n"
                                  "issuer = %s\n"
                                  "client_id = %s\n"
                                  "client_secret_file = %s\n"
                                  "redirect_uri = %s\n"
                                  "%s%s\n",
                                  H->issuer, H->client_id, H->client_secret_file,
                                  H->redirect_uri, with_ca ? "ca_file = " : "# no ca_file",
                                  with_ca ? H->cert_file : "") > 0, 1);
        return s;
}

static void test_check_config_good(void **state)
{
        struct run r;
        json_t *j, *v;
        size_t i;

        r = RUN("check-config", H->config_file);
        if (r.code != 0)
                fprintf(stderr, "%s%s", r.out, r.err);
        assert_int_equal(r.code, 0);
        assert_non_null(strstr(r.out, "ok       config: "));
        assert_non_null(strstr(r.out, "ok       issuer: "));
        assert_non_null(strstr(r.out, "ok       tls: "));
        assert_non_null(strstr(r.out, "ok       algorithms: "));
        assert_non_null(strstr(r.out, "ok       provider: "));
        assert_non_null(strstr(r.out, "ok       keys: "));
        assert_non_null(strstr(r.out, "ok       flow: the provider offers the code flow; logins "
                                      "use the code flow (flow = auto)"));
        assert_null(strstr(r.out, "error"));
        /* Where the secret came from; never the secret. */
        assert_non_null(strstr(r.out, H->client_secret_file));
        assert_null(strstr(r.out, H->client_secret));
        assert_null(strstr(r.err, H->client_secret));
        run_clear(&r);

        r = RUN("check-config", "--json", H->config_file);
        assert_int_equal(r.code, 0);
        j = parse_json(r.out);
        assert_true(json_is_true(json_object_get(j, "ok")));
        assert_int_equal(json_array_size(json_object_get(j, "problems")), 0);
        assert_true(json_array_size(json_object_get(j, "checks")) >= 5);
        json_array_foreach(json_object_get(j, "checks"), i, v)
                assert_string_not_equal(json_string_value(json_object_get(v, "level")), "error");
        json_decref(j);
        run_clear(&r);
}

struct broken {
        const char *lines;   /* appended after base_config()'s 6 lines */
        unsigned line;       /* the line the report must name */
        const char *key;     /* and the key */
};

static void test_check_config_broken(void **state)
{
        static const struct broken cases[] = {
                { "timeout = abc\n", 7, "timeout" },
                { "clock_skew = 60\nnonce = sometimes\n", 8, "nonce" },
                { "token_endpoint = http://example.com/token\n", 7, "token_endpoint" },
                { "pkce = yes\n\nid_token_algorithms = RS256 none\n", 9, "id_token_algorithms" },
                { "client_auth = client_secret_jwt\n", 7, "client_auth" },
                { "scopes = openid\nno_such_key = 1\n", 8, "no_such_key" },
                { "[sessions]\nrefresh_margin = -5\n", 8, "refresh_margin" },
                { "[users]\nusername_claim = preferred_username\n[sessions]\n"
                  "idle_exit = forever\n", 10, "idle_exit" },
                { "discovery = perhaps\n", 7, "discovery" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *base = base_config(true), *text = NULL, *path = NULL;
                _cleanup_free_ char *want = NULL, *name = NULL;
                struct run r;
                json_t *j, *p;

                assert_int_equal(asprintf(&text, "%s%s", base, cases[i].lines) > 0, 1);
                assert_int_equal(asprintf(&name, "broken-%zu.conf", i) > 0, 1);
                path = write_file(name, text);
                assert_int_equal(asprintf(&want, "%s:%u: ", path, cases[i].line) > 0, 1);

                r = RUN("check-config", path);
                if (r.code != 1 || !strstr(r.out, want) || !strstr(r.out, cases[i].key))
                        fprintf(stderr, "case %zu: want '%s' %s; got %d:\n%s%s", i, want,
                                cases[i].key, r.code, r.out, r.err);
                assert_int_equal(r.code, 1);
                assert_non_null(strstr(r.out, want));
                assert_non_null(strstr(strstr(r.out, want), cases[i].key));
                assert_non_null(strstr(r.err, "has problems"));
                run_clear(&r);

                r = RUN("check-config", "--json", path);
                assert_int_equal(r.code, 1);
                j = parse_json(r.out);
                assert_true(json_is_false(json_object_get(j, "ok")));
                p = json_array_get(json_object_get(j, "problems"), 0);
                assert_non_null(p);
                assert_int_equal(json_integer_value(json_object_get(p, "line")), cases[i].line);
                assert_string_equal(json_string_value(json_object_get(p, "key")), cases[i].key);
                assert_string_equal(json_string_value(json_object_get(p, "file")), path);
                json_decref(j);
                run_clear(&r);
        }
}

/* Every problem, not only the first; and a drop-in's own file and line. */
static void test_check_config_every_problem(void **state)
{
        _cleanup_free_ char *base = base_config(true), *text = NULL, *path = NULL;
        _cleanup_free_ char *dir = NULL, *dropin = NULL, *w1 = NULL, *w2 = NULL, *w3 = NULL;
        FILE *f;
        struct run r;

        assert_int_equal(asprintf(&text, "%stimeout = abc\nnonce = sometimes\n", base) > 0, 1);
        path = write_file("many.conf", text);
        assert_int_equal(asprintf(&dir, "%s.d", path) > 0, 1);
        assert_int_equal(mkdir(dir, 0755), 0);
        assert_int_equal(asprintf(&dropin, "%s/10-local.conf", dir) > 0, 1);
        f = fopen(dropin, "we");
        assert_non_null(f);
        fputs("# local changes\n[sessions]\nlogin_timeout = ten\n", f);
        assert_int_equal(fclose(f), 0);

        assert_int_equal(asprintf(&w1, "%s:7: ", path) > 0, 1);
        assert_int_equal(asprintf(&w2, "%s:8: ", path) > 0, 1);
        assert_int_equal(asprintf(&w3, "%s:3: ", dropin) > 0, 1);
        r = RUN("check-config", path);
        if (!strstr(r.out, w3))
                fprintf(stderr, "%s%s", r.out, r.err);
        assert_int_equal(r.code, 1);
        assert_non_null(strstr(r.out, w1));
        assert_non_null(strstr(r.out, w2));
        assert_non_null(strstr(r.out, w3));
        assert_non_null(strstr(strstr(r.out, w3), "login_timeout"));
        run_clear(&r);
}

/* A secret in the config file itself, which others may read: the line of client_secret. */
static void test_check_config_secret_mode(void **state)
{
        _cleanup_free_ char *text = NULL, *path = NULL, *want = NULL, *secret_copy = NULL;
        struct run r;

        assert_int_equal(asprintf(&text,
                                  "[provider]\n"
                                  "issuer = %s\n"
                                  "client_id = %s\n"
                                  "redirect_uri = %s\n"
                                  "client_secret = not-the-real-one\n",
                                  H->issuer, H->client_id, H->redirect_uri) > 0, 1);
        path = write_file("open-secret.conf", text);
        assert_int_equal(asprintf(&want, "%s:5: ", path) > 0, 1);
        r = RUN("check-config", path);
        assert_int_equal(r.code, 1);
        assert_non_null(strstr(r.out, want));
        assert_non_null(strstr(r.out, "client_secret"));
        assert_null(strstr(r.out, "not-the-real-one"));
        assert_null(strstr(r.err, "not-the-real-one"));
        run_clear(&r);

        /* A secret file open to others. */
        assert_int_equal(asprintf(&secret_copy, "%s/open-secret", H->dir) > 0, 1);
        {
                _cleanup_free_ char *t2 = NULL, *p2 = NULL, *w2 = NULL;
                FILE *f = fopen(secret_copy, "we");

                assert_non_null(f);
                fputs("x\n", f);
                assert_int_equal(fclose(f), 0);
                assert_int_equal(chmod(secret_copy, 0644), 0);
                assert_int_equal(asprintf(&t2,
                                          "[provider]\n"
                                          "issuer = %s\n"
                                          "client_id = %s\n"
                                          "redirect_uri = %s\n"
                                          "client_secret_file = %s\n",
                                          H->issuer, H->client_id, H->redirect_uri,
                                          secret_copy) > 0, 1);
                p2 = write_file("open-secret-file.conf", t2);
                assert_int_equal(asprintf(&w2, "%s:5: ", p2) > 0, 1);
                r = RUN("check-config", p2);
                assert_int_equal(r.code, 1);
                assert_non_null(strstr(r.out, w2));
                assert_non_null(strstr(r.out, "0644"));
                run_clear(&r);
        }
}

/* Runs latchkeyd with config until it exits (it must); its exit code, and its stderr in *ret_err. */
static int run_latchkeyd(const char *config, char **ret_err)
{
        _cleanup_free_ char *log = NULL, *state = NULL;
        const char *argv[] = { lkh_latchkeyd_path(), "--config", config, "--state-dir", NULL,
                               "--idle-exit", "0", NULL };
        int fd, saved, status, r;
        pid_t pid;
        FILE *f;

        assert_int_equal(asprintf(&log, "%s/latchkeyd-refused.log", H->dir) > 0, 1);
        assert_int_equal(asprintf(&state, "%s/state-refused", H->dir) > 0, 1);
        argv[4] = state;
        fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        fflush(stderr);
        saved = dup(STDERR_FILENO);
        assert_true(saved >= 0);
        dup2(fd, STDERR_FILENO);
        close(fd);
        r = lkh_spawn(argv, -1, &pid);
        fflush(stderr);
        dup2(saved, STDERR_FILENO);
        close(saved);
        assert_int_equal(r, 0);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        *ret_err = calloc(1, 65536);
        assert_non_null(*ret_err);
        f = fopen(log, "re");
        assert_non_null(f);
        (void)fread(*ret_err, 1, 65535, f);
        fclose(f);
        return WEXITSTATUS(status);
}

/* Issue 16 item 8: a config file others may write is refused by latchkeyd and check-config. */
static void test_config_others_may_write(void **state)
{
        _cleanup_free_ char *base = base_config(true), *path = NULL, *dropdir = NULL;
        _cleanup_free_ char *want = NULL, *drop = NULL, *err = NULL;
        struct run r;

        path = write_file("writable.conf", base);
        assert_int_equal(chmod(path, 0666), 0);
        assert_int_equal(asprintf(&want, "%s has mode 0666; it is writable by group or others "
                                         "(chmod go-w %s)", path, path) > 0, 1);
        assert_int_equal(run_latchkeyd(path, &err), 1);
        if (!strstr(err, want))
                fprintf(stderr, "latchkeyd said: %s", err);
        assert_non_null(strstr(err, want));
        r = RUN("check-config", path);
        assert_int_equal(r.code, 1);
        assert_non_null(strstr(r.out, want));
        run_clear(&r);

        /* A drop-in owned by another user */
        assert_int_equal(chmod(path, 0644), 0);
        assert_int_equal(asprintf(&dropdir, "%s.d", path) > 0, 1);
        assert_int_equal(mkdir(dropdir, 0755), 0);
        drop = write_file("writable.conf.d/50-users.conf", "[users]\nallowed_users = eve\n");
        assert_int_equal(chown(drop, 65534, 65534), 0);
        free(want);
        assert_int_equal(asprintf(&want, "%s is owned by uid 65534; it must be owned by root or "
                                         "by uid 0 (chown root %s)", drop, drop) > 0, 1);
        free(err);
        assert_int_equal(run_latchkeyd(path, &err), 1);
        assert_non_null(strstr(err, want));
        r = RUN("check-config", path);
        assert_int_equal(r.code, 1);
        assert_non_null(strstr(r.out, want));
        run_clear(&r);
        assert_int_equal(unlink(drop), 0);
        assert_int_equal(rmdir(dropdir), 0);
}

static bool has_check(json_t *j, const char *check, const char *level, const char *text)
{
        size_t i;
        json_t *v;

        json_array_foreach(json_object_get(j, "checks"), i, v)
                if (streq_ptr(json_string_value(json_object_get(v, "check")), check) &&
                    streq_ptr(json_string_value(json_object_get(v, "level")), level) &&
                    (!text || strstr(json_string_value(json_object_get(v, "message")), text)))
                        return true;
        return false;
}

static void test_check_config_provider(void **state)
{
        _cleanup_free_ char *base = NULL, *path = NULL, *wrong = NULL, *text = NULL;
        _cleanup_free_ char *algs = NULL, *hand = NULL;
        struct run r;
        json_t *j;

        /* Discovery names another issuer. */
        assert_int_equal(lkh_idp_set(H, "discovery_wrong_issuer", "1"), 0);
        assert_int_equal(asprintf(&wrong, "%s/wrong", H->issuer) > 0, 1);
        r = RUN("check-config", H->config_file);
        assert_int_equal(lkh_idp_reset(H), 0);
        if (r.code != 1)
                fprintf(stderr, "%s%s", r.out, r.err);
        assert_int_equal(r.code, 1);
        assert_non_null(strstr(r.out, "error    issuer: the discovery document names issuer "));
        assert_non_null(strstr(r.out, wrong));
        assert_non_null(strstr(r.out, "error    provider: "));
        run_clear(&r);
        assert_int_equal(lkh_idp_set(H, "discovery_wrong_issuer", "1"), 0);
        r = RUN("check-config", "--json", H->config_file);
        assert_int_equal(lkh_idp_reset(H), 0);
        j = parse_json(r.out);
        assert_true(has_check(j, "issuer", "error", wrong));
        json_decref(j);
        run_clear(&r);

        /* No ca_file: the IdP's self-signed certificate is not trusted. */
        base = base_config(false);
        path = write_file("no-ca.conf", base);
        r = RUN("check-config", path);
        assert_int_equal(r.code, 1);
        assert_non_null(strstr(r.out, "error    tls: the provider's certificate is not trusted"));
        assert_non_null(strstr(r.out, "set ca_file"));
        run_clear(&r);
        free(base);
        free(path);
        path = NULL;

        /* Algorithms the provider does not offer. */
        base = base_config(true);
        assert_int_equal(asprintf(&text, "%sid_token_algorithms = ES384 RS384\n", base) > 0, 1);
        algs = write_file("algs.conf", text);
        r = RUN("check-config", "--json", algs);
        assert_int_equal(r.code, 1);
        j = parse_json(r.out);
        assert_true(has_check(j, "algorithms", "error", "allows none of them"));
        json_decref(j);
        run_clear(&r);
        free(text);

        /* An endpoint set by hand that differs from discovery: a warning, not an error. */
        assert_int_equal(asprintf(&text, "%suserinfo_endpoint = %s/elsewhere\n", base,
                                  H->idp_base) > 0, 1);
        hand = write_file("hand.conf", text);
        r = RUN("check-config", hand);
        if (r.code != 0)
                fprintf(stderr, "%s%s", r.out, r.err);
        assert_int_equal(r.code, 0);
        assert_non_null(strstr(r.out, "warning  userinfo_endpoint: set by hand to "));
        run_clear(&r);
}

/* Last: stops the broker and takes its activation file away (ServiceUnknown). */
static void test_no_service(void **state)
{
        _cleanup_free_ char *file = NULL, *moved = NULL;
        struct latchkey *lk = NULL;
        struct run r;
        DBusError err = DBUS_ERROR_INIT;
        DBusConnection *c;
        DBusMessage *m, *reply;

        assert_int_equal(asprintf(&file, "%s/org.latchkey.Broker1.service", H->services_dir) > 0,
                         1);
        assert_int_equal(asprintf(&moved, "%s/broker.service.off", H->dir) > 0, 1);
        lkh_stop_broker(H);
        assert_int_equal(rename(file, moved), 0);
        c = dbus_connection_open_private(H->bus_address, &err);
        assert_non_null(c);
        assert_true(dbus_bus_register(c, &err));
        m = dbus_message_new_method_call(DBUS_SERVICE_DBUS, DBUS_PATH_DBUS, DBUS_INTERFACE_DBUS,
                                         "ReloadConfig");
        reply = dbus_connection_send_with_reply_and_block(c, m, 10000, &err);
        dbus_message_unref(m);
        if (!reply)
                fprintf(stderr, "ReloadConfig: %s\n", err.message);
        assert_non_null(reply);
        dbus_message_unref(reply);
        dbus_connection_close(c);
        dbus_connection_unref(c);

        assert_int_equal(latchkey_open(&lk), 0);
        assert_int_equal(latchkey_get_token(lk, NULL, 0, NULL, NULL, NULL),
                         LATCHKEY_ERROR_NO_BROKER);
        assert_non_null(strstr(latchkey_last_error_message(lk), "cannot reach the latchkey"));
        latchkey_close(lk);
        r = RUN("token");
        assert_failure(&r, 3, "(NoBroker)");
        run_clear(&r);
        r = RUN("sessions");
        assert_failure(&r, 3, "(NoBroker)");
        run_clear(&r);
        assert_int_equal(rename(moved, file), 0);
}


/* ---- tokens for tools: --scope/--audience, --format, the git credential helper ---- */

/* The session's token for (scope, audience), through the library. */
static char *scoped_token(const char *sid, const char *scope, const char *audience,
                          int64_t *ret_exp)
{
        struct latchkey *lk = NULL;
        char *token = NULL;

        assert_int_equal(latchkey_open(&lk), 0);
        assert_int_equal(latchkey_get_token_for(lk, sid, scope, audience, 0, &token, ret_exp,
                                                NULL), 0);
        latchkey_close(lk);
        return token;
}

static void test_ctl_token_formats(void **state)
{
        _cleanup_free_ char *plain = NULL, *narrow = NULL, *want = NULL;
        int64_t exp = 0, nexp = 0;
        char when[32];
        struct tm tm;
        time_t t;
        struct run r;
        json_t *j, *status;

        open_session_new("fmt-1");
        plain = scoped_token("fmt-1", NULL, NULL, &exp);
        t = (time_t)exp;
        assert_non_null(gmtime_r(&t, &tm));
        assert_true(strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) > 0);

        /* header: one line, Authorization: Bearer TOKEN */
        r = RUN("token", "--session", "fmt-1", "--format", "header");
        assert_int_equal(r.code, 0);
        assert_int_equal(asprintf(&want, "Authorization: Bearer %s\n", plain) > 0, 1);
        assert_string_equal(r.out, want);
        run_clear(&r);

        /* json: exactly access_token, token_type, expires_at */
        r = RUN("token", "--session", "fmt-1", "--format=json");
        assert_int_equal(r.code, 0);
        j = parse_json(r.out);
        assert_int_equal(json_object_size(j), 3);
        assert_string_equal(json_string_value(json_object_get(j, "access_token")), plain);
        assert_string_equal(json_string_value(json_object_get(j, "token_type")), "Bearer");
        assert_true(json_is_integer(json_object_get(j, "expires_at")));
        assert_int_equal(json_integer_value(json_object_get(j, "expires_at")), exp);
        json_decref(j);
        run_clear(&r);

        /*
         * kubernetes: an ExecCredential of client.authentication.k8s.io/v1, as its published
         * schema has it: apiVersion, kind, status {token, expirationTimestamp (RFC 3339)};
         * no other field in status (clientCertificateData and -KeyData are for certificates).
         */
        r = RUN("token", "--session", "fmt-1", "--format", "kubernetes");
        assert_int_equal(r.code, 0);
        j = parse_json(r.out);
        assert_string_equal(json_string_value(json_object_get(j, "apiVersion")),
                            "client.authentication.k8s.io/v1");
        assert_string_equal(json_string_value(json_object_get(j, "kind")), "ExecCredential");
        assert_int_equal(json_object_size(j), 3);
        status = json_object_get(j, "status");
        assert_true(json_is_object(status));
        assert_int_equal(json_object_size(status), 2);
        assert_string_equal(json_string_value(json_object_get(status, "token")), plain);
        assert_string_equal(json_string_value(json_object_get(status, "expirationTimestamp")),
                            when);
        json_decref(j);
        run_clear(&r);

        /* --scope and --audience: the narrower token, in any format */
        narrow = scoped_token("fmt-1", "openid", "https://k8s.example.com", &nexp);
        assert_string_not_equal(narrow, plain);
        r = RUN("token", "--session", "fmt-1", "--scope", "openid", "--audience",
                "https://k8s.example.com", "--min-valid", "30", "--format", "kubernetes");
        assert_int_equal(r.code, 0);
        j = parse_json(r.out);
        assert_string_equal(json_string_value(json_object_get(json_object_get(j, "status"),
                                                              "token")), narrow);
        json_decref(j);
        run_clear(&r);

        /* a scope outside the grant: one line naming it */
        r = RUN("token", "--session", "fmt-1", "--scope", "openid admin");
        assert_failure(&r, 1, "scope 'admin'");
        run_clear(&r);
        r = RUN("token", "--format", "yaml");
        assert_failure(&r, 2, "--format is token, header, json or kubernetes");
        run_clear(&r);
}

static char *write_map(const char *text)
{
        char *path = lkh_xasprintf("%s/git-credentials.conf", H->dir);
        FILE *f = fopen(path, "w");

        assert_non_null(f);
        fputs(text, f);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(chmod(path, 0644), 0);
        return path;
}

/* latchkeyctl credential's answers, field by field. */
static void test_ctl_credential(void **state)
{
        _cleanup_free_ char *map = NULL, *token = NULL, *want = NULL;
        int64_t exp = 0;
        struct proc p;
        int code;
        struct run r;

        open_session_new("git-1");
        map = write_map("# hosts whose git gets the SSO token\n"
                        "[git.example.com]\n"
                        "scope = openid\n"
                        "audience = https://git.example.com\n"
                        "[plain.example.com:8443]\n"
                        "username = x-token\n"
                        "min_valid = 120\n");
        token = scoped_token("git-1", "openid", "https://git.example.com", &exp);

        proc_start(&p, (const char *const[]){ "LATCHKEY_SESSION=git-1", NULL },
                   (const char *const[]){ "credential", "--map", map, "get", NULL });
        proc_write(&p, "protocol=https\nhost=GIT.example.com\npath=group/repo.git\n"
                       "username=someone\npassword=old-one\n\n");
        code = proc_finish(&p);
        assert_int_equal(code, 0);
        assert_int_equal(asprintf(&want, "username=oauth2\npassword=%s\npassword_expiry_utc=%lld\n",
                                  token, (long long)exp) > 0, 1);
        assert_string_equal(p.out_text, want);
        assert_string_equal(p.err_text, "");
        proc_clear(&p);

        /* the second host: the session's own token, its user name */
        free(token);
        free(want);
        token = scoped_token("git-1", NULL, NULL, &exp);
        proc_start(&p, (const char *const[]){ "LATCHKEY_SESSION=git-1", NULL },
                   (const char *const[]){ "credential", "--map", map, "get", NULL });
        proc_write(&p, "protocol=https\nhost=plain.example.com:8443\n");
        code = proc_finish(&p);
        if (code != 0)
                fprintf(stderr, "credential get: %s", p.err_text);
        assert_int_equal(code, 0);
        assert_int_equal(asprintf(&want, "username=x-token\npassword=%s\npassword_expiry_utc=%lld\n",
                                  token, (long long)exp) > 0, 1);
        assert_string_equal(p.out_text, want);
        proc_clear(&p);

        /* a host not in the map: nothing, so git asks its next helper */
        proc_start(&p, NULL, (const char *const[]){ "credential", "--map", map, "get", NULL });
        proc_write(&p, "protocol=https\nhost=elsewhere.example.com\n\n");
        assert_int_equal(proc_finish(&p), 0);
        assert_string_equal(p.out_text, "");
        assert_string_equal(p.err_text, "");
        proc_clear(&p);

        /* http to another machine: refused, no token */
        proc_start(&p, NULL, (const char *const[]){ "credential", "--map", map, "get", NULL });
        proc_write(&p, "protocol=http\nhost=git.example.com\n\n");
        assert_int_equal(proc_finish(&p), 1);
        assert_string_equal(p.out_text, "");
        assert_non_null(strstr(p.err_text, "only https"));
        proc_clear(&p);

        /* store and erase: no-ops */
        proc_start(&p, NULL, (const char *const[]){ "credential", "--map", map, "store", NULL });
        proc_write(&p, "protocol=https\nhost=git.example.com\nusername=oauth2\npassword=x\n\n");
        assert_int_equal(proc_finish(&p), 0);
        assert_string_equal(p.out_text, "");
        proc_clear(&p);
        r = RUN("credential", "--map", map, "erase");
        assert_int_equal(r.code, 0);
        run_clear(&r);

        /* a broken map names its line; a request without a host is refused */
        free(map);
        map = write_map("[git.example.com]\nscopes = openid\n");
        proc_start(&p, NULL, (const char *const[]){ "credential", "--map", map, "get", NULL });
        proc_write(&p, "protocol=https\nhost=git.example.com\n\n");
        assert_int_equal(proc_finish(&p), 1);
        assert_non_null(strstr(p.err_text, "line 2: unknown key 'scopes'"));
        proc_clear(&p);
        proc_start(&p, NULL, (const char *const[]){ "credential", "--map", map, "get", NULL });
        proc_write(&p, "protocol=https\n\n");
        assert_int_equal(proc_finish(&p), 1);
        assert_non_null(strstr(p.err_text, "names no host"));
        proc_clear(&p);
        r = RUN("credential", "fetch");
        assert_failure(&r, 2, "unknown action 'fetch'");
        run_clear(&r);
}

/* Runs a shell command line (paths only, never a secret); its exit code. */
static int shell(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int shell(const char *fmt, ...)
{
        _cleanup_free_ char *cmd = NULL;
        va_list ap;
        int r, status;

        va_start(ap, fmt);
        r = vasprintf(&cmd, fmt, ap);
        va_end(ap);
        assert_true(r > 0);
        status = system(cmd);
        assert_true(WIFEXITED(status));
        return WEXITSTATUS(status);
}

static int read_text(const char *path, char **ret, size_t *ret_len)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                return -errno;
        *ret = calloc(1, 1);
        *ret_len = 0;
        while (fd >= 0)
                if (lkh_read_more(&fd, ret, ret_len, OUTPUT_MAX) < 0)
                        return -EFBIG;
        return 0;
}

/* Real git, over HTTP on loopback, against a server that demands the token. */
static void test_git_helper(void **state)
{
        _cleanup_free_ char *root = lkh_xasprintf("%s/git-root", H->dir);
        _cleanup_free_ char *home = lkh_xasprintf("%s/git-home", H->dir);
        _cleanup_free_ char *token_file = lkh_xasprintf("%s/git-token", H->dir);
        _cleanup_free_ char *port_file = lkh_xasprintf("%s/git-port", H->dir);
        _cleanup_free_ char *out = lkh_xasprintf("%s/git-out", H->dir);
        _cleanup_free_ char *map = NULL, *token = NULL, *text = NULL, *refs = NULL;
        _cleanup_free_ char *gitconfig = NULL, *sha = NULL;
        const char *argv[] = { PYTHON3, GIT_HTTP_SERVER, root, token_file, port_file, NULL };
        const char *git_env = "GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0 "
                              "GIT_ASKPASS=/bin/false";
        unsigned port = 0;
        pid_t server = 0;
        size_t len = 0;
        int fd;

        open_session_new("git-2");
        assert_int_equal(shell("set -e; mkdir -p '%s/src' '%s'; cd '%s/src'; git init -q -b main;"
                               " git -c user.name=t -c user.email=t@example.com commit -q"
                               " --allow-empty -m one; git clone -q --bare . '%s/repo.git';"
                               " cd '%s/repo.git'; git update-server-info;"
                               " git rev-parse HEAD > '%s/sha'",
                               root, home, root, root, root, root), 0);
        text = lkh_xasprintf("%s/sha", root);
        assert_int_equal(read_text(text, &sha, &len), 0);
        free(TAKE_PTR(text));

        /* The server learns the token git must bring from a file, never from argv. */
        token = scoped_token("git-2", "openid", "https://git.example.com", NULL);
        fd = open(token_file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, token, strlen(token)), (ssize_t)strlen(token));
        close(fd);
        unlink(port_file);
        assert_int_equal(lkh_spawn(argv, -1, &server), 0);
        for (int i = 0; i < 400 && lkh_read_port_file(port_file, &port) < 0; i++)
                lkh_sleep_ms(25);
        assert_true(port > 0);

        map = write_map(text = lkh_xasprintf("[127.0.0.1:%u]\nscope = openid\n"
                                             "audience = https://git.example.com\n", port));
        /* Without the helper the server refuses git. */
        assert_true(shell("cd / && HOME='%s' %s git ls-remote http://127.0.0.1:%u/repo.git "
                          ">'%s' 2>&1", home, git_env, port, out) != 0);

        /* The line the admin guide shows, with the test's map. */
        gitconfig = lkh_xasprintf("%s/.gitconfig", home);
        {
                FILE *f = fopen(gitconfig, "w");

                assert_non_null(f);
                fprintf(f, "[credential \"http://127.0.0.1:%u\"]\n\thelper = %s credential "
                           "--map %s\n", port, LATCHKEYCTL_PATH, map);
                assert_int_equal(fclose(f), 0);
        }
        if (shell("cd / && HOME='%s' LATCHKEY_SESSION=git-2 GIT_CONFIG_NOSYSTEM=1 "
                  "GIT_TERMINAL_PROMPT=0 GIT_ASKPASS=/bin/false git ls-remote "
                  "http://127.0.0.1:%u/repo.git >'%s' 2>&1", home, port, out) != 0)
                shell("cat '%s' >&2", out);
        assert_int_equal(read_text(out, &refs, &len), 0);
        sha[strcspn(sha, "\n")] = 0;
        free(text);
        text = lkh_xasprintf("%s\trefs/heads/main", sha);
        assert_non_null(strstr(refs, text));
        assert_null(strstr(refs, token));
        lkh_stop_process(&server, 5000);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_lib_flow),
                cmocka_unit_test(test_lib_login_errors),
                cmocka_unit_test(test_lib_expired),
                cmocka_unit_test(test_lib_forged_signals),
                cmocka_unit_test(test_lib_threads),
                cmocka_unit_test(test_lib_no_broker),
                cmocka_unit_test(test_ctl_help_and_usage),
                cmocka_unit_test(test_ctl_session_commands),
                cmocka_unit_test(test_ctl_claims_escaped),
                cmocka_unit_test(test_ctl_logout_default),
                cmocka_unit_test(test_ctl_expired),
                cmocka_unit_test(test_ctl_no_broker),
                cmocka_unit_test(test_ctl_login),
                cmocka_unit_test(test_check_config_good),
                cmocka_unit_test(test_check_config_broken),
                cmocka_unit_test(test_check_config_every_problem),
                cmocka_unit_test(test_check_config_secret_mode),
                cmocka_unit_test(test_config_others_may_write),
                cmocka_unit_test(test_check_config_provider),
                cmocka_unit_test(test_no_service),
                cmocka_unit_test(test_ctl_token_formats),
                cmocka_unit_test(test_ctl_credential),
                cmocka_unit_test(test_git_helper),
        };

        signal(SIGPIPE, SIG_IGN);
        return cmocka_run_group_tests_name("client", tests, setup, teardown);
}
