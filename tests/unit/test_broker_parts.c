/* SPDX-License-Identifier: MIT */
/* latchkeyd's parts that need no bus: session ids, the error table, argument checks, the store, the
 * loop, the login caps. */
#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/utf8.h"
#include "broker/budget.h"
#include "broker/bus.h"
#include "broker/dbus_errors.h"
#include "broker/login.h"
#include "broker/loop.h"
#include "broker/session.h"
#include "broker/session_store.h"

static void test_session_ids(void **state)
{
        char longest[LK_SESSION_ID_MAX + 2];
        struct lk_error e = {0};

        assert_int_equal(lk_session_check_id("3", NULL), 0);
        assert_int_equal(lk_session_check_id("c12", NULL), 0);
        assert_int_equal(lk_session_check_id("a.b-c_D9", NULL), 0);
        memset(longest, 'x', LK_SESSION_ID_MAX);
        longest[LK_SESSION_ID_MAX] = '\0';
        assert_int_equal(lk_session_check_id(longest, NULL), 0);
        longest[LK_SESSION_ID_MAX] = 'x';
        longest[LK_SESSION_ID_MAX + 1] = '\0';
        assert_int_equal(lk_session_check_id(longest, NULL), -LK_ERR_INVALID_ARGUMENT);

        assert_int_equal(lk_session_check_id("", NULL), -LK_ERR_INVALID_ARGUMENT);
        assert_int_equal(lk_session_check_id(".", NULL), -LK_ERR_INVALID_ARGUMENT);
        assert_int_equal(lk_session_check_id("..", NULL), -LK_ERR_INVALID_ARGUMENT);
        assert_int_equal(lk_session_check_id(".hidden", NULL), -LK_ERR_INVALID_ARGUMENT);
        assert_int_equal(lk_session_check_id("../etc", NULL), -LK_ERR_INVALID_ARGUMENT);
        assert_int_equal(lk_session_check_id("a/b", NULL), -LK_ERR_INVALID_ARGUMENT);
        assert_int_equal(lk_session_check_id("a b", NULL), -LK_ERR_INVALID_ARGUMENT);
        assert_int_equal(lk_session_check_id("caf\xc3\xa9", &e), -LK_ERR_INVALID_ARGUMENT);
        assert_non_null(strstr(e.message, "letters"));
}

static void test_error_table(void **state)
{
        static const struct {
                int code;
                const char *name;
        } expect[] = {
            {LK_ERR_ACCESS_DENIED, "AccessDenied"},
            {LK_ERR_INVALID_ARGUMENT, "InvalidArgument"},
            {LK_ERR_NOT_FOUND, "NotFound"},
            {LK_ERR_LOGIN_EXPIRED, "LoginExpired"},
            {LK_ERR_INVALID_GRANT, "InvalidGrant"},
            {LK_ERR_INVALID_ID_TOKEN, "InvalidIdToken"},
            {LK_ERR_USER_MISMATCH, "UserMismatch"},
            {LK_ERR_NOT_ALLOWED, "NotAllowed"},
            {LK_ERR_PROVIDER_UNAVAILABLE, "ProviderUnavailable"},
            {LK_ERR_PROVIDER_RESPONSE, "ProviderUnavailable"},
            {LK_ERR_TOKEN_EXPIRED, "TokenExpired"},
            {LK_ERR_TOO_MANY_REQUESTS, "TooManyRequests"},
            {LK_ERR_ACCESS_DENIED_BY_USER, "InvalidGrant"},
            {LK_ERR_CLIENT_REFUSED, "ProviderUnavailable"},
        };
        struct lk_error e = {0};
        char buf[1024];

        for (size_t i = 0; i < ELEMENTSOF(expect); i++) {
                char want[128];
                snprintf(want, sizeof(want), LK_DBUS_ERROR_PREFIX "%s", expect[i].name);
                assert_string_equal(lk_dbus_error_name(-expect[i].code), want);
                assert_string_equal(lk_dbus_error_name(expect[i].code), want);
        }
        assert_string_equal(lk_dbus_error_name(-LK_ERR_NOMEM),
                            "org.freedesktop.DBus.Error.NoMemory");
        assert_string_equal(lk_dbus_error_name(-LK_ERR_IO), "org.freedesktop.DBus.Error.Failed");
        assert_string_equal(lk_dbus_error_name(0), "org.freedesktop.DBus.Error.Failed");
        assert_string_equal(lk_dbus_error_name(-9999), "org.freedesktop.DBus.Error.Failed");

        /* InvalidGrant carries the provider's own words. */
        lk_error_set(&e, LK_ERR_INVALID_GRANT, "The provider refused the code");
        snprintf(e.provider_error, sizeof(e.provider_error), "invalid_grant");
        snprintf(e.provider_description, sizeof(e.provider_description), "code already used");
        lk_dbus_error_message(-LK_ERR_INVALID_GRANT, &e, buf, sizeof(buf));
        assert_non_null(strstr(buf, "The provider refused the code"));
        assert_non_null(strstr(buf, "invalid_grant"));
        assert_non_null(strstr(buf, "code already used"));
        /* Without a message: at least the error's name. */
        lk_dbus_error_message(-LK_ERR_NOT_FOUND, NULL, buf, sizeof(buf));
        assert_string_equal(buf, "NotFound");
}

