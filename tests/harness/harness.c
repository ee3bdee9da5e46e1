/* SPDX-License-Identifier: MIT */
/* lk-harness: temp folders, the test IdP, a private system bus, latchkeyd, a browser. */
#include "tests/harness/harness.h"

#include <curl/curl.h>
#include <dbus/dbus.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <jansson.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "base/util.h"
#include "dbus/broker_wire.h"
#include "oidc/secret.h"

#ifndef LKH_IDP_PATH
#error "LKH_IDP_PATH must be defined by meson"
#endif

#define BROKER_NAME LK_BUS_NAME
#define HTTP_BODY_MAX (4 * 1024 * 1024)
#define START_TIMEOUT_MS 15000
#define STOP_TIMEOUT_MS 5000

static int fail(int r, const char *fmt, ...) _printf_(2, 3);
static int fail(int r, const char *fmt, ...)
{
        va_list ap;

        fputs("lk-harness: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return r;
}

char *lkh_xasprintf(const char *fmt, ...)
{
        va_list ap;
        char *s;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (r < 0)
                abort();
        return s;
}

static bool env_true(const char *name)
{
        const char *v = getenv(name);
        return v && (streq(v, "1") || streq(v, "yes") || streq(v, "true"));
}

void lkh_sleep_ms(long ms)
{
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

int64_t lkh_now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int write_file(const char *path, const char *data, mode_t mode)
{
        size_t len = strlen(data), done = 0;
        int fd;

        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0)
                return fail(-errno, "cannot create %s: %m", path);
        if (fchmod(fd, mode) < 0) {
                int r = -errno;
                close(fd);
                return fail(r, "cannot chmod %s: %m", path);
        }
        while (done < len) {
                ssize_t n = write(fd, data + done, len - done);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        int r = n < 0 ? -errno : -EIO;
                        close(fd);
                        return fail(r, "cannot write %s", path);
                }
                done += (size_t)n;
        }
        if (close(fd) < 0)
                return fail(-errno, "cannot write %s: %m", path);
        return 0;
}

/* ---- processes ---------------------------------------------------------- */

int lkh_spawn(const char *const argv[], int fd3, pid_t *ret_pid)
{
        pid_t parent = getpid(), pid;

        pid = fork();
        if (pid < 0)
                return fail(-errno, "fork: %m");
        if (pid == 0) {
                sigset_t all;

                /* Die with the test, even when it crashes. */
                if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
                        _exit(127);
                sigemptyset(&all);
                sigprocmask(SIG_SETMASK, &all, NULL);
                signal(SIGPIPE, SIG_DFL);
                if (fd3 >= 0) {
                        if (fd3 == 3) {
                                int fl = fcntl(3, F_GETFD);
                                if (fl < 0 || fcntl(3, F_SETFD, fl & ~FD_CLOEXEC) < 0)
                                        _exit(127);
                        } else if (dup2(fd3, 3) < 0) {
                                _exit(127);
                        }
                }
                execv(argv[0], (char *const *)argv);
                fprintf(stderr, "lk-harness: cannot run %s: %m\n", argv[0]);
                _exit(127);
        }
        *ret_pid = pid;
        return 0;
}

/* lkh_spawn, with the child's stderr appended to log (NULL: it shares ours). */
static int spawn_logged(const char *const argv[], int fd3, const char *log, pid_t *ret_pid)
{
        int saved = -1, logfd = -1, r;

        if (log) {
                logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
                saved = logfd >= 0 ? fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3) : -1;
                if (saved >= 0) {
                        fflush(stderr);
                        dup2(logfd, STDERR_FILENO);
                }
        }
        r = lkh_spawn(argv, fd3, ret_pid);
        if (saved >= 0) {
                dup2(saved, STDERR_FILENO);
                close(saved);
        }
        if (logfd >= 0)
                close(logfd);
        return r;
}

int lkh_stop_process(pid_t *pid, int timeout_ms)
{
        int status = 0;

        if (!pid || *pid <= 0)
                return 0;
        if (kill(*pid, SIGTERM) < 0 && errno != ESRCH)
                return fail(-errno, "cannot signal %d: %m", (int)*pid);
        for (int waited = 0;; waited += 10) {
                pid_t r = waitpid(*pid, &status, WNOHANG);
                if (r == *pid || (r < 0 && errno == ECHILD))
                        break;
                if (waited >= timeout_ms) {
                        fprintf(stderr, "lk-harness: %d ignored SIGTERM, killing it\n", (int)*pid);
                        kill(*pid, SIGKILL);
                        waitpid(*pid, &status, 0);
                        break;
                }
                lkh_sleep_ms(10);
        }
        *pid = 0;
        return status;
}

/* Runs argv to completion; 0 when it exited with 0. */
static int run_wait(const char *const argv[])
{
        pid_t pid;
        int status, r;

        r = lkh_spawn(argv, -1, &pid);
        if (r < 0)
                return r;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return fail(-errno, "waitpid: %m");
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return fail(-EIO, "%s failed (status 0x%x)", argv[0], (unsigned)status);
        return 0;
}

static bool child_gone(pid_t *pid)
{
        int status;

        if (*pid <= 0)
                return true;
        if (waitpid(*pid, &status, WNOHANG) == *pid) {
                *pid = 0;
                return true;
        }
        return false;
}

/* ---- lifetime ----------------------------------------------------------- */

