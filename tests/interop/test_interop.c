/* SPDX-License-Identifier: MIT */
/*
 * Interop: latchkey against a provider nobody here wrote, oidc-provider (the
 * npm package, OpenID-certified), started by tests/interop/provider.mjs on a
 * loopback HTTPS port with a certificate made at run time. The test plays the
 * person through the provider's own login and consent pages (libcurl with its
 * cookie engine, the forms' action and inputs read from the HTML), then checks,
 * once with RS256 keys and once with ES256 keys, with each client
 * (client_secret_basic and client_secret_post):
 *
 *   - the core (lk_provider_*): discovery and keys taken from the provider, the
 *     code exchange and id_token verification, refresh keeping iss/sub,
 *     revocation (the refresh token is refused afterwards), and a code used
 *     twice refused by the provider and reported as InvalidGrant with its words;
 *   - latchkeyd over D-Bus (BeginLogin, the person, CompleteLogin, OpenSession,
 *     GetToken with a refresh, CloseSession with revoke_on_close = yes, after
 *     which the session's refresh token is refused by the provider);
 *   - pam_latchkey.so through libpam under pam_wrapper (auth, account, session
 *     open and close), the same checks on the tokens.
 *
 * Needs root (the account at the provider is "root", which must map to a local
 * user), node and tests/interop/node_modules (tests/interop/setup); without
 * them it skips (77). The PAM part runs when started with
 * LD_PRELOAD=libpam_wrapper.so PAM_WRAPPER=1 (meson does), else it is skipped.
 *
 * Environment: LATCHKEY_TEST_NODE (node binary), and the harness's
 * LATCHKEY_TEST_LATCHKEYD, LATCHKEY_TEST_KEEP, LATCHKEY_TEST_VERBOSE.
 */
#include <curl/curl.h>
#include <dbus/dbus.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <security/pam_appl.h>

#include "base/util.h"
#include "oidc/answer.h"
#include "oidc/authorize.h"
#include "oidc/b64url.h"
#include "oidc/config.h"
#include "oidc/http.h"
#include "oidc/provider.h"
#include "tests/harness/busclient.h"
#include "tests/harness/harness.h"
#include "tests/harness/pam_conv.h"
#include "tests/harness/session_files.h"

#ifndef LK_INTEROP_DIR
#error "LK_INTEROP_DIR must be defined by meson"
#endif
#ifndef LK_NODE
#define LK_NODE ""
#endif
#ifndef PAM_LATCHKEY_SO
#error "PAM_LATCHKEY_SO must be defined by meson"
#endif

#define ACCOUNT "root"          /* the account id at the provider, and the local user */
#define BASIC_CLIENT "latchkey-basic"
#define POST_CLIENT "latchkey-post"
#define PAGE_MAX (1024 * 1024)  /* a page of the provider's, at most */
#define BROWSER_STEPS 12        /* redirects and forms in one sign-in, at most */
#define FIELD_MAX 64            /* inputs in one form, at most */
#define START_TIMEOUT_MS 30000  /* node may be slow to load oidc-provider */
#define REVOKE_WAIT_MS 10000    /* CloseSession answers before the revocation is done */

#define BUS_ERR BC_ERR

static struct lkh *H;           /* the folder, certificate, client secret, bus, broker */
static bool pam_available;      /* run under pam_wrapper */

/* One provider configuration: a group of tests. */
struct group {
        const char *alg;        /* RS256 or ES256 */
        bool device;            /* the provider offers the device flow (RFC 8628) */
        pid_t pid;
        unsigned port;
        char *issuer;
        char *config[2];        /* [basic]: the latchkey.conf of each client */
};

static struct group groups[] = {
        { .alg = "RS256" },
        { .alg = "ES256" },
        { .alg = "RS256", .device = true },
};

static int write_text(const char *path, const char *text, mode_t mode)
{
        FILE *f;
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);

        if (fd < 0)
                return -errno;
        f = fdopen(fd, "w");
        if (!f) {
                close(fd);
                return -errno;
        }
        fputs(text, f);
        return fclose(f) == 0 ? 0 : -EIO;
}

/* ---- the person's browser ---------------------------------------------------- */

/* A URL without its query and fragment, for messages: an authorization URL carries the state,
 * the nonce and the PKCE challenge, a callback URL the code. As printf's "%.*s" arguments. */
#define NOQUERY(url) (int)strcspn((url), "?#"), (url)

struct buf {
        char *data;
        size_t len;
};

static size_t buf_write(char *ptr, size_t size, size_t n, void *userdata)
{
        struct buf *b = userdata;
        size_t len = size * n;
        char *p;

        if (len > PAGE_MAX - b->len)
                return 0; /* over the cap: curl fails the transfer */
        p = realloc(b->data, b->len + len + 1);
        if (!p)
                return 0;
        memcpy(p + b->len, ptr, len);
        b->len += len;
        p[b->len] = '\0';
        b->data = p;
        return len;
}

struct page {
        long status;
        char *body;             /* NUL-terminated, "" when empty */
        char *location;         /* absolute, resolved by curl; NULL when not a redirect */
        char *url;              /* where the page came from */
};

static void page_clear(struct page *p)
{
        free(p->body);
        free(p->location);
        free(p->url);
        *p = (struct page){ 0 };
}

/* One request in the browser's session (its cookies); form NULL: GET. Redirects not followed. */
static int fetch(CURL *c, const char *url, const char *form, struct page *ret)
{
        struct buf b = { 0 };
        char *loc = NULL, *eff = NULL;
        struct page p = { 0 };
        CURLcode cr;

        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, buf_write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
        if (form) {
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, form);
        } else {
                curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        }
        cr = curl_easy_perform(c);
        if (cr != CURLE_OK) {
                free(b.data);
                print_error("browser: %.*s: %s\n", NOQUERY(url), curl_easy_strerror(cr));
                return -EIO;
        }
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &p.status);
        curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &loc);
        curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &eff);
        p.body = b.data ? b.data : strdup("");
        p.location = loc ? strdup(loc) : NULL;
        p.url = strdup(eff ? eff : url);
        if (!p.body || !p.url || (loc && !p.location)) {
                page_clear(&p);
                return -ENOMEM;
        }
        *ret = p;
        return 0;
}

