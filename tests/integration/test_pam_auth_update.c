/* SPDX-License-Identifier: MIT */
/*
 * pam-configs/latchkey{,-session} through Debian's real pam-auth-update, in a
 * temporary root (--root, with a debconf database of its own, so the host's
 * is never touched), on Debian's default profiles (unix, systemd, mkhomedir):
 *
 *  - the order: latchkey's auth line ahead of pam_unix, jumping past the
 *    fallback on success; its session line after pam_systemd's; nothing in
 *    common-session-noninteractive (sudo, cron);
 *  - that the generated stacks are the ones docs/pam.md shows;
 *  - the stacks of sudo and login through the real libpam (pam_start_confdir,
 *    the module's path filled in), against a fake broker on a private bus that
 *    records every call to it and every connection to the bus: a user who is
 *    not an SSO user, and sudo for anyone, reach neither; login for an SSO
 *    user does. (What the module adds to such a stack is measured by
 *    latchkey-bench's group 11, bench/group_pam.c.)
 *
 * Skips (77) where pam-auth-update or Debian's profiles are not installed.
 */
#include <dbus/dbus.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <security/pam_appl.h>

#include "base/util.h"
#include "dbus/broker_wire.h"

#ifndef PAM_LATCHKEY_SO
#error "PAM_LATCHKEY_SO, PAM_CONFIGS_DIR and PAM_DOC must be defined by meson"
#endif

#define PAM_AUTH_UPDATE "/usr/sbin/pam-auth-update"
#define BROKER LK_BUS_NAME
#define SSO_USER "daemon"   /* an SSO user in this test's [pam] */
#define LOCAL_USER "root"   /* a local user who is not */

static char root[] = "/tmp/lk-pam-auth-update-XXXXXX";
static int failures;
static pid_t bus_pid, broker_pid;
static DBusConnection *bus;

#define CHECK(cond, ...)                                                                    \
        do {                                                                                \
                if (!(cond)) {                                                              \
                        fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                \
                        fprintf(stderr, __VA_ARGS__);                                       \
                        fputc('\n', stderr);                                                \
                        failures++;                                                         \
                }                                                                           \
        } while (0)

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
        va_list ap;
        char *s;

        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                abort();
        va_end(ap);
        return s;
}

static char *read_text(const char *path)
{
        FILE *f = fopen(path, "re");
        char *s = NULL;
        size_t n = 0;

        if (!f)
                return NULL;
        if (getdelim(&s, &n, 0, f) < 0) {
                free(s);
                s = NULL;
        }
        fclose(f);
        return s;
}

static void write_text(const char *path, const char *text)
{
        FILE *f = fopen(path, "we");

        if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
                fprintf(stderr, "cannot write %s: %m\n", path);
                exit(1);
        }
}

static void copy(const char *from, const char *to)
{
        _cleanup_free_ char *text = read_text(from);

        if (!text) {
                fprintf(stderr, "cannot read %s: %m\n", from);
                exit(1);
        }
        write_text(to, text);
}

