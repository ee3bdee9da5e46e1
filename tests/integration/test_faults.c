/* SPDX-License-Identifier: MIT */
/*
 * latchkeyd under faults (issue 8, part 1), on a private bus with the test IdP
 * (tests/harness). Runs as root.
 *
 * - SIGKILL: 50 rounds, each with a new broker, while a child drives logins,
 *   bursts of refreshes (each one a state write) and closes; the IdP's
 *   delay_ms varies to widen the windows. After each kill every session file
 *   parses, every session whose OpenSession was answered is still there, and
 *   every session the next broker lists answers GetToken.
 * - A state write failing: fsync() failing with EIO (lk-faultshim.so), and a
 *   full 256 KiB tmpfs on the state dir, in a private mount namespace of this
 *   test process (that part skipped where it cannot mount).
 * - The provider going away mid-response, a wrong content type, a redirect, a
 *   certificate for another name: each a clear error.
 * - dbus-daemon restarted: the broker exits by itself, and the next call
 *   activates a new one with the sessions intact.
 * - The clock jumping forward past expiry: lk-faultshim.so (faultshim.c)
 *   preloaded into the broker moves its realtime clock; the machine's stays.
 *
 * LATCHKEY_TEST_SEED=N repeats a run of the SIGKILL rounds (the seed is printed).
 */
#include <dbus/dbus.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/util.h"
#include "tests/harness/busclient.h"
#include "tests/harness/harness.h"
#include "tests/harness/session_files.h"

#define ERR BC_ERR
#define KILL_ROUNDS 50
/* Sessions the driver keeps open at most; it closes the oldest beyond that. */
#define DRIVER_SESSIONS 4

static DBusConnection *open_bus(struct lkh *h)
{
        DBusConnection *c = bc_open(h->bus_address);

        assert_non_null(c);
        return c;
}

static char *path_in_sessions(struct lkh *h, const char *name)
{
        char *p;

        if (asprintf(&p, "%s/sessions/%s", h->state_dir, name) < 0)
                abort();
        return p;
}

static char *read_text(const char *path)
{
        FILE *f = fopen(path, "re");
        char *buf = NULL;
        size_t size = 0;

        if (!f)
                return NULL;
        if (getdelim(&buf, &size, '\0', f) < 0) {
                free(buf);
                buf = strdup("");
        }
        fclose(f);
        return buf;
}

static int write_text(const char *path, const char *text)
{
        FILE *f = fopen(path, "we");

        if (!f)
                return -errno;
        fputs(text, f);
        return fclose(f) == 0 ? 0 : -EIO;
}

/* 0 when the session file of id parses as a whole session; else why not on stderr. */
static int check_session_file(struct lkh *h, const char *name)
{
        _cleanup_free_ char *id = strndup(name, strlen(name) - 5);
        json_t *o = lkh_read_session(h, id), *v;
        int r = 0;

        if (!json_is_object(o)) {
                fprintf(stderr, "session file %s does not open or parse\n", name);
                json_decref(o);
                return -1;
        }
        v = json_object_get(o, "session_id");
        if (!json_is_string(v) || !streq(json_string_value(v), id))
                r = -1;
        if (json_integer_value(json_object_get(o, "version")) != 1)
                r = -1;
        if (!json_is_true(json_object_get(o, "expired"))) {
                v = json_object_get(o, "access_token");
                if (!json_is_string(v) || json_string_length(v) == 0)
                        r = -1;
        }
        if (!json_is_object(json_object_get(o, "claims")))
                r = -1;
        if (r < 0)
                fprintf(stderr, "session file %s parses but is not a whole session\n", name);
        json_decref(o);
        return r;
}

struct dir_scan {
        char **sessions; /* ids with a NAME.json file */
        unsigned temp;   /* leftover NAME.json.tmp.XXXXXX */
        unsigned corrupt;
        unsigned bad;    /* .json files that do not parse */
};

static void scan_sessions(struct lkh *h, struct dir_scan *s)
{
        _cleanup_free_ char *dir = path_in_sessions(h, "");
        DIR *d = opendir(dir);
        struct dirent *de;

        *s = (struct dir_scan){0};
        assert_non_null(d);
        while ((de = readdir(d))) {
                const char *n = de->d_name;

                if (n[0] == '.')
                        continue;
                if (strstr(n, ".json.tmp."))
                        s->temp++;
                else if (lk_endswith(n, ".corrupt"))
                        s->corrupt++;
                else if (lk_endswith(n, ".json")) {
                        _cleanup_free_ char *id = strndup(n, strlen(n) - 5);
                        if (check_session_file(h, n) < 0)
                                s->bad++;
                        bc_strv_add(&s->sessions, id);
                }
        }
        closedir(d);
}

static void scan_free(struct dir_scan *s)
{
        lk_strv_free(s->sessions);
}

/* ---- SIGKILL at random points ---- */