/* The few character references an attribute of the provider's pages may hold. */
static char *html_unescape(const char *s, size_t len)
{
        static const struct {
                const char *ref;
                char c;
        } refs[] = {
                { "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' }, { "&quot;", '"' },
                { "&#39;", '\'' }, { "&#x27;", '\'' }, { "&#x2F;", '/' }, { "&#47;", '/' },
                { "&#x3D;", '=' }, { "&#61;", '=' },
        };
        char *out = malloc(len + 1), *o = out;

        if (!out)
                return NULL;
        for (size_t i = 0; i < len;) {
                size_t k;

                for (k = 0; k < ELEMENTSOF(refs); k++) {
                        size_t n = strlen(refs[k].ref);
                        if (n <= len - i && strncasecmp(s + i, refs[k].ref, n) == 0) {
                                *o++ = refs[k].c;
                                i += n;
                                break;
                        }
                }
                if (k == ELEMENTSOF(refs))
                        *o++ = s[i++];
        }
        *o = '\0';
        return out;
}

/* The value of attribute name in the tag starting at tag (just after "<form" or "<input"),
 * unescaped; NULL when absent (or out of memory). Boolean attributes give "". */
static char *tag_attr(const char *tag, const char *name)
{
        const char *p = tag;
        size_t want = strlen(name);

        for (;;) {
                const char *an, *v;
                size_t alen, vlen;

                while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '/')
                        p++;
                if (*p == '\0' || *p == '>')
                        return NULL;
                an = p;
                while (*p && !strchr(" \t\r\n=>/", *p))
                        p++;
                alen = (size_t)(p - an);
                while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
                        p++;
                v = "";
                vlen = 0;
                if (*p == '=') {
                        p++;
                        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
                                p++;
                        if (*p == '"' || *p == '\'') {
                                char q = *p++;
                                v = p;
                                while (*p && *p != q)
                                        p++;
                                if (!*p)
                                        return NULL; /* unterminated: not a tag we can read */
                                vlen = (size_t)(p - v);
                                p++;
                        } else {
                                v = p;
                                while (*p && !strchr(" \t\r\n>", *p))
                                        p++;
                                vlen = (size_t)(p - v);
                        }
                }
                if (alen == want && strncasecmp(an, name, want) == 0)
                        return html_unescape(v, vlen);
        }
}

static const char *find_ci(const char *hay, const char *needle, const char *end)
{
        size_t n = strlen(needle);

        for (const char *p = hay; *p && (!end || p + n <= end); p++)
                if (strncasecmp(p, needle, n) == 0)
                        return p;
        return NULL;
}

/*
 * The page's first POST form: its action resolved against base, and its fields
 * form-encoded, hidden ones as they are, "login" and "password" filled in by the
 * person. A field we would not know how to fill is an error, so a changed page
 * fails loudly instead of being submitted half empty.
 */
static int read_form(CURL *c, const char *html, const char *base, const char *login,
                     char **ret_action, char **ret_body)
{
        const char *p = html, *tag = NULL, *end;
        _cleanup_free_ char *action = NULL, *method = NULL, *body = NULL;
        char *abs_url = NULL;
        CURLU *u;
        unsigned nfields = 0;

        for (;;) {
                tag = find_ci(p, "<form", NULL);
                if (!tag) {
                        print_error("browser: no POST form on the page from %.*s\n", NOQUERY(base));
                        return -ENOENT;
                }
                free(method);
                method = tag_attr(tag + 5, "method");
                if (method && strcasecmp(method, "post") == 0)
                        break;
                p = tag + 5;
        }
        action = tag_attr(tag + 5, "action");
        end = find_ci(tag, "</form", NULL);
        if (!action || !end) {
                print_error("browser: a form without action or end on %.*s\n", NOQUERY(base));
                return -EBADMSG;
        }

        body = strdup("");
        if (!body)
                return -ENOMEM;
        for (p = tag; (p = find_ci(p, "<input", end)); p += 6) {
                _cleanup_free_ char *name = tag_attr(p + 6, "name");
                _cleanup_free_ char *value = tag_attr(p + 6, "value");
                _cleanup_free_ char *type = tag_attr(p + 6, "type");
                const char *v;
                char *en, *ev, *n;

                if (!name || !*name)
                        continue;
                if (++nfields > FIELD_MAX)
                        return -E2BIG;
                if (streq(name, "login"))
                        v = login;
                else if (streq(name, "password"))
                        v = "any password will do";
                else if (value)
                        v = value;
                else {
                        print_error("browser: cannot fill the field '%s' (type %s) of %.*s\n", name,
                                    type ? type : "text", NOQUERY(base));
                        return -EBADMSG;
                }
                en = curl_easy_escape(c, name, 0);
                ev = curl_easy_escape(c, v, 0);
                n = en && ev ? lkh_xasprintf("%s%s%s=%s", body, *body ? "&" : "", en, ev) : NULL;
                curl_free(en);
                curl_free(ev);
                if (!n)
                        return -ENOMEM;
                free(body);
                body = n;
        }

        u = curl_url();
        if (!u || curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK ||
            curl_url_set(u, CURLUPART_URL, action, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_URL, &abs_url, 0) != CURLUE_OK) {
                curl_url_cleanup(u);
                print_error("browser: the form's action '%.*s' is not a URL\n", NOQUERY(action));
                return -EBADMSG;
        }
        curl_url_cleanup(u);
        *ret_action = strdup(abs_url);
        curl_free(abs_url);
        if (!*ret_action)
                return -ENOMEM;
        *ret_body = TAKE_PTR(body);
        return 0;
}

static bool at_redirect_uri(const char *url)
{
        size_t n = strlen(H->redirect_uri);

        return strncmp(url, H->redirect_uri, n) == 0 && (url[n] == '?' || url[n] == '#');
}

/*
 * Plays the person: opens authorize_url in a fresh browser (cookie engine on,
 * trusting the provider's certificate), signs in as login on the provider's own
 * page and consents on its consent page, following redirects, until the
 * provider sends the browser to the redirect URI. Returns that address.
 */
static int browse(const char *authorize_url, const char *login, bool device,
                  char **ret_location);

static int browser_login(const char *authorize_url, const char *login, char **ret_location)
{
        return browse(authorize_url, login, false, ret_location);
}

/*
 * The device flow's person: opens the verification address (the user code in it), confirms
 * the code, signs in and consents, until the provider's page says it is done (a page without
 * a form, after the forms).
 */
static int browser_device(const char *verification_url, const char *login)
{
        return browse(verification_url, login, true, NULL);
}