int lkh_new(struct lkh **ret)
{
        const char *tmp = getenv("TMPDIR");
        _cleanup_free_ char *tmpl = NULL, *random = NULL;
        struct lkh *h;

        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return fail(-EIO, "curl_global_init failed");
        h = calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        tmpl = lkh_xasprintf("%s/latchkey-test-XXXXXX", isempty(tmp) ? "/tmp" : tmp);
        if (!mkdtemp(tmpl)) {
                free(h);
                return fail(-errno, "mkdtemp %s: %m", tmpl);
        }
        /* Other uids (lkh_run_as) must reach DIR/bus; secrets inside have their own modes. */
        if (chmod(tmpl, 0755) < 0) {
                int r = -errno;
                rmdir(tmpl);
                free(h);
                return fail(r, "chmod %s: %m", tmpl);
        }
        h->dir = TAKE_PTR(tmpl);
        h->client_id = strdup("latchkey-test");
        h->alt_client_id = strdup("latchkey-test-alt");
        h->redirect_uri = strdup("https://login.latchkey.test/callback");
        if (lk_random_b64url(24, &random) < 0) {
                lkh_free(h);
                return fail(-EIO, "no random bytes");
        }
        h->client_secret = lkh_xasprintf("s3cret:+&%%/%s", random);
        h->client_secret_file = lkh_xasprintf("%s/client_secret", h->dir);
        h->state_dir = lkh_xasprintf("%s/state", h->dir);
        if (!h->client_id || !h->alt_client_id || !h->redirect_uri) {
                lkh_free(h);
                return -ENOMEM;
        }
        if (write_file(h->client_secret_file, h->client_secret, 0600) < 0 ||
            mkdir(h->state_dir, 0700) < 0) {
                lkh_free(h);
                return fail(-EIO, "cannot prepare %s", h->dir);
        }
        *ret = h;
        return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        if (remove(path) < 0)
                fprintf(stderr, "lk-harness: cannot remove %s: %m\n", path);
        return 0;
}