/* A message cut to fit its buffer ends on a whole character: D-Bus takes only valid UTF-8. */
static void test_error_cut_on_character(void **state)
{
        char text[LK_ERROR_MESSAGE_MAX + 8];

        for (size_t shift = 0; shift < 4; shift++) {
                struct lk_error e = {0};
                size_t n = 0;

                memset(text, 'a', shift);
                n = shift;
                while (n + 4 < sizeof(text)) {
                        memcpy(text + n, "\xf0\x9f\x94\x91", 4); /* U+1F511, 4 bytes */
                        n += 4;
                }
                text[n] = 0;
                lk_error_set(&e, LK_ERR_INVALID_ID_TOKEN, "%s", text);
                assert_true(strlen(e.message) > LK_ERROR_MESSAGE_MAX - 5);
                assert_true(lk_utf8_valid(e.message, strlen(e.message)));
        }
}

static void test_arg_check(void **state)
{
        char big[LK_ARG_ANSWER_MAX + 2];
        struct lk_error e = {0};

        assert_int_equal(lk_arg_check("alice", LK_ARG_ID_MAX, "user", NULL), 0);
        assert_int_equal(lk_arg_check("J\xc3\xbcrgen", LK_ARG_ID_MAX, "user", NULL), 0);
        assert_int_equal(lk_arg_check("\xc3\x28", LK_ARG_ID_MAX, "user", &e),
                         -LK_ERR_INVALID_ARGUMENT);
        assert_non_null(strstr(e.message, "UTF-8"));
        assert_int_equal(lk_arg_check("\xed\xa0\x80", LK_ARG_ID_MAX, "user", NULL),
                         -LK_ERR_INVALID_ARGUMENT); /* a surrogate */
        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        lk_error_clear(&e);
        assert_int_equal(lk_arg_check(big, LK_ARG_ANSWER_MAX, "answer", &e),
                         -LK_ERR_INVALID_ARGUMENT);
        assert_non_null(strstr(e.message, "answer"));
        big[LK_ARG_ANSWER_MAX] = '\0';
        assert_int_equal(lk_arg_check(big, LK_ARG_ANSWER_MAX, "answer", NULL), 0);
}

/* ---- the store ---- */

struct store_fixture {
        char dir[64];
        char sessions_dir[80];
        struct lk_session_store *store;
        struct lk_sessions ss;
};

#define BOOT_ID "11111111-2222-3333-4444-555555555555"