static int setup_kill(void **state)
{
        struct lkh *h = NULL;

        if (lkh_new(&h) < 0 || lkh_start_idp(h, NULL) < 0 ||
            lkh_write_config(h, "[sessions]\nrefresh_margin = 60\n") < 0 || lkh_start_bus(h) < 0) {
                lkh_free(h);
                return -1;
        }
        *state = h;
        return 0;
}

/* One line to the parent: "TAG session_id". A pipe write under PIPE_BUF is atomic. */
static void say(int fd, char tag, const char *sid)
{
        char line[128];
        int n = snprintf(line, sizeof(line), "%c %s\n", tag, sid);

        if (write(fd, line, (size_t)n) != n)
                _exit(9);
}

/*
 * The load, in a child the parent kills with the broker: logins with
 * OpenSession, then a refresh of every open session at once (min_valid above
 * the token's life forces one, and each refresh writes the session's file),
 * then CloseSession of the oldest. Each step is announced before (lower-case
 * tag) and after (upper-case) it, so the parent knows what was answered.
 * Calls never activate a broker: the parent starts each one itself.
 */
static _Noreturn void drive(struct lkh *h, int fd, unsigned round, char **open)
{
        DBusConnection *c;
        char **mine = NULL;

        bc_autostart = false;
        c = bc_open(h->bus_address);
        if (!c)
                _exit(1);
        for (size_t i = 0; open && open[i]; i++)
                bc_strv_add(&mine, open[i]);
        for (unsigned k = 0;; k++) {
                DBusPendingCall *pending[DRIVER_SESSIONS + 2] = {0};
                char sid[64];
                char *id;
                size_t n = 0;

                snprintf(sid, sizeof(sid), "k%02u-%u", round, k);
                id = bc_login(h, c, "root");
                if (!id)
                        _exit(2);
                say(fd, 'o', sid);
                if (bc_call_s(c, "OpenSession", id, sid, NULL, NULL))
                        _exit(3);
                say(fd, 'O', sid);
                free(id);
                bc_strv_add(&mine, sid);

                for (n = 0; mine[n] && n < ELEMENTSOF(pending); n++) {
                        DBusMessage *m = bc_new("GetToken");

                        bc_append_options(m, mine[n], 7200);
                        say(fd, 'r', mine[n]);
                        if (!dbus_connection_send_with_reply(c, m, &pending[n], 30000) ||
                            !pending[n])
                                _exit(4);
                        dbus_message_unref(m);
                }
                dbus_connection_flush(c);
                for (size_t i = 0; i < n; i++) {
                        DBusMessage *reply;

                        dbus_pending_call_block(pending[i]);
                        reply = dbus_pending_call_steal_reply(pending[i]);
                        dbus_pending_call_unref(pending[i]);
                        if (!reply ||
                            dbus_message_get_type(reply) != DBUS_MESSAGE_TYPE_METHOD_RETURN)
                                _exit(5);
                        dbus_message_unref(reply);
                        say(fd, 'R', mine[i]);
                }

                while (lk_strv_length(mine) > DRIVER_SESSIONS) {
                        _cleanup_free_ char *old = strdup(mine[0]);
                        say(fd, 'c', old);
                        if (bc_call_s(c, "CloseSession", old, NULL, NULL, NULL))
                                _exit(6);
                        say(fd, 'C', old);
                        bc_strv_del(&mine, old);
                }
        }
}

struct kill_book {
        char **open;     /* OpenSession answered, no CloseSession sent */
        char **opening;  /* OpenSession sent, not answered */
        char **closing;  /* CloseSession sent, not answered */
        char **closed;   /* CloseSession answered */
        char **inflight; /* a refresh sent, not answered */
        unsigned kills_in_refresh, kills_in_open, kills_in_close, temp_files, sessions_made;
};

static void book_line(struct kill_book *b, char tag, const char *sid)
{
        switch (tag) {
        case 'o':
                bc_strv_add(&b->opening, sid);
                break;
        case 'O':
                bc_strv_del(&b->opening, sid);
                bc_strv_add(&b->open, sid);
                b->sessions_made++;
                break;
        case 'c':
                bc_strv_del(&b->open, sid);
                bc_strv_add(&b->closing, sid);
                break;
        case 'C':
                bc_strv_del(&b->closing, sid);
                bc_strv_add(&b->closed, sid);
                break;
        case 'r':
                bc_strv_add(&b->inflight, sid);
                break;
        case 'R':
                bc_strv_del(&b->inflight, sid);
                break;
        default:
                fail_msg("driver said '%c'", tag);
        }
}

static void read_book(int fd, struct kill_book *b)
{
        FILE *f = fdopen(fd, "r");
        char *line = NULL;
        size_t size = 0;
        ssize_t n;

        assert_non_null(f);
        while ((n = getline(&line, &size, f)) > 0) {
                if (n < 4 || line[1] != ' ' || line[n - 1] != '\n')
                        fail_msg("odd driver line '%s'", line);
                line[n - 1] = '\0';
                book_line(b, line[0], line + 2);
        }
        free(line);
        fclose(f);
}

