/* SPDX-License-Identifier: MIT */
/*
 * Session files sealed at rest (issue 22 item 4): the sealed format (a seal that does not open
 * with another session id, key, version or a changed byte), the key file, and the store on
 * disk: no token byte in any file, the cleartext files of before sealed at the first start with
 * every session kept, a state dir copied without its key useless (and left alone), a rotation
 * (latchkeyd --rotate-key, then a start), and a start killed (SIGKILL) in the middle of one that
 * loses nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
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
#include "broker/sealed_file.h"
#include "broker/session_key.h"
#include "broker/session_store.h"

#define BOOT_ID "0b9d0bb5-8d0e-4cb4-bd8f-boot"
#define N_SESSIONS 5

static const struct lk_session_key key_a = {.key = "0123456789abcdef0123456789abcde"};

/* ---- the format ---- */

static void test_seal_round_trip(void **state)
{
        struct lk_session_key k = key_a, other = key_a;
        static const char plain[] = "{\"access_token\":\"at-very-secret\"}";
        _cleanup_free_ uint8_t *f = NULL;
        _cleanup_free_ char *out = NULL;
        struct lk_sealed s;
        struct lk_error e = {0};
        const char *why = NULL;
        size_t len = 0, out_len = 0;

        lk_session_key_make_id(&k);
        other.key[0] ^= 1;
        lk_session_key_make_id(&other);
        assert_memory_not_equal(k.id, other.id, LK_SESSION_KEY_ID_SIZE);
        assert_int_equal(lk_sealed_seal(&k, "s1", plain, strlen(plain), &f, &len, &e), 0);
        assert_int_equal(len, strlen(plain) + LK_SEALED_OVERHEAD);
        assert_null(memmem(f, len, "at-very-secret", 14));
        assert_true(lk_sealed_is_sealed(f, len));
        assert_int_equal(lk_sealed_parse(f, len, &s, &why), 0);
        assert_memory_equal(s.key_id, k.id, LK_SESSION_KEY_ID_SIZE);
        assert_int_equal(lk_sealed_open(&k, "s1", &s, &out, &out_len, &why), 0);
        assert_int_equal(out_len, strlen(plain));
        assert_string_equal(out, plain);
        free(out);
        out = NULL;

        /* Another session's name, another key (even under this key's id), a changed byte. */
        assert_int_equal(lk_sealed_open(&k, "s2", &s, &out, &out_len, &why),
                         -LK_ERR_INVALID_ARGUMENT);
        assert_non_null(strstr(why, "another session"));
        assert_int_equal(lk_sealed_open(&other, "s1", &s, &out, &out_len, &why),
                         -LK_ERR_INVALID_ARGUMENT);
        assert_non_null(strstr(why, "another key"));
        memcpy(other.id, k.id, sizeof(k.id));
        assert_int_equal(lk_sealed_open(&other, "s1", &s, &out, &out_len, &why),
                         -LK_ERR_INVALID_ARGUMENT);
        for (size_t i = 0; i < len; i++) {
                f[i] ^= 0x20;
                if (lk_sealed_parse(f, len, &s, &why) == 0) {
                        if (memcmp(s.key_id, k.id, LK_SESSION_KEY_ID_SIZE) != 0)
                                assert_int_not_equal(
                                    lk_sealed_open(&k, "s1", &s, &out, &out_len, &why), 0);
                        else
                                assert_int_equal(lk_sealed_open(&k, "s1", &s, &out, &out_len, &why),
                                                 -LK_ERR_INVALID_ARGUMENT);
                }
                f[i] ^= 0x20;
        }
        assert_null(out);

        /* The header: short, another version, no magic, too big. */
        assert_int_equal(lk_sealed_parse(f, LK_SEALED_OVERHEAD, &s, &why),
                         -LK_ERR_INVALID_ARGUMENT);
        f[4] = 2;
        assert_int_equal(lk_sealed_parse(f, len, &s, &why), -LK_ERR_INVALID_ARGUMENT);
        assert_non_null(strstr(why, "version"));
        assert_int_equal(lk_sealed_parse((const uint8_t *)"{}", 2, &s, &why),
                         -LK_ERR_INVALID_ARGUMENT);
        assert_int_equal(lk_sealed_seal(&k, "s1", plain, LK_SEALED_FILE_MAX, &f, &len, &e),
                         -LK_ERR_INVALID_ARGUMENT);
}

