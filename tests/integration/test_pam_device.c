/* SPDX-License-Identifier: MIT */
/*
 * pam_latchkey.so and the device flow (RFC 8628) through the real libpam, under pam_wrapper,
 * against the real latchkeyd and the test provider. The person signs in on "another device"
 * (a thread that approves the user code at the provider a moment later) and types nothing but
 * Enter: at a console login (service login) not even that, since text shows at once there;
 * over sshd (service sshd, keyboard-interactive shows text only with a prompt) the address is
 * in the prompt, and Enter is the answer. Pasting still works for the code flow.
 *
 * Run by meson with LD_PRELOAD=libpam_wrapper.so and PAM_WRAPPER=1; main() takes LD_PRELOAD
 * out of the environment again for the bus, the provider and the broker.
 */
#include <dbus/dbus.h>
#include <endian.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <libpamtest.h>
#include <security/pam_appl.h>

#include "base/util.h"
#include "tests/harness/harness.h"

#ifndef PAM_LATCHKEY_SO
#error "PAM_LATCHKEY_SO must be defined by meson"
#endif

#define MAX_MESSAGES 64
#define USER "daemon"

static struct lkh *H;
static char *pam_dir;

/* ---- the person, on two devices ---- */

/*
 * GDM's JSON extension as the greeter speaks it, laid out here from the protocol's
 * description on its own (not from the module's header), so the test checks the layout too.
 */
#define GDM_JSON "org.gnome.DisplayManager.UserVerifier.CustomJSON"
struct greeter_header {
        uint32_t length;
        unsigned char type;
};
struct greeter_message {
        struct greeter_header header;
        char protocol_name[64];
        unsigned int version;
        char *json;
};

struct person {
        /* The greeter: a binary prompt per sign-in address; Done after done_after_ms. */
        unsigned n_binary;
        char *gdm_uri[4], *gdm_code[4];
        long gdm_timeout[4];
        long done_after_ms;  /* wait this long before pressing Done */
        bool approve_round[4]; /* approve the address of that round before Done */
        const char *gdm_status; /* "Ok" unless set */
        bool deny;           /* refuse at the provider instead */
        bool listener;       /* code flow: the IdP delivers the redirect to the broker's listener */
        bool paste;          /* code flow: paste the callback address */
        char *info[MAX_MESSAGES];
        unsigned n_info, n_prompts;
        char *prompt;        /* the last prompt */
        char *location;      /* code flow: where the browser came back to */
        pthread_t approver;
        bool approving;
        char *device_url;
};

static void *approve_later(void *userdata)
{
        struct person *p = userdata;

        lkh_sleep_ms(1500);
        if (lkh_device_approve(H, p->device_url, USER, p->deny) < 0)
                fprintf(stderr, "the approval failed\n");
        return NULL;
}

/* The address to sign in at: approve it from the "phone", a moment later. */
static void sign_in_elsewhere(struct person *p, const char *url, size_t len)
{
        if (p->approving)
                return;
        p->device_url = strndup(url, len);
        p->approving = pthread_create(&p->approver, NULL, approve_later, p) == 0;
}

static void person_clear(struct person *p)
{
        if (p->approving)
                pthread_join(p->approver, NULL);
        for (unsigned i = 0; i < 4; i++) {
                free(p->gdm_uri[i]);
                free(p->gdm_code[i]);
        }
        for (unsigned i = 0; i < p->n_info; i++)
                free(p->info[i]);
        free(p->prompt);
        free(p->location);
        free(p->device_url);
        memset(p, 0, sizeof(*p));
}

/* The first https:// address in text, up to a space. */
static const char *find_url(const char *text, size_t *len)
{
        const char *u = strstr(text, "https://");

        if (u)
                *len = strcspn(u, " ");
        return u;
}

