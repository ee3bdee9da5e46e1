/* SPDX-License-Identifier: MIT */
/*
 * The offline PIN's parts without a broker (issue 21): the record's parser and format
 * (broker/pin_record.c), the decisions and the count of wrong PINs on a fake clock
 * (broker/offline.c), and the Argon2id worker's caps (broker/pin_worker.c) on a real loop.
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/util.h"
#include "broker/offline.h"
#include "broker/pin_record.h"
#include "broker/pin_worker.h"

#define DAY 86400
#define HASH "$argon2id$v=19$m=8192,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaA"

static int64_t fake_wall = 1700000000;
static int64_t wall_s(void)
{
        return fake_wall;
}
static int64_t mono_ms(void)
{
        return fake_wall * 1000;
}
static const struct lk_clock fake_clock = {.mono_ms = mono_ms, .wall_s = wall_s};

/* ---- the record ---- */

static int parse(const char *text, struct lk_pin_record *r, struct lk_error *e)
{
        *e = (struct lk_error){0};
        return lk_pin_record_parse(text, strlen(text), r, e);
}

static void test_record_round_trip(void **state)
{
        struct lk_pin_record r = {.uid = 1000, .online_at = 1764680000, .failures = 2,
                                  .locked_until = 1764680060, .disabled = true};
        struct lk_pin_record back;
        struct lk_error e;
        char text[LK_PIN_RECORD_MAX];

        snprintf(r.user, sizeof(r.user), "alice");
        snprintf(r.hash, sizeof(r.hash), "%s", HASH);
        assert_true(lk_pin_record_format(&r, text, sizeof(text)) > 0);
        assert_int_equal(parse(text, &back, &e), 0);
        assert_int_equal(back.uid, 1000);
        assert_string_equal(back.user, "alice");
        assert_int_equal(back.online_at, 1764680000);
        assert_int_equal(back.failures, 2);
        assert_int_equal(back.locked_until, 1764680060);
        assert_true(back.disabled);
        assert_string_equal(back.hash, HASH);

        /* without a PIN, no hash line */
        r.hash[0] = 0;
        assert_true(lk_pin_record_format(&r, text, sizeof(text)) > 0);
        assert_null(strstr(text, "hash"));
        assert_int_equal(parse(text, &back, &e), 0);
        assert_string_equal(back.hash, "");
}

static void test_record_refusals(void **state)
{
        static const struct {
                const char *text, *why;
        } bad[] = {
                {"", "empty"},
                {"latchkey-offline 2\n", "line 1: not"},
                {"latchkey-offline 1\nuid 1\nuser a\nonline_at 1\nfailures 0\nlocked_until 0\n",
                 "disabled missing"},
                {"latchkey-offline 1\nuid 1\nuid 1\n", "uid given twice"},
                {"latchkey-offline 1\nuid -1\n", "bad uid"},
                {"latchkey-offline 1\nuid 4294967295\n", "bad uid"},
                {"latchkey-offline 1\ncolour blue\n", "unknown key"},
                {"latchkey-offline 1\nuid 1", "no newline"},
                {"latchkey-offline 1\ndisabled 2\n", "not 0 or 1"},
                {"latchkey-offline 1\nuser a b\n", "bad byte"},
                {"latchkey-offline 1\nhash $argon2i$v=19$m=8,t=1,p=1$a$b\n", "not an Argon2id"},
                /* a file cannot make one check cost more than the bounds */
                {"latchkey-offline 1\nhash $argon2id$v=19$m=4194304,t=1,p=1$a$b\n",
                 "not an Argon2id"},
                {"latchkey-offline 1\nhash $argon2id$v=19$m=8192,t=1,p=1$a\n", "not an Argon2id"},
                {"latchkey-offline 1\nfailures 99999999999999999999999\n", "bad failures"},
        };
        struct lk_pin_record r;
        struct lk_error e;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                assert_int_equal(parse(bad[i].text, &r, &e), -LK_ERR_IO);
                if (!strstr(e.message, bad[i].why))
                        fail_msg("case %zu: expected '%s' in '%s'", i, bad[i].why, e.message);
        }
        {
                char big[LK_PIN_RECORD_MAX + 2];
                memset(big, 'x', sizeof(big) - 1);
                big[sizeof(big) - 1] = 0;
                assert_int_equal(parse(big, &r, &e), -LK_ERR_IO);
                assert_non_null(strstr(e.message, "larger than"));
        }
}

/* ---- the decisions, on a fake clock ---- */

