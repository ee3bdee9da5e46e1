/* SPDX-License-Identifier: MIT */
/*
 * Provider accounts (issue 20): the uid mapping (stable, in range, collisions), the cache
 * format (base/accounts_file.c: written, found by name and uid, broken files refused), the
 * [accounts] reader of the NSS and PAM modules against the broker's, and the broker's
 * keeper of the cache (broker/accounts.c): a new account, an identity bound to its name, a
 * uid collision refused, groups through group_map only, refusal and forget.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/accounts_conf.h"
#include "base/accounts_file.h"
#include "base/uidmap.h"
#include "base/util.h"
#include "broker/accounts.h"
#include "oidc/accounts_check.h"
#include "oidc/config.h"

#define MIN 1900000000u
#define MAX 2140000000u

/* ---- uid mapping ---- */

static void test_uid_stable(void **state)
{
        /* Known answers: a change here changes every provider account's uid on every host. */
        assert_int_equal(lk_uidmap_uid("carol1", 6, 3000000000u, 3100000000u), 3074527637u);
        assert_int_equal(lk_uidmap_uid("alice", 5, MIN, MAX),
                         lk_uidmap_uid("alice", 5, MIN, MAX));
        assert_int_not_equal(lk_uidmap_uid("alice", 5, MIN, MAX),
                             lk_uidmap_uid("alicf", 5, MIN, MAX));
        /* Another range, another uid: the range is part of the scheme. */
        assert_int_not_equal(lk_uidmap_uid("alice", 5, MIN, MAX),
                             lk_uidmap_uid("alice", 5, MIN + 1, MAX));
}

static void test_uid_range(void **state)
{
        char name[32];
        unsigned low = 0, high = 0;

        for (unsigned i = 0; i < 20000; i++) {
                uint32_t uid;

                snprintf(name, sizeof(name), "user%u", i);
                uid = lk_uidmap_uid(name, strlen(name), 5000, 6000);
                assert_true(uid >= 5000 && uid <= 6000);
                low += uid < 5500;
                high += uid >= 5500;
                uid = lk_uidmap_uid(name, strlen(name), 65000, 66100);
                /* The probe skips nobody-like ids. */
                assert_true((uid & 0xffff) < 0xfffe);
        }
        /* Spread over the range, not piled at one end. */
        assert_true(low > 9000 && high > 9000);
        assert_true(lk_uidmap_range_ok(MIN, MAX));
        assert_false(lk_uidmap_range_ok(999, 100000));
        assert_false(lk_uidmap_range_ok(5000, 5500));
        assert_false(lk_uidmap_range_ok(5000, 4294967295u));
}

/* Two names that meet on one uid in a small range: what the broker must refuse. */
static void find_collision(uint32_t lo, uint32_t hi, char a[32], char b[32])
{
        static uint32_t seen[4000];
        static char names[4000][32];

        for (unsigned i = 0; i < 4000; i++) {
                snprintf(names[i], 32, "n%u", i);
                seen[i] = lk_uidmap_uid(names[i], strlen(names[i]), lo, hi);
                for (unsigned j = 0; j < i; j++)
                        if (seen[j] == seen[i]) {
                                memcpy(a, names[j], 32);
                                memcpy(b, names[i], 32);
                                return;
                        }
        }
        fail_msg("no collision in a range of %u", hi - lo);
}

static void test_uid_collision_exists(void **state)
{
        char a[32], b[32];

        find_collision(10000, 11000, a, b);
        assert_string_not_equal(a, b);
        assert_int_equal(lk_uidmap_uid(a, strlen(a), 10000, 11000),
                         lk_uidmap_uid(b, strlen(b), 10000, 11000));
}

/* ---- the cache format ---- */

static struct lk_account account(const char *name, uint32_t uid)
{
        struct lk_account a = {0};

        a.name = strdup(name);
        a.gecos = strdup("Some One");
        a.home = strdup("/home/x");
        a.shell = strdup("/bin/sh");
        a.uid = a.gid = uid;
        a.last_signin = 1700000000;
        return a;
}

