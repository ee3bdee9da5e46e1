/* SPDX-License-Identifier: MIT */
/*
 * A real sshd (issue 4): Debian's openssh-server on a loopback port with its
 * own sshd_config and a PAM stack using the built pam_latchkey.so; the test
 * IdP, a private system bus and latchkeyd from the harness; a local user made
 * for the test; and the real ssh client, driven through its keyboard-
 * interactive prompt on a pty of our own. Runs as root (useradd, sshd).
 *
 * The PAM service: Debian builds sshd without --with-pam-service, so sshd
 * uses its program name (__progname) as the PAM service name. The test runs
 * sshd through a symlink named SERVICE and writes /etc/pam.d/SERVICE, a file
 * of its own that it removes at the end; /etc/pam.d/sshd is never touched.
 *
 * The system bus: sshd's PAM conversation runs in a process whose
 * environment sshd empties (auth-pam.c keeps only TZ), so pam_latchkey there
 * cannot be pointed at the private bus with DBUS_SYSTEM_BUS_ADDRESS. Instead
 * sshd runs in a mount namespace of its own with a fresh tmpfs on /run, where
 * /run/dbus/system_bus_socket leads to the private bus and /run/sshd is its
 * privilege separation folder. So sshd, the module and the session's programs
 * all use the default system bus address, as on a real machine, and the
 * machine's /run is not touched.
 *
 * In the session, `latchkeyctl token` (or, where the test user cannot run the
 * built latchkeyctl, lk-get-token) prints the token $LATCHKEY_SESSION holds; it
 * must be the one the broker gives root for that session. At logout sshd
 * closes the PAM session and the broker must forget it.
 *
 * What the machine keeps from a run: nothing, when teardown runs. A crashed
 * run may leave the user (recognised by its GECOS and replaced by the next
 * run) and /etc/pam.d/SERVICE (overwritten by the next run).
 */
#include <dbus/dbus.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <grp.h>
#include <pty.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "base/accounts_file.h"
#include "base/uidmap.h"
#include "base/util.h"
#include "tests/harness/busclient.h"
#include "tests/harness/harness.h"

#ifndef LK_PAM_MODULE
#error "LK_PAM_MODULE (the built pam_latchkey.so) must be defined by meson"
#endif
#ifndef LK_GET_TOKEN
#error "LK_GET_TOKEN (the built lk-get-token) must be defined by meson"
#endif
#ifndef LK_LATCHKEYCTL
#define LK_LATCHKEYCTL "" /* the built latchkeyctl, when there is one */
#endif
#ifndef LK_NSS_DIR
#define LK_NSS_DIR "" /* the folder of the built libnss_latchkey.so.2 */
#endif
#ifndef LK_SSHD_PRELOAD
#define LK_SSHD_PRELOAD "" /* the sanitizer runtime, in sanitized builds */
#endif

#define TEST_USER "lk-ssh-test"
#define TEST_GECOS "latchkey test user (tests/integration/test_sshd.c)"
#define SERVICE "latchkey-test-sshd"
/* Single sign-on for this service and every local user (the [pam] settings, as arguments). */
#define SSO_ARGS "services=" SERVICE " users=*"
/* The accounts group (issue 20): names no host has an account for. */
#define ACCOUNT_PATTERN "lk-acct-*"
#define ACCOUNT_USER "lk-acct-ann"
#define ACCOUNT_UID_MIN 2100000000u
#define ACCOUNT_UID_MAX 2110000000u
#define ACCOUNT_GROUP "staff" /* a local group of base-files: the provider's "eng" maps to it */
#define PAM_SERVICE_FILE "/etc/pam.d/" SERVICE
#define PRIVSEP_DIR "/run/sshd"
#define SYSTEM_BUS_SOCKET "/run/dbus/system_bus_socket"
#define SSHD "/usr/sbin/sshd"
#define SSH "/usr/bin/ssh"
#define SSH_KEYGEN "/usr/bin/ssh-keygen"
#define USERADD "/usr/sbin/useradd"
#define USERDEL "/usr/sbin/userdel"


#define WAIT_MS 30000         /* one step of the conversation */
#define CLOSE_WAIT_MS 10000   /* logout until the broker forgot the session */
#define TRANSCRIPT_MAX (256 * 1024)
#define IDP_TOKEN_LEN 43      /* the test IdP's tokens: 32 random bytes, base64url */

struct ctx {
        struct lkh *h;
        uid_t uid;
        gid_t gid;
        bool user_made;
        bool pam_file_written;
        unsigned port;
        pid_t sshd_pid;
        char *home;
        char *sshd_link;
        char *sshd_config;
        char *token_command; /* prints the session's token, run in the ssh session */
        /* The accounts group (issue 20): provider accounts through libnss_latchkey.so.2. */
        bool accounts;
        char *host_dir;  /* this "host"'s /var/cache (bound there in sshd's namespace) */
        char *etc_dir;   /* nsswitch.conf and ld.so.cache for sshd's namespace */
        char *key;       /* an ssh key the test logs in with */
        bool made_etc_latchkey; /* /etc/latchkey made (empty) as a mount point, removed after */
};

static int say(int r, const char *fmt, ...) _printf_(2, 3);
static int say(int r, const char *fmt, ...)
{
        va_list ap;

        fputs("test-sshd: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return r;
}

/* LATCHKEY_TEST_VERBOSE=1, as for the harness: sshd logs in detail. */
static bool verbose(void)
{
        const char *v = getenv("LATCHKEY_TEST_VERBOSE");

        return v && (streq(v, "1") || streq(v, "yes") || streq(v, "true"));
}

/* ---- files and programs ---- */

static int write_file(const char *path, const char *text, mode_t mode)
{
        size_t len = strlen(text), done = 0;
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);

        if (fd < 0)
                return say(-errno, "cannot create %s: %m", path);
        while (done < len) {
                ssize_t n = write(fd, text + done, len - done);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        close(fd);
                        return say(-EIO, "cannot write %s", path);
                }
                done += (size_t)n;
        }
        if (fchmod(fd, mode) < 0 || close(fd) < 0)
                return say(-errno, "cannot finish %s: %m", path);
        return 0;
}

/* Copies a program into the test's folder, where the test user can run it. */
static int copy_program(const char *from, const char *to)
{
        char buf[65536];
        int in, out, r = 0;
        ssize_t n;

        in = open(from, O_RDONLY | O_CLOEXEC);
        if (in < 0)
                return say(-errno, "cannot open %s: %m", from);
        out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
        if (out < 0) {
                r = say(-errno, "cannot create %s: %m", to);
                close(in);
                return r;
        }
        while ((n = read(in, buf, sizeof(buf))) != 0) {
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 || write(out, buf, (size_t)n) != n) {
                        r = say(-EIO, "cannot copy %s to %s", from, to);
                        break;
                }
        }
        close(in);
        if (close(out) < 0 && r == 0)
                r = say(-errno, "cannot write %s: %m", to);
        if (r == 0 && chmod(to, 0755) < 0)
                r = say(-errno, "cannot chmod %s: %m", to);
        return r;
}

/* Runs argv to its end; 0 when it exited with 0, else -EIO (and *ret_status when asked). */
static int run(const char *const argv[], int *ret_status)
{
        pid_t pid;
        int status, r;

        r = lkh_spawn(argv, -1, &pid);
        if (r < 0)
                return r;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return say(-errno, "waitpid: %m");
        if (ret_status)
                *ret_status = status;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return -EIO;
        return 0;
}

/* ---- sockets ---- */

/*
 * The listening sockets on port, from /proc/net/tcp and tcp6: how many in
 * all, and how many on other addresses than 127.0.0.1.
 */
static void listeners(unsigned port, int *ret_all, int *ret_not_loopback)
{
        static const char *const files[] = {"/proc/net/tcp", "/proc/net/tcp6"};
        int all = 0, other = 0;

        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                FILE *f = fopen(files[i], "re");
                char line[512];

                if (!f)
                        continue;
                while (fgets(line, sizeof(line), f)) {
                        char local[64], remote[64], st[8];
                        unsigned p;
                        char *colon;

                        if (sscanf(line, " %*s %63s %63s %7s", local, remote, st) != 3 ||
                            !streq(st, "0A"))
                                continue;
                        colon = strrchr(local, ':');
                        if (!colon || sscanf(colon + 1, "%x", &p) != 1 || p != port)
                                continue;
                        all++;
                        *colon = '\0';
                        if (!streq(local, "0100007F"))
                                other++;
                }
                fclose(f);
        }
        *ret_all = all;
        *ret_not_loopback = other;
}

/* ---- the test user ---- */