static int store_setup(void **state)
{
        struct store_fixture *f = calloc(1, sizeof(*f));

        if (!f)
                return -1;
        snprintf(f->dir, sizeof(f->dir), "/tmp/latchkey-store-XXXXXX");
        if (!mkdtemp(f->dir))
                return -1;
        snprintf(f->sessions_dir, sizeof(f->sessions_dir), "%s/sessions", f->dir);
        f->ss = (struct lk_sessions){.clock = &lk_clock_system};
        *state = f;
        return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        return remove(path);
}

static int store_teardown(void **state)
{
        struct store_fixture *f = *state;
        lk_sessions_free_all(&f->ss);
        lk_store_free(f->store);
        if (nftw(f->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) < 0)
                fprintf(stderr, "cannot remove %s\n", f->dir);
        free(f);
        return 0;
}

static struct lk_session_record make_record(const char *id)
{
        struct lk_session_record r = {0}, *s = &r;

        s->id = strdup(id);
        s->user = strdup("alice");
        s->uid = 1000;
        s->opened_at = 1700000000;
        s->tokens.access_token = strdup("at-secret");
        s->tokens.refresh_token = strdup("rt-secret");
        s->tokens.id_token = strdup("a.b.c");
        s->tokens.token_type = strdup("Bearer");
        s->tokens.expires_at = 1700003600;
        s->claims = json_pack("{s:s, s:s}", "sub", "u1", "preferred_username", "alice");
        return r;
}

static void write_text(const char *path, const char *text)
{
        FILE *f = fopen(path, "we");

        assert_non_null(f);
        fputs(text, f);
        assert_int_equal(fclose(f), 0);
}

static void test_store_round_trip(void **state)
{
        struct store_fixture *f = *state;
        struct lk_session_record s = make_record("c7");
        struct lk_session *l;
        struct lk_error e = {0};
        char path[256];
        struct stat st;

        assert_int_equal(lk_store_new(f->dir, BOOT_ID, &f->store, &e), 0);
        assert_int_equal(lk_store_save(f->store, &s, &e), 0);
        snprintf(path, sizeof(path), "%s/c7.json", f->sessions_dir);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);

        /* A corrupt file, a file of another boot, a stray name. */
        snprintf(path, sizeof(path), "%s/broken.json", f->sessions_dir);
        write_text(path, "{\"version\":1,");
        snprintf(path, sizeof(path), "%s/old.json", f->sessions_dir);
        write_text(path, "{\"version\":1,\"session_id\":\"old\",\"boot_id\":\"other\"}");
        snprintf(path, sizeof(path), "%s/a b.json", f->sessions_dir);
        write_text(path, "{}");

        f->ss.store = f->store;
        assert_int_equal(lk_sessions_load_all(&f->ss, &e), 0);
        l = lk_session_find(&f->ss, "c7");
        assert_non_null(l);
        assert_null(l->next); /* nothing else loaded */
        assert_string_equal(l->user, "alice");
        assert_int_equal(l->uid, 1000);
        assert_int_equal(l->opened_at, 1700000000);
        assert_string_equal(l->tokens.access_token, "at-secret");
        assert_string_equal(l->tokens.refresh_token, "rt-secret");
        assert_string_equal(l->tokens.id_token, "a.b.c");
        assert_int_equal(l->tokens.expires_at, 1700003600);
        assert_false(l->expired);
        assert_string_equal(json_string_value(json_object_get(l->claims, "sub")), "u1");

        snprintf(path, sizeof(path), "%s/broken.json.corrupt", f->sessions_dir);
        assert_int_equal(access(path, F_OK), 0);
        snprintf(path, sizeof(path), "%s/old.json", f->sessions_dir);
        assert_int_not_equal(access(path, F_OK), 0);
        snprintf(path, sizeof(path), "%s/a b.json.corrupt", f->sessions_dir);
        assert_int_equal(access(path, F_OK), 0);

        lk_store_remove(f->store, "c7");
        snprintf(path, sizeof(path), "%s/c7.json", f->sessions_dir);
        assert_int_not_equal(access(path, F_OK), 0);
        lk_session_record_clear(&s);
}