void lkh_free(struct lkh *h)
{
        if (!h)
                return;
        lkh_stop_broker(h);
        lkh_stop_bus(h);
        lkh_stop_idp(h);
        if (h->dir) {
                if (env_true("LATCHKEY_TEST_KEEP"))
                        fprintf(stderr, "lk-harness: keeping %s\n", h->dir);
                else
                        nftw(h->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        }
        free(h->dir);
        free(h->cert_file);
        free(h->key_file);
        free(h->idp_base);
        free(h->issuer);
        free(h->client_id);
        free(h->alt_client_id);
        lk_secret_free(h->client_secret);
        free(h->client_secret_file);
        free(h->redirect_uri);
        free(h->config_file);
        free(h->state_dir);
        free(h->bus_address);
        free(h->bus_config);
        free(h->services_dir);
        free(h);
}

/* ---- the IdP ------------------------------------------------------------ */

int lkh_make_cert(struct lkh *h, const char *name, const char *cert_path, const char *key_path)
{
        const char *argv_default[] = { LKH_MAKE_CERT, cert_path, key_path, NULL };
        const char *argv_name[] = { LKH_MAKE_CERT, "--name", name, cert_path, key_path, NULL };

        return run_wait(name ? argv_name : argv_default);
}

int lkh_read_port_file(const char *path, unsigned *ret)
{
        char buf[16] = { 0 };
        ssize_t n;
        char *end;
        unsigned long v;
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                return -errno;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return -EAGAIN;
        errno = 0;
        v = strtoul(buf, &end, 10);
        if (errno != 0 || end == buf || (*end && *end != '\n') || v == 0 || v > 65535)
                return -EBADMSG;
        *ret = (unsigned)v;
        return 0;
}

int lkh_start_idp(struct lkh *h, const struct lkh_idp_options *o)
{
        static const struct lkh_idp_options defaults = { 0 };
        const char *idp = getenv("LATCHKEY_TEST_IDP");
        _cleanup_free_ char *port_file = NULL, *client = NULL, *alt = NULL;
        const char *host;
        unsigned port = 0;
        int r;

        if (!o)
                o = &defaults;
        host = o->host ? o->host : "127.0.0.1";
        if (h->idp_pid > 0)
                return fail(-EBUSY, "the IdP is running already");
        if (!h->cert_file) {
                _cleanup_free_ char *cert = lkh_xasprintf("%s/idp-cert.pem", h->dir);
                _cleanup_free_ char *key = lkh_xasprintf("%s/idp-key.pem", h->dir);
                r = lkh_make_cert(h, o->cert_name, cert, key);
                if (r < 0)
                        return r;
                h->cert_file = TAKE_PTR(cert);
                h->key_file = TAKE_PTR(key);
        }
        port_file = lkh_xasprintf("%s/idp.port", h->dir);
        unlink(port_file);
        h->client_basic = o->basic;
        client = lkh_xasprintf("%s:@%s:%s", h->client_id, h->client_secret_file,
                               o->basic ? "basic" : "post");
        alt = lkh_xasprintf("%s:@%s:%s", h->alt_client_id, h->client_secret_file,
                            o->basic ? "post" : "basic");
        {
                const char *argv[] = {
                        isempty(idp) ? LKH_IDP_PATH : idp,
                        "--cert", h->cert_file, "--key", h->key_file,
                        "--port-file", port_file, "--host", host,
                        "--client", client, "--client", alt,
                        "--redirect-uri", h->redirect_uri,
                        (o->verbose || env_true("LATCHKEY_TEST_VERBOSE")) ? "--verbose" : NULL,
                        NULL,
                };
                r = lkh_spawn(argv, -1, &h->idp_pid);
                if (r < 0)
                        return r;
        }
        for (int waited = 0;; waited += 20) {
                if (lkh_read_port_file(port_file, &port) == 0)
                        break;
                if (child_gone(&h->idp_pid))
                        return fail(-ECHILD, "the IdP exited before it was ready");
                if (waited >= START_TIMEOUT_MS) {
                        lkh_stop_idp(h);
                        return fail(-ETIMEDOUT, "the IdP did not write %s", port_file);
                }
                lkh_sleep_ms(20);
        }
        h->idp_port = port;
        free(h->idp_base);
        free(h->issuer);
        h->idp_base = lkh_xasprintf("https://127.0.0.1:%u", port);
        h->issuer = lkh_xasprintf("https://%s:%u/api/v1/oauth2", host, port);
        return 0;
}

void lkh_stop_idp(struct lkh *h)
{
        lkh_stop_process(&h->idp_pid, STOP_TIMEOUT_MS);
}

int lkh_write_config(struct lkh *h, const char *extra)
{
        _cleanup_free_ char *path = NULL, *text = NULL;
        int r;

        if (!h->issuer)
                return fail(-EINVAL, "start the IdP before writing the config");
        path = lkh_xasprintf("%s/latchkey.conf", h->dir);
        text = lkh_xasprintf("# written by lk-harness\n"
                             "[users]\n"
                             "# The tests sign in as root and other system accounts, which\n"
                             "# single sign-on refuses unless they are listed here.\n"
                             "allow_system_users = root daemon bin sys sync games\n"
                             "[provider]\n"
                             "issuer = %s\n"
                             "client_id = %s\n"
                             "client_secret_file = %s\n"
                             "client_auth = %s\n"
                             "redirect_uri = %s\n"
                             "ca_file = %s\n"
                             "timeout = 10\n"
                             "%s%s%s",
                             h->issuer, h->client_id, h->client_secret_file,
                             h->client_basic ? "client_secret_basic" : "client_secret_post",
                             h->redirect_uri, h->cert_file, extra ? extra : "",
                             extra && *extra && !lk_endswith(extra, "\n") ? "\n" : "",
                             /* The tests written for refreshes a caller waits on keep them;
                              * background refresh (the default) is tested where a test says
                              * refresh_ahead (test_refresh_ahead.c, the bench). */
                             extra && strstr(extra, "refresh_ahead")
                                 ? ""
                                 : "[sessions]\nrefresh_ahead = no\n");
        r = write_file(path, text, 0644);
        if (r < 0)
                return r;
        free(h->config_file);
        h->config_file = TAKE_PTR(path);
        return 0;
}

/* ---- the bus and the broker ------------------------------------------------ */

const char *lkh_latchkeyd_path(void)
{
        const char *p = getenv("LATCHKEY_TEST_LATCHKEYD");
        return isempty(p) ? LKH_LATCHKEYD_PATH : p;
}

/*
 * LATCHKEY_TEST_VALGRIND=1: latchkeyd runs under valgrind memcheck, started here or by
 * activation. Each broker process logs to LATCHKEY_TEST_VALGRIND_DIR (default DIR)/valgrind.PID
 * and exits with 99 on any error or definite leak; tests/integration/valgrind-check reads them.
 * Fills argv[0..VALGRIND_ARGC-1] (the strings live as long as h) and returns how many, or 0.
 */
#define VALGRIND_ARGC 7
static size_t valgrind_prefix(struct lkh *h, const char *argv[VALGRIND_ARGC])
{
        static char log_arg[4096];
        const char *bin = getenv("LATCHKEY_TEST_VALGRIND_BIN");
        const char *dir = getenv("LATCHKEY_TEST_VALGRIND_DIR");

        if (!env_true("LATCHKEY_TEST_VALGRIND"))
                return 0;
        snprintf(log_arg, sizeof(log_arg), "--log-file=%s/valgrind.%%p",
                 isempty(dir) ? h->dir : dir);
        argv[0] = isempty(bin) ? "/usr/bin/valgrind" : bin;
        argv[1] = "--error-exitcode=99";
        argv[2] = "--leak-check=full";
        argv[3] = "--show-leak-kinds=definite";
        argv[4] = "--errors-for-leak-kinds=definite";
        argv[5] = "--track-origins=yes";
        argv[6] = log_arg;
        return VALGRIND_ARGC;
}

int lkh_start_bus(struct lkh *h)
{
        _cleanup_free_ char *conf = NULL, *services = NULL, *service_file = NULL;
        _cleanup_free_ char *text = NULL, *service = NULL, *user = NULL;
        struct passwd *pw = getpwuid(geteuid());
        char addr[512];
        size_t len = 0;
        int fds[2], r;

        if (h->bus_pid > 0)
                return fail(-EBUSY, "the bus is running already");
        if (!h->config_file)
                return fail(-EINVAL, "write the config before starting the bus");
        if (!pw)
                return fail(-ENOENT, "no passwd entry for uid %u", (unsigned)geteuid());
        user = strdup(pw->pw_name);
        if (!user)
                return -ENOMEM;

        conf = lkh_xasprintf("%s/bus.conf", h->dir);
        services = lkh_xasprintf("%s/services", h->dir);
        service_file = lkh_xasprintf("%s/" BROKER_NAME ".service", services);
        if (mkdir(services, 0755) < 0 && errno != EEXIST)
                return fail(-errno, "mkdir %s: %m", services);
        {
                const char *vg[VALGRIND_ARGC];
                size_t nvg = valgrind_prefix(h, vg);
                _cleanup_free_ char *prefix = lkh_xasprintf("%s", "");

                for (size_t i = 0; i < nvg; i++) {
                        char *p = lkh_xasprintf("%s%s ", prefix, vg[i]);
                        free(prefix);
                        prefix = p;
                }
                service = lkh_xasprintf("[D-BUS Service]\n"
                                        "Name=" BROKER_NAME "\n"
                                        "Exec=%s%s --config %s --state-dir %s --idle-exit 0%s\n"
                                        "User=%s\n",
                                        prefix, lkh_latchkeyd_path(), h->config_file, h->state_dir,
                                        env_true("LATCHKEY_TEST_VERBOSE") ? " --debug" : "", user);
        }
        r = write_file(service_file, service, 0644);
        if (r < 0)
                return r;
        text = lkh_xasprintf(
                "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
                " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
                "<busconfig>\n"
                "  <type>system</type>\n"
                "  <listen>unix:path=%s/bus</listen>\n"
                "  <auth>EXTERNAL</auth>\n"
                "  <servicedir>%s</servicedir>\n"
                "  <policy context=\"default\">\n"
                "    <allow user=\"*\"/>\n"
                "    <deny own=\"*\"/>\n"
                "    <deny send_type=\"method_call\"/>\n"
                "    <allow send_type=\"signal\"/>\n"
                "    <allow send_requested_reply=\"true\" send_type=\"method_return\"/>\n"
                "    <allow send_requested_reply=\"true\" send_type=\"error\"/>\n"
                "    <allow receive_type=\"method_call\"/>\n"
                "    <allow receive_type=\"method_return\"/>\n"
                "    <allow receive_type=\"error\"/>\n"
                "    <allow receive_type=\"signal\"/>\n"
                "    <allow send_destination=\"org.freedesktop.DBus\"\n"
                "           send_interface=\"org.freedesktop.DBus\"/>\n"
                "    <allow send_destination=\"org.freedesktop.DBus\"\n"
                "           send_interface=\"org.freedesktop.DBus.Introspectable\"/>\n"
                "    <allow send_destination=\"org.freedesktop.DBus\"\n"
                "           send_interface=\"org.freedesktop.DBus.Properties\"/>\n"
                "    <allow send_destination=\"org.freedesktop.DBus\"\n"
                "           send_interface=\"org.freedesktop.DBus.Peer\"/>\n"
                "    <deny send_destination=\"org.freedesktop.DBus\"\n"
                "          send_interface=\"org.freedesktop.DBus\"\n"
                "          send_member=\"UpdateActivationEnvironment\"/>\n"
                "    <deny send_destination=\"org.freedesktop.DBus\"\n"
                "          send_interface=\"org.freedesktop.DBus.Debug.Stats\"/>\n"
                "  </policy>\n"
                "  <!-- The broker runs as the test's user here, not as latchkey. -->\n"
                "  <policy user=\"%s\">\n"
                "    <allow own=\"" BROKER_NAME "\"/>\n"
                "  </policy>\n"
                "  <include ignore_missing=\"yes\">%s</include>\n"
                "  <!-- A test's own rules (e.g. owning a fake org.freedesktop.login1). -->\n"
                "  <include ignore_missing=\"yes\">%s/bus-extra.conf</include>\n"
                "</busconfig>\n",
                h->dir, services, user, LKH_POLICY_FILE, h->dir);
        r = write_file(conf, text, 0644);
        if (r < 0)
                return r;
        if (access(LKH_POLICY_FILE, R_OK) < 0)
                fprintf(stderr, "lk-harness: %s missing, the bus runs without it\n",
                        LKH_POLICY_FILE);

        if (pipe2(fds, O_CLOEXEC) < 0)
                return fail(-errno, "pipe: %m");
        {
                _cleanup_free_ char *config_arg = lkh_xasprintf("--config-file=%s", conf);
                /* The bus's own notes (no "latchkey" user here, fd limits) only with
                 * LATCHKEY_TEST_VERBOSE; otherwise they go to syslog, where there is one. */
                const char *argv[] = { LKH_DBUS_DAEMON, "--nofork", "--nopidfile", config_arg,
                                       "--print-address=3",
                                       env_true("LATCHKEY_TEST_VERBOSE") ? "--nosyslog"
                                                                         : "--syslog-only",
                                       NULL };
                _cleanup_free_ char *log = lkh_xasprintf("%s/bus.log", h->dir);

                /* What libdbus itself prints goes to DIR/bus.log unless verbose. */
                r = spawn_logged(argv, fds[1], env_true("LATCHKEY_TEST_VERBOSE") ? NULL : log,
                                 &h->bus_pid);
        }
        close(fds[1]);
        if (r < 0) {
                close(fds[0]);
                return r;
        }
        /* dbus-daemon prints its address once it listens. */
        for (;;) {
                struct pollfd p = { .fd = fds[0], .events = POLLIN };
                ssize_t n;
                int pr = poll(&p, 1, START_TIMEOUT_MS);

                if (pr <= 0) {
                        close(fds[0]);
                        lkh_stop_bus(h);
                        return fail(-ETIMEDOUT, "dbus-daemon did not print its address");
                }
                n = read(fds[0], addr + len, sizeof(addr) - 1 - len);
                if (n <= 0) {
                        close(fds[0]);
                        lkh_stop_bus(h);
                        return fail(-ECHILD, "dbus-daemon exited before it was ready");
                }
                len += (size_t)n;
                addr[len] = 0;
                if (memchr(addr, '\n', len))
                        break;
                if (len >= sizeof(addr) - 1) {
                        close(fds[0]);
                        lkh_stop_bus(h);
                        return fail(-EBADMSG, "dbus-daemon printed a strange address");
                }
        }
        close(fds[0]);
        addr[strcspn(addr, "\n")] = 0;
        free(h->bus_address);
        h->bus_address = strdup(addr);
        if (!h->bus_address || setenv("DBUS_SYSTEM_BUS_ADDRESS", addr, 1) < 0)
                return -ENOMEM;
        free(h->bus_config);
        free(h->services_dir);
        h->bus_config = TAKE_PTR(conf);
        h->services_dir = TAKE_PTR(services);
        return 0;
}

void lkh_stop_bus(struct lkh *h)
{
        if (h->bus_pid > 0)
                lkh_stop_process(&h->bus_pid, STOP_TIMEOUT_MS);
}

static DBusConnection *bus_open(struct lkh *h)
{
        DBusConnection *c;
        DBusError err;

        dbus_error_init(&err);
        c = dbus_connection_open_private(h->bus_address, &err);
        if (!c) {
                dbus_error_free(&err);
                return NULL;
        }
        dbus_connection_set_exit_on_disconnect(c, FALSE);
        if (!dbus_bus_register(c, &err)) {
                dbus_error_free(&err);
                dbus_connection_close(c);
                dbus_connection_unref(c);
                return NULL;
        }
        return c;
}

static void bus_close(DBusConnection *c)
{
        if (!c)
                return;
        dbus_connection_close(c);
        dbus_connection_unref(c);
}

pid_t lkh_broker_pid(struct lkh *h)
{
        DBusConnection *c = bus_open(h);
        DBusMessage *m, *reply;
        DBusError err;
        const char *name = BROKER_NAME;
        dbus_uint32_t pid = 0;

        if (!c)
                return 0;
        dbus_error_init(&err);
        m = dbus_message_new_method_call("org.freedesktop.DBus", "/org/freedesktop/DBus",
                                         "org.freedesktop.DBus", "GetConnectionUnixProcessID");
        if (m && dbus_message_append_args(m, DBUS_TYPE_STRING, &name, DBUS_TYPE_INVALID)) {
                reply = dbus_connection_send_with_reply_and_block(c, m, 5000, &err);
                if (reply) {
                        if (!dbus_message_get_args(reply, &err, DBUS_TYPE_UINT32, &pid,
                                                   DBUS_TYPE_INVALID))
                                pid = 0;
                        dbus_message_unref(reply);
                }
        }
        if (m)
                dbus_message_unref(m);
        dbus_error_free(&err);
        bus_close(c);
        return (pid_t)pid;
}

/*
 * Without a syslog daemon the broker logs to stderr: to DIR/broker.log, as the bus's notes
 * go to DIR/bus.log, unless LATCHKEY_TEST_VERBOSE or --debug (whose caller has pointed
 * stderr where it wants the log).
 */
static int spawn_broker(struct lkh *h, const char *const argv[])
{
        _cleanup_free_ char *log = lkh_xasprintf("%s/broker.log", h->dir);
        bool debug = false;

        for (size_t i = 0; argv[i]; i++)
                debug = debug || streq(argv[i], "--debug");
        return spawn_logged(argv, -1, debug ? NULL : log, &h->broker_pid);
}

int lkh_start_broker(struct lkh *h, const char *const *extra_args)
{
        const char *argv[64];
        size_t n = 0;
        DBusConnection *c = NULL;
        int r;

        if (!h->bus_address || !h->config_file)
                return fail(-EINVAL, "start the bus and write the config before the broker");
        if (h->broker_pid > 0)
                return fail(-EBUSY, "the broker is running already");
        n = valgrind_prefix(h, argv);
        argv[n++] = lkh_latchkeyd_path();
        argv[n++] = "--config";
        argv[n++] = h->config_file;
        argv[n++] = "--state-dir";
        argv[n++] = h->state_dir;
        argv[n++] = "--idle-exit";
        argv[n++] = "0";
        if (env_true("LATCHKEY_TEST_VERBOSE"))
                argv[n++] = "--debug";
        for (size_t i = 0; extra_args && extra_args[i]; i++) {
                if (n >= ELEMENTSOF(argv) - 1)
                        return fail(-E2BIG, "too many broker arguments");
                argv[n++] = extra_args[i];
        }
        argv[n] = NULL;
        if (access(lkh_latchkeyd_path(), X_OK) < 0 || access(argv[0], X_OK) < 0)
                return fail(-errno, "cannot run %s: %m", argv[0]);
        r = spawn_broker(h, argv);
        if (r < 0)
                return r;

        for (int waited = 0;; waited += 50) {
                DBusError err;
                dbus_bool_t has;

                if (child_gone(&h->broker_pid))
                        r = fail(-ECHILD, "latchkeyd exited before it took " BROKER_NAME);
                else if (waited >= (env_true("LATCHKEY_TEST_VALGRIND") ? 4 : 1) * START_TIMEOUT_MS)
                        r = fail(-ETIMEDOUT, "latchkeyd did not take " BROKER_NAME);
                if (r < 0)
                        break;
                if (!c)
                        c = bus_open(h);
                if (c) {
                        dbus_error_init(&err);
                        has = dbus_bus_name_has_owner(c, BROKER_NAME, &err);
                        dbus_error_free(&err);
                        if (has)
                                break;
                }
                lkh_sleep_ms(50);
        }
        bus_close(c);
        if (r < 0)
                lkh_stop_broker(h);
        return r;
}

int lkh_start_broker_logging(struct lkh *h, const char *const *extra_args, const char *log_path)
{
        int saved, fd, r;

        fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd < 0)
                return fail(-errno, "cannot open %s: %m", log_path);
        /* The broker inherits our stderr: point it at the log while it starts. */
        fflush(stderr);
        saved = dup(STDERR_FILENO);
        if (saved < 0) {
                r = -errno;
                close(fd);
                return fail(r, "dup: %m");
        }
        dup2(fd, STDERR_FILENO);
        close(fd);
        r = lkh_start_broker(h, extra_args);
        fflush(stderr);
        dup2(saved, STDERR_FILENO);
        close(saved);
        return r;
}