static int make_user(struct ctx *x)
{
        struct passwd *pw = getpwnam(TEST_USER);
        int r;

        if (pw) {
                const char *const del[] = {USERDEL, "-f", TEST_USER, NULL};

                if (!streq_ptr(pw->pw_gecos, TEST_GECOS))
                        return say(-EEXIST, "a user " TEST_USER " exists and was not made by this "
                                    "test; not touching it");
                fprintf(stderr, "test-sshd: removing " TEST_USER " left by an earlier run\n");
                r = run(del, NULL);
                if (r < 0)
                        return say(r, "userdel " TEST_USER " failed");
        }
        x->home = lkh_xasprintf("%s/home", x->h->dir);
        {
                const char *const add[] = {USERADD, "--create-home", "--home-dir", x->home,
                                           "--shell", "/bin/sh", "--comment", TEST_GECOS,
                                           "--user-group", TEST_USER, NULL};
                r = run(add, NULL);
                if (r < 0)
                        return say(r, "useradd " TEST_USER " failed");
        }
        x->user_made = true;
        pw = getpwnam(TEST_USER);
        if (!pw)
                return say(-ENOENT, "useradd made no " TEST_USER);
        x->uid = pw->pw_uid;
        x->gid = pw->pw_gid;
        return 0;
}

static void remove_user(struct ctx *x)
{
        const char *const del[] = {USERDEL, TEST_USER, NULL};
        const char *const del_force[] = {USERDEL, "-f", TEST_USER, NULL};

        if (!x->user_made)
                return;
        /* Refused while a process of the user runs; the sessions are over by now. */
        if (run(del, NULL) < 0 && run(del_force, NULL) < 0)
                fprintf(stderr, "test-sshd: cannot remove user " TEST_USER "\n");
        x->user_made = false;
}

/* ---- sshd ---- */

static int write_pam_service(struct ctx *x)
{
        _cleanup_free_ char *stack = NULL;

        if (x->accounts)
                /* admin-guide.md's stack for provider accounts: the account step for every
                 * login method, and pam_mkhomedir before the session. */
                stack = lkh_xasprintf("# Written by tests/integration/test_sshd.c (accounts)\n"
                                      "auth     required  %s timeout=30 " SSO_ARGS "\n"
                                      "account  required  %s config=%s\n"
                                      "account  required  pam_unix.so\n"
                                      "session  required  pam_mkhomedir.so umask=0077\n"
                                      "session  required  %s " SSO_ARGS "\n",
                                      LK_PAM_MODULE, LK_PAM_MODULE, x->h->config_file,
                                      LK_PAM_MODULE);
        else
                stack = lkh_xasprintf("# Written by tests/integration/test_sshd.c for its own sshd "
                                      "(run as\n"
                                      "# " SERVICE "); removed when the test ends.\n"
                                      "auth     required  %s timeout=30 " SSO_ARGS "\n"
                                      "account  required  %s\n"
                                      "account  required  pam_unix.so\n"
                                      "session  required  %s " SSO_ARGS "\n",
                                      LK_PAM_MODULE, LK_PAM_MODULE, LK_PAM_MODULE);
        x->pam_file_written = true;
        return write_file(PAM_SERVICE_FILE, stack, 0644);
}

static int write_sshd_config(struct ctx *x, const char *host_key)
{
        _cleanup_free_ char *text = NULL;

        free(x->sshd_config);
        x->sshd_config = lkh_xasprintf("%s/sshd_config", x->h->dir);
        text = lkh_xasprintf("# Written by tests/integration/test_sshd.c\n"
                             "Port %u\n"
                             "ListenAddress 127.0.0.1\n"
                             "HostKey %s\n"
                             "PidFile none\n"
                             "UsePAM yes\n"
                             "KbdInteractiveAuthentication yes\n"
                             "PasswordAuthentication no\n"
                             "%s"
                             "HostbasedAuthentication no\n"
                             "PermitRootLogin no\n"
                             "MaxAuthTries 6\n"
                             "LoginGraceTime 120\n"
                             "UseDNS no\n"
                             "PrintMotd no\n"
                             "PrintLastLog no\n"
                             "X11Forwarding no\n"
                             "AllowTcpForwarding no\n"
                             "AllowAgentForwarding no\n"
                             "PermitTunnel no\n"
                             "LogLevel %s\n",
                             x->port, host_key,
                             x->accounts ? /* SSO, or a key once the account has a home */
                                     "PubkeyAuthentication yes\n"
                                     "AuthorizedKeysFile .ssh/authorized_keys\n"
                                     "StrictModes no\n" /* the homes are under /tmp */
                                     "AuthenticationMethods keyboard-interactive publickey\n"
                                     "AllowUsers " ACCOUNT_PATTERN "\n"
                                         : "PubkeyAuthentication no\n"
                                           "AuthorizedKeysFile none\n"
                                           "AuthenticationMethods keyboard-interactive\n"
                                           "AllowUsers " TEST_USER "\n",
                             verbose() ? "DEBUG1" : "INFO");
        return write_file(x->sshd_config, text, 0644);
}

/*
 * In the child, before sshd runs: a mount namespace whose /run is a fresh
 * tmpfs holding sshd's privilege separation folder and a system bus socket
 * that leads to the private bus. Returns a step that failed, or NULL.
 */
