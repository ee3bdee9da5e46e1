/* SPDX-License-Identifier: MIT */
/*
 * The offline PIN and the methods per service (issue 21), through the real libpam and
 * pam_latchkey.so under pam_wrapper, against the real latchkeyd (lk-faultshim.so preloaded into
 * it alone, for a clock that jumps) and the test identity provider, which is stopped
 * (SIGSTOP: it accepts nothing more, every exchange times out) and started again (SIGCONT).
 *
 * The tests run in order, on one broker and one account: a PIN is set after an online sign-in;
 * with the provider stopped it signs in; wrong PINs bring waits that double; the provider back,
 * the sign-in is online again and the count is cleared; max_offline_days later (the shifted
 * clock) the PIN is refused as expired; a refused refresh leaves no offline access. Per service:
 * a sudo-named PIN-only service never shows an address nor makes the provider count a request,
 * an sshd-named one stays web only, a lock screen's conversation has exactly one prompt, and a
 * service with nothing allowed is ignored before any broker call.
 */
#include <dbus/dbus.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <libpamtest.h>
#include <openssl/evp.h>
#include <security/pam_appl.h>

#include "base/util.h"
#include "broker/pin_record.h"
#include "broker/pin_worker.h"
#include "tests/harness/busclient.h"
#include "tests/harness/harness.h"
#include "tests/harness/pam_conv.h"
#include "tests/harness/session_files.h"

#ifndef PAM_LATCHKEY_SO
#error "PAM_LATCHKEY_SO must be defined by meson"
#endif
#ifndef PAM_PERMIT_SO
#error "PAM_PERMIT_SO must be defined by meson"
#endif
#ifndef LK_FAULTSHIM_SO
#error "LK_FAULTSHIM_SO must be defined by meson"
#endif

#define PIN "2468-lkt"
#define WRONG "1357-lkt"
#define DAY 86400
/* The module's PAM_IGNORE: the stack goes on to pam_permit (each test also checks that the
 * person was asked nothing, which a sign-in by the module never is). */
#define IGNORED PAM_SUCCESS

static struct lkh *H;
static char *me;
static char *pam_dir;
static char *timeshift; /* the broker's clock offset, in seconds (faultshim.c) */

/* ---- the person ---- */

struct person {
        const char *new_pin;  /* the answer to "Set a PIN" (and "again"); NULL: skip it */
        const char *pins[8];  /* the answers to "PIN: ", in order */
        bool no_browser;      /* the provider is stopped: the browser gets nowhere, the person
                               * gives up at the code prompt */
        unsigned n_pins;

        struct lkh_said said;
        unsigned n_prompts, n_pin_prompts, n_new_pin_prompts;
        bool address_shown;
        char *location;
        const char *pam_user;
        struct lkh_person_conv conv;
};

static void person_free(struct person *p)
{
        for (unsigned i = 0; i < p->said.n_error; i++)
                print_message("    PAM_ERROR_MSG: %s\n", p->said.error[i]);
        lkh_said_clear(&p->said);
        free(p->location);
        memset(p, 0, sizeof(*p));
}

static bool any_contains(char *const *list, unsigned n, const char *needle)
{
        for (unsigned i = 0; i < n; i++)
                if (strstr(list[i], needle))
                        return true;
        return false;
}

static char *answer(void *person, const struct pam_message *m)
{
        struct person *p = person;

        p->n_prompts++;
        if (strncmp(m->msg, "Set a PIN", 9) == 0 || strncmp(m->msg, "The same PIN", 12) == 0) {
                p->n_new_pin_prompts++;
                return strdup(p->new_pin ? p->new_pin : "");
        }
        if (streq(m->msg, "PIN: ")) {
                if (p->n_pin_prompts >= ELEMENTSOF(p->pins) || !p->pins[p->n_pin_prompts])
                        return NULL;
                return strdup(p->pins[p->n_pin_prompts++]);
        }
        /* the code prompt: the address the browser came back to */
        return p->location ? strdup(p->location) : NULL;
}

/* The sign-in address: the browser plays it, unless the provider is out of reach. */
static int on_info(void *person, const char *text)
{
        struct person *p = person;

        if (strncmp(text, "https://", 8) != 0)
                return 0;
        p->address_shown = true;
        if (p->no_browser)
                return 0;
        free(p->location);
        p->location = NULL;
        return lkh_browser_login(H, text, p->pam_user, false, &p->location, NULL);
}