/* Two seals of the same record differ (a fresh nonce each time). */
static void test_seal_nonce(void **state)
{
        struct lk_session_key k = key_a;
        _cleanup_free_ uint8_t *a = NULL, *b = NULL;
        struct lk_error e = {0};
        size_t la = 0, lb = 0;

        lk_session_key_make_id(&k);
        assert_int_equal(lk_sealed_seal(&k, "s1", "{}", 2, &a, &la, &e), 0);
        assert_int_equal(lk_sealed_seal(&k, "s1", "{}", 2, &b, &lb, &e), 0);
        assert_int_equal(la, lb);
        assert_memory_not_equal(a + 13, b + 13, LK_SEALED_NONCE_SIZE);
}

static void test_key_file_parse(void **state)
{
        static const char k1[] =
            "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n";
        static const char k2[] =
            "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100\n";
        struct lk_session_keys ks = {0};
        const char *why = NULL;
        char text[1024];

        snprintf(text, sizeof(text), "%s\n%s%s", LK_SESSION_KEY_FILE_HEADER, k1, k2);
        assert_int_equal(lk_session_keys_parse(text, strlen(text), &ks, &why), 0);
        assert_int_equal(ks.n, 2);
        assert_int_equal(ks.keys[0].key[1], 0x11);
        assert_int_equal(ks.keys[1].key[0], 0xff);
        lk_session_keys_clear(&ks);

        struct {
                const char *text, *why;
        } bad[] = {
            {"latchkey-session-key 2\n", "first line"},
            {LK_SESSION_KEY_FILE_HEADER "\n", "no key"},
            {LK_SESSION_KEY_FILE_HEADER "\n00112233\n", "64 lowercase"},
            {LK_SESSION_KEY_FILE_HEADER
             "\n00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff\n",
             "64 lowercase"},
            {LK_SESSION_KEY_FILE_HEADER
             "\n00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
             "64 lowercase"},
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                assert_int_equal(lk_session_keys_parse(bad[i].text, strlen(bad[i].text), &ks, &why),
                                 -LK_ERR_INVALID_ARGUMENT);
                assert_non_null(strstr(why, bad[i].why));
                assert_int_equal(ks.n, 0);
        }
        snprintf(text, sizeof(text), "%s\n%s%s", LK_SESSION_KEY_FILE_HEADER, k1, k1);
        assert_int_equal(lk_session_keys_parse(text, strlen(text), &ks, &why),
                         -LK_ERR_INVALID_ARGUMENT);
        assert_non_null(strstr(why, "twice"));
        snprintf(text, sizeof(text), "%s\n%s%s%s%s%s", LK_SESSION_KEY_FILE_HEADER, k1, k2,
                 "0000000000000000000000000000000000000000000000000000000000000001\n",
                 "0000000000000000000000000000000000000000000000000000000000000002\n",
                 "0000000000000000000000000000000000000000000000000000000000000003\n");
        assert_int_equal(lk_session_keys_parse(text, strlen(text), &ks, &why),
                         -LK_ERR_INVALID_ARGUMENT);
        assert_non_null(strstr(why, "more than 4"));
        assert_int_equal(ks.n, 0);
}

/* ---- the store on disk ---- */

struct fixture {
        char dir[64], sessions[80];
        struct lk_session_store *store;
        json_t *read; /* session id -> access token, of the records read */
};

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));

        if (!f)
                return -1;
        snprintf(f->dir, sizeof(f->dir), "/tmp/latchkey-seal-XXXXXX");
        if (!mkdtemp(f->dir))
                return -1;
        snprintf(f->sessions, sizeof(f->sessions), "%s/sessions", f->dir);
        f->read = json_object();
        *state = f;
        return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        return remove(path);
}

static int teardown(void **state)
{
        struct fixture *f = *state;

        lk_store_free(f->store);
        json_decref(f->read);
        if (nftw(f->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) < 0)
                fprintf(stderr, "cannot remove %s\n", f->dir);
        free(f);
        return 0;
}

static bool reader_has(void *userdata, const char *id)
{
        struct fixture *f = userdata;

        return json_object_get(f->read, id) != NULL;
}

static void reader_take(void *userdata, struct lk_session_record *r)
{
        struct fixture *f = userdata;

        assert_int_equal(json_object_set_new(f->read, r->id, json_string(r->tokens.access_token)),
                         0);
}

