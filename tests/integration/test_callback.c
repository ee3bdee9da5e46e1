/* SPDX-License-Identifier: MIT */
/*
 * The broker receives the provider's callback itself ([callback] listen, issue 19 item 2):
 * the test IdP's browser helper (follow_redirect) follows the authorize redirect to the
 * broker's HTTPS listener, which completes the login; then OpenSession and GetToken. Refused
 * without effect: a wrong state, a replayed callback, junk, oversized requests, too many
 * connections or requests from one address; the other logins and the D-Bus calls go on.
 * An error callback ends its login with the provider's words. Without [callback] nothing
 * listens. The broker's log never holds a code or a state.
 *
 * The listener serves 127.0.0.1 with the IdP's certificate (it covers that address). Each
 * test that floods it sends from a loopback address of its own (127.0.0.N), so that the rate
 * per address of one test does not touch the next; the IdP's helper comes from 127.0.0.1.
 */
#include <curl/curl.h>
#include <dbus/dbus.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <cmocka.h>

#include "base/util.h"
#include "broker/callback_listener.h"
#include "broker/callback_rate.h"
#include "tests/harness/busclient.h"
#include "tests/harness/harness.h"

#define USER "daemon"

struct fixture {
        struct lkh *h;
        unsigned port;
        char *log_path;
        char *base; /* https://127.0.0.1:PORT */
        char **secrets; /* codes and states seen: never in the broker's log */
};

static struct fixture *F;

static void remember_secret(const char *s)
{
        if (s && strlen(s) >= 8)
                bc_strv_add(&F->secrets, s);
}

/* ---- the group: IdP with redirect_uri on the listener, broker with [callback] ---- */

/* What a group's [callback] takes, when not the IdP's certificate and key as they are. */
enum files {
        FILES_GOOD,
        FILES_KEY_READABLE,
        FILES_CERT_TOO_BIG,
        FILES_CERT_NOT_PEM,
        FILES_GOOD_IPV6,
};

static char *copy_with(struct lkh *h, const char *from, const char *name, mode_t mode,
                       size_t pad)
{
        static const char line[] = "# padding, padding, padding, padding, padding, padding\n";
        _cleanup_free_ char *text = NULL;
        char *to = lkh_xasprintf("%s/%s", h->dir, name);
        size_t len = 0;
        int fd = open(from, O_RDONLY | O_CLOEXEC), out;

        while (fd >= 0)
                if (lkh_read_more(&fd, &text, &len, 1 << 20) < 0)
                        return NULL;
        out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        if (out < 0 || write(out, text, len) != (ssize_t)len || fchmod(out, mode) < 0)
                return NULL;
        /* PEM readers skip text outside the BEGIN/END lines: this only makes it large. */
        for (size_t i = 0; i < pad; i += sizeof(line) - 1)
                if (write(out, line, sizeof(line) - 1) != (ssize_t)sizeof(line) - 1)
                        return NULL;
        close(out);
        return to;
}