static int browse(const char *authorize_url, const char *login, bool device,
                  char **ret_location)
{
        /* oidc-provider keeps offline_access (and so issues a refresh token) only with
         * prompt=consent (OIDC Core §11): the config says prompt = consent, so latchkey's
         * address must carry it. */
        _cleanup_free_ char *url = strdup(authorize_url), *form = NULL;
        unsigned forms = 0;
        CURL *c;
        int r = -ELOOP;

        if (!device && !strstr(authorize_url, "&prompt=consent")) {
                fprintf(stderr, "the sign-in address lacks prompt=consent\n");
                return -EINVAL;
        }
        c = curl_easy_init();

        if (!c || !url) {
                curl_easy_cleanup(c);
                return -ENOMEM;
        }
        curl_easy_setopt(c, CURLOPT_COOKIEFILE, ""); /* the cookie engine, in memory */
        curl_easy_setopt(c, CURLOPT_CAINFO, H->cert_file);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");

        for (unsigned step = 0; step < BROWSER_STEPS; step++) {
                struct page p = { 0 };

                r = fetch(c, url, form, &p);
                if (r < 0)
                        break;
                free(form);
                form = NULL;
                if (p.status >= 300 && p.status < 400 && p.location) {
                        if (at_redirect_uri(p.location)) {
                                *ret_location = TAKE_PTR(p.location);
                                page_clear(&p);
                                r = 0;
                                break;
                        }
                        free(url);
                        url = TAKE_PTR(p.location);
                } else if (p.status == 200) {
                        char *action = NULL;

                        /* The device flow ends on the provider's "done" page. */
                        if (device && forms >= 2 && !find_ci(p.body, "<form", NULL)) {
                                page_clear(&p);
                                r = 0;
                                break;
                        }
                        r = read_form(c, p.body, p.url, login, &action, &form);
                        if (r < 0) {
                                page_clear(&p);
                                break;
                        }
                        forms++;
                        free(url);
                        url = action;
                } else {
                        print_error("browser: %.*s answered HTTP %ld: %.300s\n", NOQUERY(p.url),
                                    p.status, p.body);
                        page_clear(&p);
                        r = -EPROTO;
                        break;
                }
                page_clear(&p);
                r = -ELOOP;
        }
        curl_easy_cleanup(c);
        if (r == 0 && forms == 0 && !device) {
                free(*ret_location);
                *ret_location = NULL;
                print_error("browser: the provider redirected without showing a page\n");
                return -EPROTO;
        }
        return r;
}

/* A GET with the browser's trust, outside any sign-in: the JWKS. */
static int https_get_json(const char *url, json_t **ret)
{
        CURL *c = curl_easy_init();
        struct page p = { 0 };
        json_t *j;
        int r;

        if (!c)
                return -ENOMEM;
        curl_easy_setopt(c, CURLOPT_CAINFO, H->cert_file);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
        r = fetch(c, url, NULL, &p);
        curl_easy_cleanup(c);
        if (r < 0)
                return r;
        j = p.status == 200 ? json_loads(p.body, 0, NULL) : NULL;
        page_clear(&p);
        if (!j)
                return -EBADMSG;
        *ret = j;
        return 0;
}

/* ---- the provider ---------------------------------------------------------------- */

static const char *node_path(void)
{
        const char *p = getenv("LATCHKEY_TEST_NODE");

        return isempty(p) ? LK_NODE : p;
}

/* Why the interop tests cannot run here; NULL when they can. */
static const char *missing_prerequisite(void)
{
        static char why[512];

        if (geteuid() != 0)
                return "needs root (the provider's account \"root\" must be a local user)";
        if (isempty(node_path()) || access(node_path(), X_OK) < 0)
                return "node is not installed (scripts/install-deps installs nodejs and npm)";
        if (access(LK_INTEROP_DIR "/node_modules/oidc-provider/package.json", R_OK) < 0) {
                snprintf(why, sizeof(why), "%s/node_modules lacks oidc-provider; run "
                         "tests/interop/setup", LK_INTEROP_DIR);
                return why;
        }
        return NULL;
}

static int start_provider(struct group *g)
{
        _cleanup_free_ char *port_file = lkh_xasprintf("%s/oidc-provider-%s%s.port", H->dir, g->alg,
                                                       g->device ? "-device" : "");
        const char *argv[] = {
                node_path(), LK_INTEROP_DIR "/provider.mjs",
                "--cert", H->cert_file, "--key", H->key_file,
                "--secret-file", H->client_secret_file,
                "--redirect-uri", H->redirect_uri,
                "--port-file", port_file,
                "--alg", g->alg,
                "--basic-client", BASIC_CLIENT, "--post-client", POST_CLIENT,
                g->device ? "--device" : NULL,
                NULL,
        };
        int r;

        unlink(port_file);
        r = lkh_spawn(argv, -1, &g->pid);
        if (r < 0)
                return r;
        for (int waited = 0;; waited += 50) {
                if (lkh_read_port_file(port_file, &g->port) == 0)
                        break;
                if (waited >= START_TIMEOUT_MS) {
                        lkh_stop_process(&g->pid, 5000);
                        fprintf(stderr, "interop: oidc-provider did not write %s\n", port_file);
                        return -ETIMEDOUT;
                }
                if (kill(g->pid, 0) < 0) {
                        g->pid = 0;
                        fprintf(stderr, "interop: oidc-provider exited before it was ready\n");
                        return -ECHILD;
                }
                lkh_sleep_ms(50);
        }
        g->issuer = lkh_xasprintf("https://127.0.0.1:%u", g->port);
        return 0;
}

/* One latchkey.conf per client: the core reads it, and so does latchkeyd. */
static int write_configs(struct group *g)
{
        for (int basic = 0; basic < 2; basic++) {
                _cleanup_free_ char *text = NULL;
                char *path = lkh_xasprintf("%s/latchkey-%s%s-%s.conf", H->dir, g->alg,
                                           g->device ? "-device" : "", basic ? "basic" : "post");
                int r;

                text = lkh_xasprintf("# tests/interop: oidc-provider, %s keys\n"
                                     "[provider]\n"
                                     "issuer = %s\n"
                                     "client_id = %s\n"
                                     "client_secret_file = %s\n"
                                     "client_auth = %s\n"
                                     "redirect_uri = %s\n"
                                     "scopes = openid profile offline_access\n"
                                     "prompt = consent\n"
                                     "id_token_algorithms = %s\n"
                                     "ca_file = %s\n"
                                     "timeout = 10\n"
                                     "[users]\n"
                                     "username_claim = preferred_username\n"
                                     "# the tests sign in as root, a system account to latchkey\n"
                                     "allow_system_users = root\n"
                                     "[sessions]\n"
                                     "revoke_on_close = yes\n",
                                     g->alg, g->issuer, basic ? BASIC_CLIENT : POST_CLIENT,
                                     H->client_secret_file,
                                     basic ? "client_secret_basic" : "client_secret_post",
                                     H->redirect_uri, g->alg, H->cert_file);
                r = write_text(path, text, 0644);
                if (r < 0) {
                        free(path);
                        return r;
                }
                free(g->config[basic]);
                g->config[basic] = path;
        }
        return 0;
}