struct fixture {
        char dir[64];
        struct lk_config *config;
        struct lk_loop *loop;
        struct lk_session_keys keys;
        struct lk_offline o;
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        return remove(path);
}

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        struct lk_error e = {0};

        if (!f)
                return -1;
        snprintf(f->dir, sizeof(f->dir), "/tmp/lk-test-offline.XXXXXX");
        if (!mkdtemp(f->dir) ||
            lk_config_load_string("[provider]\nissuer = https://idp.example.com\n"
                                  "client_id = latchkey\n"
                                  "redirect_uri = https://login.example.com/callback\n"
                                  "[accounts]\nmax_offline_days = 3\n"
                                  "[offline]\npin = yes\nargon2_memory = 8192\n"
                                  "argon2_time = 1\nlockout_after = 2\nlockout_delay = 10\n"
                                  "max_failures = 20\n",
                                  "test.conf", &f->config, NULL, &e) < 0 ||
            lk_loop_new(&f->loop) < 0 || lk_session_keys_load(f->dir, &f->keys, &e) < 0 ||
            lk_offline_init(&f->o, f->config, &fake_clock, f->dir, &f->keys, f->loop, &e) < 0)
                return -1;
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;

        lk_offline_done(&f->o);
        lk_session_keys_clear(&f->keys);
        lk_loop_free(f->loop);
        lk_config_free(f->config);
        nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
        free(f);
        return 0;
}

static void store_pin(struct fixture *f)
{
        struct lk_error e = {0};

        assert_int_equal(lk_offline_store_hash(&f->o, 1000, "alice", fake_wall, HASH, &e), 0);
}

static int may(struct fixture *f, struct lk_error *e)
{
        struct lk_pin_record r;

        *e = (struct lk_error){0};
        return lk_offline_may_check(&f->o, 1000, &r, e);
}

static void test_window_and_disabled(void **state)
{
        struct fixture *f = *state;
        struct lk_error e;
        struct lk_offline_state st;
        int64_t start = fake_wall;

        assert_int_equal(may(f, &e), -LK_ERR_NOT_ALLOWED); /* no PIN yet */
        store_pin(f);
        assert_int_equal(may(f, &e), 0);
        lk_offline_state(&f->o, 1000, &st);
        assert_string_equal(st.state, "ready");
        assert_int_equal(st.until, start + 3 * DAY);

        /* max_offline_days after the last online sign-in */
        fake_wall = start + 3 * DAY + 1;
        assert_int_equal(may(f, &e), -LK_ERR_TOKEN_EXPIRED);
        assert_non_null(strstr(e.message, "Your sign-in has expired: sign in again"));
        lk_offline_note_online(&f->o, 1000, "alice");
        assert_int_equal(may(f, &e), 0);

        /* the provider refused the refresh: disabled, until the next online sign-in */
        lk_offline_note_refused(&f->o, 1000);
        assert_int_equal(may(f, &e), -LK_ERR_ACCOUNT_DISABLED);
        lk_offline_state(&f->o, 1000, &st);
        assert_string_equal(st.state, "disabled");
        lk_offline_note_online(&f->o, 1000, "alice");
        assert_int_equal(may(f, &e), 0);
        fake_wall = start;
}

/* The wait doubles from lockout_delay, never beyond LK_PIN_DELAY_MAX; max_failures spends it. */
static void test_lockout_doubles_and_is_capped(void **state)
{
        struct fixture *f = *state;
        struct lk_pin_record r;
        struct lk_error e;
        int64_t expect = 10;

        store_pin(f);
        e = (struct lk_error){0};
        assert_int_equal(lk_offline_checked(&f->o, 1000, false, &e), -LK_ERR_ACCESS_DENIED);
        assert_int_equal(may(f, &e), 0); /* one wrong PIN: no wait yet */
        for (unsigned n = 2; n < 20; n++) {
                e = (struct lk_error){0};
                assert_int_equal(lk_offline_checked(&f->o, 1000, false, &e),
                                 -LK_ERR_ACCESS_DENIED);
                assert_int_equal(lk_offline_load(&f->o, 1000, &r, &e), 0);
                assert_int_equal(r.failures, n);
                assert_int_equal(r.locked_until - fake_wall, expect);
                assert_int_equal(may(f, &e), -LK_ERR_TOO_MANY_REQUESTS);
                expect = expect * 2 > LK_PIN_DELAY_MAX ? LK_PIN_DELAY_MAX : expect * 2;
        }
        /* the 20th (max_failures): no more tries until an online sign-in */
        e = (struct lk_error){0};
        assert_int_equal(lk_offline_checked(&f->o, 1000, false, &e), -LK_ERR_ACCESS_DENIED);
        assert_non_null(strstr(e.message, "no tries left"));
        fake_wall += LK_PIN_DELAY_MAX + 1;
        lk_offline_note_online(&f->o, 1000, "alice"); /* the window starts again here */
        assert_int_equal(may(f, &e), 0);
        assert_int_equal(lk_offline_load(&f->o, 1000, &r, &e), 0);
        assert_int_equal(r.failures, 0);

        /* a right PIN clears the count too */
        e = (struct lk_error){0};
        assert_int_equal(lk_offline_checked(&f->o, 1000, false, &e), -LK_ERR_ACCESS_DENIED);
        e = (struct lk_error){0};
        assert_int_equal(lk_offline_checked(&f->o, 1000, true, &e), 0);
        assert_int_equal(lk_offline_load(&f->o, 1000, &r, &e), 0);
        assert_int_equal(r.failures, 0);
}