static int run(const char *const argv[])
{
        int status;
        pid_t pid = fork();

        if (pid == 0) {
                execv(argv[0], (char *const *)argv);
                _exit(127);
        }
        if (pid < 0 || waitpid(pid, &status, 0) < 0)
                return -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/*
 * The rule lines of a PAM file, each with its white space runs made one
 * space, one per line: what a person reads, and what docs/pam.md shows.
 */
static char *rules(const char *path)
{
        _cleanup_free_ char *text = read_text(path);
        char *out, *o;

        if (!text || !(out = malloc(strlen(text) + 2)))
                abort();
        o = out;
        for (char *p = text; *p;) {
                char *nl = strchr(p, '\n');
                size_t len = nl ? (size_t)(nl - p) : strlen(p);
                bool space = false, any = false;

                for (size_t i = 0; i < len && p[0] != '#'; i++) {
                        if (p[i] == ' ' || p[i] == '\t') {
                                space = true;
                                continue;
                        }
                        if (space && any)
                                *o++ = ' ';
                        space = false;
                        any = true;
                        *o++ = p[i];
                }
                if (any)
                        *o++ = '\n';
                p += len + (nl ? 1 : 0);
        }
        *o = 0;
        return out;
}

/* The index of the first rule line holding needle, or -1. */
static int line_of(const char *rules_text, const char *needle)
{
        int n = 0;

        for (const char *p = rules_text; *p; n++) {
                const char *nl = strchr(p, '\n');
                size_t len = nl ? (size_t)(nl - p) : strlen(p);

                if (memmem(p, len, needle, strlen(needle)))
                        return n;
                p += len + (nl ? 1 : 0);
        }
        return -1;
}

/* ---- the temporary root, and pam-auth-update in it ---- */

static bool make_root(void)
{
        static const char *const debian[] = { "unix", "systemd", "mkhomedir" };
        static const char *const types[] = { "auth", "account", "password", "session",
                                             "session-noninteractive" };
        static const char *const dirs[] = { "/usr", "/usr/share", "/usr/share/pam-configs", "/etc",
                                            "/etc/pam.d", "/etc/latchkey", "/var", "/var/lib",
                                            "/var/lib/pam", "/debconf", "/run.d" };

        if (access(PAM_AUTH_UPDATE, X_OK) < 0 || access("/usr/share/pam/common-auth", R_OK) < 0 ||
            access("/usr/share/pam-configs/unix", R_OK) < 0 ||
            access("/usr/share/pam-configs/systemd", R_OK) < 0 ||
            access("/usr/bin/dbus-daemon", X_OK) < 0) {
                printf("SKIP: no pam-auth-update and its templates (libpam-runtime), no unix or "
                       "systemd profile (libpam-systemd), or no /usr/bin/dbus-daemon\n");
                return false;
        }
        if (!mkdtemp(root))
                exit(1);
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                _cleanup_free_ char *d = xasprintf("%s%s", root, dirs[i]);

                if (mkdir(d, 0755) < 0)
                        exit(1);
        }
        for (size_t i = 0; i < ELEMENTSOF(debian); i++) {
                _cleanup_free_ char *from = xasprintf("/usr/share/pam-configs/%s", debian[i]);
                _cleanup_free_ char *to = xasprintf("%s/usr/share/pam-configs/%s", root, debian[i]);

                if (access(from, R_OK) == 0)
                        copy(from, to);
        }
        /* pristine templates, as a fresh install has them */
        for (size_t i = 0; i < ELEMENTSOF(types); i++) {
                _cleanup_free_ char *from = xasprintf("/usr/share/pam/common-%s", types[i]);
                _cleanup_free_ char *to = xasprintf("%s/etc/pam.d/common-%s", root, types[i]);

                copy(from, to);
        }
        {
                _cleanup_free_ char *a = xasprintf("%s/usr/share/pam-configs/latchkey", root);
                _cleanup_free_ char *b = xasprintf("%s/usr/share/pam-configs/latchkey-session", root);
                _cleanup_free_ char *rc = xasprintf("%s/debconf.conf", root);
                _cleanup_free_ char *rc_text = xasprintf(
                        "Config: configdb\nTemplates: templatedb\n\n"
                        "Name: configdb\nDriver: File\nMode: 644\nFilename: %s/debconf/config.dat\n\n"
                        "Name: templatedb\nDriver: File\nMode: 644\nFilename: %s/debconf/templates.dat\n",
                        root, root);

                copy(PAM_CONFIGS_DIR "/latchkey", a);
                copy(PAM_CONFIGS_DIR "/latchkey-session", b);
                write_text(rc, rc_text);
                setenv("DEBCONF_SYSTEMRC", rc, 1);
                setenv("DEBIAN_FRONTEND", "noninteractive", 1);
        }
        return true;
}

static void pam_auth_update(void)
{
        const char *const first[] = { PAM_AUTH_UPDATE, "--root", root, "--force", "--package", NULL };
        const char *const enable[] = { PAM_AUTH_UPDATE, "--root", root, "--enable", "latchkey",
                                       "latchkey-session", NULL };

        CHECK(run(first) == 0, "pam-auth-update --force failed");
        CHECK(run(enable) == 0, "pam-auth-update --enable latchkey latchkey-session failed");
}

/* ---- the order, and docs/pam.md ---- */