static int group_setup(struct group *g, void **state)
{
        _cleanup_free_ char *state_dir = lkh_xasprintf("%s/state-%s%s", H->dir, g->alg,
                                                       g->device ? "-device" : "");

        if (start_provider(g) < 0 || write_configs(g) < 0)
                return -1;
        /* Each provider has its own issuer and keys: the broker starts with an empty cache. */
        if (mkdir(state_dir, 0700) < 0 && errno != EEXIST)
                return -1;
        free(H->state_dir);
        H->state_dir = TAKE_PTR(state_dir);
        *state = g;
        return 0;
}

static int group_teardown(void **state)
{
        struct group *g = *state;

        lkh_stop_broker(H);
        lkh_stop_process(&g->pid, 5000);
        free(g->issuer);
        g->issuer = NULL;
        for (int i = 0; i < 2; i++) {
                free(g->config[i]);
                g->config[i] = NULL;
        }
        return 0;
}

static int setup_rs256(void **state)
{
        return group_setup(&groups[0], state);
}

static int setup_es256(void **state)
{
        return group_setup(&groups[1], state);
}

static int setup_device(void **state)
{
        return group_setup(&groups[2], state);
}

/* ---- the core, directly ------------------------------------------------------------ */

struct rp {
        struct lk_config *config;
        struct lk_http *http;
        struct lk_provider *provider;
};

static void rp_open(struct rp *rp, const char *config_path)
{
        struct lk_error e = { 0 };

        *rp = (struct rp){ 0 };
        if (lk_config_load(config_path, &rp->config, NULL, &e) < 0)
                fail_msg("%s: %s", config_path, e.message);
        assert_int_equal(lk_http_new(&rp->http), 0);
        if (lk_provider_new(rp->config, rp->http, NULL, &rp->provider, &e) < 0)
                fail_msg("lk_provider_new: %s", e.message);
}

static void rp_close(struct rp *rp)
{
        lk_provider_free(rp->provider);
        lk_http_free(rp->http);
        lk_config_free(rp->config);
        *rp = (struct rp){ 0 };
}

struct outcome {
        int calls;
        bool failed;
        struct lk_error err;
        struct lk_grant *grant;
};

static void outcome_clear(struct outcome *o)
{
        lk_grant_free(o->grant);
        *o = (struct outcome){ 0 };
}

static void done_cb(void *userdata, const struct lk_error *err)
{
        struct outcome *o = userdata;

        o->calls++;
        if (err && err->code) {
                o->failed = true;
                o->err = *err;
        }
}

static void grant_cb(void *userdata, struct lk_grant *grant, const struct lk_error *err)
{
        struct outcome *o = userdata;

        o->calls++;
        if (!grant) {
                o->failed = true;
                if (err)
                        o->err = *err;
                return;
        }
        o->grant = grant;
}

static void run_op(struct rp *rp, struct outcome *o)
{
        assert_int_equal(lk_http_run(rp->http), 0);
        assert_int_equal(o->calls, 1);
}

static void assert_ok(const struct outcome *o, const char *what)
{
        if (o->failed)
                fail_msg("%s: %s: %s", what, lk_err_name(o->err.code), o->err.message);
        assert_int_equal(o->calls, 1);
}

static void prepare(struct rp *rp)
{
        struct outcome o = { 0 };

        assert_int_equal(lk_provider_prepare(rp->provider, done_cb, &o), 0);
        run_op(rp, &o);
        assert_ok(&o, "discovery and keys");
}

static void exchange(struct rp *rp, const char *code, const struct lk_authorization *a,
                     struct outcome *o)
{
        *o = (struct outcome){ 0 };
        assert_int_equal(lk_provider_exchange_code(rp->provider, code, a->verifier, a->nonce,
                                                   grant_cb, o),
                         0);
        run_op(rp, o);
}

static void refresh(struct rp *rp, const char *refresh_token, const json_t *previous,
                    struct outcome *o)
{
        *o = (struct outcome){ 0 };
        assert_int_equal(lk_provider_refresh(rp->provider, refresh_token, previous, grant_cb, o),
                         0);
        run_op(rp, o);
}

/* An authorization URL from the core, the person at the provider, the code from the answer. */
static struct lk_authorization *sign_in(struct rp *rp, char **ret_code)
{
        struct lk_authorization *a = NULL;
        _cleanup_free_ char *location = NULL;
        struct lk_error e = { 0 };
        const struct lk_endpoints *ep = lk_provider_endpoints(rp->provider);

        assert_non_null(ep);
        if (lk_authorization_new(rp->config, ep, NULL, &a, &e) < 0)
                fail_msg("lk_authorization_new: %s", e.message);
        assert_int_equal(browser_login(a->url, ACCOUNT, &location), 0);
        if (lk_answer_parse(location, a->state, rp->config->issuer, ep->iss_parameter, ret_code,
                            &e) < 0)
                fail_msg("the provider's answer: %s: %s", lk_err_name(e.code), e.message);
        return a;
}

static const char *claim(const json_t *claims, const char *name)
{
        return json_string_value(json_object_get(claims, name));
}

/* The id_token's header, decoded. */
static json_t *jose_header(const char *jwt)
{
        const char *dot = strchr(jwt, '.');
        _cleanup_free_ unsigned char *raw = NULL;
        size_t len;

        assert_non_null(dot);
        assert_int_equal(lk_b64url_decode(jwt, (size_t)(dot - jwt), &raw, &len), 0);
        return json_loadb((const char *)raw, len, 0, NULL);
}

/* Discovery and the keys come from oidc-provider, and match the configuration's algorithm. */
static void test_core_discovery_and_keys(void **state)
{
        struct group *g = *state;
        _cleanup_free_ char *token_ep = lkh_xasprintf("%s/token", g->issuer);
        const struct lk_endpoints *ep;
        struct lk_provider_stats st;
        json_t *jwks, *key;
        struct rp rp;

        rp_open(&rp, g->config[0]);
        prepare(&rp);
        ep = lk_provider_endpoints(rp.provider);
        assert_non_null(ep);
        assert_string_equal(ep->token_endpoint, token_ep);
        assert_non_null(ep->revocation_endpoint);
        assert_non_null(ep->jwks_uri);
        assert_true(strncmp(ep->authorization_endpoint, g->issuer, strlen(g->issuer)) == 0);
        assert_non_null(ep->id_token_algs);
        assert_true(lk_strv_contains(ep->id_token_algs, g->alg));
        lk_provider_stats(rp.provider, &st);
        assert_int_equal(st.discovery, 1);
        assert_int_equal(st.jwks, 1);

        /* The key set the provider publishes holds the one key of the group's algorithm. */
        assert_int_equal(https_get_json(ep->jwks_uri, &jwks), 0);
        assert_int_equal(json_array_size(json_object_get(jwks, "keys")), 1);
        key = json_array_get(json_object_get(jwks, "keys"), 0);
        assert_string_equal(claim(key, "kty"), streq(g->alg, "ES256") ? "EC" : "RSA");
        assert_null(json_object_get(key, "d")); /* public parts only */
        json_decref(jwks);
        rp_close(&rp);
}

