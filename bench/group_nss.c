/* SPDX-License-Identifier: MIT */
/*
 * Group 7 (issue 20): libnss_latchkey.so.2 with 10,000 cached accounts next to glibc's
 * nss_files with 10,000 users in /etc/passwd, in the same run: getpwnam, getpwuid and
 * initgroups (getgrouplist) p50, and an unknown name with the broker stopped.
 *
 * Each side runs in a child of its own, in a mount namespace whose /etc/passwd, /etc/group
 * and /etc/nsswitch.conf are the bench's ("passwd: files" or "passwd: latchkey"), and whose
 * /etc/ld.so.cache also holds the built module; the child execs this program again
 * (--nss-probe), so that glibc reads that nsswitch.conf and finds the module as on a host
 * where it is installed. The host's files are not touched.
 */
#include <errno.h>
#include <grp.h>
#include <math.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/accounts_file.h"
#include "bench/bench.h"

#ifndef LK_NSS_DIR
#error "LK_NSS_DIR (the folder of the built libnss_latchkey.so.2) must be defined by meson"
#endif

#define N_ACCOUNTS 10000
#define N_GROUPS 100       /* local groups; each account is in two */
#define UID_FILES 3900000  /* the files side's users */
#define UID_CACHE 3000000  /* the cache's accounts */
#define GID_GROUPS 3990000

static void append_file(FILE *out, const char *path)
{
        char buf[65536];
        size_t n;
        FILE *in = fopen(path, "re");

        if (!in)
                die("cannot read %s: %m", path);
        while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
                fwrite(buf, 1, n, out);
        fclose(in);
}

/* The files side: the host's own lines, then 10,000 users and 100 groups of 200 members. */
static void write_files_db(const char *dir)
{
        _cleanup_free_ char *pw = xasprintf("%s/passwd", dir), *gr = xasprintf("%s/group", dir);
        FILE *f = fopen(pw, "we");

        if (!f)
                die("cannot write %s: %m", pw);
        append_file(f, "/etc/passwd");
        for (unsigned i = 0; i < N_ACCOUNTS; i++)
                fprintf(f, "lkf%05u:x:%u:%u:bench user %u:/home/lkf%05u:/bin/sh\n", i,
                        UID_FILES + i, UID_FILES + i, i, i);
        fclose(f);
        f = fopen(gr, "we");
        if (!f)
                die("cannot write %s: %m", gr);
        append_file(f, "/etc/group");
        for (unsigned g = 0; g < N_GROUPS; g++) {
                bool first = true;

                fprintf(f, "lkg%03u:x:%u:", g, GID_GROUPS + g);
                for (unsigned i = 0; i < N_ACCOUNTS; i++)
                        if (i % N_GROUPS == g || (i + 1) % N_GROUPS == g) {
                                fprintf(f, "%slkf%05u", first ? "" : ",", i);
                                first = false;
                        }
                fputc('\n', f);
        }
        fclose(f);
        chmod(pw, 0644);
        chmod(gr, 0644);
}

/* The latchkey side: 10,000 accounts in two of the same 100 groups each. */
static void write_cache(const char *dir)
{
        _cleanup_free_ char *path = xasprintf("%s/accounts", dir), *text = NULL;
        struct lk_account *a = calloc(N_ACCOUNTS, sizeof(*a));
        size_t len = 0;

        if (!a)
                die("out of memory");
        for (unsigned i = 0; i < N_ACCOUNTS; i++) {
                a[i].name = xasprintf("lkn%05u", i);
                a[i].gecos = xasprintf("bench account %u", i);
                a[i].home = xasprintf("/home/lkn%05u", i);
                a[i].shell = xstrdup("/bin/sh");
                a[i].uid = a[i].gid = UID_CACHE + i;
                a[i].last_signin = 1700000000;
                for (unsigned k = 0; k < 2; k++) {
                        unsigned g = (i + k) % N_GROUPS;
                        a[i].gids[k] = GID_GROUPS + g;
                        a[i].group_names[k] = xasprintf("lkg%03u", g);
                }
                a[i].n_gids = 2;
        }
        if (lk_accounts_format(a, N_ACCOUNTS, &text, &len) < 0)
                die("cannot format the accounts cache");
        write_or_die(path, text, len);
        for (unsigned i = 0; i < N_ACCOUNTS; i++)
                lk_account_clear(&a[i]);
        free(a);
}