/* The files as the killed broker left them. */
static void check_files_after_kill(struct lkh *h, struct kill_book *b)
{
        struct dir_scan s;

        scan_sessions(h, &s);
        b->temp_files += s.temp;
        assert_int_equal(s.bad, 0);
        assert_int_equal(s.corrupt, 0);
        for (size_t i = 0; b->open && b->open[i]; i++) {
                if (!bc_strv_has(s.sessions, b->open[i]))
                        fail_msg("session %s was opened before the kill, its file is gone",
                                 b->open[i]);
        }
        for (size_t i = 0; b->closed && b->closed[i]; i++)
                if (bc_strv_has(s.sessions, b->closed[i]))
                        fail_msg("session %s was closed before the kill, its file is back",
                                 b->closed[i]);
        scan_free(&s);
}

static void start_broker_retrying(struct lkh *h)
{
        int r = -1;

        /* The bus drops the dead broker's name a moment after the kill. */
        for (int i = 0; i < 50 && r < 0; i++) {
                r = lkh_start_broker(h, NULL);
                if (r < 0)
                        lkh_sleep_ms(100);
        }
        assert_int_equal(r, 0);
}

/*
 * A new broker: it lists every open session and no closed one, each listed one
 * answers GetToken; sessions in doubt (a step under way at the kill, a
 * refresh whose rotation may be lost) are closed, so the book is exact again.
 */
static void check_broker_after_kill(struct lkh *h, struct kill_book *b)
{
        DBusConnection *c = open_bus(h);
        char **list = bc_list_sessions(c);
        struct dir_scan s;

        assert_non_null(list);
        for (size_t i = 0; b->open && b->open[i]; i++)
                if (!bc_strv_has(list, b->open[i]))
                        fail_msg("session %s is not listed after the restart", b->open[i]);
        for (size_t i = 0; list[i]; i++) {
                _cleanup_free_ char *e = NULL, *t = NULL, *msg = NULL;

                if (!bc_strv_has(b->open, list[i]) && !bc_strv_has(b->opening, list[i]) &&
                    !bc_strv_has(b->closing, list[i]))
                        fail_msg("session %s is listed, but was never opened or was closed",
                                 list[i]);
                e = bc_get_token(c, list[i], 0, &t, NULL, &msg);
                if (e)
                        fail_msg("session %s does not answer GetToken: %s: %s", list[i], e, msg);
        }
        for (size_t i = 0; list[i]; i++) {
                _cleanup_free_ char *e = NULL;

                if (!bc_strv_has(b->opening, list[i]) && !bc_strv_has(b->closing, list[i]) &&
                    !bc_strv_has(b->inflight, list[i]))
                        continue;
                e = bc_call_s(c, "CloseSession", list[i], NULL, NULL, NULL);
                assert_null(e);
                bc_strv_del(&b->open, list[i]);
                bc_strv_add(&b->closed, list[i]);
        }
        lk_strv_free(b->opening);
        lk_strv_free(b->closing);
        lk_strv_free(b->inflight);
        b->opening = b->closing = b->inflight = NULL;
        lk_strv_free(list);
        bc_close(c);

        /* The files are whole, and what a kill in the middle of a write left is gone. */
        scan_sessions(h, &s);
        assert_int_equal(s.temp, 0);
        assert_int_equal(s.corrupt, 0);
        assert_int_equal(s.bad, 0);
        for (size_t i = 0; b->open && b->open[i]; i++)
                assert_true(bc_strv_has(s.sessions, b->open[i]));
        assert_int_equal(lk_strv_length(s.sessions), lk_strv_length(b->open));
        scan_free(&s);
}

