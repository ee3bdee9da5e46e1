/* SPDX-License-Identifier: MIT */
/*
 * Least privilege (issue 8, part 5): the unit's sandbox as systemd-analyze rates it (2.0 or
 * lower, where the tool exists), the system user from sysusers.d that the unit and the
 * activation file name (and that meson installs), the broker's checks of its state dir at
 * start, and the one log line a broker started as root writes.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <setjmp.h>
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
#include "tests/harness/harness.h"

#define NOBODY 65534
#define EXPOSURE_MAX 2.0

static const char *find_tool(const char *name)
{
        static char path[256];
        static const char *const dirs[] = {"/usr/bin", "/bin", "/usr/sbin", "/sbin"};

        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                snprintf(path, sizeof(path), "%s/%s", dirs[i], name);
                if (access(path, X_OK) == 0)
                        return path;
        }
        return NULL;
}

/* Runs argv (env: extra "NAME=value" or NULL); its exit status and stdout+stderr. */
static int run(const char *const *argv, const char *env, int *ret_status, char **ret_out)
{
        char *buf = calloc(1, 1 << 20);
        size_t len = 0;
        ssize_t k;
        int fds[2], status;
        pid_t pid;

        assert_non_null(buf);
        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                dup2(fds[1], STDOUT_FILENO);
                dup2(fds[1], STDERR_FILENO);
                if (env)
                        putenv((char *)env);
                execv(argv[0], (char *const *)argv);
                _exit(127);
        }
        close(fds[1]);
        while (len < (1 << 20) - 1 && (k = read(fds[0], buf + len, (1 << 20) - 1 - len)) > 0)
                len += (size_t)k;
        close(fds[0]);
        if (waitpid(pid, &status, 0) != pid)
                return -ECHILD;
        *ret_status = status;
        *ret_out = buf;
        return 0;
}

static char *read_text(const char *path)
{
        FILE *f = fopen(path, "re");
        char *buf;
        size_t len;

        if (!f)
                return NULL;
        buf = calloc(1, 1 << 20);
        assert_non_null(buf);
        len = fread(buf, 1, (1 << 20) - 1, f);
        fclose(f);
        buf[len] = '\0';
        return buf;
}

/* A whole line of text equal to line (comments and blanks aside). */
static bool has_line(const char *text, const char *line)
{
        size_t n = strlen(line);

        for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
                if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == '\0'))
                        return true;
        return false;
}

/* ---- the unit ---- */