/* The state file is 0600 and holds the hash, never the PIN. */
static void test_file_mode(void **state)
{
        struct fixture *f = *state;
        char path[128];
        struct stat st;

        store_pin(f);
        snprintf(path, sizeof(path), "%s/offline/1000", f->dir);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
}

/* ---- the worker ---- */

struct done {
        int calls, r;
        char hash[LK_PIN_HASH_MAX + 1];
        struct lk_loop *loop;
        int want;
};

static void on_done(void *userdata, int r, const char *hash)
{
        struct done *d = userdata;

        d->calls++;
        d->r = r;
        if (hash)
                snprintf(d->hash, sizeof(d->hash), "%s", hash);
        if (d->calls >= d->want)
                lk_loop_quit(d->loop, 0);
}

/* A loop and a worker of its own (a loop once quit stays quit). */
struct bench {
        struct lk_loop *loop;
        struct lk_pin_worker *w;
};

static void bench_new(struct bench *b)
{
        assert_int_equal(lk_loop_new(&b->loop), 0);
        assert_int_equal(lk_pin_worker_new(b->loop, &b->w), 0);
}

static void bench_free(struct bench *b)
{
        lk_pin_worker_free(b->w);
        lk_loop_free(b->loop);
}

static void test_worker_hash_verify_and_caps(void **state)
{
        const struct lk_pin_params p = {.memory_kib = 8192, .time = 1, .lanes = 1};
        struct bench b1, b2, b3;
        struct done d = {.want = 1}, v = {.want = 1}, many = {.want = LK_PIN_JOBS_MAX};
        struct lk_error e = {0};

        bench_new(&b1);
        d.loop = b1.loop;
        assert_int_equal(lk_pin_worker_hash(b1.w, 1, &p, "1234", on_done, &d, &e), 0);
        /* one per uid at a time: the second is refused at once */
        assert_int_equal(lk_pin_worker_hash(b1.w, 1, &p, "1234", on_done, &d, &e),
                         -LK_ERR_TOO_MANY_REQUESTS);
        lk_loop_run(b1.loop);
        bench_free(&b1);
        assert_int_equal(d.calls, 1);
        assert_int_equal(d.r, 0);
        assert_non_null(strstr(d.hash, "$argon2id$v=19$m=8192,t=1,p=1$"));
        assert_int_equal(lk_pin_verify_now(d.hash, "1234"), 0);
        assert_int_equal(lk_pin_verify_now(d.hash, "1235"), 1);

        bench_new(&b2);
        v.loop = b2.loop;
        e = (struct lk_error){0};
        assert_int_equal(lk_pin_worker_verify(b2.w, 1, d.hash, "1235", on_done, &v, &e), 0);
        lk_loop_run(b2.loop);
        bench_free(&b2);
        assert_int_equal(v.calls, 1);
        assert_int_equal(v.r, 1);

        /* LK_PIN_JOBS_MAX in all, whoever asks */
        bench_new(&b3);
        many.loop = b3.loop;
        for (unsigned i = 0; i < LK_PIN_JOBS_MAX; i++) {
                e = (struct lk_error){0};
                assert_int_equal(lk_pin_worker_verify(b3.w, 100 + i, d.hash, "1234", on_done,
                                                      &many, &e), 0);
        }
        e = (struct lk_error){0};
        assert_int_equal(lk_pin_worker_verify(b3.w, 999, d.hash, "1234", on_done, &many, &e),
                         -LK_ERR_TOO_MANY_REQUESTS);
        assert_int_equal(lk_pin_worker_busy(b3.w), LK_PIN_JOBS_MAX);
        lk_loop_run(b3.loop);
        assert_int_equal(many.calls, LK_PIN_JOBS_MAX);
        assert_int_equal(many.r, 0);
        assert_int_equal(lk_pin_worker_busy(b3.w), 0);
        bench_free(&b3);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_record_round_trip),
                cmocka_unit_test(test_record_refusals),
                cmocka_unit_test_setup_teardown(test_window_and_disabled, setup, teardown),
                cmocka_unit_test_setup_teardown(test_lockout_doubles_and_is_capped, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_file_mode, setup, teardown),
                cmocka_unit_test(test_worker_hash_verify_and_caps),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