/* A new store on f->dir (the last one freed), every file read. */
static void start(struct fixture *f)
{
        struct lk_store_reader reader = {reader_has, reader_take, f};
        struct lk_error e = {0};

        lk_store_free(f->store);
        f->store = NULL;
        json_object_clear(f->read);
        assert_int_equal(lk_store_new(f->dir, BOOT_ID, &f->store, &e), 0);
        assert_int_equal(lk_store_load_all(f->store, &reader, &e), 0);
}

static void tokens_of(int i, char at[32], char rt[32])
{
        snprintf(at, 32, "at-secret-%04d-xyzzy", i);
        snprintf(rt, 32, "rt-secret-%04d-plugh", i);
}

static void save_sessions(struct fixture *f, int n)
{
        for (int i = 0; i < n; i++) {
                char id[16], at[32], rt[32];
                struct lk_session_record r = {
                    .id = id, .user = "alice", .uid = 1000, .opened_at = 1700000000};
                struct lk_error e = {0};

                snprintf(id, sizeof(id), "s%d", i);
                tokens_of(i, at, rt);
                r.tokens = (struct lk_tokens){.access_token = at,
                                              .refresh_token = rt,
                                              .id_token = "eyJh.eyJz.c2ln",
                                              .token_type = "Bearer",
                                              .expires_at = 1700003600};
                r.claims = json_pack("{s:s}", "sub", "u-alice");
                assert_int_equal(lk_store_save(f->store, &r, &e), 0);
                json_decref(r.claims);
        }
}

static uint8_t *read_all(const char *path, size_t *ret_len)
{
        FILE *fp = fopen(path, "re");
        uint8_t *buf = malloc(LK_SEALED_FILE_MAX + 1);
        size_t n;

        assert_non_null(fp);
        assert_non_null(buf);
        n = fread(buf, 1, LK_SEALED_FILE_MAX + 1, fp);
        fclose(fp);
        *ret_len = n;
        return buf;
}

/* The key id a session file is sealed under, as hex ("" when it is not sealed). */
static void file_key(struct fixture *f, const char *id, char out[LK_SESSION_KEY_ID_HEX])
{
        _cleanup_free_ char *path = NULL;
        _cleanup_free_ uint8_t *buf = NULL;
        struct lk_sealed s;
        const char *why;
        size_t len;

        assert_true(asprintf(&path, "%s/%s.json", f->sessions, id) > 0);
        buf = read_all(path, &len);
        if (lk_sealed_parse(buf, len, &s, &why) < 0) {
                out[0] = '\0';
                return;
        }
        lk_session_key_id_hex(s.key_id, out);
}

/* The ids of the key file's keys, "id1 id2 ..." ("" when there is none). */
static void key_file_ids(struct fixture *f, char *out, size_t size)
{
        _cleanup_free_ char *path = NULL;
        _cleanup_free_ uint8_t *buf = NULL;
        struct lk_session_keys ks = {0};
        const char *why;
        size_t len;

        out[0] = '\0';
        assert_true(asprintf(&path, "%s/%s", f->dir, LK_SESSION_KEY_FILE) > 0);
        if (access(path, F_OK) < 0)
                return;
        buf = read_all(path, &len);
        assert_int_equal(lk_session_keys_parse((char *)buf, len, &ks, &why), 0);
        for (size_t i = 0; i < ks.n; i++) {
                char id[LK_SESSION_KEY_ID_HEX];
                size_t n = strlen(out);

                lk_session_key_id_hex(ks.keys[i].id, id);
                snprintf(out + n, size - n, "%s%s", i ? " " : "", id);
        }
        explicit_bzero(buf, len);
        lk_session_keys_clear(&ks);
}

/* No file in the state dir holds a token (or the key file a token either). */
static void assert_no_token_bytes(struct fixture *f, int n)
{
        for (int i = 0; i < n; i++) {
                _cleanup_free_ char *path = NULL;
                _cleanup_free_ uint8_t *buf = NULL;
                char id[16], at[32], rt[32];
                struct stat st;
                size_t len;

                snprintf(id, sizeof(id), "s%d", i);
                tokens_of(i, at, rt);
                assert_true(asprintf(&path, "%s/%s.json", f->sessions, id) > 0);
                assert_int_equal(stat(path, &st), 0);
                assert_int_equal(st.st_mode & 0777, 0600);
                buf = read_all(path, &len);
                assert_true(lk_sealed_is_sealed(buf, len));
                assert_null(memmem(buf, len, at, strlen(at)));
                assert_null(memmem(buf, len, rt, strlen(rt)));
                assert_null(memmem(buf, len, "eyJh.eyJz", 9));
                assert_null(memmem(buf, len, "u-alice", 7));
                assert_null(memmem(buf, len, "secret", 6));
        }
}