/* The conversation, as libpam gets it. */
static struct lkh_person_conv *talk(struct person *p)
{
        p->conv = (struct lkh_person_conv){&p->said, on_info, answer, p};
        return &p->conv;
}

/* pam_authenticate as me through service; its result. */
static int auth(const char *service, struct person *p)
{
        pam_handle_t *ph = NULL;
        struct pam_conv c = {lkh_pam_conv, talk(p)};
        int r;

        p->pam_user = me;
        assert_int_equal(pam_start(service, me, &c, &ph), PAM_SUCCESS);
        r = pam_authenticate(ph, 0);
        pam_end(ph, r);
        return r;
}

/* ---- the broker's state, as a test sees it ---- */

static char *record_path(void)
{
        return lkh_xasprintf("%s/offline/%u", H->state_dir, (unsigned)getuid());
}

/* The record's text, opened as the broker does (it is sealed under the session key). */
static char *read_record(void)
{
        char *text = lkh_read_offline_record(H, (unsigned)getuid());

        assert_non_null(text);
        return text;
}

/* The file's own bytes, as someone with the disk reads them. */
static uint8_t *read_record_file(size_t *ret_len)
{
        _cleanup_free_ char *path = record_path();
        uint8_t *data = calloc(1, 8192);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n;

        assert_non_null(data);
        assert_true(fd >= 0);
        n = read(fd, data, 8192);
        close(fd);
        assert_true(n > 0);
        *ret_len = (size_t)n;
        return data;
}

/* The number of keys in the key file. */
static int keys_in_file(void)
{
        _cleanup_free_ char *path = lkh_xasprintf("%s/session-key", H->state_dir);
        int fd = open(path, O_RDONLY | O_CLOEXEC), n = 0;
        char buf[1024];
        ssize_t len;

        assert_true(fd >= 0);
        len = read(fd, buf, sizeof(buf));
        close(fd);
        assert_true(len > 0);
        for (ssize_t i = 0; i < len; i++)
                n += buf[i] == '\n';
        explicit_bzero(buf, sizeof(buf));
        return n - 1;
}

/*
 * The sealed record holds nothing of the hash: not the "$argon2id$" text, not the salt or the
 * hash in base64, not their bytes decoded, not the user name.
 */
static void assert_record_sealed(void)
{
        _cleanup_free_ char *text = read_record();
        _cleanup_free_ uint8_t *data = NULL;
        const char *h = strstr(text, "\nhash $argon2id$");
        char *parts[8] = {0};
        size_t len = 0, n = 0;

        assert_non_null(h);
        data = read_record_file(&len);
        assert_memory_equal(data, "LKSF", 4);
        assert_null(memmem(data, len, "$argon2id$", 10));
        assert_null(memmem(data, len, "argon2", 6));
        assert_null(memmem(data, len, me, strlen(me)));
        /* $argon2id$v=19$m=..,t=..,p=..$<salt>$<hash>\n */
        {
                _cleanup_free_ char *dup = strndup(h + 6, strcspn(h + 6, "\n"));
                char *save = NULL;

                assert_non_null(dup);
                for (char *tok = strtok_r(dup, "$", &save); tok && n < ELEMENTSOF(parts);
                     tok = strtok_r(NULL, "$", &save))
                        parts[n++] = strdup(tok);
        }
        assert_int_equal(n, 5);
        for (size_t i = 3; i < 5; i++) {
                size_t m = strlen(parts[i]);
                _cleanup_free_ char *padded = lkh_xasprintf("%s%.*s", parts[i],
                                                            (int)((4 - m % 4) % 4), "===");
                uint8_t raw[512];
                int k = EVP_DecodeBlock(raw, (const uint8_t *)padded, (int)strlen(padded));

                assert_true(k >= 16);
                k -= (int)((4 - m % 4) % 4);
                assert_null(memmem(data, len, parts[i], m));
                if (memmem(data, len, raw, (size_t)k))
                        fail_msg("the record file holds the %s's bytes", i == 3 ? "salt" : "hash");
        }
        for (size_t i = 0; i < n; i++)
                free(parts[i]);
        explicit_bzero(text, strlen(text));
}

static long record_number(const char *key)
{
        _cleanup_free_ char *text = read_record();
        _cleanup_free_ char *needle = lkh_xasprintf("\n%s ", key);
        const char *s = strstr(text, needle);

        assert_non_null(s);
        return strtol(s + strlen(needle), NULL, 10);
}