static const char *enter_namespace(const struct ctx *x, const char *bus_socket)
{
        if (unshare(CLONE_NEWNS) < 0)
                return "unshare(CLONE_NEWNS)";
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return "making / private";
        if (mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m") < 0)
                return "mounting a tmpfs on /run";
        if (mkdir(PRIVSEP_DIR, 0755) < 0 || mkdir("/run/dbus", 0755) < 0)
                return "making /run/sshd and /run/dbus";
        if (symlink(bus_socket, SYSTEM_BUS_SOCKET) < 0)
                return "linking " SYSTEM_BUS_SOCKET;
        if (x->accounts) {
                /* glibc finds libnss_latchkey.so.2 through the ld.so.cache, "latchkey" in
                 * nsswitch.conf, and the module its cache at the default path. */
                _cleanup_free_ char *nss = lkh_xasprintf("%s/nsswitch.conf", x->etc_dir);
                _cleanup_free_ char *cache = lkh_xasprintf("%s/ld.so.cache", x->etc_dir);

                if (mount(nss, "/etc/nsswitch.conf", NULL, MS_BIND, NULL) < 0)
                        return "binding nsswitch.conf";
                if (mount(cache, "/etc/ld.so.cache", NULL, MS_BIND, NULL) < 0)
                        return "binding ld.so.cache";
                if (mount(x->host_dir, "/var/cache", NULL, MS_BIND, NULL) < 0)
                        return "binding /var/cache";
                free(nss);
                nss = lkh_xasprintf("%s/latchkey", x->etc_dir);
                if (mount(nss, "/etc/latchkey", NULL, MS_BIND, NULL) < 0)
                        return "binding /etc/latchkey";
        }
        return NULL;
}

/* lkh_spawn(), with enter_namespace() before exec. */
static int spawn_sshd(struct ctx *x)
{
        _cleanup_free_ char *bus_socket = lkh_xasprintf("%s/bus", x->h->dir);
        const char *const argv[] = {x->sshd_link, "-D", "-e", "-f", x->sshd_config, NULL};
        pid_t parent = getpid(), pid;

        fflush(NULL);
        pid = fork();
        if (pid < 0)
                return say(-errno, "fork: %m");
        if (pid == 0) {
                const char *failed;
                sigset_t all;

                if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
                        _exit(127);
                sigemptyset(&all);
                sigprocmask(SIG_SETMASK, &all, NULL);
                signal(SIGPIPE, SIG_DFL);
                failed = enter_namespace(x, bus_socket);
                if (failed) {
                        fprintf(stderr, "test-sshd: %s failed: %m\n", failed);
                        _exit(126);
                }
                /* A sanitized module needs its runtime loaded first; sshd's own
                 * allocations are not ours to check for leaks. */
                if (*LK_SSHD_PRELOAD && (setenv("LD_PRELOAD", LK_SSHD_PRELOAD, 1) < 0 ||
                                         setenv("ASAN_OPTIONS", "detect_leaks=0", 1) < 0))
                        _exit(126);
                execv(argv[0], (char *const *)argv);
                fprintf(stderr, "test-sshd: cannot run %s: %m\n", argv[0]);
                _exit(127);
        }
        x->sshd_pid = pid;
        return 0;
}

/* Starts sshd on x->port and waits until it listens; -EADDRINUSE when it died first. */
static int start_sshd(struct ctx *x)
{
        int64_t end = lkh_now_ms() + 15000;
        int r;

        r = spawn_sshd(x);
        if (r < 0)
                return r;
        for (;;) {
                int all, other, status;

                listeners(x->port, &all, &other);
                if (all > 0)
                        return 0;
                if (waitpid(x->sshd_pid, &status, WNOHANG) == x->sshd_pid) {
                        x->sshd_pid = 0;
                        if (WIFEXITED(status) && WEXITSTATUS(status) >= 126)
                                return say(-EPERM, "sshd could not be started");
                        /* Most likely the port was taken in the meantime: try another. */
                        return say(-EADDRINUSE, "sshd exited before it listened (status 0x%x)",
                                   (unsigned)status);
                }
                if (lkh_now_ms() > end) {
                        lkh_stop_process(&x->sshd_pid, 5000);
                        return say(-ETIMEDOUT, "sshd did not listen on port %u", x->port);
                }
                lkh_sleep_ms(20);
        }
}

static int prepare_sshd(struct ctx *x)
{
        _cleanup_free_ char *key = lkh_xasprintf("%s/ssh_host_ed25519_key", x->h->dir);
        const char *const keygen[] = {SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C",
                                      "latchkey-test", "-f", key, NULL};
        int r;

        r = run(keygen, NULL);
        if (r < 0)
                return say(r, "ssh-keygen failed");

        x->sshd_link = lkh_xasprintf("%s/" SERVICE, x->h->dir);
        if (symlink(SSHD, x->sshd_link) < 0)
                return say(-errno, "symlink %s: %m", x->sshd_link);
        r = write_pam_service(x);
        if (r < 0)
                return r;
        /* The port is free when picked, but another program may take it before sshd does. */
        for (int attempt = 0; attempt < 3; attempt++) {
                r = lkh_free_port(&x->port);
                if (r < 0)
                        say(r, "cannot pick a loopback port: %s", strerror(-r));
                if (r == 0)
                        r = write_sshd_config(x, key);
                if (r == 0)
                        r = start_sshd(x);
                if (r != -EADDRINUSE)
                        break;
        }
        return r;
}

/* ---- the private bus ---- */

static DBusConnection *bus_open(struct lkh *h);

/* ---- group setup ---- */

static int can_execute(void *userdata)
{
        return access(userdata, X_OK) == 0 ? 0 : 1;
}

/*
 * `latchkeyctl token` where it is built and the test user can run it from the
 * build folder; else lk-get-token, copied where the test user can run it.
 */
static int pick_token_command(struct ctx *x)
{
        _cleanup_free_ char *helper = NULL;
        int result = -1, r;

        if (*LK_LATCHKEYCTL) {
                r = lkh_run_as(x->uid, x->gid, can_execute, (void *)LK_LATCHKEYCTL, &result);
                if (r < 0)
                        return r;
                if (result == 0) {
                        x->token_command = lkh_xasprintf("%s token", LK_LATCHKEYCTL);
                        fprintf(stderr, "test-sshd: the session runs latchkeyctl token\n");
                        return 0;
                }
                fprintf(stderr, "test-sshd: " TEST_USER " cannot run %s, using lk-get-token\n",
                        LK_LATCHKEYCTL);
        }
        helper = lkh_xasprintf("%s/lk-get-token", x->h->dir);
        r = copy_program(LK_GET_TOKEN, helper);
        if (r < 0)
                return r;
        x->token_command = TAKE_PTR(helper);
        fprintf(stderr, "test-sshd: the session runs lk-get-token\n");
        return 0;
}

static void ctx_free(struct ctx *x)
{
        if (!x)
                return;
        lkh_stop_process(&x->sshd_pid, 5000);
        if (x->pam_file_written && unlink(PAM_SERVICE_FILE) < 0 && errno != ENOENT)
                fprintf(stderr, "test-sshd: cannot remove " PAM_SERVICE_FILE ": %m\n");
        remove_user(x);
        lkh_free(x->h);
        free(x->home);
        free(x->sshd_link);
        free(x->sshd_config);
        free(x->token_command);
        free(x->host_dir);
        free(x->etc_dir);
        free(x->key);
        free(x);
}

/*
 * The end of a group's setup once its provider and config are in place (r: 0 so far): the
 * bus, the broker, the token command and sshd; the context becomes the group's state.
 */
static int finish_setup(struct ctx *x, int r, void **state)
{
        if (r == 0)
                r = lkh_start_bus(x->h);
        if (r == 0)
                r = lkh_start_broker(x->h, NULL);
        if (r == 0)
                r = pick_token_command(x);
        if (r == 0)
                r = prepare_sshd(x);
        if (r < 0) {
                ctx_free(x);
                return -1;
        }
        *state = x;
        return 0;
}

static int setup(void **state)
{
        struct ctx *x = calloc(1, sizeof(*x));
        int r;

        if (!x)
                return -1;
        /* The user first: dbus-daemon caches the user database and drops connections of
         * uids it cannot name. */
        r = lkh_new(&x->h);
        if (r == 0)
                r = make_user(x);
        if (r == 0)
                r = lkh_start_idp(x->h, NULL);
        if (r == 0)
                r = lkh_write_config(x->h, "[users]\nallowed_users = " TEST_USER "\n");
        return finish_setup(x, r, state);
}

static int teardown(void **state)
{
        ctx_free(*state);
        return 0;
}

/* ---- the broker, as root ---- */

static DBusConnection *bus_open(struct lkh *h)
{
        _cleanup_free_ char *msg = NULL;
        DBusConnection *c = bc_open_err(h->bus_address, &msg);

        if (!c)
                fprintf(stderr, "test-sshd: cannot connect to the test bus: %s\n", msg);
        return c;
}

/*
 * The sessions of uid the broker lists: their count, and whether session_id
 * (may be NULL) is one of them with user name user. -EIO when ListSessions failed.
 */
static int sessions_of(DBusConnection *c, uid_t uid, const char *session_id, const char *user,
                       bool *ret_found)
{
        DBusMessage *m = bc_new("ListSessions");
        DBusError err = DBUS_ERROR_INIT;
        DBusMessage *reply;
        DBusMessageIter it, arr;
        bool found = false;
        int n = 0;

        reply = dbus_connection_send_with_reply_and_block(c, m, 30000, &err);
        dbus_message_unref(m);
        if (!reply) {
                say(-EIO, "ListSessions: %s: %s", err.name, err.message);
                dbus_error_free(&err);
                return -EIO;
        }
        if (!streq(dbus_message_get_signature(reply), "a(ssuxx)")) {
                say(-EIO, "ListSessions answered %s", dbus_message_get_signature(reply));
                dbus_message_unref(reply);
                return -EIO;
        }
        dbus_message_iter_init(reply, &it);
        dbus_message_iter_recurse(&it, &arr);
        while (dbus_message_iter_get_arg_type(&arr) == DBUS_TYPE_STRUCT) {
                DBusMessageIter st;
                const char *id, *name;
                dbus_uint32_t u;

                dbus_message_iter_recurse(&arr, &st);
                dbus_message_iter_get_basic(&st, &id);
                dbus_message_iter_next(&st);
                dbus_message_iter_get_basic(&st, &name);
                dbus_message_iter_next(&st);
                dbus_message_iter_get_basic(&st, &u);
                if (u == uid) {
                        n++;
                        if (session_id && streq(id, session_id) && streq(name, user))
                                found = true;
                }
                dbus_message_iter_next(&arr);
        }
        dbus_message_unref(reply);
        if (ret_found)
                *ret_found = found;
        return n;
}

/* GetToken for session_id as root; the token, or NULL and the error's name in *ret_error. */
static char *root_get_token(DBusConnection *c, const char *session_id, char **ret_error)
{
        DBusMessage *m = bc_new("GetToken");
        const char *token, *type;
        dbus_int64_t expires;
        struct bc_reply r;
        char *ret = NULL;

        bc_append_options(m, session_id, 0);
        if (bc_call(c, m, 30000, &r) < 0) {
                *ret_error = bc_take_error(&r, NULL);
                return NULL;
        }
        if (dbus_message_get_args(r.msg, NULL, DBUS_TYPE_STRING, &token, DBUS_TYPE_INT64,
                                  &expires, DBUS_TYPE_STRING, &type, DBUS_TYPE_INVALID))
                ret = strdup(token);
        bc_reply_clear(&r);
        return ret;
}

/* ---- a terminal for ssh ---- */

struct term {
        pid_t pid;
        int fd;
        bool eof;
        size_t len;
        char *buf; /* everything ssh wrote, NUL-terminated, NULs replaced */
};

static int term_start(struct term *t, const char *const argv[])
{
        static const char *const env[] = {"PATH=/usr/bin:/bin", "HOME=/root", "TERM=dumb",
                                          "LANG=C", NULL};
        struct winsize ws = {.ws_row = 50, .ws_col = 200};
        pid_t parent = getpid();

        *t = (struct term){.fd = -1};
        t->buf = calloc(1, TRANSCRIPT_MAX + 1);
        if (!t->buf)
                return -ENOMEM;
        fflush(NULL);
        t->pid = forkpty(&t->fd, NULL, NULL, &ws);
        if (t->pid < 0)
                return say(-errno, "forkpty: %m");
        if (t->pid == 0) {
                sigset_t all;

                if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
                        _exit(127);
                sigemptyset(&all);
                sigprocmask(SIG_SETMASK, &all, NULL);
                /* A clean environment: no agent, no askpass, no display. */
                execve(argv[0], (char *const *)argv, (char *const *)env);
                fprintf(stderr, "cannot run %s: %m\n", argv[0]);
                _exit(127);
        }
        fcntl(t->fd, F_SETFD, FD_CLOEXEC);
        return 0;
}

/* Reads what is there within timeout_ms; false once ssh closed the terminal. */
static bool term_read(struct term *t, int timeout_ms)
{
        struct pollfd p = {.fd = t->fd, .events = POLLIN};
        ssize_t n;

        if (t->eof)
                return false;
        if (poll(&p, 1, timeout_ms) <= 0)
                return true;
        if (t->len >= TRANSCRIPT_MAX) {
                fprintf(stderr, "test-sshd: ssh wrote more than %d bytes\n", TRANSCRIPT_MAX);
                t->eof = true;
                return false;
        }
        n = read(t->fd, t->buf + t->len, TRANSCRIPT_MAX - t->len);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                return true;
        if (n <= 0) { /* EIO: the other side is closed */
                t->eof = true;
                return false;
        }
        for (ssize_t i = 0; i < n; i++)
                if (t->buf[t->len + i] == '\0')
                        t->buf[t->len + i] = '?';
        t->len += (size_t)n;
        t->buf[t->len] = '\0';
        return true;
}

/* Waits for needle at or after from; its offset in *ret_at. */
static int term_expect(struct term *t, size_t from, const char *needle, size_t *ret_at)
{
        int64_t end = lkh_now_ms() + WAIT_MS;

        for (;;) {
                const char *p = from <= t->len ? strstr(t->buf + from, needle) : NULL;

                if (p) {
                        *ret_at = (size_t)(p - t->buf);
                        return 0;
                }
                if (!term_read(t, 200))
                        return say(-ECHILD, "ssh ended without writing \"%s\"", needle);
                if (lkh_now_ms() > end)
                        return say(-ETIMEDOUT, "ssh did not write \"%s\" within %d ms", needle,
                                    WAIT_MS);
        }
}

static int term_send(struct term *t, const char *text)
{
        size_t len = strlen(text), done = 0;

        while (done < len) {
                ssize_t n = write(t->fd, text + done, len - done);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return say(-EIO, "cannot write to ssh's terminal");
                done += (size_t)n;
        }
        return 0;
}

/* Reads until ssh closes the terminal and returns its wait status; -ETIMEDOUT kills it. */
static int term_finish(struct term *t, int *ret_status)
{
        int64_t end = lkh_now_ms() + WAIT_MS;
        int status;

        while (term_read(t, 200))
                if (lkh_now_ms() > end) {
                        lkh_stop_process(&t->pid, 2000);
                        return say(-ETIMEDOUT, "ssh did not end within %d ms", WAIT_MS);
                }
        while (waitpid(t->pid, &status, 0) < 0)
                if (errno != EINTR) {
                        t->pid = 0;
                        return say(-errno, "waitpid ssh: %m");
                }
        t->pid = 0;
        *ret_status = status;
        return 0;
}

/*
 * What ssh showed, for the test log, without its secrets: the query of every
 * address (state, nonce, code) and the token are hidden.
 */
static void term_dump(const struct term *t)
{
        const char *p = t->buf;

        fprintf(stderr, "---- ssh's terminal (secrets hidden) ----\n");
        while (p && *p) {
                size_t len = strcspn(p, "\n");
                const char *q = memchr(p, '?', len), *tok = NULL;

                for (const char *s = p; s + 6 <= p + len; s++)
                        if (strncmp(s, "TOKEN=", 6) == 0) {
                                tok = s + 6;
                                break;
                        }
                if (tok) {
                        /* Only the token itself: an error after it stays readable. */
                        size_t k = 0;

                        while (tok + k < p + len && (isalnum((unsigned char)tok[k]) ||
                                                     tok[k] == '-' || tok[k] == '_'))
                                k++;
                        if (k < 20) /* not a token: a program's name, an error */
                                k = 0;
                        fprintf(stderr, "%.*s[%zu characters hidden]%.*s\n", (int)(tok - p), p,
                                k, (int)(p + len - tok - k), tok + k);
                } else if (q && memmem(p, len, "://", 3))
                        fprintf(stderr, "%.*s?[hidden]\n", (int)(q - p), p);
                else
                        fprintf(stderr, "%.*s\n", (int)len, p);
                p += len;
                if (*p == '\n')
                        p++;
        }
        fprintf(stderr, "---- end ----\n");
}

static void term_close(struct term *t)
{
        if (t->pid > 0)
                lkh_stop_process(&t->pid, 2000);
        if (t->fd >= 0)
                close(t->fd);
        t->fd = -1;
        /* It holds the code that was pasted and the token that was printed. */
        if (t->buf)
                explicit_bzero(t->buf, t->len);
        free(t->buf);
        t->buf = NULL;
}

/* The word (up to a blank or line end) at t->buf + at, as a new string. */
static char *word_at(const struct term *t, size_t at)
{
        return strndup(t->buf + at, strcspn(t->buf + at, " \t\r\n"));
}

static void start_ssh_as(struct ctx *x, struct term *t, const char *user, const char *key,
                         const char *command)
{
        _cleanup_free_ char *port = lkh_xasprintf("%u", x->port);
        _cleanup_free_ char *dest = lkh_xasprintf("%s@127.0.0.1", user);
        const char *const with_key[] = {
                SSH, "-F", "/dev/null", "-p", port,
                "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null",
                "-o", "GlobalKnownHostsFile=/dev/null",
                "-o", "PreferredAuthentications=publickey",
                "-o", "IdentitiesOnly=yes", "-i", key ? key : "",
                "-o", "BatchMode=yes",
                "-o", "ConnectTimeout=20",
                "-o", "LogLevel=ERROR",
                dest, command, NULL,
        };
        const char *const argv[] = {
                SSH, "-F", "/dev/null", "-p", port,
                "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null",
                "-o", "GlobalKnownHostsFile=/dev/null",
                "-o", "PreferredAuthentications=keyboard-interactive",
                "-o", "BatchMode=no",
                "-o", "NumberOfPasswordPrompts=1",
                "-o", "ConnectTimeout=20",
                "-o", "LogLevel=ERROR",
                dest, command, NULL,
        };

        assert_int_equal(term_start(t, key ? with_key : argv), 0);
}

static void start_ssh(struct ctx *x, struct term *t, const char *command)
{
        _cleanup_free_ char *port = lkh_xasprintf("%u", x->port);
        const char *const argv[] = {
                SSH, "-F", "/dev/null", "-p", port,
                "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null",
                "-o", "GlobalKnownHostsFile=/dev/null",
                "-o", "PreferredAuthentications=keyboard-interactive",
                "-o", "BatchMode=no",
                /* One keyboard-interactive round: PAM's own tries are what is tested. */
                "-o", "NumberOfPasswordPrompts=1",
                "-o", "ConnectTimeout=20",
                "-o", "LogLevel=ERROR",
                TEST_USER "@127.0.0.1", command, NULL,
        };

        assert_int_equal(term_start(t, argv), 0);
}

/*
 * Waits for the sign-in address and the prompt after it; returns the
 * address, the prompt's text (the line it ends) and the offset after it.
 */
static void expect_address_and_prompt(struct ctx *x, struct term *t, char **ret_url,
                                      char **ret_prompt, size_t *ret_after)
{
        _cleanup_free_ char *url = NULL, *expected = lkh_xasprintf("%s/authorize?", x->h->issuer);
        size_t at = 0, eol = 0, colon = 0, start = 0;

        if (term_expect(t, 0, "https://", &at) < 0 || term_expect(t, at, "\n", &eol) < 0) {
                term_dump(t);
                fail();
        }
        url = word_at(t, at);
        assert_non_null(url);
        /* On a line of its own, and the test IdP's authorize endpoint. */
        assert_true(at == 0 || t->buf[at - 1] == '\n' || t->buf[at - 1] == ' ');
        assert_true(strncmp(url, expected, strlen(expected)) == 0);
        assert_non_null(strstr(url, "code_challenge="));

        /* The prompt: the text after the address that ends in ": " and waits. */
        if (term_expect(t, eol, ": ", &colon) < 0) {
                term_dump(t);
                fail();
        }
        for (start = colon; start > eol && t->buf[start - 1] != '\n'; start--)
                ;
        *ret_prompt = strndup(t->buf + start, colon + 2 - start);
        assert_non_null(*ret_prompt);
        *ret_url = TAKE_PTR(url);
        *ret_after = colon + 2;
}

/* ---- the tests ---- */

static void test_listens_on_loopback_only(void **state)
{
        struct ctx *x = *state;
        int all, other;

        listeners(x->port, &all, &other);
        assert_true(all >= 1);
        assert_int_equal(other, 0);
        listeners(x->h->idp_port, &all, &other);
        assert_true(all >= 1);
        assert_int_equal(other, 0);
}

static bool is_b64url(const char *s)
{
        for (; *s; s++)
                if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
                      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
                        return false;
        return true;
}

static void test_login_token_logout(void **state)
{
        struct ctx *x = *state;
        _cleanup_free_ char *command = NULL, *url = NULL, *prompt = NULL, *sid = NULL;
        _cleanup_free_ char *error = NULL;
        _cleanup_secret_ char *location = NULL, *code = NULL, *answer = NULL;
        _cleanup_secret_ char *token = NULL, *root_token = NULL;
        DBusConnection *c = bus_open(x->h);
        struct term t;
        size_t after, at, eol;
        bool found = false;
        int status = -1, n;
        int64_t end;

        assert_non_null(c);
        assert_int_equal(sessions_of(c, x->uid, NULL, NULL, NULL), 0);
        /*
         * In the session: where the token went, then GetToken as the user would
         * ask, then wait for a line so that the test sees the session open.
         */
        command = lkh_xasprintf("printf 'LATCHKEY_SESSION=%%s\\n' \"$LATCHKEY_SESSION\"; "
                                "printf 'LOGIN_ID_IN_SESSION=%%s\\n' "
                                "\"${LATCHKEY_LOGIN_ID:+yes}\"; "
                                "printf 'TOKEN='; %s || exit 3; echo READY; read line; echo BYE",
                                x->token_command);
        start_ssh(x, &t, command);

        expect_address_and_prompt(x, &t, &url, &prompt, &after);
        assert_int_equal(lkh_browser_login(x->h, url, TEST_USER, false, &location, &code), 0);
        assert_non_null(code);
        /* The whole address the browser came back to, pasted at the prompt. */
        answer = lkh_xasprintf("%s\n", location);
        assert_int_equal(term_send(&t, answer), 0);

        if (term_expect(&t, after, "READY", &at) < 0) {
                term_dump(&t);
                fail();
        }
        assert_int_equal(term_expect(&t, after, "LATCHKEY_SESSION=", &at), 0);
        sid = word_at(&t, at + strlen("LATCHKEY_SESSION="));
        assert_int_equal(term_expect(&t, after, "TOKEN=", &at), 0);
        assert_int_equal(term_expect(&t, at, "\n", &eol), 0);
        token = word_at(&t, at + strlen("TOKEN="));
        assert_non_null(sid);
        assert_non_null(token);
        assert_true(strlen(sid) > 0);
        /* The spent login's id does not linger in the session's environment. */
        assert_non_null(strstr(t.buf + after, "LOGIN_ID_IN_SESSION=\r\n"));

        /* The token has the IdP's shape and is the one the broker keeps for the session. */
        assert_int_equal(strlen(token), IDP_TOKEN_LEN);
        assert_true(is_b64url(token));
        root_token = root_get_token(c, sid, &error);
        if (!root_token)
                fprintf(stderr, "test-sshd: GetToken as root: %s\n", error);
        assert_non_null(root_token);
        assert_true(streq(token, root_token));
        n = sessions_of(c, x->uid, sid, TEST_USER, &found);
        assert_int_equal(n, 1);
        assert_true(found);

        /* Logout: the command ends, sshd closes the PAM session, the broker forgets it. */
        assert_int_equal(term_send(&t, "\n"), 0);
        assert_int_equal(term_expect(&t, after, "BYE", &at), 0);
        assert_int_equal(term_finish(&t, &status), 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                term_dump(&t);
                fprintf(stderr, "test-sshd: ssh ended with status 0x%x\n", (unsigned)status);
        }
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        term_close(&t);

        end = lkh_now_ms() + CLOSE_WAIT_MS;
        do {
                n = sessions_of(c, x->uid, sid, TEST_USER, &found);
                if (n == 0)
                        break;
                lkh_sleep_ms(100);
        } while (lkh_now_ms() < end);
        assert_int_equal(n, 0);
        lk_secret_free(root_token);
        root_token = root_get_token(c, sid, &error);
        assert_null(root_token);
        assert_string_equal(error, "org.latchkey.Broker1.Error.NotFound");
        bc_close(c);
}

static void test_wrong_answers(void **state)
{
        struct ctx *x = *state;
        _cleanup_free_ char *url = NULL, *prompt = NULL;
        DBusConnection *c = bus_open(x->h);
        struct term t;
        size_t after, at;
        int status = -1, prompts = 0;
        long codes = -1;

        assert_non_null(c);
        assert_int_equal(lkh_idp_reset(x->h), 0);
        start_ssh(x, &t, "echo COMMAND-RAN");
        expect_address_and_prompt(x, &t, &url, &prompt, &after);
        for (int i = 1; i <= 3; i++) {
                _cleanup_free_ char *answer = lkh_xasprintf("not-a-real-code-%d\n", i);

                assert_int_equal(term_send(&t, answer), 0);
                if (i < 3) {
                        /* The reason for the refusal, then the prompt again. */
                        if (term_expect(&t, after, prompt, &at) < 0) {
                                term_dump(&t);
                                fail();
                        }
                        after = at + strlen(prompt);
                }
        }
        assert_int_equal(term_finish(&t, &status), 0);
        for (const char *p = t.buf; (p = strstr(p, prompt)); p += strlen(prompt))
                prompts++;
        if (prompts != 3 || !WIFEXITED(status) || WEXITSTATUS(status) != 255 ||
            !strstr(t.buf, "Permission denied"))
                term_dump(&t);
        /* Three prompts, no fourth, no shell: ssh gives up. */
        assert_int_equal(prompts, 3);
        assert_null(strstr(t.buf, "COMMAND-RAN"));
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 255);
        assert_non_null(strstr(t.buf, "Permission denied"));
        term_close(&t);

        /* Each answer reached the IdP, and no session was left at the broker. */
        assert_int_equal(lkh_idp_stat(x->h, "token_code", &codes), 0);
        assert_int_equal(codes, 3);
        assert_int_equal(sessions_of(c, x->uid, NULL, NULL, NULL), 0);
        bc_close(c);
}