/* The greeter's side of one JSON message: show, wait for Done, answer. */
static char *greeter_answer(struct person *p, const struct pam_message *pm)
{
        const struct greeter_message *m = (const void *)pm->msg;
        struct greeter_message *reply;
        json_t *doc, *eidp;
        unsigned i = p->n_binary;

        if (i >= 4 || be32toh(m->header.length) != sizeof(*m) || m->header.type != 1 ||
            strcmp(m->protocol_name, "auth-mechanisms") != 0 || m->version != 1 || !m->json)
                return NULL;
        doc = json_loads(m->json, 0, NULL);
        eidp = json_object_get(json_object_get(json_object_get(doc, "authSelection"),
                                               "mechanisms"),
                               "eidp");
        if (!json_is_object(eidp) ||
            !streq(json_string_value(json_object_get(eidp, "role")) ?: "", "eidp") ||
            !json_is_string(json_object_get(eidp, "uri")) ||
            !json_is_string(json_object_get(eidp, "linkPrompt")) ||
            !json_is_array(json_object_get(json_object_get(doc, "authSelection"), "priority"))) {
                json_decref(doc);
                return NULL;
        }
        p->gdm_uri[i] = strdup(json_string_value(json_object_get(eidp, "uri")));
        if (json_is_string(json_object_get(eidp, "code")))
                p->gdm_code[i] = strdup(json_string_value(json_object_get(eidp, "code")));
        p->gdm_timeout[i] = (long)json_integer_value(json_object_get(eidp, "timeout"));
        json_decref(doc);
        p->n_binary++;

        if (p->approve_round[i])
                (void)lkh_device_approve(H, p->gdm_uri[i], USER, false);
        lkh_sleep_ms(p->done_after_ms);
        reply = calloc(1, sizeof(*reply));
        if (!reply)
                return NULL;
        reply->header.length = htobe32(sizeof(*reply));
        reply->header.type = 1;
        snprintf(reply->protocol_name, sizeof(reply->protocol_name), "auth-mechanisms");
        reply->version = 1;
        if (asprintf(&reply->json, "{\"authSelection\": {\"status\": \"%s\", \"eidp\": {}}}",
                     p->gdm_status ?: "Ok") < 0) {
                free(reply);
                return NULL;
        }
        return (char *)reply;
}

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *userdata)
{
        struct person *p = userdata;
        struct pam_response *r = calloc((size_t)n, sizeof(*r));
        const char *u;
        size_t len;

        if (!r)
                return PAM_BUF_ERR;
        for (int i = 0; i < n; i++) {
                const char *text = msg[i]->msg;

                switch (msg[i]->msg_style) {
                case PAM_TEXT_INFO:
                        if (p->n_info < MAX_MESSAGES)
                                p->info[p->n_info++] = strdup(text);
                        if (strncmp(text, "https://", 8) == 0) {
                                if (p->listener) {
                                        /* The browser signs in; the IdP follows the redirect. */
                                        _cleanup_free_ char *signin =
                                                lkh_xasprintf("%s&login_hint=%s", text, USER);
                                        long status = 0;

                                        if (lkh_http(H, signin, NULL, NULL, &status, NULL,
                                                     NULL) < 0 ||
                                            status != 200)
                                                fprintf(stderr, "the listener's answer: %ld\n",
                                                        status);
                                } else if (p->paste)
                                        lkh_browser_login(H, text, USER, false, &p->location,
                                                          NULL);
                                else
                                        sign_in_elsewhere(p, text, strlen(text));
                        }
                        break;
                case PAM_ERROR_MSG:
                        if (p->n_info < MAX_MESSAGES)
                                p->info[p->n_info++] = strdup(text);
                        break;
                case PAM_BINARY_PROMPT:
                        r[i].resp = greeter_answer(p, msg[i]);
                        if (!r[i].resp) {
                                free(r);
                                return PAM_CONV_ERR;
                        }
                        break;
                case PAM_PROMPT_ECHO_ON:
                        p->n_prompts++;
                        free(p->prompt);
                        p->prompt = strdup(text);
                        if ((u = find_url(text, &len)))
                                sign_in_elsewhere(p, u, len);
                        r[i].resp = strdup(p->paste && p->location ? p->location : "");
                        break;
                default:
                        free(r);
                        return PAM_CONV_ERR;
                }
        }
        *resp = r;
        return PAM_SUCCESS;
}

