/* SPDX-License-Identifier: MIT */
/*
 * libnss_latchkey.so.2 through glibc (issue 20): getent passwd and group, id (initgroups)
 * run with nss_wrapper (Debian's libnss-wrapper) loading the built module after its own
 * files database, as nsswitch.conf's "files latchkey" would, on an accounts cache this test
 * writes with the broker's writer (base/accounts_file.c). Also the provisional answer for a
 * never-seen name [accounts] admits (root only), and nothing for one it does not.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/accounts_file.h"
#include "base/uidmap.h"
#include "base/util.h"

#ifndef NSS_LATCHKEY_SO
#error "NSS_LATCHKEY_SO (the built libnss_latchkey.so.2) must be defined by meson"
#endif
#define NSS_WRAPPER_SO "libnss_wrapper.so"
#ifndef LK_ASAN_PRELOAD
#define LK_ASAN_PRELOAD "" /* the sanitizer runtime, in sanitized builds: getent has none */
#endif

static char dir[] = "/tmp/test-nss-XXXXXX";

static char *path(const char *name)
{
        char *p = NULL;

        assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
        return p;
}

static void write_text(const char *name, const char *text, mode_t mode)
{
        _cleanup_free_ char *p = path(name);
        FILE *f = fopen(p, "we");

        assert_non_null(f);
        assert_int_equal(fputs(text, f) >= 0, 1);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(chmod(p, mode), 0);
}

static struct lk_account account(const char *name, uint32_t uid, const char *gecos)
{
        struct lk_account a = {0};

        a.name = strdup(name);
        a.gecos = strdup(gecos);
        assert_true(asprintf(&a.home, "/home/%s", name) > 0);
        a.shell = strdup("/bin/sh");
        a.uid = a.gid = uid;
        a.last_signin = 1700000000;
        return a;
}

static void write_cache(void)
{
        struct lk_account a[3] = {account("ann", 2000000101, "Ann Example"),
                                  account("bob", 2000000202, ""),
                                  account("evil", 0, "root by another name")};
        _cleanup_free_ char *text = NULL;
        size_t len = 0;

        a[0].gids[0] = 27101;
        a[0].group_names[0] = strdup("devs");
        a[0].gids[1] = 27102;
        a[0].group_names[1] = strdup("ops");
        a[0].n_gids = 2;
        a[1].gids[0] = 27101;
        a[1].group_names[0] = strdup("devs");
        a[1].n_gids = 1;
        assert_int_equal(lk_accounts_format(a, 3, &text, &len), 0);
        write_text("accounts", text, 0644);
        for (unsigned i = 0; i < 3; i++)
                lk_account_clear(&a[i]);
}

static int setup(void **state)
{
        if (!mkdtemp(dir))
                return -1;
        write_text("passwd", "root:x:0:0:root:/root:/bin/sh\n"
                             "local:x:1234:1234:a local user:/home/local:/bin/sh\n", 0644);
        write_text("group", "root:x:0:\nlocal:x:1234:\ndevs:x:27101:\nops:x:27102:\n", 0644);
        write_text("latchkey.conf", "[accounts]\nnss = yes\nallowed_names = new-*\n"
                                    "uid_min = 2000000000\nuid_max = 2100000000\n"
                                    "home = /srv/homes/%u\nshell = /bin/bash\n", 0644);
        write_cache();
        return 0;
}

static int teardown(void **state)
{
        static const char *const names[] = {"passwd", "group", "latchkey.conf", "accounts"};

        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                _cleanup_free_ char *p = path(names[i]);
                unlink(p);
        }
        rmdir(dir);
        return 0;
}

/* Runs command (a shell line) with NSS through the wrapper; its stdout, and its status. */
static char *run(const char *command, int *ret_status)
{
        _cleanup_free_ char *line = NULL;
        char *out = calloc(1, 65536);
        size_t len = 0, n;
        FILE *p;
        int status;

        assert_non_null(out);
        assert_true(asprintf(&line,
                             "env LD_PRELOAD=\"" LK_ASAN_PRELOAD " " NSS_WRAPPER_SO "\" "
                             "ASAN_OPTIONS=detect_leaks=0 NSS_WRAPPER_PASSWD=%s/passwd "
                             "NSS_WRAPPER_GROUP=%s/group NSS_WRAPPER_MODULE_SO_PATH="
                             NSS_LATCHKEY_SO " NSS_WRAPPER_MODULE_FN_PREFIX=latchkey "
                             "LATCHKEY_ACCOUNTS_FILE=%s/accounts LATCHKEY_CONFIG=%s/latchkey.conf "
                             "sh -c '%s'",
                             dir, dir, dir, dir, command) > 0);
        p = popen(line, "re");
        assert_non_null(p);
        while ((n = fread(out + len, 1, 65535 - len, p)) > 0)
                len += n;
        status = pclose(p);
        *ret_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        return out;
}