static void shift_clock(long seconds)
{
        FILE *f = fopen(timeshift, "we");

        assert_non_null(f);
        fprintf(f, "%ld\n", seconds);
        assert_int_equal(fclose(f), 0);
        lkh_sleep_ms(100); /* the shim reads it again every 20 ms */
}

static long idp_requests(void)
{
        static const char *const counters[] = {"authorize", "token_code", "token_refresh",
                                               "discovery", "jwks", "userinfo", "revoke"};
        long sum = 0;

        for (size_t i = 0; i < ELEMENTSOF(counters); i++) {
                long v = 0;
                assert_int_equal(lkh_idp_stat(H, counters[i], &v), 0);
                sum += v;
        }
        return sum;
}

static void stop_provider(void)
{
        assert_int_equal(kill(H->idp_pid, SIGSTOP), 0);
}

static void start_provider(void)
{
        assert_int_equal(kill(H->idp_pid, SIGCONT), 0);
}

/* ---- setup ---- */

static int write_service(const char *name, const char *args)
{
        _cleanup_free_ char *path = lkh_xasprintf("%s/%s", pam_dir, name);
        FILE *f = fopen(path, "we");

        if (!f)
                return -1;
        /* pam_latchkey decides, but for its PAM_IGNORE, which goes on to pam_permit. */
        fprintf(f, "auth [success=done ignore=ignore default=die] %s config=%s %s\n"
                   "auth required %s\n"
                   "account required %s\n"
                   "session required %s config=%s\n",
                PAM_LATCHKEY_SO, H->config_file, args, PAM_PERMIT_SO, PAM_PERMIT_SO,
                PAM_LATCHKEY_SO, H->config_file);
        return fclose(f) == 0 ? 0 : -1;
}

static int start_broker_with_clock(void)
{
        int r;

        setenv("LD_PRELOAD", LK_FAULTSHIM_SO, 1);
        setenv("LK_TIMESHIFT_FILE", timeshift, 1);
        r = lkh_start_broker(H, NULL);
        unsetenv("LD_PRELOAD");
        unsetenv("LK_TIMESHIFT_FILE");
        return r;
}

static int group_setup(void **state)
{
        struct passwd *pw = getpwuid(getuid());
        _cleanup_free_ char *extra = NULL;

        if (!pw || lkh_new(&H) < 0)
                return -1;
        me = strdup(pw->pw_name);
        timeshift = lkh_xasprintf("%s/timeshift", H->dir);
        extra = lkh_xasprintf(
                "timeout = 2\n"
                "[users]\nallowed_users = %s daemon\n"
                "[accounts]\nmax_offline_days = 2\n"
                "[offline]\npin = yes\nargon2_memory = 8192\nargon2_time = 1\n"
                "lockout_after = 2\nlockout_delay = 10\nmax_failures = 6\n"
                "[pam]\nusers = *\n"
                "services = lk-login lk-sshd\n"
                "methods = lk-sshd:web lk-login:web+offline lk-sudo:pin lk-lock:pin "
                "lk-cron:none\n",
                me);
        pam_dir = lkh_xasprintf("%s/pam.d", H->dir);
        if (lkh_start_idp(H, NULL) < 0 || lkh_write_config(H, extra) < 0 ||
            lkh_start_bus(H) < 0 || start_broker_with_clock() < 0 || mkdir(pam_dir, 0755) < 0)
                return -1;
        if (write_service("lk-login", "timeout=20 tries=2") < 0 ||
            write_service("lk-sshd", "timeout=20") < 0 ||
            write_service("lk-sudo", "timeout=20") < 0 ||
            write_service("lk-lock", "timeout=20") < 0 ||
            write_service("lk-cron", "timeout=20") < 0)
                return -1;
        setenv("PAM_WRAPPER_SERVICE_DIR", pam_dir, 1);
        return 0;
}

static int group_teardown(void **state)
{
        if (H && H->idp_pid > 0)
                kill(H->idp_pid, SIGCONT);
        lkh_free(H);
        H = NULL;
        free(me);
        free(pam_dir);
        free(timeshift);
        return 0;
}

/* ---- the tests, in order ---- */