static int start_group_files(void **state, bool with_callback, enum files files)
{
        struct fixture *f = calloc(1, sizeof(*f));
        _cleanup_free_ char *extra = NULL;

        if (!f || lkh_new(&f->h) < 0 || lkh_free_port(&f->port) < 0)
                goto fail;
        free(f->h->redirect_uri);
        f->h->redirect_uri = lkh_xasprintf("https://127.0.0.1:%u/callback", f->port);
        f->base = lkh_xasprintf("https://127.0.0.1:%u", f->port);
        if (lkh_start_idp(f->h, NULL) < 0)
                goto fail;
        if (with_callback) {
                _cleanup_free_ char *cert = strdup(f->h->cert_file);
                _cleanup_free_ char *key = strdup(f->h->key_file);

                if (files == FILES_KEY_READABLE) {
                        free(key);
                        key = copy_with(f->h, f->h->key_file, "readable.key", 0644, 0);
                } else if (files == FILES_CERT_NOT_PEM) {
                        /* The key where the certificate should be: read, but no certificate. */
                        free(cert);
                        cert = copy_with(f->h, f->h->key_file, "not-a-cert.pem", 0644, 0);
                } else if (files == FILES_CERT_TOO_BIG) {
                        free(cert);
                        cert = copy_with(f->h, f->h->cert_file, "big.pem", 0644,
                                         LK_CALLBACK_PEM_MAX);
                }
                if (!cert || !key)
                        goto fail;
                extra = lkh_xasprintf("[callback]\nlisten = %s:%u\ncertificate = %s\n"
                                      "key = %s\n",
                                      files == FILES_GOOD_IPV6 ? "[::1]" : "127.0.0.1", f->port,
                                      cert, key);
        }
        f->log_path = lkh_xasprintf("%s/broker.log", f->h->dir);
        if (lkh_write_config(f->h, extra) < 0 || lkh_start_bus(f->h) < 0 ||
            lkh_start_broker_logging(f->h, (const char *const[]){"--debug", NULL},
                                     f->log_path) < 0)
                goto fail;
        *state = F = f;
        return 0;
fail:
        if (f) {
                lkh_free(f->h);
                free(f->base);
                free(f->log_path);
                free(f);
        }
        return -1;
}

static int setup(void **state)
{
        return start_group_files(state, true, FILES_GOOD);
}

static int setup_without(void **state)
{
        return start_group_files(state, false, FILES_GOOD);
}

static int setup_ipv6(void **state)
{
        return start_group_files(state, true, FILES_GOOD_IPV6);
}

static int setup_key_readable(void **state)
{
        return start_group_files(state, true, FILES_KEY_READABLE);
}

static int setup_cert_not_pem(void **state)
{
        return start_group_files(state, true, FILES_CERT_NOT_PEM);
}

static int setup_cert_too_big(void **state)
{
        return start_group_files(state, true, FILES_CERT_TOO_BIG);
}

static int teardown(void **state)
{
        struct fixture *f = *state;

        lkh_free(f->h);
        free(f->base);
        free(f->log_path);
        lk_strv_free(f->secrets);
        free(f);
        F = NULL;
        return 0;
}

static int reset(void **state)
{
        return lkh_idp_reset(F->h);
}

/* ---- HTTPS to the listener, from a chosen loopback address ---- */

struct body {
        char *text;
        size_t len;
};

static size_t on_body(char *data, size_t size, size_t n, void *userdata)
{
        struct body *b = userdata;
        char *nb = realloc(b->text, b->len + size * n + 1);

        if (!nb)
                return 0;
        memcpy(nb + b->len, data, size * n);
        b->len += size * n;
        nb[b->len] = '\0';
        b->text = nb;
        return size * n;
}

/*
 * GET base + target from source (an address on lo) with the extra headers; *ret_status the
 * answer's status, 0 when the listener closed the connection instead. ret_body may be NULL.
 */
static void get_within(const char *source, const char *target, struct curl_slist *headers,
                       long seconds, long *ret_status, char **ret_body)
{
        _cleanup_free_ char *url = lkh_xasprintf("%s%s", F->base, target);
        _cleanup_free_ char *iface = lkh_xasprintf("host!%s", source);
        struct body b = {0};
        CURL *c = curl_easy_init();
        long status = 0;

        assert_non_null(c);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_INTERFACE, iface);
        curl_easy_setopt(c, CURLOPT_CAINFO, F->h->cert_file);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, seconds);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
        if (curl_easy_perform(c) == CURLE_OK)
                curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(c);
        *ret_status = status;
        if (ret_body)
                *ret_body = b.text ? b.text : strdup("");
        else
                free(b.text);
}

static void get_from(const char *source, const char *target, struct curl_slist *headers,
                     long *ret_status, char **ret_body)
{
        get_within(source, target, headers, 30, ret_status, ret_body);
}