static void test_format_roundtrip(void **state)
{
        struct lk_account a[3] = {account("zed", 3000), account("amy", 5000), account("bob", 4000)};
        struct lk_accounts_map m;
        struct lk_account_view v;
        struct lk_group_view g;
        char *text = NULL;
        size_t len = 0, pos = 0;
        unsigned n = 0;

        a[1].gids[0] = 27000;
        a[1].group_names[0] = strdup("devs");
        a[1].n_gids = 1;
        a[2].gids[0] = 27000;
        a[2].group_names[0] = strdup("devs");
        a[2].n_gids = 1;
        a[2].refused = true;
        a[0].identity = strdup("00ff");
        assert_int_equal(lk_accounts_format(a, 3, &text, &len), 0);
        assert_int_equal(lk_accounts_map_init(&m, text, len), 0);
        assert_int_equal(lk_accounts_validate(&m), 0);

        assert_int_equal(lk_accounts_find_name(&m, "bob", &v), 0);
        assert_int_equal(v.uid, 4000);
        assert_true(v.refused);
        assert_int_equal(v.n_gids, 1);
        assert_int_equal(v.gids[0], 27000);
        assert_int_equal(lk_accounts_find_name(&m, "bo", &v), -ENOENT);
        assert_int_equal(lk_accounts_find_name(&m, "bobb", &v), -ENOENT);
        assert_int_equal(lk_accounts_find_name(&m, "zzz", &v), -ENOENT);
        assert_int_equal(lk_accounts_find_uid(&m, 3000, &v), 0);
        assert_int_equal((int)v.name_len, 3);
        assert_memory_equal(v.name, "zed", 3);
        assert_memory_equal(v.identity, "00ff", 4);
        assert_int_equal(lk_accounts_find_uid(&m, 3001, &v), -ENOENT);
        assert_int_equal(lk_accounts_find_group(&m, "devs", &g), 0);
        assert_int_equal(g.gid, 27000);
        assert_int_equal((int)g.members_len, 7);
        assert_memory_equal(g.members, "amy,bob", 7);
        assert_int_equal(lk_accounts_find_gid(&m, 27000, &g), 0);
        while (lk_accounts_next(&m, &pos, &v) > 0)
                n++;
        assert_int_equal(n, 3);
        free(text);

        /* What the format cannot hold is refused, never written half. */
        free(a[0].gecos);
        a[0].gecos = strdup("Evil:0:0");
        assert_int_equal(lk_accounts_format(a, 3, &text, &len), -EINVAL);
        free(a[0].gecos);
        a[0].gecos = strdup("ok");
        a[2].uid = 3000; /* two accounts, one uid */
        assert_int_equal(lk_accounts_format(a, 3, &text, &len), -EINVAL);
        for (unsigned i = 0; i < 3; i++)
                lk_account_clear(&a[i]);
}

static void test_format_many(void **state)
{
        enum { N = 10000 };
        struct lk_account *a = calloc(N, sizeof(*a));
        struct lk_accounts_map m;
        struct lk_account_view v;
        char name[32], *text = NULL;
        size_t len = 0;

        assert_non_null(a);
        for (unsigned i = 0; i < N; i++) {
                snprintf(name, sizeof(name), "user%05u", i);
                a[i] = account(name, 100000 + (i * 7919u) % 1000003u);
        }
        assert_int_equal(lk_accounts_format(a, N, &text, &len), 0);
        assert_int_equal(lk_accounts_map_init(&m, text, len), 0);
        assert_int_equal(lk_accounts_validate(&m), 0);
        for (unsigned i = 0; i < N; i += 97) {
                snprintf(name, sizeof(name), "user%05u", i);
                assert_int_equal(lk_accounts_find_name(&m, name, &v), 0);
                assert_int_equal(v.uid, a[i].uid);
                assert_int_equal(lk_accounts_find_uid(&m, a[i].uid, &v), 0);
                assert_memory_equal(v.name, name, strlen(name));
        }
        free(text);
        for (unsigned i = 0; i < N; i++)
                lk_account_clear(&a[i]);
        free(a);
}

static int map_of(const char *text, struct lk_accounts_map *m)
{
        return lk_accounts_map_init(m, text, strlen(text));
}

