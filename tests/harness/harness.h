/* SPDX-License-Identifier: MIT */
/*
 * lk-harness: the scaffolding every latchkey integration test stands on.
 *
 * One struct lkh per test group (cmocka group setup/teardown):
 *
 *     static int setup(void **state)
 *     {
 *             struct lkh *h;
 *             if (lkh_new(&h) < 0 || lkh_start_idp(h, NULL) < 0 ||
 *                 lkh_write_config(h, NULL) < 0 || lkh_start_bus(h) < 0 ||
 *                 lkh_start_broker(h, NULL) < 0) {
 *                     lkh_free(h);
 *                     return -1;
 *             }
 *             *state = h;
 *             return 0;
 *     }
 *     static int teardown(void **state) { lkh_free(*state); return 0; }
 *
 * Everything lives in a fresh temporary folder (h->dir, removed by lkh_free
 * unless LATCHKEY_TEST_KEEP=1 is set). Children are started with fork/exec
 * (never system()) and die with the test process (PR_SET_PDEATHSIG), so a
 * crashed test leaves nothing running. No secret is ever put in argv: the
 * client secret lives in h->client_secret_file (mode 0600), which both the
 * IdP (--client ID:@FILE:AUTH) and the broker's latchkey.conf read.
 *
 * Every function returns 0 or a negative errno-style value and prints one
 * line saying what went wrong to stderr (this is test code: the output lands
 * in the meson test log). Output parameters are written only on success.
 *
 * Environment overrides: LATCHKEY_TEST_LATCHKEYD (broker binary),
 * LATCHKEY_TEST_IDP (IdP binary), LATCHKEY_TEST_KEEP=1 (keep the folder),
 * LATCHKEY_TEST_VERBOSE=1 (IdP and broker log to stderr), LATCHKEY_TEST_VALGRIND=1 (every
 * latchkeyd, started or activated, runs under valgrind memcheck; logs to
 * LATCHKEY_TEST_VALGRIND_DIR/valgrind.PID, see tests/integration/valgrind-check).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct lkh {
        char *dir;          /* the temporary folder, mode 0755 so other uids reach the bus */
        char *cert_file;    /* the IdP's self-signed certificate; also the CA file */
        char *key_file;

        /* The IdP, after lkh_start_idp() */
        pid_t idp_pid;
        unsigned idp_port;
        char *idp_base;     /* https://127.0.0.1:PORT */
        char *issuer;       /* https://HOST:PORT/api/v1/oauth2 */
        char *client_id;    /* "latchkey-test", registered with opts->basic's method */
        char *alt_client_id; /* "latchkey-test-alt", same secret, the other method */
        char *client_secret; /* test data, with ':', '+', '&' and '%' to exercise encodings */
        char *client_secret_file; /* mode 0600 */
        bool client_basic;  /* client_id uses client_secret_basic */
        char *redirect_uri;

        /* lkh_write_config() */
        char *config_file;  /* DIR/latchkey.conf */
        char *state_dir;    /* DIR/state, mode 0700 */

        /* The private system bus, after lkh_start_bus() */
        pid_t bus_pid;
        char *bus_address;  /* also exported as DBUS_SYSTEM_BUS_ADDRESS */
        char *bus_config;   /* DIR/bus.conf */
        char *services_dir; /* DIR/services, holds org.latchkey.Broker1.service */

        /* latchkeyd, when started by lkh_start_broker() (not by activation) */
        pid_t broker_pid;
};

struct lkh_idp_options {
        const char *cert_name; /* make-cert --name; NULL: localhost + 127.0.0.1 */
        const char *host;      /* host in the issuer; NULL: 127.0.0.1 */
        bool basic;            /* register client_id as client_secret_basic (else post) */
        bool verbose;          /* IdP logs each request to stderr */
};

/* Makes the temporary folder and the client secret. */
int lkh_new(struct lkh **ret);
/* Stops the broker (also an activated one), the bus and the IdP (SIGTERM, then SIGKILL after
 * 5 s), removes the folder and frees h. NULL is fine. Safe in a cmocka group teardown. */
void lkh_free(struct lkh *h);

/* Runs tests/idp/make-cert: a self-signed certificate for name (NULL: localhost + 127.0.0.1). */
int lkh_make_cert(struct lkh *h, const char *name, const char *cert_path, const char *key_path);

/* Makes h->cert_file/h->key_file (if not made yet), starts latchkey-test-idp on a random port and
 * waits (up to 15 s) for its port file. o may be NULL. */
int lkh_start_idp(struct lkh *h, const struct lkh_idp_options *o);
void lkh_stop_idp(struct lkh *h);

/* Writes h->config_file for the IdP: [users] allow_system_users = root daemon bin sys sync games (the accounts
 * the tests sign in as; extra may set it again), [provider] issuer, client_id, client_secret_file,
 * client_auth, redirect_uri, ca_file, timeout; then extra (may be NULL) verbatim, so extra
 * lines without a section header still belong to [provider]. Mode 0644. */
int lkh_write_config(struct lkh *h, const char *extra);

/* Starts a private system-like dbus-daemon on unix:path=DIR/bus, with Debian system.conf's
 * default policy (deny own, deny method calls but to the bus), permission for the current
 * user to own org.latchkey.Broker1, the project's dbus/org.latchkey.Broker1.conf included,
 * and an activation file whose Exec= runs latchkeyd --config h->config_file --state-dir
 * h->state_dir --idle-exit 0. Exports DBUS_SYSTEM_BUS_ADDRESS. The bus also reads
 * DIR/bus-extra.conf where a test wrote one (a <busconfig> of its own rules). */