/* The target of a callback address ("/callback?code=..."), remembering its secrets. */
static char *target_of(const char *location)
{
        const char *p = strstr(location, "://");
        _cleanup_free_ char *code = NULL, *st = NULL;

        assert_non_null(p);
        p = strchr(p + 3, '/');
        assert_non_null(p);
        if (lkh_url_param(location, "code", &code) == 0)
                remember_secret(code);
        if (lkh_url_param(location, "state", &st) == 0)
                remember_secret(st);
        return strdup(p);
}

/* ---- D-Bus ---- */

static DBusConnection *bus(void)
{
        DBusConnection *c = bc_open(F->h->bus_address);

        assert_non_null(c);
        return c;
}

static char *begin(DBusConnection *c, char **ret_url)
{
        char *id = NULL, *e = bc_begin_login(c, USER, &id, ret_url);
        _cleanup_free_ char *st = NULL;

        assert_null(e);
        if (lkh_url_param(*ret_url, "state", &st) == 0)
                remember_secret(st);
        return id;
}

/* The browser, with the IdP's helper on: authorize, then its redirect to the listener. */
static void browse(const char *url, long *ret_status, char **ret_body)
{
        _cleanup_free_ char *full = lkh_xasprintf("%s&login_hint=%s", url, USER);

        assert_int_equal(lkh_idp_set(F->h, "follow_redirect", "1"), 0);
        assert_int_equal(lkh_http(F->h, full, NULL, NULL, ret_status, ret_body, NULL), 0);
}

/* The browser without the helper: the callback address the IdP redirects to. */
static char *location_for(const char *url)
{
        char *location = NULL;

        assert_int_equal(lkh_idp_set(F->h, "follow_redirect", "0"), 0);
        assert_int_equal(lkh_browser_login(F->h, url, USER, false, &location, NULL), 0);
        assert_non_null(location);
        return location;
}

/* The login is complete: a CompleteLogin now hears so, and OpenSession and GetToken work. */
static void assert_complete_then_session(DBusConnection *c, const char *id, const char *sid)
{
        _cleanup_free_ char *e = NULL, *msg = NULL, *token = NULL;
        int64_t expires = 0;

        e = bc_call_s(c, "CompleteLogin", id, "some-code", NULL, &msg);
        assert_non_null(e);
        assert_string_equal(e, BC_ERR("InvalidArgument"));
        assert_non_null(strstr(msg, "already complete"));
        free(e);
        e = bc_call_s(c, "OpenSession", id, sid, NULL, NULL);
        assert_null(e);
        e = bc_get_token(c, sid, 0, &token, &expires, NULL);
        assert_null(e);
        assert_true(strlen(token) > 10);
        remember_secret(token);
}

/* The broker still answers on the bus, quickly. */
static void assert_bus_answers(DBusConnection *c)
{
        int64_t t0 = lkh_now_ms();
        char **ids = bc_list_sessions(c);

        assert_non_null(ids);
        lk_strv_free(ids);
        assert_true(lkh_now_ms() - t0 < 5000);
}

/* A whole login through the listener, by the IdP's helper from 127.0.0.1. */
static void login_through_listener(DBusConnection *c, const char *sid)
{
        _cleanup_free_ char *url = NULL, *id = NULL, *body = NULL;
        long status = 0;

        id = begin(c, &url);
        browse(url, &status, &body);
        assert_int_equal(status, 200);
        assert_non_null(strstr(body, "You are signed in; go back to your terminal."));
        assert_complete_then_session(c, id, sid);
}

/* ---- the listening sockets of the broker (/proc/PID/fd against /proc/net/tcp) ---- */

static bool inode_listens(const char *table, unsigned long inode)
{
        FILE *f = fopen(table, "re");
        char line[512];
        bool found = false;

        if (!f)
                return false;
        while (!found && fgets(line, sizeof(line), f)) {
                unsigned st = 0;
                unsigned long ino = 0;

                /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
                if (sscanf(line, "%*s %*s %*s %x %*s %*s %*s %*s %*s %lu", &st, &ino) == 2 &&
                    st == 0x0A && ino == inode)
                        found = true;
        }
        fclose(f);
        return found;
}