static void test_format_broken(void **state)
{
        struct lk_accounts_map m;
        struct lk_account_view v;
        struct lk_account a = account("amy", 5000);
        char *text = NULL;
        size_t len = 0;

        assert_int_equal(map_of("", &m), -EINVAL);
        assert_int_equal(map_of("latchkey-accounts 2 22 22 22 22\n", &m), -EINVAL);
        assert_int_equal(map_of("latchkey-accounts 1 32 32 32 32\n", &m), 0); /* empty */
        assert_int_equal(map_of("latchkey-accounts 1 32 32 32 33\n", &m), -EINVAL); /* size */
        assert_int_equal(map_of("latchkey-accounts 1 32 32 32 32", &m), -EINVAL); /* no \n */

        /* Every cut of a good file is refused or reads as fewer accounts, never overruns. */
        assert_int_equal(lk_accounts_format(&a, 1, &text, &len), 0);
        for (size_t cut = 0; cut < len; cut++) {
                if (lk_accounts_map_init(&m, text, cut) == 0)
                        (void)lk_accounts_find_name(&m, "amy", &v);
        }
        /* A changed byte: the line parser refuses it. */
        for (size_t i = 0; i < len; i++) {
                char *copy = strdup(text);
                copy[i] = i % 2 ? ':' : '\n';
                if (lk_accounts_map_init(&m, copy, len) == 0) {
                        (void)lk_accounts_validate(&m);
                        (void)lk_accounts_find_name(&m, "amy", &v);
                        (void)lk_accounts_find_uid(&m, 5000, &v);
                }
                free(copy);
        }
        /* An index line naming no account. */
        assert_int_equal(map_of("latchkey-accounts 1 32 32 49 49\nI 0000005000 amy\n", &m), 0);
        assert_int_equal(lk_accounts_find_uid(&m, 5000, &v), -EINVAL);
        assert_int_equal(lk_accounts_validate(&m), -EINVAL);
        free(text);
        lk_account_clear(&a);
}

/* ---- the readers of [accounts] agree ---- */

static struct lk_config *load(const char *text)
{
        struct lk_config *c = NULL;
        struct lk_error e = {0};

        if (lk_config_load_string(text, "test.conf", &c, NULL, &e) < 0)
                fail_msg("config: %s", e.message);
        return c;
}

#define BASE_CONF                                                                          \
        "[provider]\nissuer = https://idp.example.com\nclient_id = x\nclient_secret = s\n" \
        "redirect_uri = https://idp.example.com/cb\n"

static void test_conf_agree(void **state)
{
        static const char *const texts[] = {
                BASE_CONF,
                BASE_CONF "[accounts]\nnss = yes\nuid_min = 5000\nuid_max = 900000\n"
                          "home = /srv/%u\nshell = /bin/zsh\nallowed_names = a* b?\n"
                          "allowed_suffixes = @x.example\nmax_offline_days = 7\n",
        };

        for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
                struct lk_config *c = load(texts[i]);
                struct lk_accounts_conf a;

                lk_accounts_conf_read_text(&a, texts[i], strlen(texts[i]));
                assert_int_equal(a.enabled, c->nss);
                assert_int_equal(a.uid_min, c->uid_min);
                assert_int_equal(a.uid_max, c->uid_max);
                assert_int_equal(a.max_offline_days, c->max_offline_days);
                assert_string_equal(a.home, c->home);
                assert_string_equal(a.shell, c->shell);
                for (char **w = c->allowed_names; w && *w; w++)
                        assert_non_null(strstr(a.allowed_names, *w));
                lk_config_free(c);
        }
}

static void test_conf_allows(void **state)
{
        const char *t = "[accounts]\nnss = yes\nallowed_names = dev-* ann\n"
                        "allowed_suffixes = @corp.example\n";
        struct lk_accounts_conf a;
        char buf[64];

        lk_accounts_conf_read_text(&a, t, strlen(t));
        assert_true(lk_accounts_conf_allows(&a, "dev-1"));
        assert_true(lk_accounts_conf_allows(&a, "ann"));
        assert_true(lk_accounts_conf_allows(&a, "x@corp.example"));
        assert_false(lk_accounts_conf_allows(&a, "@corp.example"));
        assert_false(lk_accounts_conf_allows(&a, "anna"));
        assert_false(lk_accounts_conf_allows(&a, "dev-a:b"));
        assert_false(lk_accounts_conf_allows(&a, "dev-/x"));
        t = "[accounts]\nallowed_names = *\n"; /* nss off: nothing appears */
        lk_accounts_conf_read_text(&a, t, strlen(t));
        assert_false(lk_accounts_conf_allows(&a, "ann"));

        assert_int_equal(lk_accounts_expand("/home/%u", "ann", buf, sizeof(buf)), 0);
        assert_string_equal(buf, "/home/ann");
        assert_int_equal(lk_accounts_expand("/h/100%%/%u", "a", buf, sizeof(buf)), 0);
        assert_string_equal(buf, "/h/100%/a");
        assert_int_equal(lk_accounts_expand("/h/%d", "a", buf, sizeof(buf)), -EINVAL);
        assert_int_equal(lk_accounts_expand("/h/%u", "a", buf, 4), -ENAMETOOLONG);
}

/* ---- check-config's host checks of the range ---- */