static void check_order(void)
{
        _cleanup_free_ char *auth_path = xasprintf("%s/etc/pam.d/common-auth", root);
        _cleanup_free_ char *account_path = xasprintf("%s/etc/pam.d/common-account", root);
        _cleanup_free_ char *session_path = xasprintf("%s/etc/pam.d/common-session", root);
        _cleanup_free_ char *nonint_path = xasprintf("%s/etc/pam.d/common-session-noninteractive",
                                                     root);
        _cleanup_free_ char *auth = rules(auth_path), *account = rules(account_path);
        _cleanup_free_ char *session = rules(session_path), *nonint = rules(nonint_path);
        _cleanup_free_ char *doc = read_text(PAM_DOC);
        int lk = line_of(auth, "pam_latchkey.so"), unix_ = line_of(auth, "pam_unix.so");
        int permit = line_of(auth, "pam_permit.so"), jump = -1;

        printf("common-auth:\n%s\ncommon-account:\n%s\ncommon-session:\n%s\n"
               "common-session-noninteractive:\n%s\n", auth, account, session, nonint);

        /* auth: SSO first; on success past pam_unix and the pam_deny fallback, to pam_permit */
        CHECK(lk >= 0 && unix_ > lk, "pam_latchkey.so must come before pam_unix.so in common-auth");
        CHECK(sscanf(strstr(auth, "[success=") ?: "", "[success=%d", &jump) == 1 &&
              lk + jump + 1 == permit, "latchkey's success= must land on pam_permit.so");
        CHECK(strstr(auth, "pam_latchkey.so\n") != NULL, "the auth line takes no arguments");
        /* account: after pam_unix, never instead of it */
        CHECK(line_of(account, "pam_latchkey.so") > line_of(account, "pam_unix.so"),
              "pam_latchkey.so must come after pam_unix.so in common-account");
        /* session: after pam_systemd, so that XDG_SESSION_ID is set */
        CHECK(line_of(session, "pam_systemd.so") >= 0 &&
              line_of(session, "pam_latchkey.so") > line_of(session, "pam_systemd.so"),
              "pam_latchkey.so must come after pam_systemd.so in common-session");
        CHECK(line_of(nonint, "pam_latchkey.so") < 0,
              "pam_latchkey.so has no business in common-session-noninteractive");

        /* docs/pam.md shows exactly these */
        CHECK(doc && strstr(doc, auth), "docs/pam.md does not show this common-auth");
        CHECK(doc && strstr(doc, account), "docs/pam.md does not show this common-account");
        CHECK(doc && strstr(doc, session), "docs/pam.md does not show this common-session");
}

/* ---- a broker that records everything ---- */

/*
 * The fake broker, in a child: owns org.latchkey.Broker1, watches every new
 * connection to the bus (NameOwnerChanged of a unique name), refuses every
 * call (AccessDenied), and answers org.latchkey.Test.Sync with what it saw
 * since the last Sync: (connections, calls, the calls' names).
 */
static void fake_broker(int ready)
{
        DBusError err;
        DBusConnection *c;
        DBusMessage *m;
        unsigned connections = 0, calls = 0;
        char names[4096] = "";

        dbus_error_init(&err);
        c = dbus_bus_get_private(DBUS_BUS_SYSTEM, &err);
        if (!c || dbus_bus_request_name(c, BROKER, DBUS_NAME_FLAG_DO_NOT_QUEUE, &err) !=
                          DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER)
                _exit(1);
        dbus_bus_add_match(c, "type='signal',sender='org.freedesktop.DBus',member='NameOwnerChanged'",
                           &err);
        if (dbus_error_is_set(&err))
                _exit(1);
        (void)!write(ready, "1", 1);
        while (dbus_connection_read_write(c, -1)) {
                while ((m = dbus_connection_pop_message(c))) {
                        const char *name = NULL, *old = NULL, *new = NULL;
                        DBusMessage *reply = NULL;

                        if (dbus_message_is_signal(m, "org.freedesktop.DBus", "NameOwnerChanged") &&
                            dbus_message_get_args(m, NULL, DBUS_TYPE_STRING, &name, DBUS_TYPE_STRING,
                                                  &old, DBUS_TYPE_STRING, &new, DBUS_TYPE_INVALID) &&
                            name[0] == ':' && !*old && *new) {
                                connections++;
                        } else if (dbus_message_is_method_call(m, "org.latchkey.Test", "Sync")) {
                                const char *n = names;

                                reply = dbus_message_new_method_return(m);
                                dbus_message_append_args(reply, DBUS_TYPE_UINT32, &connections,
                                                         DBUS_TYPE_UINT32, &calls, DBUS_TYPE_STRING,
                                                         &n, DBUS_TYPE_INVALID);
                                connections = calls = 0;
                                names[0] = 0;
                        } else if (dbus_message_get_type(m) == DBUS_MESSAGE_TYPE_METHOD_CALL) {
                                size_t len = strlen(names);

                                calls++;
                                snprintf(names + len, sizeof(names) - len, "%s ",
                                         dbus_message_get_member(m) ?: "?");
                                reply = dbus_message_new_error(m, LK_BUS_ERROR_ACCESS_DENIED,
                                                               "recorded and refused");
                        }
                        if (reply) {
                                dbus_connection_send(c, reply, NULL);
                                dbus_message_unref(reply);
                        }
                        dbus_message_unref(m);
                }
        }
        _exit(0);
}