static void test_sigkill_rounds(void **state)
{
        static const char *const delays[] = {"0", "0", "30", "100", "300"};
        struct lkh *h = *state;
        struct kill_book b = {0};
        const char *seed_env = getenv("LATCHKEY_TEST_SEED");
        unsigned seed = seed_env ? (unsigned)strtoul(seed_env, NULL, 10)
                                 : (unsigned)time(NULL) ^ (unsigned)getpid();
        int64_t t0 = lkh_now_ms();
        unsigned round;

        fprintf(stderr, "SIGKILL rounds with LATCHKEY_TEST_SEED=%u\n", seed);
        srand(seed);
        /* At least KILL_ROUNDS rounds; on a slow machine (sanitizers, other load) more, up to
         * three times as many, until the kills have landed where they are meant to (below). */
        for (round = 0; round < KILL_ROUNDS ||
                        (round < 3 * KILL_ROUNDS &&
                         (b.sessions_made < KILL_ROUNDS || b.kills_in_refresh < 5));
             round++) {
                int fds[2], status;
                pid_t child;
                long wait_ms = 20 + rand() % 600;

                assert_int_equal(lkh_idp_set(h, "delay_ms", delays[rand() % ELEMENTSOF(delays)]),
                                 0);
                start_broker_retrying(h);
                check_broker_after_kill(h, &b);

                assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
                fflush(NULL);
                child = fork();
                assert_true(child >= 0);
                if (child == 0) {
                        close(fds[0]);
                        prctl(PR_SET_PDEATHSIG, SIGKILL);
                        drive(h, fds[1], round, b.open);
                }
                close(fds[1]);
                lkh_sleep_ms(wait_ms);

                /* The driver freezes first, so it never sees the broker die: what it said
                 * is exactly what it had been answered. Its calls in flight stay in flight. */
                assert_int_equal(kill(child, SIGSTOP), 0);
                assert_int_equal(kill(h->broker_pid, SIGKILL), 0);
                assert_int_equal(waitpid(h->broker_pid, &status, 0), h->broker_pid);
                assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
                h->broker_pid = 0;
                assert_int_equal(kill(child, SIGKILL), 0);
                assert_int_equal(waitpid(child, &status, 0), child);
                if (!WIFSIGNALED(status))
                        fail_msg("round %u: the driver stopped by itself (status 0x%x) before "
                                 "the kill", round, (unsigned)status);
                read_book(fds[0], &b);

                b.kills_in_refresh += lk_strv_length(b.inflight) > 0;
                b.kills_in_open += lk_strv_length(b.opening) > 0;
                b.kills_in_close += lk_strv_length(b.closing) > 0;
                check_files_after_kill(h, &b);
        }

        start_broker_retrying(h);
        check_broker_after_kill(h, &b);
        fprintf(stderr,
                "%u rounds in %lld ms: %u sessions opened; killed with a refresh under way %u "
                "times, with an OpenSession under way %u, a CloseSession %u; kills in the "
                "middle of a write (a temporary file left, removed by the next broker): %u\n",
                round, (long long)(lkh_now_ms() - t0), b.sessions_made, b.kills_in_refresh,
                b.kills_in_open, b.kills_in_close, b.temp_files);
        /* The rounds did what they are for: kills landed in the middle of the work. */
        assert_true(b.sessions_made >= KILL_ROUNDS);
        assert_true(b.kills_in_refresh >= 5);
        lkh_stop_broker(h);
        lk_strv_free(b.open);
        lk_strv_free(b.closed);
}

/*
 * Starts the broker with lk-faultshim.so preloaded and the shim's variables (name, value,
 * ..., NULL) set; nothing else started here gets them.
 */
static int start_broker_with_shim(struct lkh *h, ...)
{
        const char *old_preload = getenv("LD_PRELOAD");
        _cleanup_free_ char *saved = old_preload ? strdup(old_preload) : NULL;
        _cleanup_free_ char *preload = NULL;
        const char *names[4];
        size_t n = 0;
        va_list ap;
        int r;

        if (asprintf(&preload, "%s%s%s", LK_FAULTSHIM_SO, saved ? " " : "", saved ? saved : "") <
            0)
                return -ENOMEM;
        setenv("LD_PRELOAD", preload, 1);
        va_start(ap, h);
        for (const char *name; (name = va_arg(ap, const char *)) && n < ELEMENTSOF(names);) {
                setenv(name, va_arg(ap, const char *), 1);
                names[n++] = name;
        }
        va_end(ap);
        r = lkh_start_broker(h, NULL);
        if (saved)
                setenv("LD_PRELOAD", saved, 1);
        else
                unsetenv("LD_PRELOAD");
        for (size_t i = 0; i < n; i++)
                unsetenv(names[i]);
        return r;
}

/* ---- a state write failing: fsync failing, the state dir's filesystem full ---- */

struct disk {
        struct lkh *h;
        bool mounted;
        char *filler;    /* fills the tmpfs */
        char *fail_sync; /* while it exists, the broker's fsync() fails with EIO */
};

static int setup_disk(void **state)
{
        struct disk *d = calloc(1, sizeof(*d));
        struct lkh *h = NULL;

        if (!d || lkh_new(&h) < 0 || lkh_start_idp(h, NULL) < 0 ||
            lkh_write_config(h, "[sessions]\nrefresh_margin = 60\n") < 0)
                goto fail;
        d->h = h;
        /* Only this test process (and the broker it starts) sees the small filesystem. */
        if (unshare(CLONE_NEWNS) < 0)
                fprintf(stderr, "cannot make a mount namespace (%m): skipping the full-disk "
                                "test\n");
        else if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                fprintf(stderr, "cannot make mounts private (%m): skipping the full-disk test\n");
        else if (mount("latchkey-test", h->state_dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                       "size=256k,mode=0700") < 0)
                fprintf(stderr, "cannot mount a tmpfs (%m): skipping the full-disk test\n");
        else
                d->mounted = true;
        if (asprintf(&d->filler, "%s/filler", h->state_dir) < 0 ||
            asprintf(&d->fail_sync, "%s/fail-fsync", h->dir) < 0)
                goto fail;
        if (lkh_start_bus(h) < 0 ||
            start_broker_with_shim(h, "LK_FAULT_FSYNC_FILE", d->fail_sync, NULL) < 0)
                goto fail;
        *state = d;
        return 0;
fail:
        if (h && d && d->mounted)
                umount2(h->state_dir, MNT_DETACH);
        lkh_free(h);
        if (d) {
                free(d->filler);
                free(d->fail_sync);
        }
        free(d);
        return -1;
}