/* An online sign-in where offline is allowed asks once for a PIN; the broker keeps a hash. */
static void test_pin_set_after_online_sign_in(void **state)
{
        struct person p = {.new_pin = PIN};
        _cleanup_free_ char *text = NULL, *path = record_path();
        struct stat st;

        assert_int_equal(auth("lk-login", &p), PAM_SUCCESS);
        assert_true(p.address_shown);
        assert_int_equal(p.n_new_pin_prompts, 2);
        assert_int_equal(p.n_pin_prompts, 0);
        assert_true(any_contains(p.said.info, p.said.n_info, "The PIN is set."));
        person_free(&p);

        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        text = read_record();
        assert_non_null(strstr(text, "hash $argon2id$v=19$m=8192,t=1,p=1$"));
        assert_null(strstr(text, PIN));
        /* On disk: sealed (issue 22 item 4), nothing of the PIN nor of its hash. */
        assert_record_sealed();
        {
                _cleanup_free_ uint8_t *data = NULL;
                size_t len = 0;

                data = read_record_file(&len);
                assert_null(memmem(data, len, PIN, strlen(PIN)));
        }

        /* A PIN is set: the next online sign-in does not ask again. */
        p = (struct person){.new_pin = "9999-lkt"};
        assert_int_equal(auth("lk-login", &p), PAM_SUCCESS);
        assert_int_equal(p.n_new_pin_prompts, 0);
        person_free(&p);
}

/* The PIN through a PIN-only service: the broker checks it against the record. */
static void assert_pin_works(void)
{
        struct person p = {.pins = {PIN}};

        assert_int_equal(auth("lk-sudo", &p), PAM_SUCCESS);
        assert_int_equal(p.n_pin_prompts, 1);
        person_free(&p);
}

/* A cleartext record of before issue 22 is sealed at the broker's start, and its PIN works. */
static void test_cleartext_record_of_before_is_sealed(void **state)
{
        _cleanup_free_ char *text = read_record(), *path = record_path();
        _cleanup_free_ uint8_t *data = NULL;
        size_t len = 0;
        int fd;

        lkh_stop_broker(H);
        fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        assert_int_equal(close(fd), 0);
        data = read_record_file(&len);
        assert_memory_equal(data, "latchkey-offline 1\n", 19);

        assert_int_equal(start_broker_with_clock(), 0);
        assert_record_sealed();
        assert_pin_works();
        explicit_bzero(text, strlen(text));
}

/* The key id a file is sealed under, in hex. */
static char *sealed_key_id(const char *path)
{
        uint8_t head[13];
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        char *hex = calloc(1, 17);

        assert_true(fd >= 0);
        assert_int_equal(read(fd, head, sizeof(head)), (ssize_t)sizeof(head));
        close(fd);
        assert_memory_equal(head, "LKSF", 4);
        for (int i = 0; i < 8; i++)
                snprintf(hex + 2 * i, 3, "%02x", head[5 + i]);
        return hex;
}

/*
 * latchkeyd --rotate-key, then a start: the record and the session file are rewritten under
 * the new key, the old key is dropped, and the PIN of before still works. (That the old key
 * stays while a record's rewrite fails is tests/unit/test_offline.c's: here every write works.)
 */
static void test_pin_works_after_rotate_key(void **state)
{
        const char *sid = "off-rotate";
        _cleanup_free_ char *rec = record_path(), *token = NULL, *again = NULL;
        _cleanup_free_ char *session = lkh_xasprintf("%s/sessions/%s.json", H->state_dir, sid);
        _cleanup_free_ char *old_rec = NULL, *old_session = NULL, *new_rec = NULL;
        _cleanup_free_ char *new_session = NULL;
        const char *argv[] = {lkh_latchkeyd_path(), "--rotate-key", "--state-dir", H->state_dir,
                              NULL};
        DBusConnection *c = bc_open(H->bus_address);
        char *err;
        pid_t pid;
        int status;

        assert_non_null(c);
        assert_int_equal(bc_open_session(H, c, me, sid), 0);
        err = bc_get_token(c, sid, 0, &token, NULL, NULL);
        assert_null(err);
        bc_close(c);
        old_rec = sealed_key_id(rec);
        old_session = sealed_key_id(session);
        assert_string_equal(old_rec, old_session);

        lkh_stop_broker(H);
        assert_int_equal(keys_in_file(), 1);
        assert_int_equal(lkh_spawn(argv, -1, &pid), 0);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        assert_int_equal(keys_in_file(), 2);

        assert_int_equal(start_broker_with_clock(), 0);
        assert_pin_works();
        /* The session file is rewritten in the load after the start: GetToken waits for it. */
        c = bc_open(H->bus_address);
        assert_non_null(c);
        err = bc_get_token(c, sid, 0, &again, NULL, NULL);
        assert_null(err);
        assert_string_equal(again, token);
        bc_close(c);
        new_rec = sealed_key_id(rec);
        new_session = sealed_key_id(session);
        assert_string_not_equal(new_rec, old_rec);
        assert_string_equal(new_rec, new_session);
        for (int i = 0; i < 100 && keys_in_file() != 1; i++)
                lkh_sleep_ms(50);
        assert_int_equal(keys_in_file(), 1);
        assert_record_sealed();
}