static void assert_all_read(struct fixture *f, int n)
{
        assert_int_equal(json_object_size(f->read), n);
        for (int i = 0; i < n; i++) {
                char id[16], at[32], rt[32];

                snprintf(id, sizeof(id), "s%d", i);
                tokens_of(i, at, rt);
                assert_string_equal(json_string_value(json_object_get(f->read, id)), at);
        }
}

static void test_no_token_bytes(void **state)
{
        struct fixture *f = *state;
        char ids[256], k[LK_SESSION_KEY_ID_HEX];
        struct stat st;
        _cleanup_free_ char *key = NULL;

        start(f);
        save_sessions(f, N_SESSIONS);
        assert_no_token_bytes(f, N_SESSIONS);
        assert_true(asprintf(&key, "%s/%s", f->dir, LK_SESSION_KEY_FILE) > 0);
        assert_int_equal(stat(key, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        key_file_ids(f, ids, sizeof(ids));
        file_key(f, "s0", k);
        assert_string_equal(ids, k); /* one key, the one that sealed */
        start(f);
        assert_all_read(f, N_SESSIONS);
}

/* The cleartext files of before issue 22: every session read, each file sealed at once. */
static void test_migration(void **state)
{
        struct fixture *f = *state;
        char k[LK_SESSION_KEY_ID_HEX];

        assert_int_equal(mkdir(f->sessions, 0700), 0);
        for (int i = 0; i < N_SESSIONS; i++) {
                _cleanup_free_ char *path = NULL;
                char at[32], rt[32];
                FILE *fp;

                tokens_of(i, at, rt);
                assert_true(asprintf(&path, "%s/s%d.json", f->sessions, i) > 0);
                fp = fopen(path, "we");
                assert_non_null(fp);
                fprintf(fp,
                        "{\"version\":1,\"session_id\":\"s%d\",\"user\":\"alice\",\"uid\":1000,"
                        "\"opened_at\":1700000000,\"boot_id\":\"%s\",\"expired\":false,"
                        "\"access_token\":\"%s\",\"refresh_token\":\"%s\",\"id_token\":"
                        "\"eyJh.eyJz.c2ln\",\"token_type\":\"Bearer\",\"expires_at\":1700003600,"
                        "\"claims\":{\"sub\":\"u-alice\"}}",
                        i, BOOT_ID, at, rt);
                assert_int_equal(fclose(fp), 0);
                assert_int_equal(chmod(path, 0600), 0);
        }
        start(f);
        assert_all_read(f, N_SESSIONS);
        assert_no_token_bytes(f, N_SESSIONS);
        for (int i = 0; i < N_SESSIONS; i++) {
                char id[16], k0[LK_SESSION_KEY_ID_HEX];

                snprintf(id, sizeof(id), "s%d", i);
                file_key(f, id, k);
                file_key(f, "s0", k0);
                assert_string_equal(k, k0);
        }
        start(f); /* and again, now sealed */
        assert_all_read(f, N_SESSIONS);
}

/*
 * The sessions dir copied to another machine without the key (or the key lost): the broker
 * there makes a key of its own, reads none of the files, and leaves them as they are.
 */
static void test_copied_without_key(void **state)
{
        struct fixture *f = *state;
        _cleanup_free_ char *key = NULL;
        char before[LK_SESSION_KEY_ID_HEX], after[LK_SESSION_KEY_ID_HEX], ids[256];

        start(f);
        save_sessions(f, N_SESSIONS);
        file_key(f, "s0", before);
        assert_true(asprintf(&key, "%s/%s", f->dir, LK_SESSION_KEY_FILE) > 0);
        assert_int_equal(unlink(key), 0);
        start(f);
        assert_int_equal(json_object_size(f->read), 0);
        key_file_ids(f, ids, sizeof(ids));
        assert_string_not_equal(ids, before);
        for (int i = 0; i < N_SESSIONS; i++) {
                char id[16];

                snprintf(id, sizeof(id), "s%d", i);
                file_key(f, id, after);
                assert_string_equal(after, before); /* untouched */
        }
        assert_no_token_bytes(f, N_SESSIONS);
}

/* latchkeyd --rotate-key, then a start: every file under the new key, the old one dropped. */
static void test_rotation(void **state)
{
        struct fixture *f = *state;
        char old[LK_SESSION_KEY_ID_HEX], new[LK_SESSION_KEY_ID_HEX], ids[256], expect[256];
        struct lk_error e = {0};

        start(f);
        save_sessions(f, N_SESSIONS);
        file_key(f, "s0", old);
        assert_int_equal(lk_session_keys_rotate(f->dir, new, &e), 0);
        assert_string_not_equal(new, old);
        key_file_ids(f, ids, sizeof(ids));
        snprintf(expect, sizeof(expect), "%s %s", new, old);
        assert_string_equal(ids, expect);
        start(f);
        assert_all_read(f, N_SESSIONS);
        for (int i = 0; i < N_SESSIONS; i++) {
                char id[16], k[LK_SESSION_KEY_ID_HEX];

                snprintf(id, sizeof(id), "s%d", i);
                file_key(f, id, k);
                assert_string_equal(k, new);
        }
        key_file_ids(f, ids, sizeof(ids));
        assert_string_equal(ids, new);
        assert_no_token_bytes(f, N_SESSIONS);
        /* New files are sealed under it too. */
        save_sessions(f, 1);
        file_key(f, "s0", old);
        assert_string_equal(old, new);
}

/* A start killed (SIGKILL) after 2 of 5 files were rewritten: nothing lost, the next finishes. */
static void test_rotation_killed(void **state)
{
        struct fixture *f = *state;
        char old[LK_SESSION_KEY_ID_HEX], new[LK_SESSION_KEY_ID_HEX], ids[256], expect[256];
        struct lk_error e = {0};
        int status, n_new = 0;
        pid_t pid;

        start(f);
        save_sessions(f, N_SESSIONS);
        file_key(f, "s0", old);
        lk_store_free(f->store);
        f->store = NULL;
        assert_int_equal(lk_session_keys_rotate(f->dir, new, &e), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                setenv("LATCHKEY_TEST_KILL_AFTER_REWRITES", "2", 1);
                start(f);
                _exit(0); /* not reached */
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        /* Between the two: both keys kept, two files under the new one. */
        key_file_ids(f, ids, sizeof(ids));
        snprintf(expect, sizeof(expect), "%s %s", new, old);
        assert_string_equal(ids, expect);
        for (int i = 0; i < N_SESSIONS; i++) {
                char id[16], k[LK_SESSION_KEY_ID_HEX];

                snprintf(id, sizeof(id), "s%d", i);
                file_key(f, id, k);
                assert_true(streq(k, new) || streq(k, old));
                n_new += streq(k, new);
        }
        assert_int_equal(n_new, 2);
        start(f);
        assert_all_read(f, N_SESSIONS);
        key_file_ids(f, ids, sizeof(ids));
        assert_string_equal(ids, new);
}

/* A key file others may read, or of another owner, or broken: the store refuses to start. */
static void test_key_file_checks(void **state)
{
        struct fixture *f = *state;
        _cleanup_free_ char *key = NULL;
        struct lk_error e = {0};
        FILE *fp;

        start(f);
        lk_store_free(f->store);
        f->store = NULL;
        assert_true(asprintf(&key, "%s/%s", f->dir, LK_SESSION_KEY_FILE) > 0);
        assert_int_equal(chmod(key, 0644), 0);
        assert_int_equal(lk_store_new(f->dir, BOOT_ID, &f->store, &e), -LK_ERR_IO);
        assert_non_null(strstr(e.message, LK_SESSION_KEY_FILE));
        lk_error_clear(&e);
        fp = fopen(key, "we");
        assert_non_null(fp);
        fputs("latchkey-session-key 1\nnot a key\n", fp);
        fclose(fp);
        assert_int_equal(chmod(key, 0600), 0);
        assert_int_equal(lk_store_new(f->dir, BOOT_ID, &f->store, &e), -LK_ERR_IO);
        assert_non_null(strstr(e.message, "unusable"));
        assert_null(strstr(e.message, "not a key"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_seal_round_trip),
            cmocka_unit_test(test_seal_nonce),
            cmocka_unit_test(test_key_file_parse),
            cmocka_unit_test_setup_teardown(test_no_token_bytes, setup, teardown),
            cmocka_unit_test_setup_teardown(test_migration, setup, teardown),
            cmocka_unit_test_setup_teardown(test_copied_without_key, setup, teardown),
            cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
            cmocka_unit_test_setup_teardown(test_rotation_killed, setup, teardown),
            cmocka_unit_test_setup_teardown(test_key_file_checks, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
