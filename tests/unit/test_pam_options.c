/* SPDX-License-Identifier: MIT */
/* pam_latchkey's arguments (SPEC §8) and its one table from D-Bus errors to PAM codes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <security/_pam_types.h>

#include "base/ini_files.h"
#include "pam_module/options.h"
#include "pam_module/pam_errors.h"

#define ARGS(...) ((const char *[]){ __VA_ARGS__ })
#define NARGS(...) ((int)(sizeof((const char *[]){ __VA_ARGS__ }) / sizeof(const char *)))
#define PARSE(o, ...) lkp_options_parse(o, NULL, NARGS(__VA_ARGS__), ARGS(__VA_ARGS__))

static void test_defaults(void **state)
{
        struct options o;

        assert_int_equal(lkp_options_parse(&o, NULL, 0, NULL), 0);
        assert_false(o.debug);
        assert_false(o.qr);
        assert_false(o.ignore_unknown_user);
        assert_false(o.authtok);
        assert_int_equal(o.timeout, 60);
        assert_int_equal(o.tries, 3);
}

static void test_every_argument(void **state)
{
        struct options o;

        assert_int_equal(PARSE(&o, "debug", "qr", "ignore_unknown_user", "authtok", "timeout=5",
                               "tries=7"), 0);
        assert_true(o.debug);
        assert_true(o.qr);
        assert_true(o.ignore_unknown_user);
        assert_true(o.authtok);
        assert_int_equal(o.timeout, 5);
        assert_int_equal(o.tries, 7);
}

static void test_later_wins(void **state)
{
        struct options o;

        assert_int_equal(PARSE(&o, "qr", "noqr", "timeout=10", "timeout=20", "tries=1", "tries=2"), 0);
        assert_false(o.qr);
        assert_int_equal(o.timeout, 20);
        assert_int_equal(o.tries, 2);
        assert_int_equal(PARSE(&o, "noqr", "qr"), 0);
        assert_true(o.qr);
}

static void test_bad_numbers_keep_the_default(void **state)
{
        static const char *const bad_timeouts[] = {
                "timeout=", "timeout=0", "timeout=-1", "timeout=+5", "timeout= 5", "timeout=5 ",
                "timeout=5s", "timeout=abc", "timeout=3601", "timeout=99999999999999999999999",
                "timeout=0x10", "timeout=1e3",
        };
        static const char *const bad_tries[] = {
                "tries=", "tries=0", "tries=11", "tries=-3", "tries=two", "tries=3.5",
        };
        struct options o;

        for (size_t i = 0; i < sizeof(bad_timeouts) / sizeof(bad_timeouts[0]); i++) {
                const char *argv[] = { "timeout=9", bad_timeouts[i] };

                assert_int_equal(lkp_options_parse(&o, NULL, 2, argv), 1);
                assert_int_equal(o.timeout, 9);
        }
        for (size_t i = 0; i < sizeof(bad_tries) / sizeof(bad_tries[0]); i++) {
                const char *argv[] = { bad_tries[i] };

                assert_int_equal(lkp_options_parse(&o, NULL, 1, argv), 1);
                assert_int_equal(o.tries, 3);
        }
        assert_int_equal(PARSE(&o, "timeout=3600", "tries=10"), 0);
        assert_int_equal(o.timeout, 3600);
        assert_int_equal(o.tries, 10);
        assert_int_equal(PARSE(&o, "timeout=1", "tries=1"), 0);
        assert_int_equal(o.timeout, 1);
        assert_int_equal(o.tries, 1);
}

static void test_unknown_arguments_are_ignored(void **state)
{
        struct options o;

        assert_int_equal(PARSE(&o, "Debug", "qr=yes", "nullok", "debug", "", "timeout"), 5);
        assert_true(o.debug);
        assert_false(o.qr);
        assert_int_equal(o.timeout, 60);
        /* pam_get_authtok()'s own arguments are known, so not reported */
        assert_int_equal(PARSE(&o, "authtok", "use_first_pass", "try_first_pass"), 0);

        const char *with_null[] = { "qr", NULL, "debug" };
        assert_int_equal(lkp_options_parse(&o, NULL, 3, with_null), 0);
        assert_true(o.qr);
        assert_true(o.debug);
}