struct probe {
        double pwnam, pwuid, initgroups, unknown, unknown_max; /* ms */
};

/* Runs the probe for side ("files" or "latchkey") in its namespace; its p50s. */
static struct probe run_probe(const char *dir, const char *side, int lookups)
{
        _cleanup_free_ char *nss = xasprintf("%s/nsswitch-%s.conf", dir, side);
        _cleanup_free_ char *pw = xasprintf("%s/passwd", dir), *gr = xasprintf("%s/group", dir);
        _cleanup_free_ char *ld = xasprintf("%s/ld.so.cache", dir);
        _cleanup_free_ char *n = xasprintf("%d", lookups);
        struct probe p = {NAN, NAN, NAN, NAN, NAN};
        int fds[2], status;
        char out[512] = "";
        ssize_t k;
        pid_t pid;

        if (pipe(fds) < 0)
                die("pipe: %m");
        fflush(NULL);
        pid = fork();
        if (pid < 0)
                die("fork: %m");
        if (pid == 0) {
                const char *argv[] = {"/proc/self/exe", "--nss-probe", side, n, NULL};

                dup2(fds[1], 1);
                if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
                    mount(nss, "/etc/nsswitch.conf", NULL, MS_BIND, NULL) ||
                    mount(pw, "/etc/passwd", NULL, MS_BIND, NULL) ||
                    mount(gr, "/etc/group", NULL, MS_BIND, NULL) ||
                    mount(ld, "/etc/ld.so.cache", NULL, MS_BIND, NULL)) {
                        fprintf(stderr, "latchkey-bench: the NSS probe's namespace: %m\n");
                        _exit(126);
                }
                execv(argv[0], (char *const *)argv);
                _exit(127);
        }
        close(fds[1]);
        k = read(fds[0], out, sizeof(out) - 1);
        close(fds[0]);
        if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
            k <= 0 || sscanf(out, "%lf %lf %lf %lf %lf", &p.pwnam, &p.pwuid, &p.initgroups,
                             &p.unknown, &p.unknown_max) != 5)
                die("the NSS probe for %s failed (status 0x%x): %s", side, (unsigned)status, out);
        return p;
}

static void nss_rows(const char *fig, double latchkey, double files)
{
        row("9", fig, latchkey, "ms", files, "nss_files", "<= 2x files",
            check(latchkey <= 2 * files));
}

