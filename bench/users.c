/* SPDX-License-Identifier: MIT */
/*
 * The local accounts the bench's logins are for: root, then lkbench-01, lkbench-02, ... made
 * by the bench with uids from 3,860,001 (normal accounts for the broker: no allow_system_users
 * line needed), removed at the end of every run, failed ones too (die() removes them). The
 * bench holds /tmp/latchkey-bench-users.lock from making them to removing them, so two benches
 * never share them, and an account of that name left by a killed run is removed first; one
 * that the bench did not make (another comment) is never touched.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench.h"

#define USER_UID_BASE 3860000
#define USER_GECOS "latchkey-bench test account"
#define USERS_LOCK "/tmp/latchkey-bench-users.lock"
#define USERADD "/usr/sbin/useradd"
#define USERDEL "/usr/sbin/userdel"

struct user *users;
size_t n_users;
static int lock_fd = -1;

/* Runs argv[0] (no shell) and waits: true when it exited 0. */
static bool run(const char *const argv[])
{
        pid_t pid;
        int status;

        if (lkh_spawn(argv, -1, &pid) < 0)
                return false;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return false;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static bool userdel(const char *name)
{
        const char *const argv[] = {USERDEL, "-f", name, NULL};

        return run(argv);
}

/* Makes account i (lkbench-NN) after removing one of that name an earlier run left; adds it to
 * users before useradd runs, so that a failure from there on removes what useradd made. */
static void make_user(size_t i)
{
        uid_t uid = (uid_t)(USER_UID_BASE + i);
        char name[32], uid_s[16];
        const char *const argv[] = {USERADD, "--no-create-home", "--home-dir", "/nonexistent",
                                    "--shell", "/usr/sbin/nologin", "--comment", USER_GECOS,
                                    "--no-user-group", "--no-log-init",
                                    /* no warning for a uid above login.defs' UID_MAX */
                                    "-K", "UID_MAX=3869999", "--uid", uid_s, name, NULL};
        struct passwd *pw;

        snprintf(name, sizeof(name), "lkbench-%02zu", i);
        snprintf(uid_s, sizeof(uid_s), "%u", (unsigned)uid);
        pw = getpwnam(name);
        if (pw && !streq_ptr(pw->pw_gecos, USER_GECOS))
                die("a local account %s exists and was not made by latchkey-bench; not touching "
                    "it",
                    name);
        if (pw && !userdel(name))
                die("cannot remove %s, left by an earlier run: userdel failed", name);
        pw = getpwuid(uid);
        if (pw)
                die("uid %u, which latchkey-bench gives %s, belongs to %s", (unsigned)uid, name,
                    pw->pw_name);
        users[n_users++] = (struct user){xstrdup(name), uid, 0};
        if (!run(argv))
                die("cannot make the test account %s: useradd failed", name);
        pw = getpwnam(name);
        if (!pw || pw->pw_uid != uid)
                die("useradd made no %s with uid %u", name, (unsigned)uid);
        users[n_users - 1].gid = pw->pw_gid;
}

static void remove_at_teardown(void)
{
        (void)users_remove();
}

void users_create(size_t n)
{
        bench_on_teardown(remove_at_teardown);
        lock_fd = open(USERS_LOCK, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (lock_fd < 0)
                die("cannot open " USERS_LOCK ": %m");
        if (flock(lock_fd, LOCK_EX | LOCK_NB) < 0) {
                fprintf(stderr, "latchkey-bench: waiting for another latchkey-bench (%s)\n",
                        USERS_LOCK);
                while (flock(lock_fd, LOCK_EX) < 0)
                        if (errno != EINTR || bench_stopping())
                                die("cannot lock " USERS_LOCK ": %m");
        }
        users = xmalloc(sizeof(*users) * (n + 1));
        users[n_users++] = (struct user){xstrdup("root"), 0, 0};
        for (size_t i = 1; i <= n; i++) {
                bench_check();
                make_user(i);
        }
}

bool users_remove(void)
{
        bool ok = true;

        for (size_t i = 1; i < n_users; i++) {
                if (getpwnam(users[i].name) && !userdel(users[i].name)) {
                        fprintf(stderr, "latchkey-bench: cannot remove the test account %s\n",
                                users[i].name);
                        ok = false;
                }
                free(users[i].name);
        }
        if (n_users)
                free(users[0].name);
        free(users);
        users = NULL;
        n_users = 0;
        if (lock_fd >= 0)
                close(lock_fd);
        lock_fd = -1;
        return ok;
}