/* The provider stopped: the login screen says so, with the date, and takes the PIN. */
static void test_pin_signs_in_while_the_provider_is_stopped(void **state)
{
        struct person p = {.pins = {PIN}};
        int r;

        stop_provider();
        r = auth("lk-login", &p);
        start_provider();
        assert_int_equal(r, PAM_SUCCESS);
        assert_false(p.address_shown);
        assert_int_equal(p.n_pin_prompts, 1);
        assert_true(any_contains(p.said.info, p.said.n_info,
                                 "cannot be reached (offline PIN possible until "));
        person_free(&p);
}

/* CheckPin as a caller would send it; the error name, or NULL. */
static char *check_pin(const char *user, const char *pin, bool offline)
{
        DBusError err = DBUS_ERROR_INIT;
        DBusConnection *c = dbus_bus_get_private(DBUS_BUS_SYSTEM, &err);
        DBusMessage *m = bc_new("CheckPin"), *reply;
        DBusMessageIter it, dict, entry, v;
        const char *key = "offline";
        dbus_bool_t yes = offline;
        char *name = NULL;

        assert_non_null(c);
        dbus_message_append_args(m, DBUS_TYPE_STRING, &user, DBUS_TYPE_STRING, &pin,
                                 DBUS_TYPE_INVALID);
        dbus_message_iter_init_append(m, &it);
        dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{sv}", &dict);
        dbus_message_iter_open_container(&dict, DBUS_TYPE_DICT_ENTRY, NULL, &entry);
        dbus_message_iter_append_basic(&entry, DBUS_TYPE_STRING, &key);
        dbus_message_iter_open_container(&entry, DBUS_TYPE_VARIANT, "b", &v);
        dbus_message_iter_append_basic(&v, DBUS_TYPE_BOOLEAN, &yes);
        dbus_message_iter_close_container(&entry, &v);
        dbus_message_iter_close_container(&dict, &entry);
        dbus_message_iter_close_container(&it, &dict);
        reply = dbus_connection_send_with_reply_and_block(c, m, 20000, &err);
        dbus_message_unref(m);
        if (reply)
                dbus_message_unref(reply);
        else {
                name = strdup(err.name);
                dbus_error_free(&err);
        }
        dbus_connection_close(c);
        dbus_connection_unref(c);
        return name;
}

/*
 * While the provider answers, the login screen never takes the PIN: web sign-in only; and the
 * broker itself refuses the right PIN offered "instead of the provider" (it asks the provider).
 */
static void test_reachable_provider_means_web_sign_in(void **state)
{
        struct person p = {.pins = {PIN}};
        _cleanup_free_ char *e = NULL;

        assert_int_equal(auth("lk-login", &p), PAM_SUCCESS);
        assert_true(p.address_shown);
        assert_int_equal(p.n_pin_prompts, 0);
        person_free(&p);

        e = check_pin(me, PIN, true);
        assert_non_null(e);
        assert_string_equal(e, "org.latchkey.Broker1.Error.NotAllowed");
        assert_int_equal(record_number("failures"), 0); /* not counted as a guess */
}

/* "Wrong PIN; next try in N s": N for each wrong PIN after lockout_after. */
static long next_try(const struct person *p)
{
        for (unsigned i = 0; i < p->said.n_error; i++) {
                const char *s = strstr(p->said.error[i], "next try in ");
                if (s)
                        return strtol(s + 12, NULL, 10);
        }
        return -1;
}

/*
 * Wrong PINs: a wait after lockout_after (2) of them, doubling with each one after (10, 20,
 * 40 s). The broker's clock is moved past each wait rather than waited out.
 */