/* The whole relying party with one client: exchange, verify, refresh, revoke. */
static void core_flow(struct group *g, bool basic)
{
        _cleanup_(lk_authorization_freep) struct lk_authorization *a = NULL;
        _cleanup_secret_ char *code = NULL, *refresh_token = NULL;
        struct outcome o = { 0 }, o2 = { 0 };
        struct lk_provider_stats st;
        json_t *header, *jwks;
        const char *kid;
        struct rp rp;

        rp_open(&rp, g->config[basic]);
        prepare(&rp);
        a = sign_in(&rp, &code);
        exchange(&rp, code, a, &o);
        assert_ok(&o, "code exchange");

        /* The id_token verified against the provider's own key, with the group's algorithm. */
        assert_non_null(o.grant->claims);
        assert_string_equal(claim(o.grant->claims, "iss"), g->issuer);
        assert_string_equal(claim(o.grant->claims, "sub"), ACCOUNT);
        assert_string_equal(claim(o.grant->claims, "preferred_username"), ACCOUNT);
        assert_string_equal(claim(o.grant->claims, "nonce"), a->nonce);
        header = jose_header(o.grant->tokens.id_token);
        assert_non_null(header);
        assert_string_equal(claim(header, "alg"), g->alg);
        kid = claim(header, "kid");
        assert_non_null(kid);
        assert_int_equal(https_get_json(lk_provider_endpoints(rp.provider)->jwks_uri, &jwks), 0);
        assert_string_equal(claim(json_array_get(json_object_get(jwks, "keys"), 0), "kid"), kid);
        json_decref(jwks);
        json_decref(header);

        assert_non_null(o.grant->tokens.access_token);
        assert_true(strcasecmp(o.grant->tokens.token_type, "Bearer") == 0);
        assert_true(o.grant->tokens.expires_at > time(NULL) + 600);
        assert_non_null(o.grant->tokens.refresh_token); /* offline_access with prompt=consent */
        assert_non_null(o.grant->tokens.scope);
        assert_non_null(strstr(o.grant->tokens.scope, "offline_access"));
        refresh_token = strdup(o.grant->tokens.refresh_token);
        assert_non_null(refresh_token);

        /* Refresh: a new access token, and a new id_token with the same iss and sub. */
        refresh(&rp, refresh_token, o.grant->claims, &o2);
        assert_ok(&o2, "refresh");
        assert_string_not_equal(o2.grant->tokens.access_token, o.grant->tokens.access_token);
        assert_non_null(o2.grant->claims);
        assert_string_equal(claim(o2.grant->claims, "iss"), g->issuer);
        assert_string_equal(claim(o2.grant->claims, "sub"), ACCOUNT);
        if (o2.grant->tokens.refresh_token) { /* rotated: the new one is the one to keep */
                lk_secret_free(refresh_token);
                refresh_token = strdup(o2.grant->tokens.refresh_token);
        }
        outcome_clear(&o2);

        /* Revocation at the provider's endpoint; the refresh token is dead afterwards. */
        assert_int_equal(lk_provider_revoke(rp.provider, refresh_token, "refresh_token", done_cb,
                                            &o2),
                         0);
        run_op(&rp, &o2);
        assert_ok(&o2, "revocation");
        outcome_clear(&o2);
        refresh(&rp, refresh_token, o.grant->claims, &o2);
        assert_true(o2.failed);
        print_message("refresh after revocation: %s: %s\n", lk_err_name(o2.err.code),
                      o2.err.message);
        assert_int_equal(o2.err.code, LK_ERR_INVALID_GRANT);
        assert_string_equal(o2.err.provider_error, "invalid_grant");
        outcome_clear(&o2);

        lk_provider_stats(rp.provider, &st);
        assert_int_equal(st.discovery, 1);
        assert_int_equal(st.jwks, 1);
        assert_int_equal(st.token, 3);
        assert_int_equal(st.revoke, 1);
        outcome_clear(&o);
        rp_close(&rp);
}

static void test_core_flow_basic(void **state)
{
        core_flow(*state, true);
}

static void test_core_flow_post(void **state)
{
        core_flow(*state, false);
}

/* A code used twice: the provider refuses it, and we say so with its words. */
static void test_core_code_used_twice(void **state)
{
        struct group *g = *state;
        _cleanup_(lk_authorization_freep) struct lk_authorization *a = NULL;
        _cleanup_secret_ char *code = NULL;
        struct outcome o = { 0 };
        struct rp rp;

        rp_open(&rp, g->config[0]);
        prepare(&rp);
        a = sign_in(&rp, &code);
        exchange(&rp, code, a, &o);
        assert_ok(&o, "first exchange");
        outcome_clear(&o);

        exchange(&rp, code, a, &o);
        assert_true(o.failed);
        print_message("the code again: %s: %s\n", lk_err_name(o.err.code), o.err.message);
        assert_int_equal(o.err.code, LK_ERR_INVALID_GRANT);
        assert_string_equal(lk_err_name(o.err.code), "InvalidGrant");
        assert_string_equal(o.err.provider_error, "invalid_grant");
        assert_true(strlen(o.err.provider_description) > 0);
        /* The message a person reads carries the provider's words, and never the code. */
        assert_non_null(strstr(o.err.message, "invalid_grant"));
        assert_non_null(strstr(o.err.message, o.err.provider_description));
        assert_null(strstr(o.err.message, code));
        outcome_clear(&o);
        rp_close(&rp);
}

/* Refreshes with a token taken from the broker's store; true when the provider still honours it. */
static bool refresh_works(struct group *g, bool basic, const char *refresh_token,
                          const json_t *claims, struct lk_error *ret_err)
{
        struct outcome o = { 0 };
        struct rp rp;
        bool ok;

        rp_open(&rp, g->config[basic]);
        refresh(&rp, refresh_token, claims, &o);
        ok = !o.failed;
        if (!ok && ret_err)
                *ret_err = o.err;
        outcome_clear(&o);
        rp_close(&rp);
        return ok;
}

/* After a close with revoke_on_close = yes: the provider soon refuses the refresh token. */
static void assert_revoked_soon(struct group *g, bool basic, const char *refresh_token,
                                const json_t *claims)
{
        struct lk_error e = { 0 };

        for (int waited = 0;; waited += 200) {
                if (!refresh_works(g, basic, refresh_token, claims, &e))
                        break;
                if (waited >= REVOKE_WAIT_MS)
                        fail_msg("the refresh token still works %d ms after the close", waited);
                lkh_sleep_ms(200);
        }
        print_message("after the close, refresh: %s: %s\n", lk_err_name(e.code), e.message);
        assert_int_equal(e.code, LK_ERR_INVALID_GRANT);
}