static void test_store_dir_checks(void **state)
{
        struct store_fixture *f = *state;
        struct lk_error e = {0};

        /* Made when missing, 0700. */
        assert_int_equal(lk_store_new(f->dir, BOOT_ID, &f->store, &e), 0);
        assert_int_equal(access(f->sessions_dir, F_OK), 0);
        lk_store_free(TAKE_PTR(f->store));
        assert_int_equal(chmod(f->dir, 0755), 0);
        assert_int_equal(lk_store_new(f->dir, BOOT_ID, &f->store, &e), -LK_ERR_IO);
        assert_null(f->store);
        assert_non_null(strstr(e.message, "0700"));
        assert_int_equal(chmod(f->dir, 0700), 0);
}

/* ---- the loop ---- */

struct loop_record {
        struct lk_loop *l;
        char order[16];
        int fd_seen;
};

static void on_t1(struct lk_timer *t, void *userdata)
{
        struct loop_record *r = userdata;
        size_t n = strlen(r->order);
        snprintf(r->order + n, sizeof(r->order) - n, "1");
}

static void on_t2(struct lk_timer *t, void *userdata)
{
        struct loop_record *r = userdata;
        size_t n = strlen(r->order);
        snprintf(r->order + n, sizeof(r->order) - n, "2");
        lk_loop_quit(r->l, 7);
}

static void on_io(struct lk_io *io, int fd, short revents, void *userdata)
{
        struct loop_record *r = userdata;
        char c;

        if (read(fd, &c, 1) == 1)
                r->fd_seen = c;
        lk_io_free(io); /* freeing itself from its own callback is allowed */
}

static void test_loop(void **state)
{
        struct loop_record r = {0};
        struct lk_timer *t1, *t2, *t3;
        int fds[2];

        assert_int_equal(lk_loop_new(&r.l), 0);
        assert_int_equal(pipe(fds), 0);
        assert_non_null(lk_io_new(r.l, fds[0], POLLIN, on_io, &r));
        assert_int_equal(write(fds[1], "x", 1), 1);
        t1 = lk_timer_new(r.l, on_t1, &r);
        t2 = lk_timer_new(r.l, on_t2, &r);
        t3 = lk_timer_new(r.l, on_t1, &r);
        lk_timer_set_in(t2, 60);
        lk_timer_set_in(t1, 10);
        lk_timer_set_in(t3, 30);
        lk_timer_free(t3); /* never fires */
        assert_int_equal(lk_loop_run(r.l), 7);
        assert_string_equal(r.order, "12");
        assert_int_equal(r.fd_seen, 'x');
        lk_timer_free(t1);
        lk_timer_free(t2);
        lk_loop_free(r.l);
        close(fds[0]);
        close(fds[1]);
}

/* Three ready watches and the prepare function: "p" before the round, then one between each
 * two watches' callbacks (the broker dispatches the bus there), oldest watch first. */
struct prepare_record {
        struct lk_loop *l;
        char order[32];
};

static void add_mark(struct prepare_record *r, char c)
{
        size_t n = strlen(r->order);

        if (n + 1 < sizeof(r->order)) {
                r->order[n] = c;
                r->order[n + 1] = 0;
        }
}

static void on_prepare_mark(void *userdata)
{
        struct prepare_record *r = userdata;

        add_mark(r, 'p');
        if (strchr(r->order, 'c')) /* the last watch served: the next round's start */
                lk_loop_quit(r->l, 0);
}

static void on_ready(struct lk_io *io, int fd, short revents, void *userdata)
{
        char c;

        (void)revents;
        if (read(fd, &c, 1) == 1)
                add_mark(userdata, c);
        lk_io_free(io);
}