static void test_wrong_pins_lock_out_with_a_growing_wait(void **state)
{
        struct person p = {.pins = {WRONG}};

        assert_int_equal(auth("lk-lock", &p), PAM_AUTH_ERR);
        assert_true(any_contains(p.said.error, p.said.n_error, "Wrong PIN"));
        assert_int_equal(next_try(&p), -1);
        person_free(&p);

        p = (struct person){.pins = {WRONG}};
        assert_int_equal(auth("lk-lock", &p), PAM_AUTH_ERR);
        assert_int_equal(next_try(&p), 10);
        person_free(&p);

        /* During the wait even the right PIN is not looked at. */
        p = (struct person){.pins = {PIN}};
        assert_int_equal(auth("lk-lock", &p), PAM_AUTH_ERR);
        assert_true(any_contains(p.said.error, p.said.n_error,
                                 "Too many wrong PINs: try again in"));
        person_free(&p);

        shift_clock(11);
        p = (struct person){.pins = {WRONG}};
        assert_int_equal(auth("lk-lock", &p), PAM_AUTH_ERR);
        assert_int_equal(next_try(&p), 20);
        person_free(&p);
        assert_int_equal(record_number("failures"), 3);

        shift_clock(11 + 21);
        p = (struct person){.pins = {WRONG}};
        assert_int_equal(auth("lk-lock", &p), PAM_AUTH_ERR);
        assert_int_equal(next_try(&p), 40);
        person_free(&p);
}

/* The provider back: an online sign-in, which clears the count and the wait. */
static void test_online_sign_in_clears_the_count(void **state)
{
        struct person p = {0};

        shift_clock(0);
        assert_true(record_number("failures") == 4 && record_number("locked_until") > 0);
        assert_int_equal(auth("lk-login", &p), PAM_SUCCESS);
        assert_true(p.address_shown);
        assert_int_equal(p.n_pin_prompts, 0);
        person_free(&p);
        assert_int_equal(record_number("failures"), 0);
        assert_int_equal(record_number("locked_until"), 0);

        /* and the PIN works again at once */
        p = (struct person){.pins = {PIN}};
        assert_int_equal(auth("lk-lock", &p), PAM_SUCCESS);
        assert_int_equal(p.n_prompts, 1);
        person_free(&p);
}

/*
 * A sudo-named service with only the PIN: one echo-off prompt, no address, not one request
 * at the provider; an sshd-named one stays web only; a cron-named one (none) is ignored.
 */
static void test_methods_per_service(void **state)
{
        struct person p = {.pins = {PIN}};
        long before = idp_requests();

        assert_int_equal(auth("lk-sudo", &p), PAM_SUCCESS);
        assert_false(p.address_shown);
        assert_int_equal(p.n_prompts, 1);
        assert_int_equal(p.n_pin_prompts, 1);
        assert_int_equal(p.said.n_info, 0);
        person_free(&p);

        p = (struct person){.pins = {WRONG}};
        assert_int_equal(auth("lk-sudo", &p), PAM_AUTH_ERR);
        assert_false(p.address_shown);
        person_free(&p);
        assert_int_equal(idp_requests(), before);

        p = (struct person){.pins = {PIN}};
        assert_int_equal(auth("lk-cron", &p), IGNORED);
        assert_int_equal(p.n_prompts + p.said.n_info + p.said.n_error, 0);
        person_free(&p);

        /* sshd: the web sign-in, never the PIN, never the offer of one. */
        p = (struct person){.pins = {PIN}, .new_pin = PIN};
        assert_int_equal(auth("lk-sshd", &p), PAM_SUCCESS);
        assert_true(p.address_shown);
        assert_int_equal(p.n_pin_prompts + p.n_new_pin_prompts, 0);
        person_free(&p);

        /* and with the provider stopped, sshd does not fall back to the PIN */
        stop_provider();
        /* the address is shown but the browser gets nowhere: the person gives up */
        p = (struct person){.pins = {PIN}, .no_browser = true};
        {
                int r = auth("lk-sshd", &p);
                start_provider();
                assert_int_not_equal(r, PAM_SUCCESS);
        }
        assert_int_equal(p.n_pin_prompts, 0);
        person_free(&p);
}

/* A lock screen runs the stack as the user: one plain prompt, the PIN, done (needs root). */
static int lock_as_user(void *userdata)
{
        struct person p = {.pins = {PIN}};
        pam_handle_t *ph = NULL;
        struct pam_conv c = {lkh_pam_conv, talk(&p)};
        int r;

        p.pam_user = "daemon";
        if (pam_start("lk-lock", "daemon", &c, &ph) != PAM_SUCCESS)
                return -1;
        r = pam_authenticate(ph, 0);
        pam_end(ph, r);
        return r * 100 + (int)p.n_prompts;
}