void bench_nss(void)
{
        _cleanup_free_ char *dir = xasprintf("%s/nss", H->dir), *path = NULL, *conf = NULL;
        const char *ldconfig[] = {"/sbin/ldconfig", "-X", "-C", NULL, "-f", NULL, NULL};
        int lookups = P.sessions >= 10000 ? 3000 : 200;
        struct probe files, latchkey;
        pid_t pid;
        int status;

        heading("9. NSS: 10,000 accounts, libnss_latchkey.so.2 next to nss_files");
        if (mkdir(dir, 0755) < 0)
                die("mkdir %s: %m", dir);
        write_files_db(dir);
        write_cache(dir);
        path = xasprintf("%s/nsswitch-files.conf", dir);
        write_or_die(path, "passwd: files\ngroup: files\n", 26);
        free(path);
        path = xasprintf("%s/nsswitch-latchkey.conf", dir);
        write_or_die(path, "passwd: latchkey\ngroup: files latchkey\n", 39);
        free(path);
        /* The unknown name meets [accounts] (nss on, a pattern it does not match). */
        path = xasprintf("%s/latchkey.conf", dir);
        write_or_die(path, "[accounts]\nnss = yes\nallowed_names = lkp-*\n", 43);
        conf = xasprintf("%s/ld.so.conf", dir);
        write_or_die(conf, "include /etc/ld.so.conf.d/*.conf\n" LK_NSS_DIR "\n",
                     strlen("include /etc/ld.so.conf.d/*.conf\n" LK_NSS_DIR "\n"));
        free(path);
        path = xasprintf("%s/ld.so.cache", dir);
        ldconfig[3] = path;
        ldconfig[5] = conf;
        if (lkh_spawn(ldconfig, -1, &pid) < 0 || waitpid(pid, &status, 0) < 0 ||
            !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                die("ldconfig -C %s failed", path);
        free(path);
        path = xasprintf("%s/accounts", dir);
        setenv(LK_ACCOUNTS_FILE_ENV, path, 1);
        free(path);
        path = xasprintf("%s/latchkey.conf", dir);
        setenv("LATCHKEY_CONFIG", path, 1);
        /* The module never asks the broker: measure with it stopped. */
        lkh_stop_broker(H);

        files = run_probe(dir, "files", lookups);
        latchkey = run_probe(dir, "latchkey", lookups);
        nss_rows("getpwnam p50", latchkey.pwnam, files.pwnam);
        nss_rows("getpwuid p50", latchkey.pwuid, files.pwuid);
        nss_rows("initgroups (getgrouplist) p50", latchkey.initgroups, files.initgroups);
        row("9", "unknown name, broker stopped: NOTFOUND p50", latchkey.unknown, "ms", NAN, "",
            "< 10 ms", check(latchkey.unknown < 10));
        row("9", "unknown name, broker stopped: worst", latchkey.unknown_max, "ms", NAN, "",
            "< 10 ms", check(latchkey.unknown_max < 10));
        unsetenv(LK_ACCOUNTS_FILE_ENV);
        unsetenv("LATCHKEY_CONFIG");
}

/* ---- the probe, in its namespace ---- */

static double p50_of(struct lat *l)
{
        return lat_pct(l, 0.5);
}

int bench_nss_probe(const char *side, const char *count)
{
        bool ours = streq(side, "latchkey");
        const char *prefix = ours ? "lkn" : "lkf";
        unsigned base = ours ? UID_CACHE : UID_FILES;
        struct lat nam = {0}, uid = {0}, init = {0}, unknown = {0};
        int lookups = (int)strtol(count, NULL, 10);
        double worst = 0;
        char name[32];

        srandom(7);
        for (int i = 0; i < lookups; i++) {
                unsigned k = (unsigned)random() % N_ACCOUNTS;
                gid_t groups[64];
                int ng = 64;
                struct passwd *pw;
                int64_t t0, t1;

                snprintf(name, sizeof(name), "%s%05u", prefix, k);
                t0 = now_ns();
                pw = getpwnam(name);
                t1 = now_ns();
                if (!pw || pw->pw_uid != base + k)
                        die("probe %s: getpwnam(%s) failed", side, name);
                lat_add(&nam, t1 - t0);

                k = (unsigned)random() % N_ACCOUNTS;
                t0 = now_ns();
                pw = getpwuid(base + k);
                t1 = now_ns();
                if (!pw)
                        die("probe %s: getpwuid(%u) failed", side, base + k);
                lat_add(&uid, t1 - t0);

                snprintf(name, sizeof(name), "%s%05u", prefix, k);
                t0 = now_ns();
                if (getgrouplist(name, base + k, groups, &ng) < 0 || ng != 3)
                        die("probe %s: getgrouplist(%s) gave %d groups", side, name, ng);
                t1 = now_ns();
                lat_add(&init, t1 - t0);
        }
        for (int i = 0; ours && i < 200; i++) {
                int64_t t0, t1;

                snprintf(name, sizeof(name), "lk-unknown-%d", i);
                t0 = now_ns();
                if (getpwnam(name))
                        die("probe: an unknown name was found");
                t1 = now_ns();
                lat_add(&unknown, t1 - t0);
                if ((double)(t1 - t0) / 1e6 > worst)
                        worst = (double)(t1 - t0) / 1e6;
        }
        printf("%.6f %.6f %.6f %.6f %.6f\n", p50_of(&nam), p50_of(&uid), p50_of(&init),
               ours ? p50_of(&unknown) : 0.0, worst);
        return 0;
}