static unsigned broker_listening_sockets(void)
{
        pid_t pid = lkh_broker_pid(F->h);
        unsigned n = 0;

        assert_true(pid > 0);
        for (int fd = 0; fd < 1024; fd++) {
                _cleanup_free_ char *p = lkh_xasprintf("/proc/%d/fd/%d", (int)pid, fd);
                char target[64];
                ssize_t len = readlink(p, target, sizeof(target) - 1);
                unsigned long inode;

                if (len <= 0)
                        continue;
                target[len] = '\0';
                if (sscanf(target, "socket:[%lu]", &inode) != 1)
                        continue;
                if (inode_listens("/proc/net/tcp", inode) || inode_listens("/proc/net/tcp6", inode))
                        n++;
        }
        return n;
}

static int tcp_connect(const char *source, unsigned port)
{
        struct sockaddr_in from = {.sin_family = AF_INET};
        struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        assert_true(fd >= 0);
        inet_pton(AF_INET, source, &from.sin_addr);
        inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
        assert_int_equal(bind(fd, (struct sockaddr *)&from, sizeof(from)), 0);
        if (connect(fd, (struct sockaddr *)&to, sizeof(to)) < 0) {
                int err = errno;

                close(fd);
                return -err;
        }
        return fd;
}

/* Whether the peer closes fd within ms: read gives end of file or an error (after what it
 * sent on closing, such as a TLS alert). */
static bool closed_within(int fd, int ms)
{
        int64_t end = lkh_now_ms() + ms;

        for (;;) {
                struct pollfd p = {.fd = fd, .events = POLLIN};
                int64_t left = end - lkh_now_ms();
                char buf[256];

                if (poll(&p, 1, left > 0 ? (int)left : 0) <= 0)
                        return false;
                if (read(fd, buf, sizeof(buf)) <= 0)
                        return true;
        }
}

/* ---- tests ---- */

static void test_listens_on_one_socket(void **state)
{
        assert_int_equal(broker_listening_sockets(), 1);
}

static void test_login_finished_by_listener(void **state)
{
        DBusConnection *c = bus();

        login_through_listener(c, "cb-session-1");
        bc_close(c);
}

static void test_wrong_state_refused(void **state)
{
        DBusConnection *c = bus();
        _cleanup_free_ char *url = NULL, *id = NULL, *loc = NULL, *target = NULL, *bad = NULL;
        _cleanup_free_ char *body = NULL, *st = NULL;
        char *p;
        long status = 0;

        id = begin(c, &url);
        loc = location_for(url);
        target = target_of(loc);
        assert_int_equal(lkh_url_param(loc, "state", &st), 0);
        /* The same address with one character of its state changed. */
        bad = strdup(target);
        p = strstr(bad, "state=") + strlen("state=");
        *p = *p == 'A' ? 'B' : 'A';
        get_from("127.0.0.5", bad, NULL, &status, &body);
        assert_int_equal(status, 404);
        assert_null(strstr(body, "signed in"));
        /* No state at all, and a state that is no login's. */
        get_from("127.0.0.5", "/callback?code=abc", NULL, &status, NULL);
        assert_int_equal(status, 404);
        get_from("127.0.0.5", "/callback?code=abc&state=nobodys-state-at-all", NULL, &status,
                 NULL);
        assert_int_equal(status, 404);
        /* The login is untouched: its own callback still signs in. */
        free(body);
        body = NULL;
        get_from("127.0.0.5", target, NULL, &status, &body);
        assert_int_equal(status, 200);
        assert_non_null(strstr(body, "You are signed in"));
        assert_complete_then_session(c, id, "cb-session-2");
        bc_close(c);
}

