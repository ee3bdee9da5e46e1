/* SPDX-License-Identifier: MIT */
/*
 * The offline PIN's parts without a broker (issue 21): the record's parser and format
 * (broker/pin_record.c), the decisions and the count of wrong PINs on a fake clock
 * (broker/offline.c), and the Argon2id worker's caps (broker/pin_worker.c) on a real loop.
 * The records sealed at rest (issue 22 item 4): no hash on disk, the cleartext records of before
 * sealed at start, a record under an unknown key left alone, and a key rotation whose older key
 * is kept while a record still needs it, though every session file is rewritten.
 */
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
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
#include "broker/sealed_file.h"
#include "broker/session_key.h"
#include "broker/session_store.h"

#define DAY 86400
/* Its salt and hash decode to "saltsaltsaltsalt" and "hashhashhashhash": bytes to look for. */
#define HASH "$argon2id$v=19$m=8192,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaA"
#define BOOT_ID "3f1c0e7a-0000-4000-8000-000000000001"

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

/* ---- the records sealed at rest ---- */

static uint8_t *read_bytes(const char *path, size_t *ret_len)
{
        uint8_t *buf = calloc(1, 8192);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n;

        assert_non_null(buf);
        assert_true(fd >= 0);
        n = read(fd, buf, 8192);
        close(fd);
        assert_true(n > 0);
        *ret_len = (size_t)n;
        return buf;
}

static void write_bytes(const char *path, const void *data, size_t len)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, len), (ssize_t)len);
        assert_int_equal(close(fd), 0);
}

static char *record_path(struct fixture *f, unsigned uid)
{
        char *p = NULL;

        assert_true(asprintf(&p, "%s/offline/%u", f->dir, uid) > 0);
        return p;
}

/* A broker's stop and start, as far as the records go: the keys read again from the dir. */
static void restart(struct fixture *f)
{
        struct lk_error e = {0};

        lk_offline_done(&f->o);
        lk_session_keys_clear(&f->keys);
        assert_int_equal(lk_session_keys_load(f->dir, &f->keys, &e), 0);
        assert_int_equal(lk_offline_init(&f->o, f->config, &fake_clock, f->dir, &f->keys, f->loop,
                                         &e), 0);
}

static void assert_hash_is(struct fixture *f, const char *hash)
{
        struct lk_pin_record r;
        struct lk_error e = {0};

        assert_int_equal(lk_offline_load(&f->o, 1000, &r, &e), 0);
        assert_string_equal(r.hash, hash);
        assert_string_equal(r.user, "alice");
}

static void test_record_sealed(void **state)
{
        static const char *const never[] = {"$argon2id$", "argon2", "c2FsdHNhbHRz", "aGFzaGhh",
                                            "saltsalt", "hashhash", "alice", "latchkey-offline"};
        struct fixture *f = *state;
        _cleanup_free_ char *path = record_path(f, 1000), *other = record_path(f, 1001);
        _cleanup_free_ uint8_t *data = NULL;
        struct lk_pin_record r;
        struct lk_error e = {0};
        size_t len = 0;

        store_pin(f);
        data = read_bytes(path, &len);
        assert_true(lk_sealed_is_sealed(data, len));
        assert_memory_equal(data + 5, f->keys.keys[0].id, LK_SESSION_KEY_ID_SIZE);
        for (size_t i = 0; i < ELEMENTSOF(never); i++)
                if (memmem(data, len, never[i], strlen(never[i])))
                        fail_msg("the sealed record holds '%s'", never[i]);
        assert_hash_is(f, HASH);

        /* The seal names the account: the file copied to another uid's name does not open. */
        write_bytes(other, data, len);
        assert_int_equal(lk_offline_load(&f->o, 1001, &r, &e), -LK_ERR_IO);
        assert_non_null(strstr(e.message, "is broken"));
}