void lkh_stop_broker(struct lkh *h)
{
        pid_t pid;

        if (h->broker_pid > 0) {
                /* Under valgrind the leak check at exit takes a few seconds. */
                lkh_stop_process(&h->broker_pid, env_true("LATCHKEY_TEST_VALGRIND")
                                                         ? 4 * STOP_TIMEOUT_MS
                                                         : STOP_TIMEOUT_MS);
                return;
        }
        if (h->bus_pid <= 0 || !h->bus_address)
                return;
        /* Started by bus activation: a child of dbus-daemon, not ours to wait for. */
        pid = lkh_broker_pid(h);
        if (pid <= 0 || pid == getpid())
                return;
        if (kill(pid, SIGTERM) < 0)
                return;
        for (int waited = 0;
             waited < (env_true("LATCHKEY_TEST_VALGRIND") ? 4 : 1) * STOP_TIMEOUT_MS;
             waited += 10) {
                if (kill(pid, 0) < 0 || lkh_broker_pid(h) != pid)
                        return;
                lkh_sleep_ms(10);
        }
        fprintf(stderr, "lk-harness: activated latchkeyd %d ignored SIGTERM, killing it\n",
                (int)pid);
        kill(pid, SIGKILL);
}

/* ---- HTTP ----------------------------------------------------------------- */