/* ---- latchkeyd over D-Bus ----------------------------------------------------------- */

static void restart_broker(struct group *g, bool basic)
{
        if (access(lkh_latchkeyd_path(), X_OK) < 0) {
                print_message("no latchkeyd at %s; skipping\n", lkh_latchkeyd_path());
                skip();
        }
        lkh_stop_broker(H);
        free(H->config_file);
        H->config_file = strdup(g->config[basic]);
        assert_non_null(H->config_file);
        assert_int_equal(lkh_start_broker(H, NULL), 0);
}

static DBusConnection *bus_open(void)
{
        _cleanup_free_ char *msg = NULL;
        DBusConnection *c = bc_open_err(H->bus_address, &msg);

        if (!c)
                fail_msg("cannot connect to the test bus: %s", msg);
        return c;
}

/*
 * Calls method with string arguments (and, with options, an a{sv} holding
 * session_id and min_valid). Returns NULL and the reply, or the error name
 * (and its message in *ret_message).
 */
static char *call(DBusConnection *c, const char *method, const char *const *args, bool options,
                  const char *session_id, uint32_t min_valid, DBusMessage **ret_reply,
                  char **ret_message)
{
        DBusMessage *m = bc_new(method);
        DBusMessageIter it;
        struct bc_reply r;

        dbus_message_iter_init_append(m, &it);
        for (size_t i = 0; args && args[i]; i++)
                assert_true(dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &args[i]));
        if (options)
                bc_append_options(m, session_id, min_valid);
        if (bc_call(c, m, 60000, &r) < 0)
                return bc_take_error(&r, ret_message);
        if (ret_reply)
                *ret_reply = TAKE_PTR(r.msg);
        bc_reply_clear(&r);
        return NULL;
}

/* String argument number index of a reply, copied; the reply is released. */
static char *reply_string(DBusMessage *reply, int index)
{
        DBusMessageIter it;
        const char *s = NULL;

        assert_true(dbus_message_iter_init(reply, &it));
        for (int i = 0; i < index; i++)
                assert_true(dbus_message_iter_next(&it));
        assert_int_equal(dbus_message_iter_get_arg_type(&it), DBUS_TYPE_STRING);
        dbus_message_iter_get_basic(&it, &s);
        dbus_message_unref(reply);
        return strdup(s);
}

static void assert_call_ok(const char *method, char *error, char *message)
{
        if (error)
                fail_msg("%s: %s: %s", method, error, message ? message : "");
        free(message);
}

/* GetToken: the access token, or NULL and the error name in *ret_error. */
static char *get_token(DBusConnection *c, const char *sid, uint32_t min_valid, char **ret_error)
{
        DBusMessage *reply = NULL;
        char *msg = NULL, *e = call(c, "GetToken", NULL, true, sid, min_valid, &reply, &msg);
        const char *token, *type;
        dbus_int64_t expires;
        char *out;

        free(msg);
        if (e) {
                *ret_error = e;
                return NULL;
        }
        assert_true(dbus_message_get_args(reply, NULL, DBUS_TYPE_STRING, &token, DBUS_TYPE_INT64,
                                          &expires, DBUS_TYPE_STRING, &type, DBUS_TYPE_INVALID));
        assert_true(expires > time(NULL) + 600);
        assert_true(strcasecmp(type, "Bearer") == 0);
        out = strdup(token);
        dbus_message_unref(reply);
        return out;
}

static json_t *get_claims(DBusConnection *c, const char *sid)
{
        DBusMessage *reply = NULL;
        char *msg = NULL, *e = call(c, "GetClaims", NULL, true, sid, 0, &reply, &msg);
        _cleanup_free_ char *text = NULL;
        json_t *j;

        assert_call_ok("GetClaims", e, msg);
        text = reply_string(reply, 0);
        j = json_loads(text, 0, NULL);
        assert_non_null(j);
        return j;
}

/* The refresh token latchkeyd keeps on disk for session sid (SPEC §2: kept across restarts). */
static char *stored_refresh_token(const char *sid)
{
        json_t *j = lkh_read_session(H, sid);
        char *rt;

        if (!j)
                fail_msg("cannot read the broker's session file of %s", sid);
        rt = claim(j, "refresh_token") ? strdup(claim(j, "refresh_token")) : NULL;
        json_decref(j);
        return rt;
}

/* BeginLogin, the person at oidc-provider, CompleteLogin; returns the login id. */
static char *broker_login(DBusConnection *c, struct group *g, char **ret_location)
{
        const char *begin_args[] = { ACCOUNT, NULL };
        _cleanup_free_ char *url = NULL, *location = NULL, *who = NULL, *msg = NULL;
        DBusMessage *reply = NULL;
        char *e, *id;

        e = call(c, "BeginLogin", begin_args, true, NULL, 0, &reply, &msg);
        assert_call_ok("BeginLogin", e, TAKE_PTR(msg));
        id = reply_string(dbus_message_ref(reply), 0);
        url = reply_string(reply, 1);
        assert_true(strncmp(url, g->issuer, strlen(g->issuer)) == 0);
        assert_non_null(strstr(url, "code_challenge_method=S256"));
        assert_int_equal(browser_login(url, ACCOUNT, &location), 0);
        {
                const char *args[] = { id, location, NULL };
                e = call(c, "CompleteLogin", args, false, NULL, 0, &reply, &msg);
        }
        assert_call_ok("CompleteLogin", e, TAKE_PTR(msg));
        who = reply_string(reply, 0);
        assert_string_equal(who, ACCOUNT);
        if (ret_location)
                *ret_location = TAKE_PTR(location);
        return id;
}