/* ---- the [pam] section of latchkey.conf (issue 15) ---- */

static char dir[] = "/tmp/lk-pam-options-XXXXXX";

static void write_at(const char *name, const char *text, mode_t mode)
{
        char path[256];
        int fd;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        unlink(path);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        assert_int_equal(fchmod(fd, mode), 0);
        close(fd);
}

/* Parses with config=DIR/latchkey.conf and the given extra arguments (up to 3). */
static void parse_with(struct options *o, const char *a, const char *b)
{
        char config[300];
        const char *argv[3] = { config, a, b };

        snprintf(config, sizeof(config), "config=%s/latchkey.conf", dir);
        lkp_options_parse(o, NULL, 1 + (a != NULL) + (b != NULL), argv);
}

/* Each test starts without drop-ins. */
static int clear_dropins(void **state)
{
        static const char *const names[] = { "10-a.conf", "20-b.conf", "30-c.conf.off" };
        char path[300];

        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                snprintf(path, sizeof(path), "%s/latchkey.conf.d/%s", dir, names[i]);
                unlink(path);
        }
        return 0;
}

static int make_dir(void **state)
{
        char d[300];

        if (!mkdtemp(dir))
                return -1;
        snprintf(d, sizeof(d), "%s/latchkey.conf.d", dir);
        return mkdir(d, 0755);
}

static int remove_dir(void **state)
{
        char cmd[400];

        snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", dir);
        return system(cmd) == 0 ? 0 : -1;
}

static void test_sso_defaults(void **state)
{
        struct options o;

        lkp_options_parse(&o, NULL, 1, (const char *[]){ "config=/nonexistent/latchkey.conf" });
        /* the logins of people, never sudo, su, cron... */
        for (const char *const *s = (const char *const[]){ "sshd", "login", "gdm-password",
                                                          "lightdm", "sddm", NULL }; *s; s++)
                assert_true(lkp_sso_service(&o, *s));
        for (const char *const *s = (const char *const[]){ "sudo", "su", "su-l", "cron", "sshd-x",
                                                          "ssh", "", NULL }; *s; s++)
                assert_false(lkp_sso_service(&o, *s));
        assert_false(lkp_sso_service(&o, NULL));
        /* ... and nobody, until the admin names them */
        assert_false(lkp_sso_user(&o, NULL, "alice"));
        assert_false(lkp_sso_user(&o, NULL, "root"));
}

/* [pam] methods (issue 21): the defaults, an argument replacing them, web only with services. */
static void test_methods(void **state)
{
        const unsigned web = LKP_METHOD_WEB, off = LKP_METHOD_OFFLINE, pin = LKP_METHOD_PIN;
        struct options o;

        lkp_options_parse(&o, NULL, 1, (const char *[]){ "config=/nonexistent/latchkey.conf" });
        assert_int_equal(lkp_service_methods(&o, "sshd"), web);
        assert_int_equal(lkp_service_methods(&o, "login"), web | off);
        assert_int_equal(lkp_service_methods(&o, "gdm-password"), web | off);
        assert_int_equal(lkp_service_methods(&o, "sudo"), pin);
        assert_int_equal(lkp_service_methods(&o, "swaylock"), pin);
        assert_int_equal(lkp_service_methods(&o, "cron"), 0);
        assert_int_equal(lkp_service_methods(&o, "other"), 0);
        assert_int_equal(lkp_service_methods(&o, "sud"), 0); /* no prefix match */
        assert_int_equal(lkp_service_methods(&o, NULL), 0);

        lkp_options_parse(&o, NULL, 2, (const char *[]){
                "config=/nonexistent/latchkey.conf",
                "methods=sshd:web+offline,sudo:none cron:web login:pin login:web+bogus" });
        assert_int_equal(lkp_service_methods(&o, "sshd"), web | off);
        assert_int_equal(lkp_service_methods(&o, "sudo"), 0);
        /* web counts only where services lists the service */
        assert_int_equal(lkp_service_methods(&o, "cron"), 0);
        /* the last entry wins; an unknown word adds nothing */
        assert_int_equal(lkp_service_methods(&o, "login"), web);
        /* not named here: services gives it web+offline, nothing else gives it the PIN */
        assert_int_equal(lkp_service_methods(&o, "lightdm"), web | off);
        assert_int_equal(lkp_service_methods(&o, "swaylock"), 0);
}