static void test_replayed_callback_refused(void **state)
{
        DBusConnection *c = bus();
        _cleanup_free_ char *url = NULL, *id = NULL, *loc = NULL, *target = NULL;
        _cleanup_free_ char *body = NULL;
        long status = 0;
        long codes_before = 0, codes_after = 0;

        id = begin(c, &url);
        loc = location_for(url);
        target = target_of(loc);
        get_from("127.0.0.6", target, NULL, &status, &body);
        assert_int_equal(status, 200);
        /* Again, while the login waits for OpenSession: refused, and nothing is sent. */
        assert_int_equal(lkh_idp_stat(F->h, "token_code", &codes_before), 0);
        get_from("127.0.0.6", target, NULL, &status, NULL);
        assert_int_equal(status, 404);
        assert_complete_then_session(c, id, "cb-session-3");
        /* And once the login is used up. */
        get_from("127.0.0.6", target, NULL, &status, NULL);
        assert_int_equal(status, 404);
        assert_int_equal(lkh_idp_stat(F->h, "token_code", &codes_after), 0);
        assert_int_equal(codes_after, codes_before);
        bc_close(c);
}

static void test_error_callback_ends_login(void **state)
{
        DBusConnection *c = bus();
        _cleanup_free_ char *url = NULL, *id = NULL, *body = NULL, *e = NULL, *msg = NULL;
        _cleanup_free_ char *st = NULL, *target = NULL, *url2 = NULL, *id2 = NULL;
        long status = 0;

        /* The provider's own refusal, through its helper. */
        id = begin(c, &url);
        assert_int_equal(lkh_idp_set(F->h, "error_on_authorize", "1"), 0);
        browse(url, &status, &body);
        assert_int_equal(status, 403);
        assert_non_null(strstr(body, "access_denied"));
        e = bc_call_s(c, "CompleteLogin", id, "some-code", NULL, &msg);
        assert_non_null(e);
        assert_string_equal(e, BC_ERR("LoginExpired"));
        assert_non_null(strstr(msg, "refused at the provider"));
        assert_int_equal(lkh_idp_set(F->h, "error_on_authorize", "0"), 0);

        /* Its words reach the page escaped: no markup of the provider's runs in the browser. */
        id2 = begin(c, &url2);
        assert_int_equal(lkh_url_param(url2, "state", &st), 0);
        target = lkh_xasprintf("/callback?error=access_denied&error_description="
                               "%%3Cscript%%3Ealert(1)%%3C%%2Fscript%%3E&state=%s", st);
        free(body);
        body = NULL;
        get_from("127.0.0.7", target, NULL, &status, &body);
        assert_int_equal(status, 403);
        assert_null(strstr(body, "<script>"));
        assert_non_null(strstr(body, "&lt;script&gt;"));
        bc_close(c);
}

static void test_junk_flood_refused(void **state)
{
        static const char *const junk[] = {
                "/", "/callback", "/callback?", "/callback/?code=a&state=b", "/CALLBACK?code=a",
                "/callback?state=&code=", "/callback?code=a&code=b&state=c",
                "/callback?state=%00&code=x", "/../callback?code=a&state=b", "/favicon.ico",
        };
        DBusConnection *c = bus();
        unsigned refused_by_rate = 0, ok = 0;
        long status = 0;

        for (unsigned i = 0; i < 60; i++) {
                get_from("127.0.0.8", junk[i % ELEMENTSOF(junk)], NULL, &status, NULL);
                if (status == 200)
                        ok++;
                if (status == 429 || status == 0)
                        refused_by_rate++;
                else
                        assert_int_equal(status, 404);
        }
        assert_int_equal(ok, 0);
        /* Beyond the burst, the rest are refused for their rate (at accept, or the request). */
        assert_true(refused_by_rate >= 60 - LK_CALLBACK_RATE_BURST);
        /* Other addresses, and the bus, are served as before. */
        assert_bus_answers(c);
        login_through_listener(c, "cb-session-4");
        bc_close(c);
}