static bool any_contains(const struct person *p, const char *needle)
{
        for (unsigned i = 0; i < p->n_info; i++)
                if (strstr(p->info[i], needle))
                        return true;
        return false;
}

static enum pamtest_err authenticate(const char *service, struct person *p, int expected)
{
        struct pam_testcase cases[] = {
                pam_test(PAMTEST_AUTHENTICATE, expected),
        };
        enum pamtest_err perr = _pamtest_conv(service, USER, conv, p, cases, 1, NULL);

        if (perr != PAMTEST_ERR_OK) {
                fprintf(stderr, "%s: expected %s, got %s\n", service,
                        pam_strerror(NULL, expected), pam_strerror(NULL, cases[0].op_rv));
                for (unsigned i = 0; i < p->n_info; i++)
                        fprintf(stderr, "    said: %s\n", p->info[i]);
        }
        return perr;
}

/* ---- the tests ---- */

/* A console login: the address, the QR code and the user code shown; no key press at all. */
static void test_console_device_no_key(void **state)
{
        struct person p = {0};
        int64_t t0 = lkh_now_ms();

        assert_int_equal(authenticate("login", &p, PAM_SUCCESS), PAMTEST_ERR_OK);
        assert_int_equal(p.n_prompts, 0);
        assert_true(p.approving);
        assert_true(any_contains(&p, "/device?user_code="));
        assert_true(any_contains(&p, "confirm the code"));
        assert_true(any_contains(&p, "\xe2\x96\x88")); /* the QR code's blocks */
        /* It waited for the approval, 1.5 s after the address was shown. */
        assert_true(lkh_now_ms() - t0 >= 1400);
        person_clear(&p);
}

/* sshd: the address is in the prompt, Enter is all the person types. */
static void test_sshd_device_enter(void **state)
{
        struct person p = {0};

        assert_int_equal(authenticate("sshd", &p, PAM_SUCCESS), PAMTEST_ERR_OK);
        assert_int_equal(p.n_prompts, 1);
        assert_non_null(strstr(p.prompt, "/device?user_code="));
        assert_non_null(strstr(p.prompt, "Press Enter"));
        person_clear(&p);
}

static void test_device_denied(void **state)
{
        struct person p = {.deny = true};

        assert_int_equal(authenticate("login", &p, PAM_AUTH_ERR), PAMTEST_ERR_OK);
        assert_true(any_contains(&p, "refused at the provider"));
        person_clear(&p);
}

/* GNOME's login screen: the JSON message with the address and code; Done; nothing typed. */
static void test_gdm_json_done(void **state)
{
        struct person p = {.approve_round = {true}, .done_after_ms = 300};

        setenv("GDM_SUPPORTED_PAM_EXTENSIONS",
               "org.gnome.DisplayManager.UserVerifier.ChoiceList " GDM_JSON, 1);
        assert_int_equal(authenticate("login", &p, PAM_SUCCESS), PAMTEST_ERR_OK);
        unsetenv("GDM_SUPPORTED_PAM_EXTENSIONS");
        assert_int_equal(p.n_binary, 1);
        assert_int_equal(p.n_prompts, 0);
        assert_non_null(strstr(p.gdm_uri[0], "/device?user_code="));
        assert_non_null(p.gdm_code[0]);
        assert_non_null(strstr(p.gdm_uri[0], p.gdm_code[0]));
        assert_true(p.gdm_timeout[0] > 0 && p.gdm_timeout[0] <= 600);
        /* The greeter shows it; no plain text with the address besides. */
        assert_false(any_contains(&p, "https://"));
        person_clear(&p);
}

