/* SPDX-License-Identifier: MIT */
/*
 * latchkey-demo: a complete SSO login through the real PAM stack, step by
 * step, against the test identity provider on loopback.
 *
 * libpam loads pam_latchkey.so from the demo's own service file (through
 * pam_start_confdir, so nothing under /etc/pam.d is touched); the broker is
 * D-Bus-activated on a private system bus; the person's browser is played by
 * the test harness; the access token is then fetched over D-Bus as a desktop
 * application in the session would, under the user's own uid.
 */
#include <errno.h>
#include <inttypes.h>
#include <pwd.h>
#include <security/pam_appl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"
#include "lib/latchkey.h"
#include "oidc/secret.h"
#include "tests/harness/harness.h"

#define DEMO_USER "latchkey-demo"
#define SERVICE "latchkey"

struct demo {
        struct lkh *h;
        char *authorize_url; /* seen in the module's PAM_TEXT_INFO */
};

static int step_no;

static void _printf_(1, 2) step(const char *fmt, ...)
{
        va_list ap;

        printf("\n[%d] ", ++step_no);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
        fflush(stdout);
}

static void _printf_(1, 2) say(const char *fmt, ...)
{
        va_list ap;

        printf("    ");
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
        fflush(stdout);
}

/* The callback address carries the code, a secret: shown with the code's value hidden. */
static void show_callback(const char *url)
{
        const char *code = strstr(url, "code=");
        const char *end;

        if (!code) {
                say("%s", url);
                return;
        }
        end = strchr(code, '&');
        say("%.*scode=(hidden, %s)%s", (int)(code - url), url,
            "a one-time secret", end ? end : "");
}

static int find_url(const char *msg, char **ret)
{
        const char *p = strstr(msg, "https://");
        size_t n;

        if (!p)
                return -ENOENT;
        n = strcspn(p, " \t\r\n");
        *ret = strndup(p, n);
        return *ret ? 0 : -ENOMEM;
}

/* Plays the person at the terminal: reads what the module shows, signs in, pastes the answer. */
static int conversation(int n, const struct pam_message **msg, struct pam_response **resp,
                        void *userdata)
{
        struct demo *d = userdata;
        struct pam_response *r = calloc((size_t)n, sizeof(*r));

        if (!r)
                return PAM_BUF_ERR;
        for (int i = 0; i < n; i++) {
                switch (msg[i]->msg_style) {
                case PAM_TEXT_INFO:
                        printf("%s\n", msg[i]->msg);
                        if (!d->authorize_url)
                                (void)find_url(msg[i]->msg, &d->authorize_url);
                        break;
                case PAM_ERROR_MSG:
                        printf("ERROR from the module: %s\n", msg[i]->msg);
                        break;
                case PAM_PROMPT_ECHO_ON: {
                        char *location = NULL;

                        printf("%s", msg[i]->msg);
                        printf("(the person switches to the browser)\n");
                        if (!d->authorize_url) {
                                say("No sign-in address was shown before the prompt.");
                                goto fail;
                        }
                        say("The browser opens the address, and the person signs in at the "
                            "provider as '%s'.", DEMO_USER);
                        if (lkh_browser_login(d->h, d->authorize_url, DEMO_USER, false, &location,
                                              NULL) < 0) {
                                say("The provider did not sign the person in.");
                                goto fail;
                        }
                        say("The provider sends the browser back to:");
                        show_callback(location);
                        say("The person copies that address and pastes it at the prompt.");
                        r[i].resp = location;
                        break;
                }
                default:
                        say("Unexpected question from the module (style %d).", msg[i]->msg_style);
                        goto fail;
                }
        }
        *resp = r;
        return PAM_SUCCESS;
fail:
        for (int i = 0; i < n; i++)
                lk_secret_free(r[i].resp);
        free(r);
        return PAM_CONV_ERR;
}