/*
 * Clients that reach the sign-in prompt and drop (anyone who can reach sshd can): sshd's
 * conversation dies with them, and with end_with_caller so do their logins, at once. Then a
 * real login goes through without waiting, and the broker holds no pending login of the user.
 */
#define DROPPED_CLIENTS 50

static void test_dropped_clients_free_their_logins(void **state)
{
        struct ctx *x = *state;
        DBusConnection *c = bus_open(x->h);
        char *ids[16] = {0};
        int64_t t0, t1;

        assert_non_null(c);
        t0 = lkh_now_ms();
        for (int i = 0; i < DROPPED_CLIENTS; i++) {
                _cleanup_free_ char *url = NULL, *prompt = NULL;
                struct term t;
                size_t after;

                start_ssh(x, &t, "echo COMMAND-RAN");
                expect_address_and_prompt(x, &t, &url, &prompt, &after);
                term_close(&t);
        }
        t1 = lkh_now_ms();
        fprintf(stderr, "test-sshd: %d clients reached the prompt and dropped in %lld ms\n",
                DROPPED_CLIENTS, (long long)(t1 - t0));

        test_login_token_logout(state);
        fprintf(stderr, "test-sshd: then a whole login in %lld ms\n",
                (long long)(lkh_now_ms() - t1));
        assert_true(lkh_now_ms() - t1 < WAIT_MS);

        /* Nothing pending is left of the user: root may begin the user's 16 at once. */
        for (int i = 0; i < 16; i++) {
                int64_t end = lkh_now_ms() + 3000;
                char *e;

                while ((e = bc_begin_login(c, TEST_USER, &ids[i], NULL)) &&
                       streq(e, "org.latchkey.Broker1.Error.TooManyRequests") &&
                       lkh_now_ms() < end) {
                        free(e);
                        lkh_sleep_ms(50);
                }
                if (e)
                        fprintf(stderr, "test-sshd: BeginLogin %d: %s\n", i, e);
                assert_null(e);
        }
        for (int i = 0; i < 16; i++) {
                char *e = bc_call_s(c, "CancelLogin", ids[i], NULL, NULL, NULL);

                assert_null(e);
                free(ids[i]);
        }
        bc_close(c);
}