struct buf {
        char *data;
        size_t len;
        bool too_big;
};

static size_t buf_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
        struct buf *b = userdata;
        size_t n = size * nmemb;
        char *d;

        if (n > HTTP_BODY_MAX - b->len) {
                b->too_big = true;
                return 0;
        }
        d = realloc(b->data, b->len + n + 1);
        if (!d)
                return 0;
        memcpy(d + b->len, ptr, n);
        b->len += n;
        d[b->len] = 0;
        b->data = d;
        return n;
}

struct lkh_conn {
        CURL *curl;
};

struct lkh_conn *lkh_conn_new(void)
{
        struct lkh_conn *c = calloc(1, sizeof(*c));

        if (c && !(c->curl = curl_easy_init())) {
                free(c);
                c = NULL;
        }
        return c;
}

void lkh_conn_free(struct lkh_conn *c)
{
        if (c) {
                curl_easy_cleanup(c->curl);
                free(c);
        }
}

/*
 * One exchange, over conn's kept-alive connection or (conn NULL) a fresh handle; *ret_location
 * gets CURLINFO_REDIRECT_URL when there is one.
 */
static int http_exchange(struct lkh *h, struct lkh_conn *conn, const char *url_or_path,
                         const char *form_body, const char *const *headers, long *ret_status,
                         char **ret_body, char **ret_headers, char **ret_location)
{
        _cleanup_free_ char *url = NULL;
        struct buf body = { 0 }, hdrs = { 0 };
        struct curl_slist *list = NULL;
        CURL *curl;
        CURLcode cc;
        long status = 0;
        char *loc = NULL;
        int r = 0;

        if (!h->idp_base)
                return fail(-EINVAL, "the IdP is not running");
        url = strncmp(url_or_path, "https://", 8) == 0 ? strdup(url_or_path)
                                                        : lkh_xasprintf("%s%s", h->idp_base,
                                                                        url_or_path);
        if (!url)
                return -ENOMEM;
        /* A reset handle keeps its live connections: the next request skips the handshake. */
        if (conn)
                curl_easy_reset(conn->curl);
        curl = conn ? conn->curl : curl_easy_init();
        if (!curl)
                return -ENOMEM;
        for (size_t i = 0; headers && headers[i]; i++)
                list = curl_slist_append(list, headers[i]);
        curl_easy_setopt(curl, CURLOPT_URL, url);
        curl_easy_setopt(curl, CURLOPT_CAINFO, h->cert_file);
        curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
        curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, buf_write);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
        curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, buf_write);
        curl_easy_setopt(curl, CURLOPT_HEADERDATA, &hdrs);
        if (list)
                curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
        if (form_body) {
                curl_easy_setopt(curl, CURLOPT_POSTFIELDS, form_body);
                curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(form_body));
        }
        cc = curl_easy_perform(curl);
        if (cc != CURLE_OK) {
                r = fail(body.too_big ? -EFBIG : -EIO, "HTTPS request to the IdP failed: %s",
                         curl_easy_strerror(cc));
                goto out;
        }
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        if (ret_location) {
                char *l = NULL;
                curl_easy_getinfo(curl, CURLINFO_REDIRECT_URL, &l);
                if (l) {
                        loc = strdup(l);
                        if (!loc) {
                                r = -ENOMEM;
                                goto out;
                        }
                }
        }
        if (ret_status)
                *ret_status = status;
        if (ret_body) {
                *ret_body = body.data ? body.data : strdup("");
                body.data = NULL;
        }
        if (ret_headers) {
                *ret_headers = hdrs.data ? hdrs.data : strdup("");
                hdrs.data = NULL;
        }
        if (ret_location)
                *ret_location = loc;