static void test_sso_from_config_and_dropins(void **state)
{
        struct options o;

        write_at("latchkey.conf", "[provider]\n"
                                  "issuer = https://idp.example.com\n"
                                  "users = not-here\n"
                                  "[pam]\n"
                                  "# who meets SSO\n"
                                  "  services = sshd, xscreensaver\t\r\n"
                                  "users = alice bob\n"
                                  "nonsense line\n"
                                  "typo = carol\n"
                                  "[users]\n"
                                  "users = mallory\n", 0644);
        write_at("latchkey.conf.d/20-b.conf", "[pam]\nusers = dave\n", 0644);
        write_at("latchkey.conf.d/10-a.conf", "[pam]\nusers = erin\ngroups: sso\n", 0644);
        write_at("latchkey.conf.d/30-c.conf.off", "[pam]\nusers = frank\n", 0644);
        parse_with(&o, NULL, NULL);
        assert_string_equal(o.services, "sshd, xscreensaver");
        assert_true(lkp_sso_service(&o, "xscreensaver"));
        assert_false(lkp_sso_service(&o, "login")); /* the list replaces the default */
        /* 10-a, then 20-b: the later one wins; .off is not read; other sections' users are not
         * ours; "key: value" is a key, as inih (and so the broker) reads it */
        assert_string_equal(o.users, "dave");
        assert_string_equal(o.groups, "sso");
        assert_true(lkp_sso_user(&o, NULL, "dave"));
        assert_false(lkp_sso_user(&o, NULL, "alice"));
        assert_false(lkp_sso_user(&o, NULL, "mallory"));
        assert_false(lkp_sso_user(&o, NULL, "frank"));

        /* the arguments come last and replace a whole value */
        parse_with(&o, "users=*", "services=sudo");
        assert_true(lkp_sso_user(&o, NULL, "anyone"));
        assert_true(lkp_sso_service(&o, "sudo"));
        assert_false(lkp_sso_service(&o, "sshd"));
}

/* A file that group or others may write decides nothing (and neither does a folder). */
static void test_sso_writable_config_ignored(void **state)
{
        struct options o;
        char d[300];

        write_at("latchkey.conf", "[pam]\nusers = alice\n", 0664);
        write_at("latchkey.conf.d/10-a.conf", "[pam]\nservices = sudo\n", 0646);
        write_at("latchkey.conf.d/20-b.conf", "[pam]\ngroups = wheel\n", 0600);
        parse_with(&o, NULL, NULL);
        assert_false(lkp_sso_user(&o, NULL, "alice"));
        assert_false(lkp_sso_service(&o, "sudo"));
        assert_string_equal(o.groups, "wheel");

        snprintf(d, sizeof(d), "%s/latchkey.conf.d", dir);
        assert_int_equal(chmod(d, 0777), 0);
        parse_with(&o, NULL, NULL);
        assert_string_equal(o.groups, "");
        assert_int_equal(chmod(d, 0755), 0);
}