/* The device flow over sshd: the address in the prompt, and the person types only Enter. */
static void test_device_flow_enter_only(void **state)
{
        struct ctx *x = *state;
        _cleanup_free_ char *url = NULL;
        struct term t;
        size_t at = 0, colon = 0;
        int status = -1;

        start_ssh(x, &t, "echo DEVICE-SIGNED-IN");
        if (term_expect(&t, 0, "/device?user_code=", &at) < 0 ||
            term_expect(&t, at, "Press Enter", &colon) < 0 ||
            term_expect(&t, colon, ": ", &colon) < 0) {
                term_dump(&t);
                fail();
        }
        while (at > 0 && t.buf[at - 1] != ' ' && t.buf[at - 1] != '\n')
                at--;
        url = word_at(&t, at);
        assert_non_null(url);
        assert_int_equal(strncmp(url, "https://", 8), 0);
        /* Signed in on the phone; nothing typed here but Enter. */
        assert_int_equal(lkh_device_approve(x->h, url, TEST_USER, false), 0);
        assert_int_equal(term_send(&t, "\n"), 0);
        if (term_expect(&t, colon, "DEVICE-SIGNED-IN", &at) < 0) {
                term_dump(&t);
                fail();
        }
        assert_int_equal(term_finish(&t, &status), 0);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        term_close(&t);
}

/* The code flow finished by the broker's callback listener over sshd: only Enter typed. */
static void test_listener_enter_only(void **state)
{
        struct ctx *x = *state;
        _cleanup_free_ char *url = NULL, *prompt = NULL, *signin = NULL;
        struct term t;
        size_t after = 0, at = 0;
        long status = 0;
        int exit_status = -1;

        start_ssh(x, &t, "echo LISTENER-SIGNED-IN");
        expect_address_and_prompt(x, &t, &url, &prompt, &after);
        assert_non_null(strstr(prompt, "Press Enter when you have signed in (or paste the code)"));
        /* The browser signs in; the provider sends it to the broker's listener. */
        signin = lkh_xasprintf("%s&login_hint=%s", url, TEST_USER);
        assert_int_equal(lkh_http(x->h, signin, NULL, NULL, &status, NULL, NULL), 0);
        assert_int_equal(status, 200);
        assert_int_equal(term_send(&t, "\n"), 0);
        if (term_expect(&t, after, "LISTENER-SIGNED-IN", &at) < 0) {
                term_dump(&t);
                fail();
        }
        assert_int_equal(term_finish(&t, &exit_status), 0);
        assert_true(WIFEXITED(exit_status));
        assert_int_equal(WEXITSTATUS(exit_status), 0);
        term_close(&t);
}