int lkh_start_bus(struct lkh *h);
void lkh_stop_bus(struct lkh *h);

/* Starts latchkeyd directly (extra_args: NULL-terminated, may be NULL) and waits (up to 15 s)
 * until it owns org.latchkey.Broker1 on the private bus. */
int lkh_start_broker(struct lkh *h, const char *const *extra_args);
/* The same with the broker's stderr appended to log_path (created mode 0600). */
int lkh_start_broker_logging(struct lkh *h, const char *const *extra_args, const char *log_path);
/* Stops the broker, whether started by lkh_start_broker() or by bus activation. */
void lkh_stop_broker(struct lkh *h);
/* The pid owning org.latchkey.Broker1 on the private bus, 0 when none (asked on a connection of
 * its own). */
pid_t lkh_broker_pid(struct lkh *h);
/* The path of latchkeyd the harness runs. */
const char *lkh_latchkeyd_path(void);

/* An authorize URL for the IdP without the broker (tests of the IdP itself). state, nonce and
 * challenge (S256) may be NULL to leave them out. */
char *lkh_idp_authorize_url(struct lkh *h, const char *state, const char *nonce,
                            const char *challenge);

/* Plays the browser: GETs authorize_url from the IdP (trusting h->cert_file) as user, either
 * by appending login_hint (when absent) or, with use_form, by fetching the sign-in form and
 * POSTing it back. Does not follow the redirect. Returns the Location (the callback URL) and
 * the code in it; *ret_code is NULL when the IdP redirected with error=... instead. Either
 * return pointer may be NULL. */
int lkh_browser_login(struct lkh *h, const char *authorize_url, const char *user, bool use_form,
                      char **ret_location, char **ret_code);

/* A kept-alive HTTPS connection to the IdP, for a thread that plays the browser many times and
 * must not pay a TLS handshake each time (the bench). One thread at a time; NULL when out of
 * memory. */
struct lkh_conn *lkh_conn_new(void);
void lkh_conn_free(struct lkh_conn *c);
/* lkh_browser_login() over conn (NULL: a fresh connection, as lkh_browser_login()). */
int lkh_browser_login_on(struct lkh *h, struct lkh_conn *conn, const char *authorize_url,
                         const char *user, bool use_form, char **ret_location, char **ret_code);

/* A loopback TCP port free a moment ago (for a listener a test configures). */
int lkh_free_port(unsigned *ret);

/* Plays the person of the device flow (RFC 8628 §3.3): opens verification_url (the
 * verification_uri_complete BeginLogin returned) at the IdP and approves its user code as user,
 * or refuses it (deny). 0 when the IdP took it. */
int lkh_device_approve(struct lkh *h, const char *verification_url, const char *user, bool deny);

/* The decoded value of a query parameter of url; -ENOENT when absent. */
int lkh_url_param(const char *url, const char *name, char **ret);

/* One HTTPS exchange with the IdP. url is absolute or a path below h->idp_base. form_body,
 * when not NULL, is POSTed as application/x-www-form-urlencoded; headers is a NULL-terminated
 * list of "Name: value" lines (may be NULL). Body capped at 4 MiB. ret_body and ret_headers
 * may be NULL. */
int lkh_http(struct lkh *h, const char *url, const char *form_body, const char *const *headers,
             long *ret_status, char **ret_body, char **ret_headers);

/* Sets one IdP switch (see tests/idp/README.md), e.g. lkh_idp_set(h, "delay_ms", "2000"). */
int lkh_idp_set(struct lkh *h, const char *name, const char *value);
/* All switches off and counters zero. */
int lkh_idp_reset(struct lkh *h);
/* One counter of GET /control/stats, e.g. "token_code". */
int lkh_idp_stat(struct lkh *h, const char *name, long *ret);

/* Runs fn(userdata) in a child process as uid/gid (supplementary groups dropped) and returns
 * its result in *ret_result. Needs root unless uid is our own. fn must not use cmocka's
 * assertions (a failure would unwind into the child's copy of the test runner); return a
 * value and assert on it in the parent. -ECHILD when the child died without answering. */
int lkh_run_as(uid_t uid, gid_t gid, int (*fn)(void *userdata), void *userdata,
               int *ret_result);

/* Process helpers, also used by tests that start their own programs. */
int lkh_spawn(const char *const argv[], int fd3, pid_t *ret_pid);
/* SIGTERM, wait up to timeout_ms, then SIGKILL; *pid becomes 0. Returns the wait status. */
int lkh_stop_process(pid_t *pid, int timeout_ms);

/* cmocka group setup for the usual stack: lkh_new(), lkh_start_idp(h, o), lkh_write_config(h,
 * config_extra), lkh_start_bus(), lkh_start_broker(h, NULL); *state the struct lkh, or -1 with
 * everything stopped again. lkh_teardown() is its group teardown (lkh_free(*state)). */
int lkh_setup_broker(void **state, const struct lkh_idp_options *o, const char *config_extra);
int lkh_teardown(void **state);

/* The port number (1-65535) in a port file a child writes; -EAGAIN while it is still empty. */
int lkh_read_port_file(const char *path, unsigned *ret);
/* One read() from *fd appended to *text (NUL-terminated, *len bytes, realloc'd); at end of
 * file or on error *fd is closed and becomes -1. -EFBIG when the text would reach max bytes. */
int lkh_read_more(int *fd, char **text, size_t *len, size_t max);

/* Small helpers the tests share. lkh_xasprintf() aborts when out of memory. */
char *lkh_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Sleeps ms milliseconds, through EINTR. */
void lkh_sleep_ms(long ms);
/* CLOCK_MONOTONIC in milliseconds. */
int64_t lkh_now_ms(void);