static void test_cleartext_record_migrated(void **state)
{
        struct fixture *f = *state;
        _cleanup_free_ char *path = record_path(f, 1000);
        _cleanup_free_ uint8_t *data = NULL;
        struct lk_pin_record r = {.uid = 1000, .online_at = 1700000000};
        struct lk_error e = {0};
        char text[LK_PIN_RECORD_MAX];
        size_t len = 0;
        int n;

        snprintf(r.user, sizeof(r.user), "alice");
        snprintf(r.hash, sizeof(r.hash), "%s", HASH);
        n = lk_pin_record_format(&r, text, sizeof(text));
        assert_true(n > 0);

        /* A record of before issue 22, found at start: sealed, and the PIN still there. */
        write_bytes(path, text, (size_t)n);
        restart(f);
        assert_int_equal(f->o.n_older, 0);
        data = read_bytes(path, &len);
        assert_true(lk_sealed_is_sealed(data, len));
        assert_null(memmem(data, len, "$argon2id$", 10));
        assert_hash_is(f, HASH);
        assert_int_equal(may(f, &e), 0);
        free(data);

        /* One that turns up later (restored from a backup): sealed at its first read. */
        write_bytes(path, text, (size_t)n);
        assert_hash_is(f, HASH);
        data = read_bytes(path, &len);
        assert_true(lk_sealed_is_sealed(data, len));
}

static void test_record_under_an_unknown_key(void **state)
{
        struct fixture *f = *state;
        _cleanup_free_ char *path = record_path(f, 1000);
        _cleanup_free_ uint8_t *sealed = NULL, *data = NULL;
        struct lk_session_key other;
        struct lk_pin_record r = {.uid = 1000, .online_at = 1700000000};
        struct lk_offline_state st;
        struct lk_error e = {0};
        char text[LK_PIN_RECORD_MAX];
        size_t sealed_len = 0, len = 0;
        int n;

        memset(other.key, 0x5a, sizeof(other.key));
        lk_session_key_make_id(&other);
        snprintf(r.user, sizeof(r.user), "alice");
        snprintf(r.hash, sizeof(r.hash), "%s", HASH);
        n = lk_pin_record_format(&r, text, sizeof(text));
        assert_true(n > 0);
        assert_int_equal(lk_sealed_seal(&other, "offline/1000", text, (size_t)n, &sealed,
                                        &sealed_len, &e), 0);
        write_bytes(path, sealed, sealed_len);

        restart(f);
        assert_int_equal(lk_offline_load(&f->o, 1000, &r, &e), -LK_ERR_IO);
        assert_non_null(strstr(e.message, "a key this broker does not have"));
        lk_offline_state(&f->o, 1000, &st);
        assert_false(st.pin);
        /* Left as it was: the key brought back brings the PIN back. */
        data = read_bytes(path, &len);
        assert_int_equal(len, sealed_len);
        assert_memory_equal(data, sealed, len);
}

static bool no_session(void *userdata, const char *id)
{
        return false;
}

static void take_session(void *userdata, struct lk_session_record *r)
{
        (*(unsigned *)userdata)++;
}

static int keys_in_file(struct fixture *f)
{
        _cleanup_free_ char *path = NULL;
        _cleanup_free_ uint8_t *text = NULL;
        size_t len = 0;
        int n = 0;

        assert_true(asprintf(&path, "%s/%s", f->dir, LK_SESSION_KEY_FILE) > 0);
        text = read_bytes(path, &len);
        for (size_t i = 0; i < len; i++)
                n += text[i] == '\n';
        explicit_bzero(text, len);
        return n - 1;
}

/* A broker's start: the store and its keys, the offline records, then the sessions' load. */
static struct lk_session_store *start(struct fixture *f, unsigned *n_sessions)
{
        struct lk_store_reader reader = {.has = no_session, .take = take_session,
                                         .userdata = n_sessions};
        struct lk_session_store *st = NULL;
        struct lk_error e = {0};