static void start_bus_and_broker(void)
{
        _cleanup_free_ char *addr = xasprintf("unix:path=%s/bus", root);
        _cleanup_free_ char *conf = xasprintf("%s/bus.conf", root);
        _cleanup_free_ char *conf_text = xasprintf(
                "<busconfig>\n  <type>system</type>\n  <listen>%s</listen>\n"
                "  <auth>EXTERNAL</auth>\n"
                "  <policy context=\"default\">\n    <allow user=\"*\"/>\n"
                "    <allow own=\"*\"/>\n    <allow send_destination=\"*\" eavesdrop=\"false\"/>\n"
                "    <allow receive_sender=\"*\"/>\n  </policy>\n</busconfig>\n", addr);
        _cleanup_free_ char *arg = xasprintf("--config-file=%s", conf);
        _cleanup_free_ char *sock = xasprintf("%s/bus", root);
        int fds[2];
        char ok = 0;
        DBusError err;

        write_text(conf, conf_text);
        bus_pid = fork();
        if (bus_pid == 0) {
                execl("/usr/bin/dbus-daemon", "dbus-daemon", "--nofork", "--nopidfile", arg,
                      "--nosyslog", (char *)NULL);
                _exit(127);
        }
        for (int i = 0; i < 500 && access(sock, F_OK) < 0; i++)
                usleep(10000);
        setenv("DBUS_SYSTEM_BUS_ADDRESS", addr, 1);

        if (pipe2(fds, O_CLOEXEC) < 0)
                exit(1);
        broker_pid = fork();
        if (broker_pid == 0)
                fake_broker(fds[1]);
        close(fds[1]);
        if (read(fds[0], &ok, 1) != 1 || ok != '1') {
                fprintf(stderr, "the fake broker did not start\n");
                exit(1);
        }
        close(fds[0]);
        /* our own connection, made before anything is counted */
        dbus_error_init(&err);
        bus = dbus_bus_get_private(DBUS_BUS_SYSTEM, &err);
        if (!bus) {
                fprintf(stderr, "cannot reach the bus: %s\n", err.message);
                exit(1);
        }
        dbus_connection_set_exit_on_disconnect(bus, FALSE);
}

/* What the fake broker saw since the last sync. */
static void sync_broker(unsigned *connections, unsigned *calls, char **names)
{
        DBusMessage *m = dbus_message_new_method_call(BROKER, LK_BUS_PATH,
                                                      "org.latchkey.Test", "Sync");
        DBusMessage *reply;
        DBusError err;
        const char *n = "";

        dbus_error_init(&err);
        reply = dbus_connection_send_with_reply_and_block(bus, m, 10000, &err);
        dbus_message_unref(m);
        if (!reply || !dbus_message_get_args(reply, &err, DBUS_TYPE_UINT32, connections,
                                             DBUS_TYPE_UINT32, calls, DBUS_TYPE_STRING, &n,
                                             DBUS_TYPE_INVALID)) {
                fprintf(stderr, "Sync failed: %s\n", err.message ?: "");
                exit(1);
        }
        if (names)
                *names = strdup(n);
        dbus_message_unref(reply);
}

/* ---- the stacks through libpam ---- */