out:
        curl_slist_free_all(list);
        if (!conn)
                curl_easy_cleanup(curl);
        free(body.data);
        free(hdrs.data);
        return r;
}

int lkh_http(struct lkh *h, const char *url, const char *form_body, const char *const *headers,
             long *ret_status, char **ret_body, char **ret_headers)
{
        return http_exchange(h, NULL, url, form_body, headers, ret_status, ret_body, ret_headers,
                             NULL);
}

static char *escape(const char *s)
{
        char *e = curl_easy_escape(NULL, s, 0);
        char *d;

        if (!e)
                abort();
        d = strdup(e);
        curl_free(e);
        if (!d)
                abort();
        return d;
}

char *lkh_idp_authorize_url(struct lkh *h, const char *state, const char *nonce,
                            const char *challenge)
{
        _cleanup_free_ char *cid = escape(h->client_id), *ru = escape(h->redirect_uri);
        _cleanup_free_ char *st = state ? escape(state) : NULL;
        _cleanup_free_ char *no = nonce ? escape(nonce) : NULL;
        _cleanup_free_ char *ch = challenge ? escape(challenge) : NULL;

        return lkh_xasprintf("%s/authorize?response_type=code&client_id=%s&redirect_uri=%s"
                             "&scope=openid%%20profile%s%s%s%s%s%s%s",
                             h->issuer, cid, ru, st ? "&state=" : "", st ? st : "",
                             no ? "&nonce=" : "", no ? no : "",
                             ch ? "&code_challenge=" : "", ch ? ch : "",
                             ch ? "&code_challenge_method=S256" : "");
}