static void test_loop_prepare_between_watches(void **state)
{
        struct prepare_record r = {0};
        int fds[3][2];

        (void)state;
        assert_int_equal(lk_loop_new(&r.l), 0);
        for (int i = 0; i < 3; i++) {
                assert_int_equal(pipe(fds[i]), 0);
                assert_non_null(lk_io_new(r.l, fds[i][0], POLLIN, on_ready, &r));
                assert_int_equal(write(fds[i][1], &"abc"[i], 1), 1);
        }
        lk_loop_set_prepare(r.l, on_prepare_mark, &r);
        assert_int_equal(lk_loop_run(r.l), 0);
        /* round 1: p, a, p, b, p, c; round 2 begins with p and quits */
        assert_string_equal(r.order, "papbpcp");
        lk_loop_free(r.l);
        for (int i = 0; i < 3; i++) {
                close(fds[i][0]);
                close(fds[i][1]);
        }
}

/* ---- the login caps (login.h), on logins made up in place ---- */

static struct lk_login *fake_login(struct lk_logins *b, uid_t owner, uid_t user,
                                   enum lk_login_state state, const char *caller)
{
        static unsigned n;
        struct lk_login *l = calloc(1, sizeof(*l));

        assert_non_null(l);
        *l = (struct lk_login){.owner = b, .owner_uid = owner, .user_uid = user, .state = state,
                               .expires_ms = lk_now_ms() + 600 * 1000};
        assert_true(asprintf(&l->id, "fake-%u", n++) > 0);
        l->user = strdup("someone");
        l->caller = caller ? strdup(caller) : NULL;
        l->next = b->list;
        b->list = l;
        b->n++;
        return l;
}

static unsigned count_state(struct lk_logins *b, enum lk_login_state state)
{
        unsigned n = 0;

        for (struct lk_login *l = b->list; l; l = l->next)
                n += l->state == state;
        return n;
}

static void test_login_caps_pending(void **state)
{
        struct lk_logins b = {.clock = &lk_clock_system};
        struct lk_error e = {0};
        struct lk_login *first = NULL;

        /* Root's logins for uid 1000 and uid 1000's own share one count. */
        for (int i = 0; i < LK_LOGINS_PER_USER_MAX; i++) {
                struct lk_login *l = fake_login(&b, i % 2 ? 0 : 1000, 1000, LK_LOGIN_PENDING, NULL);
                first = first ?: l;
        }
        assert_int_equal(lk_login_admit(&b, 0, 1000, &e), -LK_ERR_TOO_MANY_REQUESTS);
        assert_non_null(strstr(e.message, "uid 1000"));
        assert_int_equal(lk_login_admit(&b, 1000, 1000, NULL), -LK_ERR_TOO_MANY_REQUESTS);
        assert_int_equal(lk_login_admit(&b, 0, 1001, NULL), 0);
        assert_int_equal(lk_login_admit(&b, 0, 0, NULL), 0);
        /* Complete or ended, a login no longer counts. */
        first->state = LK_LOGIN_DONE;
        assert_int_equal(lk_login_admit(&b, 0, 1000, NULL), 0);
        first->state = LK_LOGIN_EXPIRED;
        assert_int_equal(lk_login_admit(&b, 0, 1000, NULL), 0);
        first->state = LK_LOGIN_EXCHANGING;
        assert_int_equal(lk_login_admit(&b, 0, 1000, NULL), -LK_ERR_TOO_MANY_REQUESTS);
        lk_logins_free_all(&b);

        /* Host-wide: 1024 pending in all, whoever they are for. */
        for (int i = 0; i < LK_LOGINS_MAX; i++)
                first = fake_login(&b, 0, 2000 + (uid_t)(i / LK_LOGINS_PER_USER_MAX),
                                   LK_LOGIN_PENDING, NULL);
        lk_error_clear(&e);
        assert_int_equal(lk_login_admit(&b, 0, 9999, &e), -LK_ERR_TOO_MANY_REQUESTS);
        assert_non_null(strstr(e.message, "at most 1024"));
        first->state = LK_LOGIN_DONE;
        assert_int_equal(lk_login_admit(&b, 0, 9999, NULL), 0);
        lk_logins_free_all(&b);
}