static int setup_listener(void **state)
{
        struct ctx *x = calloc(1, sizeof(*x));
        _cleanup_free_ char *extra = NULL;
        unsigned port = 0;
        int r;

        if (!x)
                return -1;
        r = lkh_new(&x->h);
        if (r == 0)
                r = make_user(x);
        if (r == 0)
                r = lkh_free_port(&port);
        if (r == 0) {
                free(x->h->redirect_uri);
                x->h->redirect_uri = lkh_xasprintf("https://127.0.0.1:%u/callback", port);
                r = lkh_start_idp(x->h, NULL);
        }
        if (r == 0)
                r = lkh_idp_set(x->h, "follow_redirect", "1");
        if (r == 0) {
                extra = lkh_xasprintf("[users]\nallowed_users = " TEST_USER "\n"
                                      "[callback]\nlisten = 127.0.0.1:%u\ncertificate = %s\n"
                                      "key = %s\n",
                                      port, x->h->cert_file, x->h->key_file);
                r = lkh_write_config(x->h, extra);
        }
        return finish_setup(x, r, state);
}

static int setup_device(void **state)
{
        struct ctx *x = calloc(1, sizeof(*x));
        int r;

        if (!x)
                return -1;
        r = lkh_new(&x->h);
        if (r == 0)
                r = make_user(x);
        if (r == 0)
                r = lkh_start_idp(x->h, NULL);
        if (r == 0)
                r = lkh_idp_set(x->h, "device_discovery", "1");
        if (r == 0)
                r = lkh_idp_set(x->h, "device_interval", "1");
        if (r == 0)
                r = lkh_write_config(x->h, "[users]\nallowed_users = " TEST_USER "\n");
        return finish_setup(x, r, state);
}

/* ---- the accounts group (issue 20): people no host has an account for ---- */

/*
 * A "host" for sshd's namespace: its /var/cache (the broker writes latchkey/accounts there),
 * an nsswitch.conf naming latchkey, and an ld.so.cache that holds the built module too.
 */
static int make_host(struct ctx *x, const char *name)
{
        _cleanup_free_ char *cache = NULL, *conf = NULL, *nss = NULL, *ld = NULL;
        int r;

        free(x->host_dir);
        x->host_dir = lkh_xasprintf("%s/%s-var-cache", x->h->dir, name);
        cache = lkh_xasprintf("%s/latchkey", x->host_dir);
        if (mkdir(x->host_dir, 0755) < 0 || mkdir(cache, 0755) < 0)
                return say(-errno, "mkdir %s: %m", cache);
        free(cache);
        cache = lkh_xasprintf("%s/latchkey/accounts", x->host_dir);
        if (setenv(LK_ACCOUNTS_FILE_ENV, cache, 1) < 0)
                return -errno;
        if (!x->etc_dir) {
                const char *ldconfig[] = {"/sbin/ldconfig", "-X", "-C", NULL, "-f", NULL, NULL};

                x->etc_dir = lkh_xasprintf("%s/etc", x->h->dir);
                if (mkdir(x->etc_dir, 0755) < 0)
                        return say(-errno, "mkdir %s: %m", x->etc_dir);
                nss = lkh_xasprintf("%s/nsswitch.conf", x->etc_dir);
                r = write_file(nss, "passwd: files latchkey\ngroup: files latchkey\n"
                                    "shadow: files\nhosts: files\n", 0644);
                if (r < 0)
                        return r;
                conf = lkh_xasprintf("%s/ld.so.conf", x->etc_dir);
                r = write_file(conf, "include /etc/ld.so.conf.d/*.conf\n" LK_NSS_DIR "\n", 0644);
                if (r < 0)
                        return r;
                ld = lkh_xasprintf("%s/ld.so.cache", x->etc_dir);
                ldconfig[3] = ld;
                ldconfig[5] = conf;
                r = run(ldconfig, NULL);
                if (r < 0)
                        return say(r, "ldconfig -C %s failed", ld);
        }
        return 0;
}

static int copy_config(struct ctx *x)
{
        _cleanup_free_ char *dir = lkh_xasprintf("%s/latchkey", x->etc_dir);
        _cleanup_free_ char *to = lkh_xasprintf("%s/latchkey.conf", dir);
        int r;

        if (mkdir(dir, 0755) < 0)
                return say(-errno, "mkdir %s: %m", dir);
        r = copy_program(x->h->config_file, to);
        if (r == 0 && chmod(to, 0644) < 0)
                r = -errno;
        if (r == 0 && access("/etc/latchkey", F_OK) < 0) {
                if (mkdir("/etc/latchkey", 0755) < 0)
                        return say(-errno, "mkdir /etc/latchkey (a mount point): %m");
                x->made_etc_latchkey = true;
        }
        return r;
}

static int setup_accounts(void **state)
{
        _cleanup_free_ char *config = NULL;
        const char *const keygen[] = {SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C",
                                      "latchkey-test-user", "-f", NULL, NULL};
        struct ctx *x;
        int r;

        if (*LK_SSHD_PRELOAD || !*LK_NSS_DIR) {
                /* A sanitized module cannot load into the session's programs (no runtime). */
                fprintf(stderr, "test-sshd: accounts group skipped in a sanitized build\n");
                *state = NULL;
                return 0;
        }
        x = calloc(1, sizeof(*x));
        if (!x)
                return -1;
        x->accounts = true;
        r = lkh_new(&x->h);
        if (r == 0)
                r = lkh_start_idp(x->h, NULL);
        if (r == 0) {
                config = lkh_xasprintf("[accounts]\nnss = yes\nallowed_names = " ACCOUNT_PATTERN
                                       "\nuid_min = %u\nuid_max = %u\nhome = %s/homes/%%u\n"
                                       "shell = /bin/sh\ngroup_map = eng:" ACCOUNT_GROUP "\n",
                                       ACCOUNT_UID_MIN, ACCOUNT_UID_MAX, x->h->dir);
                r = lkh_write_config(x->h, config);
        }
        if (r == 0) {
                _cleanup_free_ char *homes = lkh_xasprintf("%s/homes", x->h->dir);
                r = mkdir(homes, 0755) < 0 ? -errno : 0;
        }
        if (r == 0)
                r = make_host(x, "host1");
        /*
         * sshd looks the name up before PAM, and so does the module, in a process whose
         * environment sshd empties: the NSS module reads [accounts] from the real path,
         * /etc/latchkey/latchkey.conf, which sshd's namespace binds to a copy of the config.
         */
        if (r == 0)
                r = copy_config(x);
        if (r == 0)
                r = lkh_start_bus(x->h);
        if (r == 0)
                r = lkh_start_broker(x->h, NULL);
        if (r == 0) {
                x->key = lkh_xasprintf("%s/user_key", x->h->dir);
                const char *argv[ELEMENTSOF(keygen)];
                memcpy(argv, keygen, sizeof(keygen));
                argv[9] = x->key;
                r = run(argv, NULL);
        }
        if (r == 0)
                r = prepare_sshd(x);
        if (r < 0) {
                ctx_free(x);
                return -1;
        }
        *state = x;
        return 0;
}

static int teardown_accounts(void **state)
{
        struct ctx *x = *state;
        bool made = x && x->made_etc_latchkey;

        ctx_free(x);
        if (made && rmdir("/etc/latchkey") < 0)
                fprintf(stderr, "test-sshd: cannot remove /etc/latchkey: %m\n");
        unsetenv(LK_ACCOUNTS_FILE_ENV);
        return 0;
}

#define SKIP_WITHOUT_ACCOUNTS(x)                                                                   \
        do {                                                                                       \
                if (!(x))                                                                          \
                        skip();                                                                    \
        } while (0)

/*
 * An SSO login of user over ssh, the browser signing in as who; the session runs command.
 * Returns the transcript after the prompt (NULL when no prompt came) and ssh's exit status.
 */
static char *sso_login(struct ctx *x, const char *user, const char *who, const char *command,
                       bool keep_open, struct term *t, int *ret_status)
{
        _cleanup_free_ char *url = NULL, *prompt = NULL;
        _cleanup_secret_ char *location = NULL, *code = NULL, *answer = NULL;
        size_t after = 0, at;
        char *out;

        start_ssh_as(x, t, user, NULL, command);
        expect_address_and_prompt(x, t, &url, &prompt, &after);
        assert_int_equal(lkh_browser_login(x->h, url, who, false, &location, &code), 0);
        answer = lkh_xasprintf("%s\n", location);
        assert_int_equal(term_send(t, answer), 0);
        if (keep_open) {
                if (term_expect(t, after, "READY", &at) < 0) {
                        term_dump(t);
                        fail();
                }
                return strdup(t->buf + after);
        }
        assert_int_equal(term_finish(t, ret_status), 0);
        out = strdup(t->buf + after);
        term_close(t);
        return out;
}