int lkh_url_param(const char *url, const char *name, char **ret)
{
        const char *q = strchr(url, '?');
        size_t nlen = strlen(name);

        if (!q)
                return -ENOENT;
        for (const char *p = q + 1; *p;) {
                size_t len = strcspn(p, "&#");
                if (len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
                        int outlen = 0;
                        char *v = curl_easy_unescape(NULL, p + nlen + 1, (int)(len - nlen - 1),
                                                     &outlen);
                        char *d;
                        if (!v)
                                return -ENOMEM;
                        d = strndup(v, (size_t)outlen);
                        curl_free(v);
                        if (!d)
                                return -ENOMEM;
                        *ret = d;
                        return 0;
                }
                if (p[len] != '&')
                        break;
                p += len + 1;
        }
        return -ENOENT;
}

int lkh_browser_login(struct lkh *h, const char *authorize_url, const char *user, bool use_form,
                      char **ret_location, char **ret_code)
{
        return lkh_browser_login_on(h, NULL, authorize_url, user, use_form, ret_location,
                                    ret_code);
}

int lkh_browser_login_on(struct lkh *h, struct lkh_conn *conn, const char *authorize_url,
                         const char *user, bool use_form, char **ret_location, char **ret_code)
{
        _cleanup_free_ char *url = NULL, *location = NULL, *code = NULL, *body = NULL;
        _cleanup_free_ char *user_esc = escape(user), *hint = NULL;
        long status = 0;
        int r;

        if (!use_form) {
                bool has_hint = lkh_url_param(authorize_url, "login_hint", &hint) == 0;
                url = has_hint ? strdup(authorize_url)
                               : lkh_xasprintf("%s%slogin_hint=%s", authorize_url,
                                               strchr(authorize_url, '?') ? "&" : "?", user_esc);
                if (!url)
                        return -ENOMEM;
                r = http_exchange(h, conn, url, NULL, NULL, &status, NULL, NULL, &location);
                if (r < 0)
                        return r;
        } else {
                const char *q = strchr(authorize_url, '?');
                _cleanup_free_ char *action = NULL, *form = NULL;

                r = http_exchange(h, conn, authorize_url, NULL, NULL, &status, &body, NULL,
                                  NULL);
                if (r < 0)
                        return r;
                if (status != 200 || !strstr(body, "<form"))
                        return fail(-EPROTO, "the IdP showed no sign-in form (HTTP %ld)", status);
                /* The form posts every query parameter back with the user name. */
                action = q ? strndup(authorize_url, (size_t)(q - authorize_url))
                           : strdup(authorize_url);
                form = lkh_xasprintf("%s%susername=%s", q ? q + 1 : "", q ? "&" : "", user_esc);
                if (!action)
                        return -ENOMEM;
                r = http_exchange(h, conn, action, form, NULL, &status, NULL, NULL, &location);
                if (r < 0)
                        return r;
        }
        if (status != 302 || !location)
                return fail(-EPROTO, "the IdP answered the authorize request with HTTP %ld, "
                            "not a redirect", status);
        if (lkh_url_param(location, "code", &code) < 0)
                code = NULL; /* error=... instead */
        if (ret_location)
                *ret_location = TAKE_PTR(location);
        if (ret_code)
                *ret_code = TAKE_PTR(code);
        else
                lk_secret_free(TAKE_PTR(code));
        return 0;
}