static void test_login_caps_done(void **state)
{
        struct lk_logins b = {.clock = &lk_clock_system};
        struct lk_login *oldest7 = NULL, *l;

        /* Per user: the 17th completed login of uid 7 pushes its oldest out, no one else's. */
        fake_login(&b, 0, 8, LK_LOGIN_DONE, NULL);
        for (int i = 0; i < LK_LOGINS_DONE_PER_USER_MAX; i++) {
                l = fake_login(&b, 0, 7, LK_LOGIN_DONE, NULL);
                oldest7 = oldest7 ?: l;
        }
        fake_login(&b, 0, 8, LK_LOGIN_DONE, NULL);
        l = fake_login(&b, 7, 7, LK_LOGIN_DONE, NULL);
        lk_logins_bound_done(&b, l);
        assert_int_equal(oldest7->state, LK_LOGIN_EXPIRED);
        assert_non_null(strstr(oldest7->ended, "dropped"));
        assert_int_equal(count_state(&b, LK_LOGIN_DONE), LK_LOGINS_DONE_PER_USER_MAX + 2);
        assert_int_equal(l->state, LK_LOGIN_DONE);
        lk_logins_free_all(&b);

        /* Host-wide: 1024 completed in all, the oldest goes. */
        l = NULL;
        for (int i = 0; i < LK_LOGINS_DONE_MAX; i++) {
                struct lk_login *x = fake_login(&b, 0, 3000 + (uid_t)(i / 8), LK_LOGIN_DONE, NULL);
                l = l ?: x;
        }
        oldest7 = l;
        l = fake_login(&b, 0, 9999, LK_LOGIN_DONE, NULL);
        lk_logins_bound_done(&b, l);
        assert_int_equal(oldest7->state, LK_LOGIN_EXPIRED);
        assert_int_equal(count_state(&b, LK_LOGIN_DONE), LK_LOGINS_DONE_MAX);
        lk_logins_free_all(&b);
}

static void test_login_tombstones_bounded(void **state)
{
        struct lk_logins b = {.clock = &lk_clock_system};
        struct lk_login *newest = NULL;

        for (int i = 0; i < LK_LOGINS_ENDED_MAX + 100; i++)
                newest = fake_login(&b, 0, 1, LK_LOGIN_EXPIRED, NULL);
        fake_login(&b, 0, 1, LK_LOGIN_PENDING, NULL);
        lk_logins_bound_ended(&b);
        assert_int_equal(count_state(&b, LK_LOGIN_EXPIRED), LK_LOGINS_ENDED_MAX);
        assert_int_equal(b.n, LK_LOGINS_ENDED_MAX + 1);
        assert_ptr_equal(b.list->next, newest); /* the newest are kept */
        assert_int_equal(count_state(&b, LK_LOGIN_PENDING), 1);
        lk_logins_free_all(&b);
}

static void test_login_caller_left(void **state)
{
        struct lk_logins b = {.clock = &lk_clock_system};
        struct lk_login *pending = fake_login(&b, 0, 1, LK_LOGIN_PENDING, ":1.5");
        struct lk_login *done = fake_login(&b, 0, 1, LK_LOGIN_DONE, ":1.5");
        struct lk_login *exchanging = fake_login(&b, 0, 1, LK_LOGIN_EXCHANGING, ":1.5");
        struct lk_login *other = fake_login(&b, 0, 1, LK_LOGIN_PENDING, ":1.6");
        struct lk_login *without = fake_login(&b, 0, 1, LK_LOGIN_PENDING, NULL);

        lk_logins_caller_left(&b, ":1.5");
        assert_int_equal(pending->state, LK_LOGIN_EXPIRED);
        assert_non_null(strstr(pending->ended, "caller left"));
        assert_int_equal(done->state, LK_LOGIN_DONE);
        assert_true(exchanging->cancelled);
        assert_int_equal(other->state, LK_LOGIN_PENDING);
        assert_int_equal(without->state, LK_LOGIN_PENDING);
        lk_logins_free_all(&b);
}