/* Done pressed after the address expired: a new login, a new address, then it works. */
static void test_gdm_json_renews(void **state)
{
        struct person p = {.approve_round = {false, true}, .done_after_ms = 2600};

        assert_int_equal(lkh_idp_set(H, "device_expires_in", "2"), 0);
        setenv("GDM_SUPPORTED_PAM_EXTENSIONS",
               "org.gnome.DisplayManager.UserVerifier.ChoiceList " GDM_JSON, 1);
        assert_int_equal(authenticate("login", &p, PAM_SUCCESS), PAMTEST_ERR_OK);
        unsetenv("GDM_SUPPORTED_PAM_EXTENSIONS");
        assert_int_equal(lkh_idp_set(H, "device_expires_in", "600"), 0);
        assert_int_equal(p.n_binary, 2);
        assert_true(p.gdm_timeout[0] <= 2);
        assert_string_not_equal(p.gdm_uri[0], p.gdm_uri[1]);
        person_clear(&p);
}

static void test_gdm_json_cancel(void **state)
{
        struct person p = {.gdm_status = "Cancel"};

        setenv("GDM_SUPPORTED_PAM_EXTENSIONS",
               "org.gnome.DisplayManager.UserVerifier.ChoiceList " GDM_JSON, 1);
        assert_int_equal(authenticate("login", &p, PAM_AUTH_ERR), PAMTEST_ERR_OK);
        unsetenv("GDM_SUPPORTED_PAM_EXTENSIONS");
        assert_int_equal(p.n_binary, 1);
        person_clear(&p);
}

/* The code flow: pasting the address the browser came back to still works. */
static void test_code_paste(void **state)
{
        struct person p = {.paste = true};

        assert_int_equal(authenticate("sshd", &p, PAM_SUCCESS), PAMTEST_ERR_OK);
        assert_int_equal(p.n_prompts, 1);
        assert_string_equal(p.prompt, "Code or address from the browser: ");
        person_clear(&p);
}

/* The code flow finished by the broker's callback listener: the person presses only Enter. */
static void test_listener_enter(void **state)
{
        struct person p = {.listener = true};

        assert_int_equal(authenticate("sshd", &p, PAM_SUCCESS), PAMTEST_ERR_OK);
        assert_int_equal(p.n_prompts, 1);
        assert_string_equal(p.prompt, "Press Enter when you have signed in (or paste the code): ");
        person_clear(&p);
}

/* ---- setup ---- */

/*
 * pam_wrapper copies the service files once, at the first pam_start(): the services name a
 * config in pam_dir, which each group's setup replaces with its broker's.
 */
static int write_service(const char *name)
{
        _cleanup_free_ char *path = lkh_xasprintf("%s/%s", pam_dir, name);
        FILE *f = fopen(path, "we");

        if (!f)
                return -errno;
        fprintf(f, "auth required %s config=%s/latchkey.conf timeout=20 qr\n"
                   "account required %s config=%s/latchkey.conf\n",
                PAM_LATCHKEY_SO, pam_dir, PAM_LATCHKEY_SO, pam_dir);
        return fclose(f) == 0 ? 0 : -errno;
}

static int copy_config(void)
{
        _cleanup_free_ char *path = lkh_xasprintf("%s/latchkey.conf", pam_dir);
        char buf[8192];
        size_t n;
        FILE *in = fopen(H->config_file, "re"), *out = fopen(path, "we");
        int ok = in && out;

        while (ok && (n = fread(buf, 1, sizeof(buf), in)) > 0)
                ok = fwrite(buf, 1, n, out) == n;
        if (in)
                fclose(in);
        if (out && fclose(out) != 0)
                ok = 0;
        return ok ? 0 : -EIO;
}