static void test_unit_exposure(void **state)
{
        const char *tool = find_tool("systemd-analyze");
        _cleanup_free_ char *out = NULL;
        const char *p;
        double level;
        int status;

        if (!tool) {
                printf("no systemd-analyze here; skipping the exposure check\n");
                skip();
        }
        {
                const char *argv[] = {tool, "security", "--offline=true", "--threshold=20",
                                      LK_UNIT_FILE, NULL};
                assert_int_equal(run(argv, "SYSTEMD_COLORS=0", &status, &out), 0);
        }
        p = strstr(out, "Overall exposure level for latchkeyd.service:");
        if (!p) {
                /* Older systemd without --offline: nothing to rate the unit file with. */
                if (strstr(out, "offline") && strstr(out, "nrecognized")) {
                        printf("systemd-analyze has no --offline; skipping\n%s", out);
                        skip();
                }
                fail_msg("no exposure level in systemd-analyze's answer:\n%s", out);
        }
        p += strlen("Overall exposure level for latchkeyd.service:");
        level = strtod(p, NULL);
        printf("systemd-analyze security: latchkeyd.service exposure %.1f\n", level);
        if (level > EXPOSURE_MAX)
                fail_msg("exposure %.1f is above %.1f:\n%s", level, EXPOSURE_MAX, out);
        /* --threshold=20 (2.0): systemd-analyze itself fails above it. */
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_system_user(void **state)
{
        _cleanup_free_ char *sysusers = read_text(LK_SYSUSERS_FILE);
        _cleanup_free_ char *unit = read_text(LK_UNIT_FILE);
        _cleanup_free_ char *activation = read_text(LK_ACTIVATION_FILE);
        _cleanup_free_ char *installed_text = read_text(LK_INSTALLED_JSON);
        const char *tool = find_tool("systemd-sysusers");
        json_t *installed, *dest;

        assert_non_null(sysusers);
        assert_non_null(unit);
        assert_non_null(activation);
        /* One user, latchkey, whose home is the state dir; the unit and the bus run as it. */
        assert_true(has_line(sysusers, "u latchkey - \"latchkey broker\" /var/lib/latchkey"));
        assert_true(has_line(unit, "User=latchkey"));
        assert_true(has_line(unit, "Group=latchkey"));
        assert_true(has_line(unit, "StateDirectory=latchkey"));
        assert_true(has_line(unit, "StateDirectoryMode=0700"));
        assert_true(has_line(unit, "UMask=0077"));
        assert_true(has_line(unit, "NoNewPrivileges=yes"));
        assert_true(has_line(unit, "CapabilityBoundingSet="));
        assert_true(has_line(activation, "User=latchkey"));
        assert_true(has_line(activation, "SystemdService=latchkeyd.service"));

        /* meson installs it as sysusers.d/latchkey.conf. */
        assert_non_null(installed_text);
        installed = json_loads(installed_text, 0, NULL);
        assert_non_null(installed);
        dest = json_object_get(installed, LK_SYSUSERS_FILE);
        assert_true(json_is_string(dest));
        assert_true(lk_endswith(json_string_value(dest), "/sysusers.d/latchkey.conf"));
        dest = json_object_get(installed, LK_UNIT_FILE);
        assert_true(json_is_string(dest));
        assert_true(lk_endswith(json_string_value(dest), "/latchkeyd.service"));
        json_decref(installed);

        /* And systemd-sysusers reads it (into a scratch root, changing nothing). */
        if (tool) {
                char root[] = "/tmp/latchkey-sysusers-XXXXXX";
                _cleanup_free_ char *out = NULL, *root_arg = NULL, *etc = NULL;
                int status;

                assert_non_null(mkdtemp(root));
                assert_true(asprintf(&etc, "%s/etc", root) > 0);
                assert_int_equal(mkdir(etc, 0755), 0);
                assert_true(asprintf(&root_arg, "--root=%s", root) > 0);
                {
                        const char *argv[] = {tool, root_arg, "--dry-run", LK_SYSUSERS_FILE,
                                              NULL};
                        assert_int_equal(run(argv, NULL, &status, &out), 0);
                }
                rmdir(etc);
                rmdir(root);
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
                    !strstr(out, "Creating user 'latchkey'"))
                        fail_msg("systemd-sysusers --dry-run:\n%s", out);
        }
}

/* ---- the broker at start ---- */

static int setup(void **state)
{
        struct lkh *h = NULL;

        if (lkh_new(&h) < 0 || lkh_start_idp(h, NULL) < 0 || lkh_write_config(h, NULL) < 0) {
                lkh_free(h);
                return -1;
        }
        *state = h;
        return 0;
}

/* latchkeyd with this state dir and no bus: what it says, and whether it refused. */
static char *broker_on(struct lkh *h, const char *state_dir, int *ret_status)
{
        const char *argv[] = {lkh_latchkeyd_path(), "--config", h->config_file, "--state-dir",
                              state_dir, "--idle-exit", "0", "--debug", NULL};
        char *out = NULL;

        /* No bus: a broker that accepted its state dir stops at connecting, after the checks. */
        assert_int_equal(run(argv, "DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent/latchkey-bus",
                             ret_status, &out),
                         0);
        return out;
}