struct seen {
        unsigned info, echo_on, echo_off, errors;
        bool address; /* an http(s) address was shown */
};

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *userdata)
{
        struct seen *s = userdata;
        struct pam_response *r = calloc((size_t)n, sizeof(*r));

        if (!r)
                return PAM_BUF_ERR;
        for (int i = 0; i < n; i++) {
                switch (msg[i]->msg_style) {
                case PAM_TEXT_INFO:
                        s->info++;
                        if (strstr(msg[i]->msg, "http"))
                                s->address = true;
                        break;
                case PAM_ERROR_MSG:
                        s->errors++;
                        break;
                case PAM_PROMPT_ECHO_ON:
                        s->echo_on++;
                        r[i].resp = strdup("not-a-code");
                        break;
                case PAM_PROMPT_ECHO_OFF:
                        s->echo_off++;
                        r[i].resp = strdup("not-the-password");
                        break;
                default:
                        break;
                }
        }
        *resp = r;
        return PAM_SUCCESS;
}

static void no_delay(int retval, unsigned usec_delay, void *appdata)
{
        /* pam_unix's and pam_faildelay's delay after a failure: not in a test */
}

/*
 * Writes run.d/<name> from text with each "@include FILE" replaced by
 * run.d/FILE: libpam reads an include from /etc/pam.d even with
 * pam_start_confdir, which would run the host's stack instead of ours.
 */
static void write_service(const char *name, const char *text)
{
        _cleanup_free_ char *path = xasprintf("%s/run.d/%s", root, name);
        FILE *f = fopen(path, "we");

        if (!f)
                exit(1);
        for (const char *p = text; *p;) {
                const char *nl = strchr(p, '\n');
                size_t len = nl ? (size_t)(nl - p) : strlen(p);

                if (strncmp(p, "@include", 8) == 0) {
                        _cleanup_free_ char *file = strndup(p + 8, len - 8);
                        _cleanup_free_ char *inc = xasprintf("%s/run.d/%s", root,
                                                             file + strspn(file, " \t"));
                        _cleanup_free_ char *body = read_text(inc);

                        if (!body) {
                                fprintf(stderr, "%s: cannot read %s\n", name, inc);
                                exit(1);
                        }
                        fputs(body, f);
                } else {
                        fwrite(p, 1, len, f);
                        fputc('\n', f);
                }
                p += len + (nl ? 1 : 0);
        }
        fclose(f);
}

/* The stacks to run: the generated files, with the module's path and this test's config. */
static void make_run_dir(void)
{
        static const char *const files[] = { "common-auth", "common-account", "common-session",
                                             "common-session-noninteractive", "common-password" };
        _cleanup_free_ char *module = xasprintf("%s config=%s/etc/latchkey/latchkey.conf",
                                                PAM_LATCHKEY_SO, root);
        _cleanup_free_ char *conf = xasprintf("%s/etc/latchkey/latchkey.conf", root);
        /* Debian 12's /etc/pam.d/sudo (package sudo), for hosts without it */
        static const char debian_sudo[] =
                "#%PAM-1.0\n"
                "session    required   pam_limits.so\n"
                "@include common-auth\n"
                "@include common-account\n"
                "@include common-session-noninteractive\n";

        write_text(conf, "[pam]\n# services: the default list\nusers = " SSO_USER "\n");
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                _cleanup_free_ char *from = xasprintf("%s/etc/pam.d/%s", root, files[i]);
                _cleanup_free_ char *to = xasprintf("%s/run.d/%s", root, files[i]);
                _cleanup_free_ char *text = read_text(from);
                FILE *f = fopen(to, "we");
                char *p = text, *hit;

                if (!text || !f)
                        exit(1);
                while ((hit = strstr(p, "pam_latchkey.so"))) {
                        fwrite(p, 1, (size_t)(hit - p), f);
                        fputs(module, f);
                        p = hit + strlen("pam_latchkey.so");
                }
                fputs(p, f);
                fclose(f);
        }
        {
                _cleanup_free_ char *sudo = read_text("/etc/pam.d/sudo");
                _cleanup_free_ char *login = read_text("/etc/pam.d/login");

                write_service("sudo", sudo ?: debian_sudo);
                write_service("login", login ?: "@include common-auth\n@include common-account\n");
        }
}