static void broker_flow(struct group *g, bool basic)
{
        _cleanup_free_ char *sid = lkh_xasprintf("interop-%s-%s", g->alg, basic ? "basic" : "post");
        _cleanup_free_ char *id = NULL, *location = NULL, *id2 = NULL, *code = NULL;
        _cleanup_free_ char *t1 = NULL, *t2 = NULL, *e = NULL, *msg = NULL;
        _cleanup_secret_ char *refresh_token = NULL;
        DBusConnection *c;
        json_t *claims;

        restart_broker(g, basic);
        c = bus_open();
        id = broker_login(c, g, &location);
        {
                const char *args[] = { id, sid, NULL };
                e = call(c, "OpenSession", args, false, NULL, 0, NULL, &msg);
                assert_call_ok("OpenSession", TAKE_PTR(e), TAKE_PTR(msg));
        }

        t1 = get_token(c, sid, 0, &e);
        assert_null(e);
        assert_non_null(t1);
        claims = get_claims(c, sid);
        assert_string_equal(claim(claims, "iss"), g->issuer);
        assert_string_equal(claim(claims, "sub"), ACCOUNT);
        assert_string_equal(claim(claims, "preferred_username"), ACCOUNT);
        json_decref(claims);

        /* More validity than the token has: the broker refreshes at oidc-provider. */
        t2 = get_token(c, sid, 7200, &e);
        if (e)
                fail_msg("GetToken with a refresh: %s", e);
        assert_string_not_equal(t1, t2);
        claims = get_claims(c, sid);
        assert_string_equal(claim(claims, "iss"), g->issuer);
        assert_string_equal(claim(claims, "sub"), ACCOUNT);

        /* The session's refresh token works until the close revokes it. */
        refresh_token = stored_refresh_token(sid);
        assert_non_null(refresh_token);
        assert_true(refresh_works(g, basic, refresh_token, claims, NULL));
        {
                const char *args[] = { sid, NULL };
                e = call(c, "CloseSession", args, false, NULL, 0, NULL, &msg);
                assert_call_ok("CloseSession", TAKE_PTR(e), TAKE_PTR(msg));
        }
        free(t1);
        t1 = get_token(c, sid, 0, &e);
        assert_null(t1);
        assert_string_equal(e, BUS_ERR("NotFound"));
        free(e);
        e = NULL;
        assert_revoked_soon(g, basic, refresh_token, claims);
        json_decref(claims);

        /* The same code again, on a new login: the provider refuses it; we pass on its words. */
        assert_int_equal(lkh_url_param(location, "code", &code), 0);
        {
                const char *begin_args[] = { ACCOUNT, NULL };
                DBusMessage *reply = NULL;

                e = call(c, "BeginLogin", begin_args, true, NULL, 0, &reply, &msg);
                assert_call_ok("BeginLogin", TAKE_PTR(e), TAKE_PTR(msg));
                id2 = reply_string(reply, 0);
        }
        {
                const char *args[] = { id2, code, NULL };
                e = call(c, "CompleteLogin", args, false, NULL, 0, NULL, &msg);
        }
        assert_non_null(e);
        print_message("CompleteLogin with a used code: %s: %s\n", e, msg);
        assert_string_equal(e, BUS_ERR("InvalidGrant"));
        assert_non_null(strstr(msg, "invalid_grant"));
        assert_null(strstr(msg, code));
        bc_close(c);
}

/*
 * The device flow (RFC 8628) through the broker: BeginLogin gives oidc-provider's verification
 * address; WaitLogin waits while the person confirms the code, signs in and consents there;
 * the broker polls the token endpoint (client authentication as configured) and verifies the
 * id_token (no nonce in this grant).
 */
static void device_flow(struct group *g, bool basic)
{
        _cleanup_free_ char *sid = lkh_xasprintf("interop-device-%s", basic ? "basic" : "post");
        _cleanup_free_ char *id = NULL, *url = NULL, *t1 = NULL, *e = NULL, *msg = NULL;
        const char *begin_args[] = { ACCOUNT, NULL };
        DBusPendingCall *pending = NULL;
        DBusMessage *reply = NULL, *m;
        DBusConnection *c;
        const char *idp, *user = NULL;
        json_t *claims;

        restart_broker(g, basic);
        c = bus_open();
        e = call(c, "BeginLogin", begin_args, true, NULL, 0, &reply, &msg);
        assert_call_ok("BeginLogin", TAKE_PTR(e), TAKE_PTR(msg));
        id = reply_string(dbus_message_ref(reply), 0);
        url = reply_string(reply, 1);
        print_message("device flow: %s\n", url);
        assert_true(strncmp(url, g->issuer, strlen(g->issuer)) == 0);
        assert_non_null(strstr(url, "user_code="));

        m = bc_new("WaitLogin");
        idp = id;
        assert_true(dbus_message_append_args(m, DBUS_TYPE_STRING, &idp, DBUS_TYPE_INVALID));
        assert_true(dbus_connection_send_with_reply(c, m, &pending, 120000));
        assert_non_null(pending);
        dbus_message_unref(m);
        dbus_connection_flush(c);

        assert_int_equal(browser_device(url, ACCOUNT), 0);
        dbus_pending_call_block(pending);
        reply = dbus_pending_call_steal_reply(pending);
        dbus_pending_call_unref(pending);
        assert_non_null(reply);
        if (dbus_message_get_type(reply) == DBUS_MESSAGE_TYPE_ERROR) {
                const char *text = NULL;

                dbus_message_get_args(reply, NULL, DBUS_TYPE_STRING, &text, DBUS_TYPE_INVALID);
                fail_msg("WaitLogin: %s: %s", dbus_message_get_error_name(reply),
                         text ? text : "");
        }
        assert_true(dbus_message_get_args(reply, NULL, DBUS_TYPE_STRING, &user,
                                          DBUS_TYPE_INVALID));
        assert_string_equal(user, ACCOUNT);
        dbus_message_unref(reply);
        {
                const char *args[] = { id, sid, NULL };
                e = call(c, "OpenSession", args, false, NULL, 0, NULL, &msg);
                assert_call_ok("OpenSession", TAKE_PTR(e), TAKE_PTR(msg));
        }
        t1 = get_token(c, sid, 0, &e);
        assert_null(e);
        assert_non_null(t1);
        claims = get_claims(c, sid);
        assert_string_equal(claim(claims, "iss"), g->issuer);
        assert_string_equal(claim(claims, "sub"), ACCOUNT);
        json_decref(claims);
        {
                const char *args[] = { sid, NULL };
                e = call(c, "CloseSession", args, false, NULL, 0, NULL, &msg);
                assert_call_ok("CloseSession", TAKE_PTR(e), TAKE_PTR(msg));
        }
        bc_close(c);
}

static void test_device_flow_basic(void **state)
{
        device_flow(*state, true);
}

static void test_device_flow_post(void **state)
{
        device_flow(*state, false);
}

static void test_broker_flow_basic(void **state)
{
        broker_flow(*state, true);
}

static void test_broker_flow_post(void **state)
{
        broker_flow(*state, false);
}

/* ---- pam_latchkey.so through libpam, under pam_wrapper --------------------------- */

/* Single sign-on for this service and every local user (the [pam] settings, as arguments). */
#define SSO_ARGS "services=latchkey-interop users=*"

struct person {
        char *location;
        unsigned prompts;
        struct lkh_said said;
};