static void test_oversized_requests_refused(void **state)
{
        DBusConnection *c = bus();
        _cleanup_free_ char *url = NULL, *id = NULL, *loc = NULL, *target = NULL;
        _cleanup_free_ char *long_target = NULL, *big = NULL, *body = NULL;
        struct curl_slist *many = NULL, *huge = NULL;
        long status = 0;
        char name[32];

        id = begin(c, &url);
        loc = location_for(url);
        target = target_of(loc);

        /* A real callback, made longer than LK_CALLBACK_REQUEST_MAX. */
        big = malloc(LK_CALLBACK_REQUEST_MAX + 1);
        assert_non_null(big);
        memset(big, 'a', LK_CALLBACK_REQUEST_MAX);
        big[LK_CALLBACK_REQUEST_MAX] = '\0';
        long_target = lkh_xasprintf("%s&pad=%s", target, big);
        get_from("127.0.0.9", long_target, NULL, &status, NULL);
        assert_true(status != 200);
        assert_true(status >= 400 || status == 0);

        /* A real callback with more than LK_CALLBACK_HEADERS_MAX headers. */
        for (unsigned i = 0; i <= LK_CALLBACK_HEADERS_MAX; i++) {
                snprintf(name, sizeof(name), "X-Junk-%u: %u", i, i);
                many = curl_slist_append(many, name);
        }
        get_from("127.0.0.9", target, many, &status, NULL);
        assert_int_equal(status, 404);
        curl_slist_free_all(many);

        /* A real callback whose headers hold more than LK_CALLBACK_REQUEST_MAX bytes. */
        {
                _cleanup_free_ char *h1 = lkh_xasprintf("X-Big-1: %.*s", 3000, big);
                _cleanup_free_ char *h2 = lkh_xasprintf("X-Big-2: %.*s", 3000, big);
                _cleanup_free_ char *h3 = lkh_xasprintf("X-Big-3: %.*s", 3000, big);

                huge = curl_slist_append(huge, h1);
                huge = curl_slist_append(huge, h2);
                huge = curl_slist_append(huge, h3);
                get_from("127.0.0.9", target, huge, &status, NULL);
                assert_true(status == 404 || status == 431 || status == 0);
                curl_slist_free_all(huge);
        }

        /* None of them took the login's answer: the plain callback signs in. */
        get_from("127.0.0.9", target, NULL, &status, &body);
        assert_int_equal(status, 200);
        assert_complete_then_session(c, id, "cb-session-5");
        bc_close(c);
}

static void test_connections_per_address_bounded(void **state)
{
        DBusConnection *c = bus();
        int fds[LK_CALLBACK_CONNECTIONS_PER_ADDRESS], extra;
        int64_t t0;

        /* Idle connections from one address, up to its limit, are kept... */
        for (unsigned i = 0; i < ELEMENTSOF(fds); i++) {
                fds[i] = tcp_connect("127.0.0.10", F->port);
                assert_true(fds[i] >= 0);
        }
        lkh_sleep_ms(300);
        for (unsigned i = 0; i < ELEMENTSOF(fds); i++)
                assert_false(closed_within(fds[i], 0));
        /* ...one more is closed at once. */
        extra = tcp_connect("127.0.0.10", F->port);
        if (extra >= 0) {
                assert_true(closed_within(extra, 3000));
                close(extra);
        }
        /* Meanwhile another address signs in, and the bus answers. */
        assert_bus_answers(c);
        login_through_listener(c, "cb-session-6");
        /* An idle connection is closed after LK_CALLBACK_TIMEOUT_S. */
        t0 = lkh_now_ms();
        assert_true(closed_within(fds[0], (LK_CALLBACK_TIMEOUT_S + 5) * 1000));
        assert_true(lkh_now_ms() - t0 <= (LK_CALLBACK_TIMEOUT_S + 5) * 1000);
        for (unsigned i = 0; i < ELEMENTSOF(fds); i++)
                close(fds[i]);
        bc_close(c);
}