/* pam_authenticate and pam_acct_mgmt of service for user; what the person saw. */
static void run_stack(const char *service, const char *user, struct seen *s)
{
        _cleanup_free_ char *dir = xasprintf("%s/run.d", root);
        struct pam_conv c = { conv, s };
        pam_handle_t *ph = NULL;
        int r;

        *s = (struct seen){};
        CHECK(pam_start_confdir(service, user, &c, dir, &ph) == PAM_SUCCESS, "pam_start %s", service);
        if (!ph)
                return;
        (void)pam_set_item(ph, PAM_FAIL_DELAY, (const void *)no_delay);
        r = pam_authenticate(ph, 0);
        printf("%s as %s: pam_authenticate: %s; %u info, %u visible and %u hidden prompts\n",
               service, user, pam_strerror(ph, r), s->info, s->echo_on, s->echo_off);
        if (r == PAM_SUCCESS)
                (void)pam_acct_mgmt(ph, 0);
        pam_end(ph, r);
}

static void check_who_reaches_the_broker(void)
{
        /* How far a stack gets: not at all, GetPinState only, or a login. */
        enum { NONE, PIN_STATE, LOGIN };
        static const struct {
                const char *service, *user;
                int reaches;
        } cases[] = {
                { "sudo", LOCAL_USER, NONE },
                /* sudo is no SSO service; by default (issue 21, [pam] methods sudo:pin) it
                 * asks only whether the SSO user has a usable PIN: no login, no prompt */
                { "sudo", SSO_USER, PIN_STATE },
                { "login", LOCAL_USER, NONE },
                { "login", SSO_USER, LOGIN },
        };
        unsigned connections, calls;

        sync_broker(&connections, &calls, NULL);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *names = NULL;
                struct seen s;

                run_stack(cases[i].service, cases[i].user, &s);
                sync_broker(&connections, &calls, &names);
                printf("  the broker saw %u connections to the bus, %u calls: %s\n", connections,
                       calls, names);
                if (cases[i].reaches == LOGIN) {
                        CHECK(calls >= 1 && strstr(names, "BeginLogin"),
                              "%s for %s must begin a login", cases[i].service, cases[i].user);
                } else if (cases[i].reaches == PIN_STATE) {
                        CHECK(calls == 1 && strstr(names, "GetPinState") &&
                                      !strstr(names, "BeginLogin"),
                              "%s for %s: only GetPinState (%u calls: %s)", cases[i].service,
                              cases[i].user, calls, names);
                        /* the one hidden prompt is pam_unix's password */
                        CHECK(s.echo_on == 0 && s.echo_off <= 1 && !s.address,
                              "%s for %s: no sign-in address, no prompt from latchkey",
                              cases[i].service, cases[i].user);
                } else {
                        CHECK(connections == 0 && calls == 0,
                              "%s for %s: the broker must not be reached (%u connections, %u calls)",
                              cases[i].service, cases[i].user, connections, calls);
                        CHECK(s.echo_on == 0 && !s.address,
                              "%s for %s: no sign-in address, no prompt from latchkey",
                              cases[i].service, cases[i].user);
                }
        }
}

static void cleanup(void)
{
        const char *const rm[] = { "/bin/rm", "-rf", "--", root, NULL };

        if (bus) {
                dbus_connection_close(bus);
                dbus_connection_unref(bus);
        }
        if (broker_pid > 0) {
                kill(broker_pid, SIGTERM);
                waitpid(broker_pid, NULL, 0);
        }
        if (bus_pid > 0) {
                kill(bus_pid, SIGTERM);
                waitpid(bus_pid, NULL, 0);
        }
        if (strstr(root, "XXXXXX") == NULL)
                (void)run(rm);
}

int main(void)
{
        if (!make_root())
                return 77;
        if (!getpwnam(SSO_USER) || !getpwnam(LOCAL_USER)) {
                printf("SKIP: no local users " SSO_USER " and " LOCAL_USER "\n");
                cleanup();
                return 77;
        }
        pam_auth_update();
        check_order();
        start_bus_and_broker();
        make_run_dir();
        check_who_reaches_the_broker();
        cleanup();
        printf("%s\n", failures ? "FAILED" : "OK");
        return failures ? 1 : 0;
}