/* Unreadable, not a file, too large, over-long lines: the rest still counts, nothing crashes. */
static void test_sso_bad_files(void **state)
{
        struct options o;
        char *big = malloc(LK_INI_FILE_MAX + 100), *line = malloc(LKP_LIST_MAX + 100);
        char path[300], text[LKP_LIST_MAX + 200];

        assert_non_null(big);
        assert_non_null(line);
        memset(big, '#', LK_INI_FILE_MAX + 99);
        big[LK_INI_FILE_MAX + 99] = 0;
        memcpy(big, "[pam]\nusers=big\n", 16);
        write_at("latchkey.conf", big, 0644);
        write_at("latchkey.conf.d/10-a.conf", "[pam]\nservices = sshd\n", 0644);
        parse_with(&o, NULL, NULL);
        assert_string_equal(o.users, "");
        assert_string_equal(o.services, "sshd");

        memset(line, 'x', LKP_LIST_MAX + 99);
        line[LKP_LIST_MAX + 99] = 0;
        snprintf(text, sizeof(text), "[pam]\nusers = %s\ngroups = ok\n", line);
        write_at("latchkey.conf", text, 0644);
        parse_with(&o, NULL, NULL);
        assert_string_equal(o.users, "");
        assert_string_equal(o.groups, "ok");

        /* a folder where the file should be */
        snprintf(path, sizeof(path), "%s/latchkey.conf", dir);
        unlink(path);
        assert_int_equal(mkdir(path, 0755), 0);
        parse_with(&o, NULL, NULL);
        assert_string_equal(o.users, "");
        assert_int_equal(rmdir(path), 0);

        /* config= must be an absolute path; a bad one leaves the default file in place */
        lkp_options_parse(&o, NULL, 1, (const char *[]){ "config=relative.conf" });
        assert_string_equal(o.config, "/etc/latchkey/latchkey.conf");
        free(big);
        free(line);
}

/*
 * A screen locker runs as the user: a config only root may read gives the
 * defaults (nobody is an SSO user), quietly and without a crash.
 */