/* The sign-in address: the browser signs in at oidc-provider and comes back. */
static int on_info(void *person, const char *text)
{
        struct person *p = person;

        if (strncmp(text, "https://", 8) != 0)
                return 0;
        free(p->location);
        p->location = NULL;
        return browser_login(text, ACCOUNT, &p->location);
}

/* The prompt: the address the browser came back to. */
static char *answer(void *person, const struct pam_message *m)
{
        struct person *p = person;

        (void)m;
        p->prompts++;
        return p->location ? strdup(p->location) : NULL;
}

static void pam_login(struct group *g, bool basic)
{
        struct person p = { 0 };
        struct lkh_person_conv talk = { &p.said, on_info, answer, &p };
        struct pam_conv pc = { lkh_pam_conv, &talk };
        _cleanup_free_ char *sid = NULL, *token = NULL, *e = NULL;
        _cleanup_secret_ char *refresh_token = NULL;
        pam_handle_t *ph = NULL;
        DBusConnection *c;
        json_t *claims;
        const char *s;

        if (!pam_available) {
                print_message("not under pam_wrapper; skipping\n");
                skip();
        }
        restart_broker(g, basic);
        assert_int_equal(pam_start("latchkey-interop", ACCOUNT, &pc, &ph), PAM_SUCCESS);
        assert_int_equal(pam_authenticate(ph, 0), PAM_SUCCESS);
        for (unsigned i = 0; i < p.said.n_error; i++)
                print_message("PAM_ERROR_MSG: %s\n", p.said.error[i]);
        assert_int_equal(p.prompts, 1);
        assert_int_equal(p.said.n_error, 0);
        assert_int_equal(pam_acct_mgmt(ph, 0), PAM_SUCCESS);
        assert_int_equal(pam_open_session(ph, 0), PAM_SUCCESS);
        s = pam_getenv(ph, "LATCHKEY_SESSION");
        assert_non_null(s);
        sid = strdup(s);

        /* A desktop application in the session gets oidc-provider's access token. */
        c = bus_open();
        token = get_token(c, sid, 0, &e);
        if (e)
                fail_msg("GetToken: %s", e);
        claims = get_claims(c, sid);
        assert_string_equal(claim(claims, "iss"), g->issuer);
        assert_string_equal(claim(claims, "preferred_username"), ACCOUNT);
        refresh_token = stored_refresh_token(sid);
        assert_non_null(refresh_token);
        assert_true(refresh_works(g, basic, refresh_token, claims, NULL));

        assert_int_equal(pam_close_session(ph, 0), PAM_SUCCESS);
        assert_int_equal(pam_end(ph, PAM_SUCCESS), PAM_SUCCESS);
        free(token);
        token = get_token(c, sid, 0, &e);
        assert_null(token);
        assert_string_equal(e, BUS_ERR("NotFound"));
        bc_close(c);
        assert_revoked_soon(g, basic, refresh_token, claims);
        json_decref(claims);
        free(p.location);
        lkh_said_clear(&p.said);
}

static void test_pam_login_basic(void **state)
{
        pam_login(*state, true);
}

static void test_pam_login_post(void **state)
{
        pam_login(*state, false);
}

/* ---- main ----------------------------------------------------------------------------- */

static int write_pam_service(void)
{
        _cleanup_free_ char *dir = lkh_xasprintf("%s/pam.d", H->dir);
        _cleanup_free_ char *path = lkh_xasprintf("%s/latchkey-interop", dir);
        _cleanup_free_ char *text = lkh_xasprintf("auth required %s timeout=30 " SSO_ARGS "\n"
                                                  "account required %s\n"
                                                  "session required %s " SSO_ARGS "\n",
                                                  PAM_LATCHKEY_SO, PAM_LATCHKEY_SO,
                                                  PAM_LATCHKEY_SO);

        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                return -errno;
        if (write_text(path, text, 0644) < 0)
                return -EIO;
        return setenv("PAM_WRAPPER_SERVICE_DIR", dir, 1) < 0 ? -errno : 0;
}

/* One folder, certificate and bus for the whole run: libdbus (and so pam_latchkey.so in this
 * process) reads DBUS_SYSTEM_BUS_ADDRESS once. Each group starts its own oidc-provider. */
static int global_setup(void)
{
        _cleanup_free_ char *cert = NULL, *key = NULL, *conf = NULL;

        if (lkh_new(&H) < 0)
                return -1;
        cert = lkh_xasprintf("%s/oidc-provider-cert.pem", H->dir);
        key = lkh_xasprintf("%s/oidc-provider-key.pem", H->dir);
        if (lkh_make_cert(H, NULL, cert, key) < 0)
                return -1;
        H->cert_file = TAKE_PTR(cert);
        H->key_file = TAKE_PTR(key);
        /* The bus's activation file names a config; the tests start the broker themselves. */
        conf = lkh_xasprintf("%s/latchkey.conf", H->dir);
        if (write_text(conf, "# replaced per test\n", 0644) < 0)
                return -1;
        H->config_file = TAKE_PTR(conf);
        if (lkh_start_bus(H) < 0)
                return -1;
        if (pam_available && write_pam_service() < 0)
                return -1;
        return 0;
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_core_discovery_and_keys),
                cmocka_unit_test(test_core_flow_basic),
                cmocka_unit_test(test_core_flow_post),
                cmocka_unit_test(test_core_code_used_twice),
                cmocka_unit_test(test_broker_flow_basic),
                cmocka_unit_test(test_broker_flow_post),
                cmocka_unit_test(test_pam_login_basic),
                cmocka_unit_test(test_pam_login_post),
        };
        const struct CMUnitTest device[] = {
                cmocka_unit_test(test_device_flow_basic),
                cmocka_unit_test(test_device_flow_post),
        };
        const char *why = missing_prerequisite();
        int failed = 0;

        if (why) {
                fprintf(stderr, "test-interop: %s; skipping\n", why);
                return 77;
        }
        /* The wrapper is for libpam in this process only, not for node, the bus or the broker. */
        pam_available = getenv("PAM_WRAPPER") != NULL;
        unsetenv("LD_PRELOAD");
        if (global_setup() < 0) {
                lkh_free(H);
                fprintf(stderr, "test-interop: setup failed\n");
                return 1;
        }
        failed += cmocka_run_group_tests_name("interop, oidc-provider with RS256 keys", tests,
                                              setup_rs256, group_teardown);
        failed += cmocka_run_group_tests_name("interop, oidc-provider with ES256 keys", tests,
                                              setup_es256, group_teardown);
        failed += cmocka_run_group_tests_name("interop, oidc-provider's device flow (RFC 8628)",
                                              device, setup_device, group_teardown);
        lkh_free(H);
        return failed ? 1 : 0;
}