static int cached_account(struct ctx *x, const char *user, struct lk_account_view *v,
                          char **text)
{
        _cleanup_free_ char *p = lkh_xasprintf("%s/latchkey/accounts", x->host_dir);
        struct lk_accounts_map m;
        size_t len = 0;
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        ssize_t k;

        if (fd < 0)
                return -errno;
        free(*text);
        *text = calloc(1, 1 << 20);
        while ((k = read(fd, *text + len, (1 << 20) - 1 - len)) > 0)
                len += (size_t)k;
        close(fd);
        if (lk_accounts_map_init(&m, *text, len) < 0)
                return -EINVAL;
        return lk_accounts_find_name(&m, user, v);
}

static uint32_t mapped_uid(const char *user)
{
        return lk_uidmap_uid(user, strlen(user), ACCOUNT_UID_MIN, ACCOUNT_UID_MAX);
}

static void test_accounts_first_login(void **state)
{
        struct ctx *x = *state;
        _cleanup_free_ char *out = NULL, *want = NULL, *home = NULL, *text = NULL;
        struct lk_account_view v;
        struct group *staff = getgrnam(ACCOUNT_GROUP);
        struct term t;
        struct stat st;
        int status = -1;

        SKIP_WITHOUT_ACCOUNTS(x);
        assert_non_null(staff);
        /* Never seen: no cache entry, and the host itself knows no such user. */
        assert_null(getpwnam(ACCOUNT_USER));
        assert_int_equal(cached_account(x, ACCOUNT_USER, &v, &text), -ENOENT);
        assert_int_equal(lkh_idp_set(x->h, "groups", "eng other"), 0);

        out = sso_login(x, ACCOUNT_USER, ACCOUNT_USER, "id; pwd; echo DONE", false, &t,
                        &status);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !strstr(out, "DONE"))
                fail_msg("no shell for the new account (status 0x%x):\n%s", (unsigned)status,
                         out);
        want = lkh_xasprintf("uid=%u(" ACCOUNT_USER ") gid=%u(" ACCOUNT_USER ") groups=%u("
                             ACCOUNT_USER "),%u(" ACCOUNT_GROUP ")",
                             mapped_uid(ACCOUNT_USER), mapped_uid(ACCOUNT_USER),
                             mapped_uid(ACCOUNT_USER), (unsigned)staff->gr_gid);
        if (!strstr(out, want))
                fail_msg("id shows:\n%s\nwanted %s", out, want);
        /* pam_mkhomedir made the home, the session started in it. */
        home = lkh_xasprintf("%s/homes/" ACCOUNT_USER, x->h->dir);
        assert_non_null(strstr(out, home));
        assert_int_equal(stat(home, &st), 0);
        assert_int_equal(st.st_uid, mapped_uid(ACCOUNT_USER));
        /* The broker keeps it: the cache has the account, its group and the time. */
        assert_int_equal(cached_account(x, ACCOUNT_USER, &v, &text), 0);
        assert_int_equal(v.uid, mapped_uid(ACCOUNT_USER));
        assert_int_equal(v.n_gids, 1);
        assert_int_equal(v.gids[0], staff->gr_gid);
        assert_false(v.refused);
}

/* The same person on another host (a fresh state folder and cache): the same uid. */
static void test_accounts_same_uid_elsewhere(void **state)
{
        struct ctx *x = *state;
        _cleanup_free_ char *out = NULL, *want = NULL, *text = NULL;
        struct lk_account_view v;
        struct term t;
        int status = -1;

        SKIP_WITHOUT_ACCOUNTS(x);
        lkh_stop_process(&x->sshd_pid, 5000);
        lkh_stop_broker(x->h);
        free(x->h->state_dir);
        x->h->state_dir = lkh_xasprintf("%s/host2-state", x->h->dir);
        assert_int_equal(mkdir(x->h->state_dir, 0700), 0);
        assert_int_equal(make_host(x, "host2"), 0);
        assert_int_equal(lkh_start_broker(x->h, NULL), 0);
        assert_int_equal(start_sshd(x), 0);
        assert_int_equal(cached_account(x, ACCOUNT_USER, &v, &text), -ENOENT);

        out = sso_login(x, ACCOUNT_USER, ACCOUNT_USER, "id -u; echo DONE", false, &t, &status);
        want = lkh_xasprintf("%u\r\nDONE", mapped_uid(ACCOUNT_USER));
        if (!strstr(out, want))
                fail_msg("on the second host:\n%s\nwanted %s", out, want);
        assert_int_equal(cached_account(x, ACCOUNT_USER, &v, &text), 0);
        assert_int_equal(v.uid, mapped_uid(ACCOUNT_USER));
}

/* Another identity at the provider under the same name, and a name not allowed: no shell. */
static void test_accounts_refusals(void **state)
{
        struct ctx *x = *state;
        _cleanup_free_ char *out = NULL, *text = NULL;
        struct lk_account_view v;
        struct term t;
        int status = -1;
        size_t at;

        SKIP_WITHOUT_ACCOUNTS(x);
        assert_int_equal(lkh_idp_set(x->h, "sub", "someone-else"), 0);
        out = sso_login(x, ACCOUNT_USER, ACCOUNT_USER, "echo SHELL", false, &t, &status);
        assert_int_equal(lkh_idp_set(x->h, "sub", ""), 0);
        assert_null(strstr(out, "SHELL\r"));
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 0);

        /* Not in allowed_names: sshd finds no such user, and PAM shows no address. */
        start_ssh_as(x, &t, "lk-other-zed", NULL, "echo SHELL");
        assert_int_equal(term_finish(&t, &status), 0);
        assert_null(strstr(t.buf, "SHELL\r"));
        assert_int_equal(term_expect(&t, 0, "https://", &at) == 0 ? 1 : 0, 0);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 0);
        term_close(&t);
        assert_int_equal(cached_account(x, "lk-other-zed", &v, &text), -ENOENT);
}

static void install_key(struct ctx *x, uid_t uid)
{
        _cleanup_free_ char *pub = lkh_xasprintf("%s.pub", x->key);
        _cleanup_free_ char *dir = lkh_xasprintf("%s/homes/" ACCOUNT_USER "/.ssh", x->h->dir);
        _cleanup_free_ char *keys = lkh_xasprintf("%s/authorized_keys", dir);
        char buf[4096];
        ssize_t n;
        int fd = open(pub, O_RDONLY | O_CLOEXEC);

        assert_true(fd >= 0);
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        assert_true(n > 0);
        buf[n] = 0;
        assert_true(mkdir(dir, 0700) == 0 || errno == EEXIST);
        assert_int_equal(write_file(keys, buf, 0600), 0);
        assert_int_equal(chown(dir, uid, uid), 0);
        assert_int_equal(chown(keys, uid, uid), 0);
}