static void test_sso_unreadable_config(void **state)
{
        int status;
        pid_t pid;

        if (geteuid() != 0)
                skip(); /* needs another uid than the file's owner */
        write_at("latchkey.conf", "[pam]\nusers = *\nservices = sudo\n", 0600);
        assert_int_equal(chmod(dir, 0755), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                struct options o;

                if (setgid(65534) < 0 || setuid(65534) < 0)
                        _exit(2);
                parse_with(&o, NULL, NULL);
                _exit(!lkp_sso_user(&o, NULL, "alice") && !lkp_sso_service(&o, "sudo") &&
                      lkp_sso_service(&o, "sshd") ? 0 : 1);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_list_has(void **state)
{
        assert_true(lkp_list_has("a b,c\td", "c"));
        assert_true(lkp_list_has("a b,c\td", "d"));
        assert_false(lkp_list_has("abc", "ab"));
        assert_false(lkp_list_has("abc", ""));
        assert_false(lkp_list_has("", "a"));
        assert_false(lkp_list_has(NULL, "a"));
        assert_false(lkp_list_has("a", NULL));
}

#define BROKER "org.latchkey.Broker1.Error."
#define BUS "org.freedesktop.DBus.Error."

struct mapping {
        const char *name;
        int begin;    /* PAM code when BeginLogin fails so */
        int complete; /* when CompleteLogin does */
        bool retry;
};

/* SPEC §8, and what the module makes of the bus's own errors. */
static const struct mapping expected[] = {
        { BROKER "AccessDenied", PAM_AUTH_ERR, PAM_AUTH_ERR, false },
        { BROKER "InvalidArgument", PAM_USER_UNKNOWN, PAM_AUTH_ERR, true },
        { BROKER "NotFound", PAM_USER_UNKNOWN, PAM_AUTH_ERR, false },
        { BROKER "LoginExpired", PAM_AUTH_ERR, PAM_AUTH_ERR, false },
        { BROKER "InvalidGrant", PAM_AUTH_ERR, PAM_AUTH_ERR, true },
        { BROKER "InvalidIdToken", PAM_AUTH_ERR, PAM_AUTH_ERR, false },
        { BROKER "UserMismatch", PAM_AUTH_ERR, PAM_AUTH_ERR, false },
        { BROKER "NotAllowed", PAM_PERM_DENIED, PAM_PERM_DENIED, false },
        { BROKER "ProviderUnavailable", PAM_AUTHINFO_UNAVAIL, PAM_AUTHINFO_UNAVAIL, false },
        { BROKER "TokenExpired", PAM_AUTH_ERR, PAM_AUTH_ERR, false },
        { BROKER "TooManyRequests", PAM_AUTH_ERR, PAM_AUTH_ERR, false },
        { BROKER "SomethingNew", PAM_AUTH_ERR, PAM_AUTH_ERR, false },
        { BROKER "InvalidGrantX", PAM_AUTH_ERR, PAM_AUTH_ERR, false },
        { LKP_ERROR_USER_UNKNOWN, PAM_USER_UNKNOWN, PAM_USER_UNKNOWN, false },
        { LKP_ERROR_BAD_ANSWER, PAM_AUTH_ERR, PAM_AUTH_ERR, true },
        { LKP_ERROR_BAD_REPLY, PAM_AUTHINFO_UNAVAIL, PAM_AUTHINFO_UNAVAIL, false },
        { BUS "NoMemory", PAM_BUF_ERR, PAM_BUF_ERR, false },
        { BUS "ServiceUnknown", PAM_AUTHINFO_UNAVAIL, PAM_AUTHINFO_UNAVAIL, false },
        { BUS "NameHasNoOwner", PAM_AUTHINFO_UNAVAIL, PAM_AUTHINFO_UNAVAIL, false },
        { BUS "NoReply", PAM_AUTHINFO_UNAVAIL, PAM_AUTHINFO_UNAVAIL, false },
        { BUS "Timeout", PAM_AUTHINFO_UNAVAIL, PAM_AUTHINFO_UNAVAIL, false },
        { BUS "Disconnected", PAM_AUTHINFO_UNAVAIL, PAM_AUTHINFO_UNAVAIL, false },
        { BUS "NoServer", PAM_AUTHINFO_UNAVAIL, PAM_AUTHINFO_UNAVAIL, false },
        { BUS "FileNotFound", PAM_AUTHINFO_UNAVAIL, PAM_AUTHINFO_UNAVAIL, false },
        { BUS "Spawn.ChildExited", PAM_AUTHINFO_UNAVAIL, PAM_AUTHINFO_UNAVAIL, false },
        { BUS "AccessDenied", PAM_AUTHINFO_UNAVAIL, PAM_AUTHINFO_UNAVAIL, false },
        { BUS "UnknownMethod", PAM_AUTHINFO_UNAVAIL, PAM_AUTHINFO_UNAVAIL, false },
        { BUS "Failed", PAM_AUTHINFO_UNAVAIL, PAM_AUTHINFO_UNAVAIL, false },
        /* Not under any namespace we know, or no name at all: fail closed, let the stack fall back */
        { "org.latchkey.Broker1.Error", PAM_AUTHINFO_UNAVAIL, PAM_AUTHINFO_UNAVAIL, false },
        { "com.example.Whatever", PAM_AUTHINFO_UNAVAIL, PAM_AUTHINFO_UNAVAIL, false },
        { "", PAM_AUTHINFO_UNAVAIL, PAM_AUTHINFO_UNAVAIL, false },
};

static void test_error_table(void **state)
{
        struct options o;

        lkp_options_parse(&o, NULL, 0, NULL);
        for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
                const struct mapping *m = &expected[i];
                const struct lkp_error_row *row = lkp_error_lookup(m->name);

                print_message("%s\n", m->name);
                assert_non_null(row);
                assert_int_equal(lkp_error_pam(row, LKP_CALL_BEGIN, &o), m->begin);
                assert_int_equal(lkp_error_pam(row, LKP_CALL_COMPLETE, &o), m->complete);
                assert_int_equal(lkp_error_pam(row, LKP_CALL_OTHER, &o), m->complete);
                assert_int_equal(row->retry, m->retry);
                /* every failure has a line for the person */
                assert_non_null(row->text);
                assert_true(row->text[0] != 0);
        }
        assert_int_equal(lkp_error_pam(lkp_error_lookup(NULL), LKP_CALL_BEGIN, &o),
                         PAM_AUTHINFO_UNAVAIL);
}

static void test_broker_messages_only_from_the_broker(void **state)
{
        /* The broker writes its messages for people; the bus's are technical. */
        assert_true(lkp_error_lookup(BROKER "InvalidGrant")->own_text);
        assert_true(lkp_error_lookup(BROKER "NotAllowed")->own_text);
        assert_false(lkp_error_lookup(BUS "ServiceUnknown")->own_text);
        assert_false(lkp_error_lookup(BUS "NoReply")->own_text);
        assert_false(lkp_error_lookup("com.example.Whatever")->own_text);
        /* the module's own messages are for people too */
        assert_true(lkp_error_lookup(LKP_ERROR_BAD_ANSWER)->own_text);
        assert_true(lkp_error_lookup(LKP_ERROR_BAD_REPLY)->own_text);
}

static void test_ignore_unknown_user(void **state)
{
        struct options o;

        PARSE(&o, "ignore_unknown_user");
        assert_int_equal(lkp_error_pam(lkp_error_lookup(LKP_ERROR_USER_UNKNOWN), LKP_CALL_BEGIN, &o),
                         PAM_IGNORE);
        assert_int_equal(lkp_error_pam(lkp_error_lookup(BROKER "NotFound"), LKP_CALL_BEGIN, &o),
                         PAM_IGNORE);
        /* later in the flow NotFound is a lost login, not an unknown user */
        assert_int_equal(lkp_error_pam(lkp_error_lookup(BROKER "NotFound"), LKP_CALL_COMPLETE, &o),
                         PAM_AUTH_ERR);
        /* and nothing else turns into PAM_IGNORE */
        assert_int_equal(lkp_error_pam(lkp_error_lookup(BROKER "NotAllowed"), LKP_CALL_BEGIN, &o),
                         PAM_PERM_DENIED);
        assert_int_equal(lkp_error_pam(lkp_error_lookup(BUS "ServiceUnknown"), LKP_CALL_BEGIN, &o),
                         PAM_AUTHINFO_UNAVAIL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_methods),
                cmocka_unit_test(test_every_argument),
                cmocka_unit_test(test_later_wins),
                cmocka_unit_test(test_bad_numbers_keep_the_default),
                cmocka_unit_test(test_unknown_arguments_are_ignored),
                cmocka_unit_test(test_error_table),
                cmocka_unit_test(test_broker_messages_only_from_the_broker),
                cmocka_unit_test(test_ignore_unknown_user),
        };

        const struct CMUnitTest config_tests[] = {
                cmocka_unit_test_setup(test_sso_defaults, clear_dropins),
                cmocka_unit_test_setup(test_sso_from_config_and_dropins, clear_dropins),
                cmocka_unit_test_setup(test_sso_writable_config_ignored, clear_dropins),
                cmocka_unit_test_setup(test_sso_bad_files, clear_dropins),
                cmocka_unit_test_setup(test_sso_unreadable_config, clear_dropins),
                cmocka_unit_test(test_list_has),
        };

        if (cmocka_run_group_tests(tests, NULL, NULL) != 0)
                return 1;
        return cmocka_run_group_tests(config_tests, make_dir, remove_dir);
}