static int ensure_user(uid_t *ret_uid, gid_t *ret_gid)
{
        struct passwd *pw = getpwnam(DEMO_USER);

        if (!pw) {
                /* A person's account, not a system one: SSO refuses those by default. */
                const char *const argv[] = { "/usr/sbin/useradd", "--no-create-home",
                                             "--shell", "/usr/sbin/nologin", DEMO_USER, NULL };
                pid_t pid;
                int status;

                say("Creating the local account '%s' (useradd), as an admin would for a person "
                    "who signs in with SSO.", DEMO_USER);
                if (lkh_spawn(argv, -1, &pid) < 0 || waitpid(pid, &status, 0) < 0 ||
                    !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                        return -EIO;
                pw = getpwnam(DEMO_USER);
                if (!pw)
                        return -ENOENT;
        }
        *ret_uid = pw->pw_uid;
        *ret_gid = pw->pw_gid;
        return 0;
}

struct token_call {
        const char *session_id;
};

/*
 * What a desktop application in the session does, through liblatchkey: with
 * LATCHKEY_SESSION in its environment, latchkey_get_token() asks the broker.
 */
static int get_token_as_app(void *userdata)
{
        struct token_call *t = userdata;
        struct latchkey *lk = NULL;
        char *token = NULL, *type = NULL;
        int64_t expires_at = 0;
        char fp[LK_FINGERPRINT_SIZE];
        int r;

        if (setenv("LATCHKEY_SESSION", t->session_id, 1) < 0 || latchkey_open(&lk) < 0) {
                printf("    cannot start liblatchkey\n");
                return 1;
        }
        r = latchkey_get_token(lk, NULL, 60, &token, &expires_at, &type);
        if (r < 0) {
                printf("    latchkey_get_token failed: %s: %s\n", latchkey_error_name(r),
                       latchkey_last_error_message(lk));
                latchkey_close(lk);
                return 1;
        }
        lk_fingerprint(token, fp);
        printf("    The broker answered: a %s token of %zu characters (%s), valid for "
               "another %" PRId64 " seconds.\n",
               type, strlen(token), fp, expires_at - (int64_t)time(NULL));
        printf("    The application now sends: Authorization: %s <the token>\n", type);
        latchkey_free_secret(token);
        free(type);
        latchkey_close(lk);
        return 0;
}

static int fail(struct demo *d, pam_handle_t *pamh, int pr, const char *what)
{
        printf("\nFAILED: %s", what);
        if (pamh)
                printf(": %s", pam_strerror(pamh, pr));
        printf("\n");
        if (pamh)
                pam_end(pamh, pr);
        lkh_free(d->h);
        free(d->authorize_url);
        return EXIT_FAILURE;
}

int main(int argc, char *argv[])
{
        struct demo d = {0};
        struct pam_conv conv = { conversation, &d };
        pam_handle_t *pamh = NULL;
        const char *session;
        struct token_call call;
        uid_t uid;
        gid_t gid;
        int pr, result = 1;

        if (argc != 2) {
                fprintf(stderr, "usage: %s PAM_SERVICE_DIR\n", argv[0]);
                return EXIT_FAILURE;
        }
        setvbuf(stdout, NULL, _IOLBF, 0);

        step("Preparing the machine");
        if (ensure_user(&uid, &gid) < 0)
                return fail(&d, NULL, 0, "could not create the local account " DEMO_USER);
        say("Local account '%s' has uid %u.", DEMO_USER, (unsigned)uid);

        /*
         * Older demos made the account with useradd --system, and latchkey refuses system
         * accounts unless the admin lists them ([users] allow_system_users): list it then.
         */
        if (uid < 1000)
                say("'%s' is a system account (uid below 1000, from an older demo): the config "
                    "lists it in [users] allow_system_users, since latchkey refuses system "
                    "accounts otherwise.", DEMO_USER);

        step("Starting the test identity provider (OneAccess's paths, HTTPS on loopback)");
        if (lkh_new(&d.h) < 0 || lkh_start_idp(d.h, NULL) < 0 ||
            lkh_write_config(d.h, uid < 1000 ? "scopes = openid profile offline_access\n"
                                               "[users]\n"
                                               "allow_system_users = " DEMO_USER "\n"
                                             : "scopes = openid profile offline_access\n") < 0)
                return fail(&d, NULL, 0, "could not start the test identity provider");
        say("Issuer: %s", d.h->issuer);
        say("latchkey.conf: %s", d.h->config_file);

        step("Starting a private system bus; latchkeyd will be started by D-Bus activation");
        if (lkh_start_bus(d.h) < 0)
                return fail(&d, NULL, 0, "could not start the private dbus-daemon");
        say("DBUS_SYSTEM_BUS_ADDRESS=%s", d.h->bus_address);

        step("A login program starts PAM for '%s' (service file %s/%s)", DEMO_USER, argv[1],
             SERVICE);
        pr = pam_start_confdir(SERVICE, DEMO_USER, &conv, argv[1], &pamh);
        if (pr != PAM_SUCCESS)
                return fail(&d, NULL, 0, "pam_start_confdir failed");

        step("pam_authenticate: pam_latchkey asks the broker to begin a login and shows the "
             "person where to sign in");
        pr = pam_authenticate(pamh, 0);
        if (pr != PAM_SUCCESS)
                return fail(&d, pamh, pr, "authentication");
        say("pam_authenticate: %s. The broker exchanged the code, verified the id_token and "
            "matched it to '%s'.", pam_strerror(pamh, pr), DEMO_USER);

        step("pam_acct_mgmt");
        pr = pam_acct_mgmt(pamh, 0);
        if (pr != PAM_SUCCESS)
                return fail(&d, pamh, pr, "account check");
        say("pam_acct_mgmt: %s", pam_strerror(pamh, pr));

        step("pam_open_session: the tokens now belong to the login session");
        pr = pam_open_session(pamh, 0);
        if (pr != PAM_SUCCESS)
                return fail(&d, pamh, pr, "opening the session");
        session = pam_getenv(pamh, "LATCHKEY_SESSION");
        if (!session)
                return fail(&d, pamh, PAM_SESSION_ERR, "LATCHKEY_SESSION was not set");
        say("The session's environment has LATCHKEY_SESSION=%s", session);

        step("A desktop application in the session (uid %u, LATCHKEY_SESSION=%s) asks the "
             "broker for the access token: latchkey_get_token(), i.e. GetToken on "
             "org.latchkey.Broker1", (unsigned)uid, session);
        call.session_id = session;
        if (lkh_run_as(uid, gid, get_token_as_app, &call, &result) < 0 || result != 0)
                return fail(&d, pamh, PAM_SESSION_ERR, "the application got no token");

        step("pam_close_session: the person logs out; the broker erases the tokens");
        pr = pam_close_session(pamh, 0);
        if (pr != PAM_SUCCESS)
                return fail(&d, pamh, pr, "closing the session");
        say("pam_close_session: %s", pam_strerror(pamh, pr));
        pam_end(pamh, PAM_SUCCESS);

        step("Stopping the broker, the bus and the identity provider");
        lkh_free(d.h);
        free(d.authorize_url);
        printf("\nThe SSO login worked, from the sign-in address to the application's token.\n");
        return EXIT_SUCCESS;
}