static int setup(void **state, bool device)
{
        if (lkh_new(&H) < 0 || lkh_start_idp(H, NULL) < 0 ||
            (device && (lkh_idp_set(H, "device_discovery", "1") < 0 ||
                        lkh_idp_set(H, "device_interval", "1") < 0)) ||
            lkh_write_config(H, "[pam]\nservices = login sshd\nusers = *\n") < 0 ||
            lkh_start_bus(H) < 0 || lkh_start_broker(H, NULL) < 0)
                return -1;
        return copy_config() < 0 ? -1 : 0;
}

static int setup_device(void **state)
{
        return setup(state, true);
}

static int setup_code(void **state)
{
        return setup(state, false);
}

/* A broker with its callback listener; the IdP follows its redirects (the browser helper). */
static int setup_listener(void **state)
{
        _cleanup_free_ char *extra = NULL;
        unsigned port;

        if (lkh_new(&H) < 0 || lkh_free_port(&port) < 0)
                return -1;
        free(H->redirect_uri);
        H->redirect_uri = lkh_xasprintf("https://127.0.0.1:%u/callback", port);
        if (lkh_start_idp(H, NULL) < 0 || lkh_idp_set(H, "follow_redirect", "1") < 0)
                return -1;
        extra = lkh_xasprintf("[pam]\nservices = login sshd\nusers = *\n"
                              "[callback]\nlisten = 127.0.0.1:%u\ncertificate = %s\nkey = %s\n",
                              port, H->cert_file, H->key_file);
        if (lkh_write_config(H, extra) < 0 || lkh_start_bus(H) < 0 ||
            lkh_start_broker(H, NULL) < 0)
                return -1;
        return copy_config() < 0 ? -1 : 0;
}

static int teardown(void **state)
{
        lkh_free(H);
        H = NULL;
        return 0;
}

int main(void)
{
        const struct CMUnitTest device[] = {
            cmocka_unit_test(test_console_device_no_key),
            cmocka_unit_test(test_sshd_device_enter),
            cmocka_unit_test(test_device_denied),
            cmocka_unit_test(test_gdm_json_done),
            cmocka_unit_test(test_gdm_json_renews),
            cmocka_unit_test(test_gdm_json_cancel),
        };
        const struct CMUnitTest code[] = {
            cmocka_unit_test(test_code_paste),
        };
        const struct CMUnitTest listener[] = {
            cmocka_unit_test(test_listener_enter),
        };
        int failed = 0;

        if (!getenv("PAM_WRAPPER")) {
                fprintf(stderr, "run me with LD_PRELOAD=libpam_wrapper.so PAM_WRAPPER=1\n");
                return 77;
        }
        if (geteuid() != 0) {
                fprintf(stderr, "test-pam-device signs in as daemon: needs root; skipping\n");
                return 77;
        }
        unsetenv("LD_PRELOAD");
        pam_dir = strdup("/tmp/latchkey-pam-device.XXXXXX");
        if (!pam_dir || !mkdtemp(pam_dir) || chmod(pam_dir, 0755) < 0)
                return 1;
        setenv("PAM_WRAPPER_SERVICE_DIR", pam_dir, 1);
        if (write_service("login") < 0 || write_service("sshd") < 0)
                return 1;
        failed += cmocka_run_group_tests_name("pam, device flow", device, setup_device, teardown);
        failed += cmocka_run_group_tests_name("pam, code flow", code, setup_code, teardown);
        failed += cmocka_run_group_tests_name("pam, code flow finished by the listener", listener,
                                              setup_listener, teardown);
        for (const char *const *n = (const char *const[]){"login", "sshd", "latchkey.conf", NULL}; *n; n++) {
                _cleanup_free_ char *path = lkh_xasprintf("%s/%s", pam_dir, *n);
                unlink(path);
        }
        rmdir(pam_dir);
        free(pam_dir);
        return failed ? 1 : 0;
}