static void test_connections_in_all_bounded(void **state)
{
        enum { ADDRESSES = LK_CALLBACK_CONNECTIONS_MAX / LK_CALLBACK_CONNECTIONS_PER_ADDRESS };
        int fds[LK_CALLBACK_CONNECTIONS_MAX], n = 0;
        DBusConnection *c = bus();
        char source[32];
        long status = -1;

        /* Every connection the listener takes, each address at its own limit... */
        for (int a = 0; a < ADDRESSES; a++) {
                snprintf(source, sizeof(source), "127.0.1.%d", a + 1);
                for (int i = 0; i < LK_CALLBACK_CONNECTIONS_PER_ADDRESS; i++) {
                        fds[n] = tcp_connect(source, F->port);
                        assert_true(fds[n] >= 0);
                        n++;
                }
        }
        lkh_sleep_ms(300);
        for (int i = 0; i < n; i++)
                assert_false(closed_within(fds[i], 0));
        /* ...then one from a fresh address waits, unanswered (in the kernel's backlog)... */
        get_within("127.0.1.100", "/favicon.ico", NULL, 2, &status, NULL);
        assert_int_equal(status, 0);
        /* ...while the bus is served; once they go, the listener serves again. */
        assert_bus_answers(c);
        for (int i = 0; i < n; i++)
                close(fds[i]);
        lkh_sleep_ms(500);
        get_within("127.0.1.100", "/favicon.ico", NULL, 10, &status, NULL);
        assert_int_equal(status, 404);
        lkh_sleep_ms(500);
        login_through_listener(c, "cb-session-7");
        bc_close(c);
}