static int key_login(struct ctx *x, char **ret_out)
{
        struct term t;
        int status = -1;

        start_ssh_as(x, &t, ACCOUNT_USER, x->key, "echo KEY-SHELL");
        assert_int_equal(term_finish(&t, &status), 0);
        *ret_out = strdup(t.buf);
        term_close(&t);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A refresh brings the provider's groups: out of "eng", out of the mapped local group. */
static void test_accounts_groups_follow_refresh(void **state)
{
        struct ctx *x = *state;
        _cleanup_free_ char *out = NULL, *text = NULL, *sid = NULL, *error = NULL;
        _cleanup_secret_ char *token = NULL;
        struct lk_account_view v;
        DBusConnection *c;
        struct term t;
        size_t at;

        SKIP_WITHOUT_ACCOUNTS(x);
        c = bus_open(x->h);
        assert_non_null(c);
        assert_int_equal(lkh_idp_set(x->h, "groups", "eng"), 0);
        out = sso_login(x, ACCOUNT_USER, ACCOUNT_USER,
                        "printf 'SID=%s\\n' \"$LATCHKEY_SESSION\"; echo READY; read line",
                        true, &t, NULL);
        assert_int_equal(cached_account(x, ACCOUNT_USER, &v, &text), 0);
        assert_int_equal(v.n_gids, 1);
        assert_int_equal(term_expect(&t, 0, "SID=", &at), 0);
        sid = word_at(&t, at + 4);
        assert_int_equal(lkh_idp_set(x->h, "groups", "other"), 0);
        error = bc_get_token(c, sid, 86400, &token, NULL, NULL);
        if (error)
                fail_msg("the refresh failed: %s", error);
        assert_int_equal(cached_account(x, ACCOUNT_USER, &v, &text), 0);
        assert_int_equal(v.n_gids, 0);
        assert_int_equal(lkh_idp_set(x->h, "groups", "eng other"), 0);
        assert_int_equal(term_send(&t, "\n"), 0);
        (void)term_finish(&t, &(int){0});
        term_close(&t);
        bc_close(c);
}

/* The provider disables the person (its refresh refused): their ssh key no longer opens. */
static void test_accounts_disabled_loses_key(void **state)
{
        struct ctx *x = *state;
        _cleanup_free_ char *out = NULL, *out2 = NULL, *out3 = NULL, *text = NULL;
        _cleanup_free_ char *sid = NULL, *error = NULL;
        _cleanup_secret_ char *token = NULL;
        DBusConnection *c;
        struct lk_account_view v;
        struct term t;
        size_t at;

        SKIP_WITHOUT_ACCOUNTS(x);
        c = bus_open(x->h);
        assert_non_null(c);
        install_key(x, mapped_uid(ACCOUNT_USER));
        if (key_login(x, &out) != 0 || !strstr(out, "KEY-SHELL"))
                fail_msg("the key login of a signed-in account failed:\n%s", out);

        /* A session whose refresh the provider refuses. */
        free(out);
        out = sso_login(x, ACCOUNT_USER, ACCOUNT_USER,
                        "printf 'SID=%s\\n' \"$LATCHKEY_SESSION\"; echo READY; read line",
                        true, &t, NULL);
        assert_int_equal(term_expect(&t, 0, "SID=", &at), 0);
        sid = word_at(&t, at + 4);
        assert_int_equal(lkh_idp_set(x->h, "refresh_invalid_grant", "1"), 0);
        error = bc_get_token(c, sid, 86400, &token, NULL, NULL);
        assert_non_null(error); /* refused: the session expired */
        assert_int_equal(term_send(&t, "\n"), 0);
        (void)term_finish(&t, &(int){0});
        term_close(&t);
        assert_int_equal(lkh_idp_set(x->h, "refresh_invalid_grant", "0"), 0);
        assert_int_equal(cached_account(x, ACCOUNT_USER, &v, &text), 0);
        assert_true(v.refused);

        /* The key is refused at the account step. */
        assert_int_not_equal(key_login(x, &out2), 0);
        assert_null(strstr(out2, "KEY-SHELL\r"));

        /* Signing in with SSO again clears it, and the key works again. */
        free(out);
        out = sso_login(x, ACCOUNT_USER, ACCOUNT_USER, "echo DONE", false, &t, &(int){0});
        assert_non_null(strstr(out, "DONE"));
        assert_int_equal(key_login(x, &out3), 0);
        assert_non_null(strstr(out3, "KEY-SHELL"));
        bc_close(c);
}

/*
 * [accounts] nss = no once accounts are cached: the broker keeps none any more, the cached ones
 * still resolve (the NSS module answers from the cache), and the account step refuses them:
 * the key that opened a moment ago no longer does, and does again once nss = yes is back.
 */
static void test_accounts_nss_off_refuses_key(void **state)
{
        struct ctx *x = *state;
        _cleanup_free_ char *conf = NULL, *text = NULL, *off = NULL, *out = NULL;
        _cleanup_free_ char *out2 = NULL, *out3 = NULL;
        const char *at;
        size_t len = 0;
        int fd;

        SKIP_WITHOUT_ACCOUNTS(x);
        assert_int_equal(key_login(x, &out), 0);
        assert_non_null(strstr(out, "KEY-SHELL"));

        fd = open(x->h->config_file, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        while (fd >= 0)
                assert_int_equal(lkh_read_more(&fd, &text, &len, 65536), 0);
        assert_non_null(text);
        at = strstr(text, "nss = yes\n");
        assert_non_null(at);
        off = lkh_xasprintf("%.*snss = no\n%s", (int)(at - text), text, at + strlen("nss = yes\n"));
        /* The account step's config= (the broker read it at its start, and keeps nss = yes). */
        conf = strdup(x->h->config_file);
        assert_int_equal(write_file(conf, off, 0644), 0);
        assert_int_not_equal(key_login(x, &out2), 0);
        assert_null(strstr(out2, "KEY-SHELL\r"));

        assert_int_equal(write_file(conf, text, 0644), 0);
        assert_int_equal(key_login(x, &out3), 0);
        assert_non_null(strstr(out3, "KEY-SHELL"));
}

/* Not signed in through the provider for more than max_offline_days (30): no key either. */
static void test_accounts_offline_too_long(void **state)
{
        struct ctx *x = *state;
        _cleanup_free_ char *text = NULL, *out = NULL, *again = NULL;
        _cleanup_free_ char *path = NULL, *tmp = NULL;
        struct lk_account_view v;
        struct lk_account a;
        size_t len = 0;
        int fd;

        SKIP_WITHOUT_ACCOUNTS(x);
        /* The cache as the broker would write it after 31 days without a sign-in. */
        assert_int_equal(cached_account(x, ACCOUNT_USER, &v, &text), 0);
        assert_int_equal(lk_account_from_view(&v, &a), 0);
        for (unsigned k = 0; k < a.n_gids; k++) { /* the G lines, as the broker keeps them */
                struct group *g = getgrgid(a.gids[k]);
                assert_non_null(g);
                a.group_names[k] = strdup(g->gr_name);
        }
        a.last_signin = (int64_t)time(NULL) - 31 * 86400;
        assert_int_equal(lk_accounts_format(&a, 1, &again, &len), 0);
        lk_account_clear(&a);
        path = lkh_xasprintf("%s/latchkey/accounts", x->host_dir);
        tmp = lkh_xasprintf("%s.test", path);
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, again, len), (ssize_t)len);
        close(fd);
        assert_int_equal(rename(tmp, path), 0);

        assert_int_not_equal(key_login(x, &out), 0);
        assert_null(strstr(out, "KEY-SHELL\r"));
}

/* latchkeyctl's output, run with the test bus and this host's cache; its exit status. */
static int latchkeyctl(struct ctx *x, const char *args, char **ret_out)
{
        _cleanup_free_ char *line = lkh_xasprintf("DBUS_SYSTEM_BUS_ADDRESS='%s' %s %s 2>&1",
                                                  x->h->bus_address, LK_LATCHKEYCTL, args);
        char *out = calloc(1, 65536);
        size_t len = 0, n;
        FILE *p = popen(line, "re");
        int status;

        assert_non_null(out);
        assert_non_null(p);
        while ((n = fread(out + len, 1, 65535 - len, p)) > 0)
                len += n;
        status = pclose(p);
        *ret_out = out;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* latchkeyctl users lists the account; forget (root, over the bus) drops it from NSS. */
static void test_accounts_latchkeyctl(void **state)
{
        struct ctx *x = *state;
        _cleanup_free_ char *out = NULL, *out2 = NULL, *out3 = NULL, *want = NULL, *text = NULL;
        struct lk_account_view v;

        SKIP_WITHOUT_ACCOUNTS(x);
        if (!*LK_LATCHKEYCTL)
                skip();
        assert_int_equal(latchkeyctl(x, "users", &out), 0);
        want = lkh_xasprintf(ACCOUNT_USER "\t%u\t" ACCOUNT_GROUP "\t", mapped_uid(ACCOUNT_USER));
        if (!strstr(out, want))
                fail_msg("latchkeyctl users:\n%s\nwanted a line with %s", out, want);
        assert_int_equal(latchkeyctl(x, "forget " ACCOUNT_USER, &out2), 0);
        assert_int_equal(cached_account(x, ACCOUNT_USER, &v, &text), -ENOENT);
        /* Again: nothing to forget. */
        assert_int_not_equal(latchkeyctl(x, "forget " ACCOUNT_USER, &out3), 0);
        assert_non_null(strstr(out3, "NotFound"));
}

int main(void)
{
        const struct CMUnitTest device[] = {
                cmocka_unit_test(test_device_flow_enter_only),
        };
        const struct CMUnitTest listener[] = {
                cmocka_unit_test(test_listener_enter_only),
        };
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_listens_on_loopback_only),
                cmocka_unit_test(test_login_token_logout),
                cmocka_unit_test(test_wrong_answers),
                cmocka_unit_test(test_dropped_clients_free_their_logins),
        };

        if (geteuid() != 0) {
                fprintf(stderr, "test-sshd needs root (useradd, sshd); skipping\n");
                return 77;
        }
        if (access(SSHD, X_OK) < 0 || access(SSH, X_OK) < 0 || access(SSH_KEYGEN, X_OK) < 0 ||
            access(USERADD, X_OK) < 0) {
                fprintf(stderr, "test-sshd needs openssh-server, openssh-client and useradd; "
                                "skipping\n");
                return 77;
        }
        const struct CMUnitTest accounts[] = {
                cmocka_unit_test(test_accounts_first_login),
                cmocka_unit_test(test_accounts_same_uid_elsewhere),
                cmocka_unit_test(test_accounts_refusals),
                cmocka_unit_test(test_accounts_groups_follow_refresh),
                cmocka_unit_test(test_accounts_disabled_loses_key),
                cmocka_unit_test(test_accounts_nss_off_refuses_key),
                cmocka_unit_test(test_accounts_offline_too_long),
                cmocka_unit_test(test_accounts_latchkeyctl),
        };
        int failed;

        failed = cmocka_run_group_tests_name("sshd with pam_latchkey", tests, setup, teardown);
        failed += cmocka_run_group_tests_name("sshd with provider accounts (libnss_latchkey)",
                                              accounts, setup_accounts, teardown_accounts);
        failed += cmocka_run_group_tests_name("sshd with pam_latchkey, device flow", device,
                                              setup_device, teardown);
        failed += cmocka_run_group_tests_name("sshd with pam_latchkey, code flow and the "
                                              "callback listener",
                                              listener, setup_listener, teardown);
        return failed ? 1 : 0;
}