static void test_lock_screen_as_the_user(void **state)
{
        struct passwd *pw = getpwnam("daemon");
        struct person p = {.new_pin = PIN};
        pam_handle_t *ph = NULL;
        struct pam_conv c = {lkh_pam_conv, talk(&p)};
        int result = -1;

        if (getuid() != 0 || !pw) {
                print_message("not root: the lock screen as another user is not tried\n");
                skip();
        }
        /* daemon signs in online once at the console, and sets its PIN there */
        p.pam_user = "daemon";
        assert_int_equal(pam_start("lk-login", "daemon", &c, &ph), PAM_SUCCESS);
        assert_int_equal(pam_authenticate(ph, 0), PAM_SUCCESS);
        pam_end(ph, PAM_SUCCESS);
        assert_int_equal(p.n_new_pin_prompts, 2);
        person_free(&p);

        assert_int_equal(lkh_run_as(pw->pw_uid, pw->pw_gid, lock_as_user, NULL, &result), 0);
        assert_int_equal(result, PAM_SUCCESS * 100 + 1);
}

/* max_offline_days (2) after the last online sign-in: the PIN is refused as expired. */
static void test_pin_expires_after_max_offline_days(void **state)
{
        struct person p = {.pins = {PIN}};

        shift_clock(2 * DAY + 60);
        assert_int_equal(auth("lk-lock", &p), IGNORED);
        assert_int_equal(p.n_prompts, 0);
        assert_true(any_contains(p.said.error, p.said.n_error,
                                 "Your sign-in has expired: sign in again"));
        person_free(&p);

        /* and the login screen with the provider stopped: no PIN, the provider's failure */
        stop_provider();
        p = (struct person){.pins = {PIN}, .no_browser = true};
        {
                int r = auth("lk-login", &p);
                start_provider();
                assert_int_not_equal(r, PAM_SUCCESS);
        }
        assert_int_equal(p.n_pin_prompts, 0);
        person_free(&p);
        shift_clock(0);

        /* one day in: still fine */
        shift_clock(DAY);
        p = (struct person){.pins = {PIN}};
        assert_int_equal(auth("lk-lock", &p), PAM_SUCCESS);
        person_free(&p);
        shift_clock(0);
}

/* The provider refused the session's refresh: that account has no offline access any more. */
static void test_refused_refresh_leaves_no_offline_access(void **state)
{
        struct person p = {0};
        pam_handle_t *ph = NULL;
        struct pam_conv c = {lkh_pam_conv, talk(&p)};
        _cleanup_free_ char *sid = NULL;
        DBusError err = DBUS_ERROR_INIT;
        DBusConnection *bus;
        DBusMessage *m, *reply;

        shift_clock(0);
        p.pam_user = me;
        assert_int_equal(pam_start("lk-login", me, &c, &ph), PAM_SUCCESS);
        assert_int_equal(pam_authenticate(ph, 0), PAM_SUCCESS);
        assert_int_equal(pam_open_session(ph, 0), PAM_SUCCESS);
        assert_non_null(pam_getenv(ph, "LATCHKEY_SESSION"));
        sid = strdup(pam_getenv(ph, "LATCHKEY_SESSION"));
        person_free(&p);

        assert_int_equal(lkh_idp_set(H, "refuse_refresh", "400:invalid_grant"), 0);
        bus = dbus_bus_get_private(DBUS_BUS_SYSTEM, &err);
        assert_non_null(bus);
        m = bc_new("GetToken");
        bc_append_options(m, sid, 86400);
        reply = dbus_connection_send_with_reply_and_block(bus, m, 20000, &err);
        dbus_message_unref(m);
        assert_null(reply);
        assert_string_equal(err.name, "org.latchkey.Broker1.Error.TokenExpired");
        dbus_error_free(&err);
        assert_int_equal(lkh_idp_set(H, "refuse_refresh", ""), 0);
        assert_int_equal(record_number("disabled"), 1);

        p = (struct person){.pins = {PIN}};
        assert_int_equal(auth("lk-lock", &p), IGNORED);
        assert_int_equal(p.n_prompts, 0);
        assert_true(any_contains(p.said.error, p.said.n_error, "Account disabled at the provider"));
        person_free(&p);

        /* CheckPin itself says so, by its own error name */
        m = bc_new("CheckPin");
        {
                const char *u = me, *pin = PIN;
                dbus_message_append_args(m, DBUS_TYPE_STRING, &u, DBUS_TYPE_STRING, &pin,
                                         DBUS_TYPE_INVALID);
        }
        bc_append_options(m, NULL, 0);
        reply = dbus_connection_send_with_reply_and_block(bus, m, 20000, &err);
        dbus_message_unref(m);
        assert_null(reply);
        assert_string_equal(err.name, "org.latchkey.Broker1.Error.AccountDisabled");
        dbus_error_free(&err);
        dbus_connection_close(bus);
        dbus_connection_unref(bus);

        assert_int_equal(pam_close_session(ph, 0), PAM_SUCCESS);
        pam_end(ph, PAM_SUCCESS);

        /* an online sign-in gives it back */
        p = (struct person){0};
        assert_int_equal(auth("lk-login", &p), PAM_SUCCESS);
        person_free(&p);
        assert_int_equal(record_number("disabled"), 0);
}