/* ---- IdP control ------------------------------------------------------------- */

int lkh_idp_set(struct lkh *h, const char *name, const char *value)
{
        _cleanup_free_ char *n = escape(name), *v = escape(value ? value : "");
        _cleanup_free_ char *form = lkh_xasprintf("%s=%s", n, v), *body = NULL;
        long status = 0;
        int r;

        r = lkh_http(h, "/control", form, NULL, &status, &body, NULL);
        if (r < 0)
                return r;
        if (status != 200)
                return fail(-EINVAL, "the IdP refused switch %s (HTTP %ld): %s", name, status,
                            body);
        return 0;
}

int lkh_idp_reset(struct lkh *h)
{
        return lkh_idp_set(h, "reset", "1");
}

int lkh_idp_stat(struct lkh *h, const char *name, long *ret)
{
        _cleanup_free_ char *body = NULL;
        json_t *j, *v;
        long status = 0;
        int r;

        r = lkh_http(h, "/control/stats", NULL, NULL, &status, &body, NULL);
        if (r < 0)
                return r;
        if (status != 200)
                return fail(-EPROTO, "GET /control/stats: HTTP %ld", status);
        j = json_loads(body, 0, NULL);
        v = j ? json_object_get(j, name) : NULL;
        if (!json_is_integer(v)) {
                json_decref(j);
                return fail(-ENOENT, "no counter %s in the IdP's stats", name);
        }
        *ret = (long)json_integer_value(v);
        json_decref(j);
        return 0;
}

/* ---- another uid ----------------------------------------------------------- */

struct run_as_answer {
        int dropped; /* 1 when the child became uid/gid */
        int result;
};

int lkh_run_as(uid_t uid, gid_t gid, int (*fn)(void *userdata), void *userdata,
               int *ret_result)
{
        struct run_as_answer a = { 0 };
        int fds[2], status;
        ssize_t n;
        pid_t pid;

        if (pipe2(fds, O_CLOEXEC) < 0)
                return fail(-errno, "pipe: %m");
        fflush(NULL);
        pid = fork();
        if (pid < 0) {
                int r = -errno;
                close(fds[0]);
                close(fds[1]);
                return fail(r, "fork: %m");
        }
        if (pid == 0) {
                close(fds[0]);
                if ((geteuid() == 0 && setgroups(0, NULL) < 0) ||
                    setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0) {
                        a.dropped = 0;
                } else {
                        a.dropped = 1;
                        a.result = fn(userdata);
                }
                if (write(fds[1], &a, sizeof(a)) != (ssize_t)sizeof(a))
                        _exit(1);
                /* _exit: no atexit handlers, no leak check of the parent's state. */
                _exit(0);
        }
        close(fds[1]);
        do
                n = read(fds[0], &a, sizeof(a));
        while (n < 0 && errno == EINTR);
        close(fds[0]);
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return fail(-errno, "waitpid: %m");
        if (n != (ssize_t)sizeof(a))
                return fail(-ECHILD, "the child running as uid %u died (status 0x%x)",
                            (unsigned)uid, (unsigned)status);
        if (!a.dropped)
                return fail(-EPERM, "cannot become uid %u gid %u", (unsigned)uid, (unsigned)gid);
        *ret_result = a.result;
        return 0;
}

int lkh_free_port(unsigned *ret)
{
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(a);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
            getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
                int r = -errno;

                close(fd);
                return r;
        }
        close(fd);
        *ret = ntohs(a.sin_port);
        return 0;
}

int lkh_device_approve(struct lkh *h, const char *verification_url, const char *user, bool deny)
{
        _cleanup_free_ char *url = lkh_xasprintf("%s%cusername=%s%s", verification_url,
                                                 strchr(verification_url, '?') ? '&' : '?', user,
                                                 deny ? "&deny=1" : "");
        long status = 0;
        int r;

        r = lkh_http(h, url, NULL, NULL, &status, NULL, NULL);
        if (r < 0)
                return r;
        if (status != 200) {
                fprintf(stderr, "lkh_device_approve: the IdP answered HTTP %ld\n", status);
                return -EIO;
        }
        return 0;
}

int lkh_setup_broker(void **state, const struct lkh_idp_options *o, const char *config_extra)
{
        struct lkh *h = NULL;

        if (lkh_new(&h) < 0 || lkh_start_idp(h, o) < 0 || lkh_write_config(h, config_extra) < 0 ||
            lkh_start_bus(h) < 0 || lkh_start_broker(h, NULL) < 0) {
                lkh_free(h);
                return -1;
        }
        *state = h;
        return 0;
}

int lkh_teardown(void **state)
{
        lkh_free(*state);
        return 0;
}

int lkh_read_more(int *fd, char **text, size_t *len, size_t max)
{
        char buf[4096], *t;
        ssize_t n = read(*fd, buf, sizeof(buf));

        if (n <= 0) {
                close(*fd);
                *fd = -1;
                return 0;
        }
        if (*len + (size_t)n >= max)
                return -EFBIG;
        t = realloc(*text, *len + (size_t)n + 1);
        if (!t)
                return -ENOMEM;
        *text = t;
        memcpy(*text + *len, buf, (size_t)n);
        *len += (size_t)n;
        (*text)[*len] = '\0';
        return 0;
}