        lk_offline_done(&f->o);
        assert_int_equal(lk_store_new(f->dir, BOOT_ID, &st, &e), 0);
        assert_int_equal(lk_offline_init(&f->o, f->config, &fake_clock, f->dir,
                                         lk_store_keys(st), f->loop, &e), 0);
        lk_store_hold_older_keys(st, f->o.n_older);
        assert_int_equal(lk_store_load_all(st, &reader, &e), 0);
        return st;
}

static void test_rotation_keeps_the_key_while_a_record_needs_it(void **state)
{
        struct fixture *f = *state;
        _cleanup_free_ char *path = record_path(f, 1000);
        _cleanup_free_ uint8_t *data = NULL;
        struct lk_session_record s = {.id = (char *)"s-1", .user = (char *)"alice", .uid = 1000,
                                      .opened_at = 1700000000,
                                      .tokens = {.access_token = (char *)"tok-rotated",
                                                 .token_type = (char *)"Bearer",
                                                 .expires_at = 1900000000}};
        struct lk_session_store *st;
        struct lk_error e = {0};
        struct rlimit was, small;
        char new_id[LK_SESSION_KEY_ID_HEX], file_id[LK_SESSION_KEY_ID_HEX];
        unsigned n_sessions = 0;
        size_t len = 0;

        store_pin(f);
        st = start(f, &n_sessions);
        s.claims = json_object();
        assert_int_equal(lk_store_save(st, &s, &e), 0);
        json_decref(s.claims);
        lk_store_free(st);
        assert_int_equal(lk_session_keys_rotate(f->dir, new_id, &e), 0);
        assert_int_equal(keys_in_file(f), 2);

        /* A start whose rewrite of the record fails (the file size limit: root is bound by it
         * too), while the session file is rewritten: the older key stays. */
        assert_int_equal(getrlimit(RLIMIT_FSIZE, &was), 0);
        small = was;
        small.rlim_cur = 64;
        signal(SIGXFSZ, SIG_IGN);
        lk_offline_done(&f->o);
        {
                struct lk_session_store *st2 = NULL;
                struct lk_store_reader reader = {.has = no_session, .take = take_session,
                                                 .userdata = &n_sessions};

                assert_int_equal(lk_store_new(f->dir, BOOT_ID, &st2, &e), 0);
                assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
                assert_int_equal(lk_offline_init(&f->o, f->config, &fake_clock, f->dir,
                                                 lk_store_keys(st2), f->loop, &e), 0);
                assert_int_equal(setrlimit(RLIMIT_FSIZE, &was), 0);
                assert_int_equal(f->o.n_older, 1);
                lk_store_hold_older_keys(st2, f->o.n_older);
                n_sessions = 0;
                assert_int_equal(lk_store_load_all(st2, &reader, &e), 0);
                assert_int_equal(n_sessions, 1);
                lk_store_free(st2);
        }
        signal(SIGXFSZ, SIG_DFL);
        data = read_bytes(path, &len);
        lk_session_key_id_hex(data + 5, file_id);
        assert_string_not_equal(file_id, new_id);
        free(data);
        assert_int_equal(keys_in_file(f), 2);

        /* The next start rewrites it: now nothing needs the older key. */
        n_sessions = 0;
        st = start(f, &n_sessions);
        assert_int_equal(n_sessions, 1);
        assert_int_equal(f->o.n_older, 0);
        data = read_bytes(path, &len);
        lk_session_key_id_hex(data + 5, file_id);
        assert_string_equal(file_id, new_id);
        assert_int_equal(keys_in_file(f), 1);
        lk_store_free(st);

        /* And the PIN is the one set before the rotation. */
        restart(f);
        assert_hash_is(f, HASH);
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
                cmocka_unit_test_setup_teardown(test_record_sealed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cleartext_record_migrated, setup, teardown),
                cmocka_unit_test_setup_teardown(test_record_under_an_unknown_key, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_rotation_keeps_the_key_while_a_record_needs_it,
                                                setup, teardown),
                cmocka_unit_test(test_worker_hash_verify_and_caps),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