static void count_problem(void *userdata, const char *message)
{
        (*(unsigned *)userdata)++;
        assert_non_null(strstr(message, "[accounts]") ?: strstr(message, "UID_"));
}

static void write_tmp(const char *path, const char *text)
{
        FILE *f = fopen(path, "we");

        assert_non_null(f);
        fputs(text, f);
        fclose(f);
}

static void test_check_host(void **state)
{
        char d[] = "/tmp/test-accounts-host-XXXXXX";
        char defs[64], pw[64], gr[64];
        struct lk_config *c;
        unsigned n = 0;

        assert_non_null(mkdtemp(d));
        snprintf(defs, sizeof(defs), "%s/login.defs", d);
        snprintf(pw, sizeof(pw), "%s/passwd", d);
        snprintf(gr, sizeof(gr), "%s/group", d);
        write_tmp(defs, "UID_MIN 1000\nUID_MAX 60000\n");
        write_tmp(pw, "root:x:0:0::/root:/bin/sh\nann:x:1000:1000::/home/ann:/bin/sh\n");
        write_tmp(gr, "root:x:0:\nann:x:1000:\n");

        c = load(BASE_CONF "[accounts]\nnss = yes\n"); /* the default range: clear */
        assert_int_equal(lk_accounts_check_host(c, defs, pw, gr, count_problem, &n), 0);
        lk_config_free(c);

        /* Meets login.defs, holds ann's uid and gid: three problems. */
        c = load(BASE_CONF "[accounts]\nnss = yes\nuid_min = 1000\nuid_max = 70000\n");
        assert_int_equal(lk_accounts_check_host(c, defs, pw, gr, count_problem, &n), 3);
        assert_int_equal(n, 3);
        lk_config_free(c);

        /* Apart from login.defs, but a local user up there. */
        write_tmp(pw, "big:x:5000000:5000000::/:/bin/sh\n");
        n = 0;
        c = load(BASE_CONF "[accounts]\nnss = yes\nuid_min = 4000000\nuid_max = 6000000\n");
        assert_int_equal(lk_accounts_check_host(c, defs, pw, gr, count_problem, &n), 1);
        lk_config_free(c);
        unlink(defs);
        unlink(pw);
        unlink(gr);
        rmdir(d);
}

/* ---- the broker's keeper of the cache ---- */

static char dir[] = "/tmp/test-accounts-XXXXXX";

static char *path_in(const char *name)
{
        char *p = NULL;

        assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
        return p;
}

static json_t *claims(const char *sub, const char *groups)
{
        json_t *c = json_pack("{s:s, s:s, s:s}", "iss", "https://idp.example.com", "sub", sub,
                              "name", "Ann: Example\n");
        json_t *g = json_array();

        for (const char *p = groups; p && *p;) {
                size_t n = strcspn(p, " ");
                json_array_append_new(g, json_stringn(p, n));
                p += n + (p[n] == ' ');
        }
        json_object_set_new(c, "groups", g);
        return c;
}

static int cached(const char *path, const char *name, struct lk_account_view *v, char **text)
{
        struct lk_accounts_map m;
        size_t len;
        FILE *f = fopen(path, "re");

        if (!f)
                return -ENOENT;
        free(*text);
        *text = calloc(1, 1 << 20);
        len = fread(*text, 1, 1 << 20, f);
        fclose(f);
        if (lk_accounts_map_init(&m, *text, len) < 0 || lk_accounts_validate(&m) < 0)
                return -EINVAL;
        return lk_accounts_find_name(&m, name, v);
}