/* The token bucket: a burst, then the refill rate; refunds; uids apart; the table bounded. */
static void test_budget(void **state)
{
        struct lk_budget *g;
        struct lk_error e = {0};
        int64_t t = 1000000;
        int ok = 0;

        assert_int_equal(lk_budget_new(&g), 0);
        for (int i = 0; i < LK_BUDGET_BURST; i++)
                assert_int_equal(lk_budget_take(g, 1000, t, NULL), 0);
        assert_int_equal(lk_budget_take(g, 1000, t, &e), -LK_ERR_TOO_MANY_REQUESTS);
        assert_non_null(strstr(e.message, "uid 1000"));
        /* Another uid has its own. */
        assert_int_equal(lk_budget_take(g, 1001, t, NULL), 0);
        /* A granted request gives its token back. */
        lk_budget_refund(g, 1000);
        assert_int_equal(lk_budget_take(g, 1000, t, NULL), 0);
        assert_int_equal(lk_budget_take(g, 1000, t, NULL), -LK_ERR_TOO_MANY_REQUESTS);
        /* One more each 60 / LK_BUDGET_PER_MINUTE seconds, not before. */
        t += 60000 / LK_BUDGET_PER_MINUTE - 1;
        assert_int_equal(lk_budget_take(g, 1000, t, NULL), -LK_ERR_TOO_MANY_REQUESTS);
        t += 1;
        assert_int_equal(lk_budget_take(g, 1000, t, NULL), 0);
        assert_int_equal(lk_budget_take(g, 1000, t, NULL), -LK_ERR_TOO_MANY_REQUESTS);
        /* Asked every millisecond, it refills at the same rate (no fraction lost per call). */
        for (int i = 0; i < 60000 / LK_BUDGET_PER_MINUTE; i++)
                ok += lk_budget_take(g, 1000, ++t, NULL) == 0;
        assert_int_equal(ok, 1);
        /* Never more than the burst, however long it rested. */
        t += 24 * 3600 * 1000LL;
        for (int i = 0; i < LK_BUDGET_BURST; i++)
                assert_int_equal(lk_budget_take(g, 1000, t, NULL), 0);
        assert_int_equal(lk_budget_take(g, 1000, t, NULL), -LK_ERR_TOO_MANY_REQUESTS);

        /* The table: full of uids that spent, a new one waits; once they refill, room. */
        lk_budget_free(g);
        assert_int_equal(lk_budget_new(&g), 0);
        for (uid_t u = 0; u < LK_BUDGET_UIDS_MAX; u++)
                assert_int_equal(lk_budget_take(g, 20000 + u, t, NULL), 0);
        assert_int_equal(lk_budget_take(g, 5, t, &e), -LK_ERR_TOO_MANY_REQUESTS);
        assert_int_equal(lk_budget_take(g, 5, t + 60000, NULL), 0);
        lk_budget_free(g);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_budget),
            cmocka_unit_test(test_session_ids),
            cmocka_unit_test(test_error_table),
            cmocka_unit_test(test_error_cut_on_character),
            cmocka_unit_test(test_arg_check),
            cmocka_unit_test_setup_teardown(test_store_round_trip, store_setup, store_teardown),
            cmocka_unit_test_setup_teardown(test_store_dir_checks, store_setup, store_teardown),
            cmocka_unit_test(test_loop),
            cmocka_unit_test(test_loop_prepare_between_watches),
            cmocka_unit_test(test_login_caps_pending),
            cmocka_unit_test(test_login_caps_done),
            cmocka_unit_test(test_login_tombstones_bounded),
            cmocka_unit_test(test_login_caller_left),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