/*
 * A slow PIN check (a stored hash of 64 MiB and 24 passes, near three seconds here) runs off the
 * broker's loop: another caller's GetPinState is answered while the check is still running.
 */
static void test_check_does_not_block_the_loop(void **state)
{
        const struct lk_pin_params heavy = {.memory_kib = 65536, .time = 24, .lanes = 1};
        _cleanup_free_ char *text = read_record(), *path = record_path(), *out = NULL;
        char hash[LK_PIN_HASH_MAX + 1];
        DBusError err = DBUS_ERROR_INIT;
        DBusConnection *c = dbus_bus_get_private(DBUS_BUS_SYSTEM, &err);
        DBusMessage *m, *reply;
        DBusPendingCall *pending = NULL;
        const char *user = me, *pin = PIN;
        char *h;
        FILE *f;

        assert_non_null(c);
        assert_int_equal(lk_pin_hash_now(&heavy, PIN, hash, sizeof(hash)), 0);
        /* the record, with the heavy hash in place of its own */
        h = strstr(text, "\nhash ");
        assert_non_null(h);
        h[1] = 0;
        out = lkh_xasprintf("%shash %s\n", text, hash);
        f = fopen(path, "we");
        assert_non_null(f);
        fputs(out, f);
        assert_int_equal(fclose(f), 0);

        m = bc_new("CheckPin");
        dbus_message_append_args(m, DBUS_TYPE_STRING, &user, DBUS_TYPE_STRING, &pin,
                                 DBUS_TYPE_INVALID);
        bc_append_options(m, NULL, 0);
        assert_true(dbus_connection_send_with_reply(c, m, &pending, 30000));
        dbus_message_unref(m);
        dbus_connection_flush(c);
        lkh_sleep_ms(100); /* the check has begun */

        m = bc_new("GetPinState");
        dbus_message_append_args(m, DBUS_TYPE_STRING, &user, DBUS_TYPE_INVALID);
        bc_append_options(m, NULL, 0);
        {
                DBusConnection *other = dbus_bus_get_private(DBUS_BUS_SYSTEM, &err);
                assert_non_null(other);
                reply = dbus_connection_send_with_reply_and_block(other, m, 30000, &err);
                assert_non_null(reply);
                dbus_message_unref(reply);
                dbus_connection_close(other);
                dbus_connection_unref(other);
        }
        dbus_message_unref(m);
        /* answered while the check still ran */
        dbus_connection_read_write(c, 0);
        assert_false(dbus_pending_call_get_completed(pending));

        dbus_pending_call_block(pending);
        reply = dbus_pending_call_steal_reply(pending);
        assert_non_null(reply);
        assert_int_equal(dbus_message_get_type(reply), DBUS_MESSAGE_TYPE_METHOD_RETURN);
        dbus_message_unref(reply);
        dbus_pending_call_unref(pending);
        dbus_connection_close(c);
        dbus_connection_unref(c);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_pin_set_after_online_sign_in),
                cmocka_unit_test(test_cleartext_record_of_before_is_sealed),
                cmocka_unit_test(test_pin_works_after_rotate_key),
                cmocka_unit_test(test_pin_signs_in_while_the_provider_is_stopped),
                cmocka_unit_test(test_reachable_provider_means_web_sign_in),
                cmocka_unit_test(test_wrong_pins_lock_out_with_a_growing_wait),
                cmocka_unit_test(test_online_sign_in_clears_the_count),
                cmocka_unit_test(test_methods_per_service),
                cmocka_unit_test(test_lock_screen_as_the_user),
                cmocka_unit_test(test_pin_expires_after_max_offline_days),
                cmocka_unit_test(test_refused_refresh_leaves_no_offline_access),
                cmocka_unit_test(test_check_does_not_block_the_loop),
        };

        if (!getenv("PAM_WRAPPER")) {
                fprintf(stderr, "run me with LD_PRELOAD=libpam_wrapper.so PAM_WRAPPER=1\n");
                return 77;
        }
        /* The wrapper is for libpam in this process only. */
        unsetenv("LD_PRELOAD");
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