static int teardown_disk(void **state)
{
        struct disk *d = *state;

        lkh_stop_broker(d->h);
        if (d->mounted && umount2(d->h->state_dir, MNT_DETACH) < 0)
                fprintf(stderr, "cannot unmount %s: %m\n", d->h->state_dir);
        lkh_free(d->h);
        free(d->filler);
        free(d->fail_sync);
        free(d);
        return 0;
}

/* Fills the filesystem of the state dir up to the last byte. */
static void fill_disk(struct disk *d)
{
        char buf[4096];
        int fd = open(d->filler, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        ssize_t n;

        assert_true(fd >= 0);
        memset(buf, 'x', sizeof(buf));
        for (size_t chunk = sizeof(buf); chunk > 0; chunk /= 2)
                while ((n = write(fd, buf, chunk)) > 0)
                        ;
        assert_int_equal(errno, ENOSPC);
        close(fd);
}

/* fsync() failing with EIO (lk-faultshim.so): a clear error, the previous state kept. */
static void test_write_fails(void **state)
{
        struct disk *d = *state;
        struct lkh *h = d->h;
        DBusConnection *c = open_bus(h);
        _cleanup_free_ char *file1 = path_in_sessions(h, "wf-1.json"), *before = NULL;
        _cleanup_free_ char *after = NULL, *t1 = NULL, *t2 = NULL, *id = NULL, *e = NULL;
        _cleanup_free_ char *msg = NULL;
        struct dir_scan s;
        char **list;

        assert_int_equal(bc_open_session(h, c, "root", "wf-1"), 0);
        e = bc_get_token(c, "wf-1", 0, &t1, NULL, NULL);
        assert_null(e);
        before = read_text(file1);
        assert_non_null(before);
        assert_int_equal(write_text(d->fail_sync, ""), 0);

        id = bc_login(h, c, "root");
        assert_non_null(id);
        e = bc_call_s(c, "OpenSession", id, "wf-2", NULL, &msg);
        assert_non_null(e);
        fprintf(stderr, "OpenSession while fsync fails: %s: %s\n", e, msg);
        assert_string_equal(e, DBUS_ERROR_FAILED);
        assert_non_null(strstr(msg, "wf-2.json"));
        assert_non_null(strstr(msg, "Input/output error"));
        free(e);
        free(msg);
        free(id);
        msg = NULL;

        /* The same id again (su inside a session): the session there stays as it was. */
        id = bc_login(h, c, "root");
        assert_non_null(id);
        e = bc_call_s(c, "OpenSession", id, "wf-1", NULL, &msg);
        assert_non_null(e);
        assert_non_null(strstr(msg, "Input/output error"));
        free(e);
        e = bc_get_token(c, "wf-1", 0, &t2, NULL, NULL);
        assert_null(e);
        assert_string_equal(t1, t2);
        after = read_text(file1);
        assert_non_null(after);
        assert_string_equal(before, after);
        list = bc_list_sessions(c);
        assert_non_null(list);
        assert_true(bc_strv_has(list, "wf-1"));
        assert_false(bc_strv_has(list, "wf-2"));
        lk_strv_free(list);
        scan_sessions(h, &s);
        assert_int_equal(s.temp, 0);
        assert_int_equal(s.bad, 0);
        assert_false(bc_strv_has(s.sessions, "wf-2"));
        scan_free(&s);

        assert_int_equal(unlink(d->fail_sync), 0);
        assert_int_equal(bc_open_session(h, c, "root", "wf-2"), 0);
        e = bc_call_s(c, "CloseSession", "wf-1", NULL, NULL, NULL);
        assert_null(e);
        e = bc_call_s(c, "CloseSession", "wf-2", NULL, NULL, NULL);
        assert_null(e);
        bc_close(c);
}

static void test_disk_full(void **state)
{
        struct disk *d = *state;
        struct lkh *h = d->h;
        DBusConnection *c;
        _cleanup_free_ char *file1 = NULL, *before = NULL, *after = NULL, *token1 = NULL;
        _cleanup_free_ char *token2 = NULL, *id = NULL, *e = NULL, *msg = NULL;
        char **list;
        struct dir_scan s;

        if (!d->mounted)
                skip();
        (void)unlink(d->fail_sync); /* whatever test_write_fails left */
        c = open_bus(h);
        assert_int_equal(bc_open_session(h, c, "root", "df-1"), 0);
        file1 = path_in_sessions(h, "df-1.json");
        before = read_text(file1);
        assert_non_null(before);
        e = bc_get_token(c, "df-1", 0, &token1, NULL, NULL);
        assert_null(e);
        fill_disk(d);

        /* A new session cannot be written: a clear error, nothing half-written. */
        id = bc_login(h, c, "root");
        assert_non_null(id);
        e = bc_call_s(c, "OpenSession", id, "df-2", NULL, &msg);
        assert_non_null(e);
        fprintf(stderr, "OpenSession on a full disk: %s: %s\n", e, msg);
        assert_string_equal(e, DBUS_ERROR_FAILED);
        assert_non_null(strstr(msg, "df-2.json"));
        assert_non_null(strstr(msg, "No space left on device"));
        free(e);
        free(msg);
        free(id);
        msg = NULL;

        /* The same id again (su inside a session): the session there stays as it was. */
        id = bc_login(h, c, "root");
        assert_non_null(id);
        e = bc_call_s(c, "OpenSession", id, "df-1", NULL, &msg);
        assert_non_null(e);
        assert_non_null(strstr(msg, "No space left on device"));
        free(e);
        e = bc_get_token(c, "df-1", 0, &token2, NULL, NULL);
        assert_null(e);
        assert_string_equal(token1, token2);
        free(token2);
        token2 = NULL;

        /* A refresh that cannot be saved: the caller has the new token, the file the old state. */
        e = bc_get_token(c, "df-1", 7200, &token2, NULL, NULL);
        assert_null(e);
        assert_string_not_equal(token1, token2);

        after = read_text(file1);
        assert_non_null(after);
        assert_string_equal(before, after);
        list = bc_list_sessions(c);
        assert_non_null(list);
        assert_true(bc_strv_has(list, "df-1"));
        assert_false(bc_strv_has(list, "df-2"));
        lk_strv_free(list);
        scan_sessions(h, &s);
        assert_int_equal(s.temp, 0);
        assert_int_equal(s.bad, 0);
        assert_false(bc_strv_has(s.sessions, "df-2"));
        scan_free(&s);

        /* Room again: sessions open as before; a restart finds df-1. */
        assert_int_equal(unlink(d->filler), 0);
        assert_int_equal(bc_open_session(h, c, "root", "df-2"), 0);
        bc_close(c);
        lkh_stop_broker(h);
        assert_int_equal(start_broker_with_shim(h, "LK_FAULT_FSYNC_FILE", d->fail_sync, NULL), 0);
        c = open_bus(h);
        free(e);
        e = bc_get_token(c, "df-1", 0, NULL, NULL, NULL);
        assert_null(e);
        e = bc_call_s(c, "CloseSession", "df-1", NULL, NULL, NULL);
        assert_null(e);
        e = bc_call_s(c, "CloseSession", "df-2", NULL, NULL, NULL);
        assert_null(e);
        bc_close(c);
}

/* ---- the provider misbehaving ---- */

static int setup_provider(void **state)
{
        return lkh_setup_broker(state, NULL, "[sessions]\nrefresh_margin = 60\n");
}

/*
 * With the switch on, CompleteLogin fails with ProviderUnavailable and a message holding
 * what; the code is not spent, so the same login completes once the switch is off. A
 * refresh under the switch fails too, and GetToken hands out the still valid token.
 */
static void expect_provider_error(struct lkh *h, const char *sw, const char *value,
                                  const char *what)
{
        DBusConnection *c = open_bus(h);
        _cleanup_free_ char *id = NULL, *url = NULL, *location = NULL, *e = NULL, *msg = NULL;
        _cleanup_free_ char *who = NULL, *t1 = NULL, *t2 = NULL;
        char sid[64];
        int64_t t0;

        e = bc_begin_login(c, "root", &id, &url);
        assert_null(e);
        assert_int_equal(lkh_browser_login(h, url, "root", false, &location, NULL), 0);
        assert_int_equal(lkh_idp_set(h, sw, value), 0);
        t0 = lkh_now_ms();
        e = bc_call_s(c, "CompleteLogin", id, location, NULL, &msg);
        fprintf(stderr, "%s=%s: %s: %s (%lld ms)\n", sw, value, e, msg, (long long)(lkh_now_ms() - t0));
        assert_non_null(e);
        assert_string_equal(e, ERR("ProviderUnavailable"));
        if (!strstr(msg, what))
                fail_msg("the error for %s does not say '%s': %s", sw, what, msg);
        /* Not the timeout: the broker saw what happened. */
        assert_true(lkh_now_ms() - t0 < 5000);
        free(e);
        free(msg);
        msg = NULL;

        assert_int_equal(lkh_idp_reset(h), 0);
        e = bc_call_s(c, "CompleteLogin", id, location, &who, &msg);
        assert_null(e);
        assert_string_equal(who, "root");
        snprintf(sid, sizeof(sid), "pv-%s", sw);
        e = bc_call_s(c, "OpenSession", id, sid, NULL, NULL);
        assert_null(e);
        e = bc_get_token(c, sid, 0, &t1, NULL, NULL);
        assert_null(e);

        assert_int_equal(lkh_idp_set(h, sw, value), 0);
        e = bc_get_token(c, sid, 7200, &t2, NULL, NULL);
        assert_null(e);
        assert_string_equal(t1, t2);
        assert_int_equal(lkh_idp_reset(h), 0);
        e = bc_call_s(c, "CloseSession", sid, NULL, NULL, NULL);
        assert_null(e);
        bc_close(c);
}

static void test_provider_goes_away(void **state)
{
        /* curl: "transfer closed with N bytes remaining to read" */
        expect_provider_error(*state, "close_after_headers", "1", "bytes remaining");
}

static void test_provider_content_type(void **state)
{
        expect_provider_error(*state, "wrong_content_type", "text/html; charset=utf-8",
                              "content type text/html");
}

static void test_provider_redirect(void **state)
{
        expect_provider_error(*state, "token_redirect", "1", "HTTP 302");
}

/* The broker still answers, and the IdP is fine: nothing above left a trace. */
static void test_provider_after(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = open_bus(h);

        assert_int_equal(bc_open_session(h, c, "root", "pv-after"), 0);
        assert_null(bc_call_s(c, "CloseSession", "pv-after", NULL, NULL, NULL));
        bc_close(c);
}

static int setup_wrong_name(void **state)
{
        struct lkh_idp_options o = {.cert_name = "other.example"};

        return lkh_setup_broker(state, &o, NULL);
}

/* The certificate is trusted (ca_file) but names other.example, not 127.0.0.1. */
static void test_certificate_for_another_name(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = open_bus(h);
        DBusMessage *m = bc_new("BeginLogin");
        const char *user = "root";
        struct bc_reply r;

        dbus_message_append_args(m, DBUS_TYPE_STRING, &user, DBUS_TYPE_INVALID);
        bc_append_options(m, NULL, 0);
        assert_int_equal(bc_call(c, m, 30000, &r), -1);
        fprintf(stderr, "certificate for another name: %s: %s\n", r.error, r.message);
        assert_string_equal(r.error, ERR("ProviderUnavailable"));
        assert_non_null(strstr(r.message, "certificate"));
        assert_non_null(strstr(r.message, "127.0.0.1"));
        bc_reply_clear(&r);
        bc_close(c);
}

/* ---- dbus-daemon restarted ---- */

static void test_bus_restart(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = open_bus(h);
        _cleanup_free_ char *e = NULL, *before = NULL, *after = NULL;
        pid_t pid;
        int status = 0, waited;

        assert_int_equal(bc_open_session(h, c, "root", "bus-1"), 0);
        e = bc_get_token(c, "bus-1", 0, &before, NULL, NULL);
        assert_null(e);
        bc_close(c);

        pid = h->broker_pid;
        assert_true(pid > 0);
        lkh_stop_bus(h);
        for (waited = 0; waited < 10000; waited += 20) {
                pid_t r = waitpid(pid, &status, WNOHANG);
                if (r == pid)
                        break;
                assert_int_equal(r, 0);
                lkh_sleep_ms(20);
        }
        if (waited >= 10000)
                fail_msg("the broker is still running 10 s after the bus went away");
        h->broker_pid = 0;
        fprintf(stderr, "the broker exited %d ms after the bus, status 0x%x\n", waited,
                (unsigned)status);
        /* By itself, not by a signal: it noticed and left through its normal exit path. */
        assert_true(WIFEXITED(status));

        assert_int_equal(lkh_start_bus(h), 0);
        c = open_bus(h);
        assert_true(bc_autostart);
        e = bc_get_token(c, "bus-1", 0, &after, NULL, NULL);
        assert_null(e);
        assert_string_equal(before, after);
        e = bc_call_s(c, "CloseSession", "bus-1", NULL, NULL, NULL);
        assert_null(e);
        bc_close(c);
}

/* ---- the clock jumping ---- */

static char *shift_file;

static int setup_clock(void **state)
{
        struct lkh *h = NULL;

        if (lkh_new(&h) < 0 || lkh_start_idp(h, NULL) < 0 ||
            lkh_write_config(h, "[sessions]\nrefresh_margin = 120\n") < 0 ||
            lkh_start_bus(h) < 0 || asprintf(&shift_file, "%s/timeshift", h->dir) < 0 ||
            write_text(shift_file, "0\n") < 0 ||
            start_broker_with_shim(h, "LK_TIMESHIFT_FILE", shift_file, NULL) < 0) {
                lkh_free(h);
                return -1;
        }
        *state = h;
        return 0;
}

static int teardown_clock(void **state)
{
        lkh_free(*state);
        free(shift_file);
        return 0;
}

static void set_shift(long seconds)
{
        char buf[32];

        snprintf(buf, sizeof(buf), "%ld\n", seconds);
        assert_int_equal(write_text(shift_file, buf), 0);
        lkh_sleep_ms(60); /* the shim looks again every 20 ms */
}

static void test_clock_jump(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = open_bus(h);
        _cleanup_free_ char *e = NULL, *msg = NULL, *t1 = NULL, *t2 = NULL, *t3 = NULL;
        _cleanup_free_ char *t4 = NULL;
        int64_t exp1, exp2, exp3, now;
        long n;

        assert_int_equal(lkh_idp_set(h, "expires_in", "600"), 0);
        assert_int_equal(bc_open_session(h, c, "root", "clk-1"), 0);
        e = bc_get_token(c, "clk-1", 0, &t1, &exp1, NULL);
        assert_null(e);
        now = time(NULL);
        assert_true(exp1 > now + 500 && exp1 <= now + 600);
        assert_int_equal(lkh_idp_reset(h), 0);
        assert_int_equal(lkh_idp_set(h, "expires_in", "600"), 0);

        /* 15 minutes on: the token expired 5 minutes ago; GetToken refreshes first. */
        set_shift(900);
        e = bc_get_token(c, "clk-1", 0, &t2, &exp2, &msg);
        if (e)
                fail_msg("GetToken after the jump: %s: %s", e, msg);
        assert_string_not_equal(t1, t2);
        now = time(NULL);
        assert_true(exp2 > now + 900 + 500 && exp2 <= now + 900 + 600);
        assert_int_equal(lkh_idp_stat(h, "token_refresh", &n), 0);
        assert_int_equal(n, 1);

        /* Another 15 minutes: once more. */
        set_shift(1800);
        e = bc_get_token(c, "clk-1", 0, &t3, &exp3, &msg);
        if (e)
                fail_msg("GetToken after the second jump: %s: %s", e, msg);
        assert_string_not_equal(t2, t3);
        assert_true(exp3 > exp2);
        assert_int_equal(lkh_idp_stat(h, "token_refresh", &n), 0);
        assert_int_equal(n, 2);

        /* Three hours on, past even the provider's id_tokens: a clear error, no crash. */
        set_shift(3 * 3600);
        e = bc_get_token(c, "clk-1", 0, NULL, NULL, &msg);
        assert_non_null(e);
        fprintf(stderr, "GetToken three hours ahead: %s: %s\n", e, msg);
        assert_int_equal(kill(h->broker_pid, 0), 0);

        /* And back: the token of the last refresh is good again. */
        set_shift(1800);
        free(e);
        e = bc_get_token(c, "clk-1", 0, &t4, NULL, NULL);
        assert_null(e);
        assert_int_equal(kill(h->broker_pid, 0), 0);
        e = bc_call_s(c, "CloseSession", "clk-1", NULL, NULL, NULL);
        assert_null(e);
        bc_close(c);
}

int main(void)
{
        const struct CMUnitTest kill[] = {
            cmocka_unit_test(test_sigkill_rounds),
        };
        const struct CMUnitTest provider[] = {
            cmocka_unit_test(test_provider_goes_away),
            cmocka_unit_test(test_provider_content_type),
            cmocka_unit_test(test_provider_redirect),
            cmocka_unit_test(test_provider_after),
        };
        const struct CMUnitTest wrong_name[] = {
            cmocka_unit_test(test_certificate_for_another_name),
        };
        const struct CMUnitTest bus[] = {
            cmocka_unit_test(test_bus_restart),
        };
        const struct CMUnitTest clock[] = {
            cmocka_unit_test(test_clock_jump),
        };
        /* Last: it moves this process into a mount namespace of its own. */
        const struct CMUnitTest disk[] = {
            cmocka_unit_test(test_write_fails),
            cmocka_unit_test(test_disk_full),
        };
        int failed = 0;

        failed += cmocka_run_group_tests_name("faults, SIGKILL", kill, setup_kill, lkh_teardown);
        failed += cmocka_run_group_tests_name("faults, provider", provider, setup_provider,
                                              lkh_teardown);
        failed += cmocka_run_group_tests_name("faults, certificate for another name", wrong_name,
                                              setup_wrong_name, lkh_teardown);
        failed += cmocka_run_group_tests_name("faults, dbus-daemon restart", bus, setup_provider,
                                              lkh_teardown);
        failed += cmocka_run_group_tests_name("faults, clock jump", clock, setup_clock,
                                              teardown_clock);
        failed += cmocka_run_group_tests_name("faults, state writes failing", disk, setup_disk,
                                              teardown_disk);
        return failed ? 1 : 0;
}