static void test_broker_accounts(void **state)
{
        char a_name[32], b_name[32];
        _cleanup_free_ char *cache = NULL, *conf = NULL, *text = NULL;
        struct lk_accounts *a = NULL;
        struct lk_account_view v;
        struct lk_config *c;
        struct lk_error e = {0};
        json_t *cl;
        uid_t uid;

        assert_non_null(mkdtemp(dir));
        cache = path_in("accounts");
        /* A small range, so that two names meet on one uid. */
        find_collision(2000000000u, 2000001000u, a_name, b_name);
        assert_true(asprintf(&conf, BASE_CONF "[accounts]\nnss = yes\nuid_min = 2000000000\n"
                                              "uid_max = 2000001000\nallowed_names = ann n*\n"
                                              "group_map = eng:root nobody-group:nosuchgroup\n") > 0);
        c = load(conf);
        assert_int_equal(lk_accounts_new(c, cache, &a, &e), 0);

        /* Not allowed, not cached, not local: no such user. */
        assert_int_equal(lk_accounts_resolve_user(a, "zoe", &uid, &e), -LK_ERR_NOT_FOUND);
        /* Allowed: the uid it will get, before any login. */
        assert_int_equal(lk_accounts_resolve_user(a, "ann", &uid, &e), 0);
        assert_int_equal(uid, lk_uidmap_uid("ann", 3, 2000000000u, 2000001000u));
        /* A local user stays local: root resolves to 0 and is never written. */
        assert_int_equal(lk_accounts_resolve_user(a, "root", &uid, &e), 0);
        assert_int_equal(uid, 0);

        cl = claims("sub-ann", "eng other");
        assert_int_equal(lk_accounts_resolve_user(a, "ann", &uid, &e), 0);
        assert_int_equal(lk_accounts_signed_in(a, "ann", uid, cl, &e), 0);
        json_decref(cl);
        assert_int_equal(cached(cache, "ann", &v, &text), 0);
        assert_int_equal(v.uid, uid);
        assert_int_equal(v.gid, uid);
        assert_false(v.refused);
        /* eng -> root (gid 0) only because the map says so; "other" maps to nothing. */
        assert_int_equal(v.n_gids, 1);
        assert_int_equal(v.gids[0], 0);
        /* GECOS without ':' or control characters. */
        assert_memory_equal(v.gecos, "Ann  Example ", 13);
        assert_memory_equal(v.home, "/home/ann", 9);
        assert_int_equal(access(cache, R_OK), 0);
        /* World-readable, so nothing from the provider but what NSS answers: not even sub. */
        assert_null(strstr(text, "sub-ann"));
        {
                struct stat st;
                assert_int_equal(stat(cache, &st), 0);
                assert_int_equal(st.st_mode & 0777, 0644);
        }

        /* Another identity under the same name is refused. */
        cl = claims("sub-mallory", "");
        assert_int_equal(lk_accounts_signed_in(a, "ann", uid, cl, &e), -LK_ERR_NOT_ALLOWED);
        json_decref(cl);

        /* Refused by the provider, then signed in again: the flag clears. */
        lk_accounts_refused(a, "ann");
        assert_int_equal(cached(cache, "ann", &v, &text), 0);
        assert_true(v.refused);
        cl = claims("sub-ann", "");
        assert_int_equal(lk_accounts_signed_in(a, "ann", uid, cl, &e), 0);
        json_decref(cl);
        assert_int_equal(cached(cache, "ann", &v, &text), 0);
        assert_false(v.refused);
        assert_int_equal(v.n_gids, 0); /* groups follow the provider */

        /* Two names, one uid: the first keeps it, the second is refused. */
        cl = claims("sub-a", "");
        assert_int_equal(lk_accounts_resolve_user(a, a_name, &uid, &e), 0);
        assert_int_equal(lk_accounts_signed_in(a, a_name, uid, cl, &e), 0);
        json_decref(cl);
        cl = claims("sub-b", "");
        assert_int_equal(lk_accounts_resolve_user(a, b_name, &uid, &e), 0);
        assert_int_equal(lk_accounts_signed_in(a, b_name, uid, cl, &e), -LK_ERR_NOT_ALLOWED);
        json_decref(cl);
        assert_int_equal(cached(cache, b_name, &v, &text), -ENOENT);

        /* A restart reads what was written. */
        lk_accounts_free(a);
        a = NULL;
        assert_int_equal(lk_accounts_new(c, cache, &a, &e), 0);
        assert_int_equal(lk_accounts_resolve_user(a, a_name, &uid, &e), 0);
        assert_int_equal(lk_accounts_forget(a, a_name, &e), 0);
        assert_int_equal(lk_accounts_forget(a, a_name, &e), -LK_ERR_NOT_FOUND);
        assert_int_equal(cached(cache, a_name, &v, &text), -ENOENT);
        assert_int_equal(cached(cache, "ann", &v, &text), 0);

        lk_accounts_free(a);
        lk_config_free(c);
        unlink(cache);
        rmdir(dir);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_uid_stable),
                cmocka_unit_test(test_uid_range),
                cmocka_unit_test(test_uid_collision_exists),
                cmocka_unit_test(test_format_roundtrip),
                cmocka_unit_test(test_format_many),
                cmocka_unit_test(test_format_broken),
                cmocka_unit_test(test_conf_agree),
                cmocka_unit_test(test_conf_allows),
                cmocka_unit_test(test_check_host),
                cmocka_unit_test(test_broker_accounts),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