static void test_state_dir_checks(void **state)
{
        struct lkh *h = *state;
        _cleanup_free_ char *d1 = NULL, *d2 = NULL, *d3 = NULL, *d4 = NULL, *d5 = NULL;
        _cleanup_free_ char *o1 = NULL, *o2 = NULL, *o3 = NULL, *o4 = NULL, *o5 = NULL;
        _cleanup_free_ char *sessions = NULL;
        struct stat st;
        int status;

        /* Owned by another uid: refused, naming the owner. */
        assert_true(asprintf(&d1, "%s/not-ours", h->dir) > 0);
        assert_int_equal(mkdir(d1, 0700), 0);
        assert_int_equal(chown(d1, NOBODY, NOBODY), 0);
        o1 = broker_on(h, d1, &status);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 0);
        if (!strstr(o1, "owned by uid 65534"))
                fail_msg("a state dir of uid 65534:\n%s", o1);

        /* Readable by the group: refused, asking for 0700. */
        assert_true(asprintf(&d2, "%s/group-readable", h->dir) > 0);
        assert_int_equal(mkdir(d2, 0700), 0);
        assert_int_equal(chmod(d2, 0750), 0);
        o2 = broker_on(h, d2, &status);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 0);
        if (!strstr(o2, "0750") || !strstr(o2, "0700"))
                fail_msg("a state dir of mode 0750:\n%s", o2);

        /* A symlink, even to a good dir: refused. */
        assert_true(asprintf(&d3, "%s/link", h->dir) > 0);
        assert_int_equal(symlink(h->state_dir, d3), 0);
        o3 = broker_on(h, d3, &status);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 0);
        if (!strstr(o3, "not a directory"))
                fail_msg("a state dir that is a symlink:\n%s", o3);

        /* A file where the dir should be: refused. */
        assert_true(asprintf(&d4, "%s/a-file", h->dir) > 0);
        assert_int_equal(close(open(d4, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)), 0);
        o4 = broker_on(h, d4, &status);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 0);
        assert_non_null(strstr(o4, "not a directory"));

        /* Missing: made, 0700, with sessions/ in it 0700; the broker got past its checks. */
        assert_true(asprintf(&d5, "%s/fresh", h->dir) > 0);
        o5 = broker_on(h, d5, &status);
        assert_int_equal(lstat(d5, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0700);
        assert_int_equal(st.st_uid, geteuid());
        assert_true(asprintf(&sessions, "%s/sessions", d5) > 0);
        assert_int_equal(lstat(sessions, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0700);
        assert_null(strstr(o5, "State directory"));
}

/* Started as root (outside the unit): it works, and says so once. */
static void test_root_says_so_once(void **state)
{
        struct lkh *h = *state;
        _cleanup_free_ char *log = NULL, *path = NULL;
        int saved, fd, r, lines = 0;

        assert_int_equal(geteuid(), 0);
        assert_int_equal(lkh_start_bus(h), 0);
        assert_true(asprintf(&path, "%s/broker-root.log", h->dir) > 0);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        fflush(stderr);
        saved = dup(STDERR_FILENO);
        dup2(fd, STDERR_FILENO);
        close(fd);
        {
                static const char *const args[] = {"--debug", NULL};
                r = lkh_start_broker(h, args);
        }
        fflush(stderr);
        dup2(saved, STDERR_FILENO);
        close(saved);
        assert_int_equal(r, 0); /* it took the bus name: it works */
        lkh_stop_broker(h);
        log = read_text(path);
        assert_non_null(log);
        for (const char *p = log; (p = strstr(p, "Running as root")); p++)
                lines++;
        if (lines != 1)
                fail_msg("'Running as root' %d times in:\n%s", lines, log);
        assert_non_null(strstr(log, "ready on the system bus"));
}

int main(void)
{
        const struct CMUnitTest files[] = {
            cmocka_unit_test(test_unit_exposure),
            cmocka_unit_test(test_system_user),
        };
        const struct CMUnitTest broker[] = {
            cmocka_unit_test(test_state_dir_checks),
            cmocka_unit_test(test_root_says_so_once),
        };
        int failed = 0;

        failed += cmocka_run_group_tests_name("least privilege: the unit and the user", files,
                                              NULL, NULL);
        if (geteuid() != 0) {
                fprintf(stderr, "the broker's start checks need root (chown, a root broker); "
                                "skipping them\n");
                return failed ? 1 : 0;
        }
        failed += cmocka_run_group_tests_name("least privilege: the broker at start", broker,
                                              setup, lkh_teardown);
        return failed ? 1 : 0;
}