/* Last of the group: everything the tests saw. */
static void test_log_holds_no_code_or_state(void **state)
{
        _cleanup_free_ char *log = NULL;
        size_t len = 0;
        int fd = open(F->log_path, O_RDONLY | O_CLOEXEC);

        assert_true(fd >= 0);
        while (fd >= 0)
                assert_true(lkh_read_more(&fd, &log, &len, 64 << 20) >= 0);
        assert_non_null(log);
        /* The listener's private key: no line of it. */
        {
                _cleanup_free_ char *key = NULL;
                size_t klen = 0;
                int kfd = open(F->h->key_file, O_RDONLY | O_CLOEXEC);
                char *line, *save = NULL;

                assert_true(kfd >= 0);
                while (kfd >= 0)
                        assert_true(lkh_read_more(&kfd, &key, &klen, 1 << 20) >= 0);
                for (line = strtok_r(key, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
                        if (!strstr(line, "-----"))
                                remember_secret(line);
        }
        /* The log is there, and says what happened (a --debug broker logs much). */
        assert_non_null(strstr(log, "callback received"));
        assert_true(lk_strv_length(F->secrets) >= 6);
        for (char **s = F->secrets; s && *s; s++)
                if (strstr(log, *s))
                        fail_msg("the broker's log holds a code, state or token");
}

static void test_nothing_listens_without_callback(void **state)
{
        DBusConnection *c = bus();
        _cleanup_free_ char *url = NULL, *id = NULL;
        int fd;

        /* The broker runs (a login pending keeps it so), yet has no listening socket. */
        id = begin(c, &url);
        assert_int_equal(broker_listening_sockets(), 0);
        fd = tcp_connect("127.0.0.1", F->port);
        assert_int_equal(fd, -ECONNREFUSED);
        bc_close(c);
}

/* [::1]:PORT: the callback over IPv6 (the certificate's name, localhost, resolved to ::1). */
static void test_ipv6_listener(void **state)
{
        DBusConnection *c = bus();
        _cleanup_free_ char *url = NULL, *id = NULL, *loc = NULL, *target = NULL, *full = NULL;
        _cleanup_free_ char *resolve = lkh_xasprintf("localhost:%u:[::1]", F->port);
        struct curl_slist *to = curl_slist_append(NULL, resolve);
        struct body b = {0};
        CURL *h = curl_easy_init();
        long status = 0;

        assert_int_equal(broker_listening_sockets(), 1);
        id = begin(c, &url);
        loc = location_for(url);
        target = target_of(loc);
        full = lkh_xasprintf("https://localhost:%u%s", F->port, target);
        curl_easy_setopt(h, CURLOPT_URL, full);
        curl_easy_setopt(h, CURLOPT_RESOLVE, to);
        curl_easy_setopt(h, CURLOPT_CAINFO, F->h->cert_file);
        curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
        assert_int_equal(curl_easy_perform(h), CURLE_OK);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(h);
        curl_slist_free_all(to);
        assert_int_equal(status, 200);
        assert_non_null(strstr(b.text, "You are signed in"));
        free(b.text);
        assert_complete_then_session(c, id, "cb-session-v6");
        /* And nothing on IPv4. */
        assert_int_equal(tcp_connect("127.0.0.1", F->port), -ECONNREFUSED);
        bc_close(c);
}

/* A listener that cannot start: logged, nothing listens, the broker serves on (pasting). */
static void check_not_started(const char *why)
{
        DBusConnection *c = bus();
        _cleanup_free_ char *url = NULL, *id = NULL, *log = NULL, *e = NULL, *who = NULL;
        _cleanup_free_ char *loc = NULL;
        size_t len = 0;
        int fd;

        id = begin(c, &url);
        assert_int_equal(broker_listening_sockets(), 0);
        assert_int_equal(tcp_connect("127.0.0.1", F->port), -ECONNREFUSED);
        fd = open(F->log_path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        while (fd >= 0)
                assert_true(lkh_read_more(&fd, &log, &len, 64 << 20) >= 0);
        assert_non_null(strstr(log, why));
        assert_non_null(strstr(log, "the provider's callback must be pasted"));
        /* Pasting the address works as ever. */
        loc = location_for(url);
        e = bc_call_s(c, "CompleteLogin", id, loc, &who, NULL);
        assert_null(e);
        assert_string_equal(who, USER);
        bc_close(c);
}

static void test_key_readable_by_others_refused(void **state)
{
        check_not_started("group or others");
}

static void test_certificate_not_pem_refused(void **state)
{
        check_not_started("a PEM certificate");
}

static void test_certificate_too_big_refused(void **state)
{
        check_not_started("big.pem");
}

int main(void)
{
        const struct CMUnitTest with[] = {
                cmocka_unit_test_setup(test_listens_on_one_socket, reset),
                cmocka_unit_test_setup(test_login_finished_by_listener, reset),
                cmocka_unit_test_setup(test_wrong_state_refused, reset),
                cmocka_unit_test_setup(test_replayed_callback_refused, reset),
                cmocka_unit_test_setup(test_error_callback_ends_login, reset),
                cmocka_unit_test_setup(test_junk_flood_refused, reset),
                cmocka_unit_test_setup(test_oversized_requests_refused, reset),
                cmocka_unit_test_setup(test_connections_per_address_bounded, reset),
                cmocka_unit_test_setup(test_connections_in_all_bounded, reset),
                cmocka_unit_test(test_log_holds_no_code_or_state),
        };
        const struct CMUnitTest without[] = {
                cmocka_unit_test(test_nothing_listens_without_callback),
        };
        const struct CMUnitTest ipv6[] = {
                cmocka_unit_test(test_ipv6_listener),
        };
        const struct CMUnitTest key_readable[] = {
                cmocka_unit_test(test_key_readable_by_others_refused),
        };
        const struct CMUnitTest cert_not_pem[] = {
                cmocka_unit_test(test_certificate_not_pem_refused),
        };
        const struct CMUnitTest cert_too_big[] = {
                cmocka_unit_test(test_certificate_too_big_refused),
        };
        int failed = 0;

        curl_global_init(CURL_GLOBAL_DEFAULT);
        failed += cmocka_run_group_tests_name("callback listener", with, setup, teardown);
        failed += cmocka_run_group_tests_name("no [callback]", without, setup_without, teardown);
        failed += cmocka_run_group_tests_name("[::1]", ipv6, setup_ipv6, teardown);
        failed += cmocka_run_group_tests_name("a key others may read", key_readable,
                                              setup_key_readable, teardown);
        failed += cmocka_run_group_tests_name("no certificate in the file", cert_not_pem,
                                              setup_cert_not_pem, teardown);
        failed += cmocka_run_group_tests_name("a certificate over its cap", cert_too_big,
                                              setup_cert_too_big, teardown);
        curl_global_cleanup();
        return failed ? 1 : 0;
}