static void expect(const char *command, int status, const char *output)
{
        _cleanup_free_ char *out = NULL;
        int st;

        out = run(command, &st);
        if (st != status || !streq(out, output))
                fail_msg("%s: status %d, output:\n%s\nwanted status %d, output:\n%s", command, st,
                         out, status, output);
}

static void test_getent_passwd(void **state)
{
        expect("getent passwd ann", 0,
               "ann:*:2000000101:2000000101:Ann Example:/home/ann:/bin/sh\n");
        expect("getent passwd 2000000202", 0, "bob:*:2000000202:2000000202::/home/bob:/bin/sh\n");
        /* files first, as nsswitch's "files latchkey" */
        expect("getent passwd local", 0, "local:x:1234:1234:a local user:/home/local:/bin/sh\n");
        expect("getent passwd nobody-here", 2, "");
        expect("getent passwd 2000000303", 2, "");
        /* A cache entry with uid 0 is never an answer. */
        expect("getent passwd evil", 2, "");
        expect("getent passwd | grep -c :2000000", 0, "2\n");
}

static void test_getent_group(void **state)
{
        /* Each account's own group, gid = uid. */
        expect("getent group ann", 0, "ann:*:2000000101:\n");
        expect("getent group 2000000202", 0, "bob:*:2000000202:\n");
        /* The local group from files; with [SUCCESS=merge] the cache's members would join. */
        expect("getent group devs", 0, "devs:x:27101:\n");
        expect("getent group | grep -c :2000000", 0, "2\n");
        expect("getent group | grep ^devs", 0, "devs:x:27101:\ndevs:*:27101:ann,bob\n");
}

static void test_id_initgroups(void **state)
{
        expect("id ann", 0,
               "uid=2000000101(ann) gid=2000000101(ann) groups=2000000101(ann),27101(devs),"
               "27102(ops)\n");
        expect("id -G bob", 0, "2000000202 27101\n");
        expect("id local", 0, "uid=1234(local) gid=1234(local) groups=1234(local)\n");
}

static void test_provisional(void **state)
{
        _cleanup_free_ char *want = NULL;
        uint32_t uid = lk_uidmap_uid("new-carol", 9, 2000000000, 2100000000);

        if (geteuid() != 0)
                skip(); /* provisional answers are for root's processes (sshd) only */
        assert_true(asprintf(&want, "new-carol:*:%u:%u::/srv/homes/new-carol:/bin/bash\n", uid,
                             uid) > 0);
        expect("getent passwd new-carol", 0, want);
        /* Not admitted, not answered; and never by uid or in a listing. */
        expect("getent passwd old-carol", 2, "");
        expect("getent passwd | grep -c new-carol", 1, "0\n");
        expect("getent passwd \"new-bad:x\"", 2, "");
}

static void test_no_cache(void **state)
{
        _cleanup_free_ char *p = path("accounts"), *moved = path("accounts.away");

        assert_int_equal(rename(p, moved), 0);
        expect("getent passwd ann", 2, "");
        expect("id local", 0, "uid=1234(local) gid=1234(local) groups=1234(local)\n");
        /* A cache others may write is not trusted. */
        assert_int_equal(rename(moved, p), 0);
        assert_int_equal(chmod(p, 0666), 0);
        expect("getent passwd ann", 2, "");
        assert_int_equal(chmod(p, 0644), 0);
        expect("getent passwd ann", 0,
               "ann:*:2000000101:2000000101:Ann Example:/home/ann:/bin/sh\n");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_getent_passwd),
                cmocka_unit_test(test_getent_group),
                cmocka_unit_test(test_id_initgroups),
                cmocka_unit_test(test_provisional),
                cmocka_unit_test(test_no_cache),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
