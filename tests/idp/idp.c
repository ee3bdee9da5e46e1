/* SPDX-License-Identifier: MIT */
/*
 * latchkey-test-idp: a small OpenID Connect provider for the integration
 * tests, speaking Huawei Cloud OneAccess's paths under /api/v1/oauth2/.
 * Every misbehaviour the broker must survive is a switch set at run time
 * through /control (see README.md). It keeps everything in memory and is
 * never installed.
 *
 * Threads: libmicrohttpd runs one thread per connection, so a delayed token
 * response (delay_ms) does not hold up other requests. All shared state sits
 * behind one mutex; nothing sleeps while holding it.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <jwt.h>
#include <microhttpd.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>

#include "base/util.h"
#include "oidc/b64url.h"
#include "oidc/error.h"
#include "oidc/fileio.h"
#include "oidc/secret.h"

#define BASE_PATH "/api/v1/oauth2"
#define BODY_MAX (64 * 1024)          /* request bodies */
#define FORM_FIELDS_MAX 64
#define PEM_FILE_MAX (64 * 1024)
#define CLIENTS_MAX 16
#define REDIRECT_URIS_MAX 16
#define USER_MAX 128
#define CODE_LIFETIME 600
#define DEVICE_GRANT "urn:ietf:params:oauth:grant-type:device_code"
#define DELAY_MS_MAX 120000
#define OVERSIZED_BODY (2 * 1024 * 1024)
#define STRING_SWITCH_MAX 512

enum id_alg { ALG_RS256, ALG_RS512, ALG_ES256, ALG_HS256 };
static const char *const alg_names[] = { "RS256", "RS512", "ES256", "HS256" };

struct client {
        char *id;
        char *secret;
        bool basic; /* client_secret_basic; else client_secret_post */
};

/* refuse_code / refuse_refresh: a status (0 = off) and an OAuth error ("" = empty body). */
struct refusal {
        long status;
        char error[64];
};

struct switches {
        long delay_ms;
        long fail_status;
        bool malformed_json;
        bool oversized_body;
        bool expires_in_string;
        long expires_in;
        bool omit_nonce;
        bool omit_refresh_token;
        bool omit_id_token;
        bool refresh_invalid_grant;
        bool code_invalid_grant;
        bool wrong_iss;
        bool wrong_aud;
        bool no_sub;
        bool expired;
        bool iat_future;
        bool nbf_future;
        bool wrong_nonce;
        bool alg_none;
        bool bad_signature;
        bool hs256_with_rsa_pem;
        bool extra_aud_no_azp;
        bool omit_kid;
        bool error_on_authorize;
        bool discovery_wrong_issuer;
        bool close_after_headers; /* token: headers, a few body bytes, then the connection closes */
        bool token_redirect;      /* token: 302 elsewhere */
        char wrong_content_type[STRING_SWITCH_MAX]; /* token: an HTML page under this type */
        bool oneaccess; /* OneAccess's documented shapes; see apply_switch() */
        struct refusal refuse_code, refuse_refresh;
        char retry_after[32];  /* a Retry-After header on refuse_* answers; "" = none */
        bool iss_parameter;    /* RFC 9207: iss on authorization responses, said in discovery */
        bool follow_redirect;  /* the browser helper: authorize follows its own redirect */
        bool widen_scope;      /* a refresh asking for a narrower scope is answered the whole grant's */
        /* RFC 8628 */
        bool device_discovery;   /* discovery names the device authorization endpoint */
        bool device_no_complete; /* no verification_uri_complete */
        long device_interval;    /* interval (s) the device authorization answer gives */
        long device_expires_in;  /* expires_in (s) of a device code */
        char device_answer[32];  /* every device poll answers this error; "" = the real one */
        char id_token_user[USER_MAX + 1];
        char sub[USER_MAX + 1]; /* the id_token's sub, whoever signed in; "" = derived */
        char groups[STRING_SWITCH_MAX];
        enum id_alg alg;
        long jwks_max_age;
};

struct stats {
        long authorize;
        long token_code;
        long token_refresh;
        long token_auth_basic;
        long token_auth_post;
        long jwks;
        long discovery;
        long userinfo;
        long revoke;
        long control;
        long device_authorize;
        long token_device;
};

enum device_state { DEVICE_PENDING, DEVICE_APPROVED, DEVICE_DENIED };

struct device {
        struct device *next;
        char *device_code;
        char *user_code;
        char *client_id;
        char *scope;
        char *user; /* who approved it */
        enum device_state state;
        bool used;
        time_t expires;
};

struct code {
        struct code *next;
        char *value;
        char *client_id;
        char *redirect_uri;
        char *user;
        char *nonce;     /* NULL when none was sent */
        char *challenge; /* NULL when no PKCE */
        char *scope;
        time_t expires;
        bool used;
        long grant; /* set once exchanged, so a replay can revoke what it gave */
};

struct token {
        struct token *next;
        char *value;
        bool refresh;
        bool valid;
        char *client_id;
        char *user;
        char *scope;
        long grant;
        time_t expires; /* access tokens only */
};

static struct {
        pthread_mutex_t lock;
        atomic_bool stopping;
        bool verbose;
        const char *host;
        const char *cert_path; /* also the CA the browser helper trusts (follow_redirect) */
        char *issuer;

        struct client clients[CLIENTS_MAX];
        size_t n_clients;
        char *redirect_uris[REDIRECT_URIS_MAX];
        size_t n_redirect_uris;

        EVP_PKEY *rsa;
        char *rsa_pem;     /* private, for libjwt */
        char *rsa_pub_pem; /* public, for the hs256_with_rsa_pem attack */
        char rsa_kid[16];
        unsigned rsa_generation;
        EVP_PKEY *ec;
        char *ec_pem;

        struct switches sw;
        struct stats st;
        struct code *codes;
        struct token *tokens;
        struct device *devices;
        long next_grant;
} idp = {
        .lock = PTHREAD_MUTEX_INITIALIZER,
        .host = "127.0.0.1",
};

static void switches_default(struct switches *sw)
{
        *sw = (struct switches){
                .expires_in = 3600,
                .alg = ALG_RS256,
                .jwks_max_age = 300,
                .device_interval = 5,
                .device_expires_in = 600,
        };
        snprintf(sw->groups, sizeof(sw->groups), "users");
}

/* ---- small helpers ---------------------------------------------------- */

static char *xstrdup(const char *s)
{
        char *d = strdup(s ? s : "");
        if (!d)
                abort();
        return d;
}

static char *xasprintf(const char *fmt, ...) _printf_(1, 2);
static char *xasprintf(const char *fmt, ...)
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

static char *random_token(void)
{
        char *s;

        if (lk_random_b64url(32, &s) < 0)
                abort();
        return s;
}

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* application/x-www-form-urlencoded decoding of s[0..len). */
static int form_unescape(const char *s, size_t len, char **ret)
{
        char *out = malloc(len + 1);
        size_t j = 0;

        if (!out)
                return -LK_ERR_NOMEM;
        for (size_t i = 0; i < len; i++) {
                if (s[i] == '+') {
                        out[j++] = ' ';
                } else if (s[i] == '%') {
                        int hi, lo;
                        if (i + 2 >= len) {
                                free(out);
                                return -LK_ERR_INVALID_ARGUMENT;
                        }
                        hi = hexval(s[i + 1]);
                        lo = hexval(s[i + 2]);
                        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                                free(out);
                                return -LK_ERR_INVALID_ARGUMENT;
                        }
                        out[j++] = (char)(hi * 16 + lo);
                        i += 2;
                } else {
                        out[j++] = s[i];
                }
        }
        out[j] = 0;
        *ret = out;
        return 0;
}

/* Percent-encodes everything but RFC 3986's unreserved characters. */
static char *url_escape(const char *s)
{
        static const char hex[] = "0123456789ABCDEF";
        size_t n = strlen(s);
        char *out = malloc(n * 3 + 1), *p = out;

        if (!out)
                abort();
        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;
                if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.' || c == '_' || c == '~') {
                        *p++ = (char)c;
                } else {
                        *p++ = '%';
                        *p++ = hex[c >> 4];
                        *p++ = hex[c & 15];
                }
        }
        *p = 0;
        return out;
}

static char *html_escape(const char *s)
{
        size_t cap = strlen(s) * 6 + 1, j = 0;
        char *out = malloc(cap);

        if (!out)
                abort();
        for (; *s; s++) {
                const char *rep = NULL;
                switch (*s) {
                case '&': rep = "&amp;"; break;
                case '<': rep = "&lt;"; break;
                case '>': rep = "&gt;"; break;
                case '"': rep = "&quot;"; break;
                case '\'': rep = "&#39;"; break;
                }
                if (rep) {
                        size_t l = strlen(rep);
                        memcpy(out + j, rep, l);
                        j += l;
                } else {
                        out[j++] = *s;
                }
        }
        out[j] = 0;
        return out;
}

static bool user_name_valid(const char *u)
{
        size_t n = strlen(u);

        if (n == 0 || n > USER_MAX)
                return false;
        for (const char *p = u; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        return false;
        return true;
}

/* A stable subject per user name, the same across restarts. */
static char *subject_for(const char *user)
{
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        _cleanup_free_ char *in = xasprintf("latchkey-test-idp:%s", user);

        if (EVP_Digest(in, strlen(in), md, &mdlen, EVP_sha256(), NULL) != 1)
                abort();
        return xasprintf("u%02x%02x%02x%02x%02x%02x%02x%02x", md[0], md[1], md[2], md[3], md[4],
                         md[5], md[6], md[7]);
}

/* ---- forms -------------------------------------------------------------- */

struct form {
        size_t n;
        char *key[FORM_FIELDS_MAX];
        char *val[FORM_FIELDS_MAX];
};

static void form_clear(struct form *f)
{
        for (size_t i = 0; i < f->n; i++) {
                free(f->key[i]);
                lk_secret_free(f->val[i]);
        }
        f->n = 0;
}

static int form_add(struct form *f, char *key, char *val)
{
        if (f->n >= FORM_FIELDS_MAX) {
                free(key);
                lk_secret_free(val);
                return -LK_ERR_INVALID_ARGUMENT;
        }
        f->key[f->n] = key;
        f->val[f->n] = val;
        f->n++;
        return 0;
}

static int form_parse(struct form *f, const char *body, size_t len)
{
        size_t i = 0;

        while (i < len) {
                size_t end = i, eq;
                char *k = NULL, *v = NULL;
                int r;

                while (end < len && body[end] != '&')
                        end++;
                eq = i;
                while (eq < end && body[eq] != '=')
                        eq++;
                if (end > i) {
                        r = form_unescape(body + i, eq - i, &k);
                        if (r < 0)
                                return r;
                        r = form_unescape(body + (eq < end ? eq + 1 : end),
                                          eq < end ? end - eq - 1 : 0, &v);
                        if (r < 0) {
                                free(k);
                                return r;
                        }
                        r = form_add(f, k, v);
                        if (r < 0)
                                return r;
                }
                i = end + 1;
        }
        return 0;
}

static const char *form_get(const struct form *f, const char *key)
{
        for (size_t i = 0; i < f->n; i++)
                if (streq(f->key[i], key))
                        return f->val[i];
        return NULL;
}

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
        struct form *f = cls;

        if (form_add(f, xstrdup(key), xstrdup(value)) < 0)
                return MHD_NO;
        return MHD_YES;
}

/* ---- responses ---------------------------------------------------------- */

struct request {
        char *body;
        size_t len;
        bool too_big;
};

static enum MHD_Result reply_raw(struct MHD_Connection *c, const char *method, const char *url,
                                 unsigned status, const char *ctype, char *body, size_t len,
                                 const char *const *headers)
{
        struct MHD_Response *resp;
        enum MHD_Result ret;

        resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
        if (!resp) {
                free(body);
                return MHD_NO;
        }
        if (ctype)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
        for (size_t i = 0; headers && headers[i]; i += 2)
                MHD_add_response_header(resp, headers[i], headers[i + 1]);
        ret = MHD_queue_response(c, status, resp);
        MHD_destroy_response(resp);
        /* The path only: queries carry codes and states. */
        if (idp.verbose)
                fprintf(stderr, "latchkey-test-idp: %s %s -> %u\n", method, url, status);
        return ret;
}

static enum MHD_Result reply_json(struct MHD_Connection *c, const char *method, const char *url,
                                  unsigned status, json_t *obj, const char *const *headers)
{
        char *s = obj ? json_dumps(obj, JSON_COMPACT) : NULL;

        json_decref(obj);
        if (!s) {
                s = xstrdup("internal error building the response\n");
                return reply_raw(c, method, url, 500, "text/plain", s, strlen(s), NULL);
        }
        return reply_raw(c, method, url, status, "application/json", s, strlen(s), headers);
}

static enum MHD_Result reply_error(struct MHD_Connection *c, const char *method, const char *url,
                                   unsigned status, const char *error, const char *desc)
{
        static const char *const no_store[] = { "Cache-Control", "no-store", NULL };
        static const char *const basic[] = { "Cache-Control", "no-store", "WWW-Authenticate",
                                             "Basic realm=\"latchkey-test-idp\"", NULL };

        return reply_json(c, method, url, status,
                          json_pack("{s:s, s:s}", "error", error, "error_description", desc),
                          status == 401 ? basic : no_store);
}

static enum MHD_Result reply_text(struct MHD_Connection *c, const char *method, const char *url,
                                  unsigned status, const char *text)
{
        char *s = xstrdup(text);
        return reply_raw(c, method, url, status, "text/plain; charset=utf-8", s, strlen(s), NULL);
}

/*
 * close_after_headers: 200 with a Content-Length that promises 4 KiB, the first bytes of a
 * token response, then the connection closes (the provider going away mid-response).
 */
static ssize_t cut_short_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
        static const char part[] = "{\"access_token\":\"";
        size_t n;

        if (pos >= sizeof(part) - 1)
                return MHD_CONTENT_READER_END_WITH_ERROR; /* MHD closes the connection */
        n = sizeof(part) - 1 - (size_t)pos;
        if (n > max)
                n = max;
        memcpy(buf, part + pos, n);
        return (ssize_t)n;
}

static enum MHD_Result reply_cut_short(struct MHD_Connection *c, const char *method,
                                       const char *url)
{
        struct MHD_Response *resp;
        enum MHD_Result ret;

        resp = MHD_create_response_from_callback(4096, 1024, cut_short_reader, NULL, NULL);
        if (!resp)
                return MHD_NO;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        MHD_add_response_header(resp, "Cache-Control", "no-store");
        ret = MHD_queue_response(c, 200, resp);
        MHD_destroy_response(resp);
        if (idp.verbose)
                fprintf(stderr, "latchkey-test-idp: %s %s -> 200, cut short\n", method, url);
        return ret;
}

/* ---- keys and tokens ---------------------------------------------------- */

static char *pem_of(EVP_PKEY *k, bool private)
{
        BIO *b = BIO_new(BIO_s_mem());
        BUF_MEM *m;
        char *s;
        int r;

        if (!b)
                abort();
        r = private ? PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL)
                    : PEM_write_bio_PUBKEY(b, k);
        if (r != 1)
                abort();
        BIO_get_mem_ptr(b, &m);
        s = strndup(m->data, m->length);
        BIO_free(b);
        if (!s)
                abort();
        return s;
}

/* Called with the lock held, or before the server starts. */
static void new_rsa_key(void)
{
        EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);

        if (!k)
                abort();
        EVP_PKEY_free(idp.rsa);
        lk_secret_free(idp.rsa_pem);
        free(idp.rsa_pub_pem);
        idp.rsa = k;
        idp.rsa_pem = pem_of(k, true);
        idp.rsa_pub_pem = pem_of(k, false);
        idp.rsa_generation++;
        snprintf(idp.rsa_kid, sizeof(idp.rsa_kid), "rsa%u", idp.rsa_generation);
}

static void new_ec_key(void)
{
        EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

        if (!k)
                abort();
        idp.ec = k;
        idp.ec_pem = pem_of(k, true);
}

static char *bn_param_b64url(EVP_PKEY *k, const char *name, int pad)
{
        BIGNUM *bn = NULL;
        unsigned char buf[512];
        int n;
        char *s;

        if (EVP_PKEY_get_bn_param(k, name, &bn) != 1)
                abort();
        n = pad > 0 ? BN_bn2binpad(bn, buf, pad) : BN_bn2bin(bn, buf);
        BN_free(bn);
        if (n <= 0)
                abort();
        s = lk_b64url_encode(buf, (size_t)n);
        if (!s)
                abort();
        return s;
}

/* Called with the lock held. */
static json_t *jwks_json(void)
{
        _cleanup_free_ char *n = bn_param_b64url(idp.rsa, OSSL_PKEY_PARAM_RSA_N, 0);
        _cleanup_free_ char *e = bn_param_b64url(idp.rsa, OSSL_PKEY_PARAM_RSA_E, 0);
        _cleanup_free_ char *x = bn_param_b64url(idp.ec, OSSL_PKEY_PARAM_EC_PUB_X, 32);
        _cleanup_free_ char *y = bn_param_b64url(idp.ec, OSSL_PKEY_PARAM_EC_PUB_Y, 32);

        return json_pack("{s:[{s:s, s:s, s:s, s:s, s:s, s:s}, {s:s, s:s, s:s, s:s, s:s, s:s, s:s}]}",
                         "keys",
                         "kty", "RSA", "kid", idp.rsa_kid, "use", "sig", "alg",
                         alg_names[idp.sw.alg == ALG_RS512 ? ALG_RS512 : ALG_RS256], "n", n, "e", e,
                         "kty", "EC", "kid", "ec1", "use", "sig", "alg", "ES256", "crv", "P-256",
                         "x", x, "y", y);
}

/* OIDC's at_hash: the left half of the access token's hash, for the id_token's algorithm. */
static char *at_hash(const char *access_token, enum id_alg alg)
{
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        char *s;

        if (EVP_Digest(access_token, strlen(access_token), md, &mdlen,
                       alg == ALG_RS512 ? EVP_sha512() : EVP_sha256(), NULL) != 1)
                abort();
        s = lk_b64url_encode(md, mdlen / 2);
        if (!s)
                abort();
        return s;
}

static json_t *groups_json(const char *list)
{
        json_t *a = json_array();
        _cleanup_strv_ char **l = lk_strv_split(list);

        for (size_t i = 0; l && l[i]; i++)
                json_array_append_new(a, json_string(l[i]));
        return a;
}

/*
 * The id_token, with whatever defects the switches ask for. Called with the
 * lock held. Returns NULL on failure.
 */
static char *make_id_token(const struct client *cl, const char *user, const char *nonce,
                           const char *access_token)
{
        const struct switches *sw = &idp.sw;
        time_t now = time(NULL);
        _cleanup_free_ char *sub = subject_for(user);
        _cleanup_free_ char *wrong_nonce = NULL, *wrong_iss = NULL, *claims_str = NULL;
        _cleanup_free_ char *ath = NULL, *name = NULL;
        const char *shown_user = isempty(sw->id_token_user) ? user : sw->id_token_user;
        jwt_t *jwt = NULL;
        json_t *claims;
        jwt_alg_t jalg;
        const unsigned char *key;
        size_t keylen;
        const char *kid;
        char *out;

        claims = json_object();
        wrong_iss = xasprintf("%s/wrong", idp.issuer);
        json_object_set_new(claims, "iss", json_string(sw->wrong_iss ? wrong_iss : idp.issuer));
        if (!sw->no_sub)
                json_object_set_new(claims, "sub", json_string(isempty(sw->sub) ? sub : sw->sub));
        if (sw->wrong_aud)
                json_object_set_new(claims, "aud", json_string("someone-else"));
        else if (sw->extra_aud_no_azp)
                json_object_set_new(claims, "aud", json_pack("[s, s]", cl->id, "other-audience"));
        else
                json_object_set_new(claims, "aud", json_string(cl->id));
        if (sw->expired) {
                json_object_set_new(claims, "iat", json_integer(now - 7200));
                json_object_set_new(claims, "exp", json_integer(now - 3600));
        } else if (sw->iat_future) {
                json_object_set_new(claims, "iat", json_integer(now + 3600));
                json_object_set_new(claims, "exp", json_integer(now + 7200));
        } else {
                json_object_set_new(claims, "iat", json_integer(now));
                json_object_set_new(claims, "exp", json_integer(now + 3600));
        }
        json_object_set_new(claims, "auth_time", json_integer(now));
        if (sw->nbf_future)
                json_object_set_new(claims, "nbf", json_integer(now + 3600));
        if (sw->wrong_nonce) {
                wrong_nonce = random_token();
                json_object_set_new(claims, "nonce", json_string(wrong_nonce));
        } else if (nonce && !sw->omit_nonce) {
                json_object_set_new(claims, "nonce", json_string(nonce));
        }
        name = xasprintf("Test User %s", shown_user);
        json_object_set_new(claims, "preferred_username", json_string(shown_user));
        json_object_set_new(claims, "name", json_string(name));
        json_object_set_new(claims, "groups", groups_json(sw->groups));
        ath = at_hash(access_token, sw->alg);
        json_object_set_new(claims, "at_hash", json_string(ath));
        claims_str = json_dumps(claims, JSON_COMPACT);
        json_decref(claims);
        if (!claims_str)
                return NULL;

        if (sw->alg_none) {
                jalg = JWT_ALG_NONE;
                key = NULL;
                keylen = 0;
                kid = idp.rsa_kid;
        } else if (sw->hs256_with_rsa_pem) {
                jalg = JWT_ALG_HS256;
                key = (const unsigned char *)idp.rsa_pub_pem;
                keylen = strlen(idp.rsa_pub_pem);
                kid = idp.rsa_kid;
        } else {
                switch (sw->alg) {
                case ALG_RS512:
                case ALG_RS256:
                        jalg = sw->alg == ALG_RS512 ? JWT_ALG_RS512 : JWT_ALG_RS256;
                        key = (const unsigned char *)idp.rsa_pem;
                        keylen = strlen(idp.rsa_pem);
                        kid = idp.rsa_kid;
                        break;
                case ALG_ES256:
                        jalg = JWT_ALG_ES256;
                        key = (const unsigned char *)idp.ec_pem;
                        keylen = strlen(idp.ec_pem);
                        kid = "ec1";
                        break;
                default:
                        jalg = JWT_ALG_HS256;
                        key = (const unsigned char *)cl->secret;
                        keylen = strlen(cl->secret);
                        kid = NULL;
                        break;
                }
        }

        if (jwt_new(&jwt) != 0)
                return NULL;
        if (jwt_add_grants_json(jwt, claims_str) != 0 ||
            (kid && !sw->omit_kid && jwt_add_header(jwt, "kid", kid) != 0) ||
            jwt_set_alg(jwt, jalg, key, (int)keylen) != 0) {
                jwt_free(jwt);
                return NULL;
        }
        out = jwt_encode_str(jwt);
        jwt_free(jwt);
        if (!out)
                return NULL;
        if (sw->bad_signature) {
                char *dot = strrchr(out, '.');
                if (dot && dot[1])
                        dot[1] = dot[1] == 'A' ? 'B' : 'A';
        }
        return out;
}

static void free_code(struct code *k)
{
        lk_secret_free(k->value);
        free(k->client_id);
        free(k->redirect_uri);
        free(k->user);
        lk_secret_free(k->nonce);
        free(k->challenge);
        free(k->scope);
        free(k);
}

static void free_token(struct token *t)
{
        lk_secret_free(t->value);
        free(t->client_id);
        free(t->user);
        free(t->scope);
        free(t);
}

/* Called with the lock held. */
static struct token *add_token(bool refresh, const struct client *cl, const char *user,
                               const char *scope, long grant, time_t expires)
{
        struct token *t = calloc(1, sizeof(*t));

        if (!t)
                abort();
        t->value = random_token();
        t->refresh = refresh;
        t->valid = true;
        t->client_id = xstrdup(cl->id);
        t->user = xstrdup(user);
        t->scope = xstrdup(scope);
        t->grant = grant;
        t->expires = expires;
        t->next = idp.tokens;
        idp.tokens = t;
        return t;
}

static struct token *find_token(const char *value)
{
        for (struct token *t = idp.tokens; t; t = t->next)
                if (lk_secret_equal(t->value, value))
                        return t;
        return NULL;
}

static void revoke_grant(long grant)
{
        for (struct token *t = idp.tokens; t; t = t->next)
                if (t->grant == grant)
                        t->valid = false;
}

/* ---- endpoints ---------------------------------------------------------- */

static bool redirect_uri_allowed(const char *uri)
{
        for (size_t i = 0; i < idp.n_redirect_uris; i++)
                if (streq(idp.redirect_uris[i], uri))
                        return true;
        return false;
}

static const struct client *client_by_id(const char *id)
{
        for (size_t i = 0; i < idp.n_clients; i++)
                if (streq(idp.clients[i].id, id))
                        return &idp.clients[i];
        return NULL;
}

/* The browser's body of a followed redirect, capped. */
struct followed {
        char *body;
        size_t len;
};

static size_t followed_write(char *data, size_t size, size_t n, void *userdata)
{
        struct followed *f = userdata;
        size_t add = size * n;
        char *nb;

        if (f->len + add > BODY_MAX)
                return 0;
        nb = realloc(f->body, f->len + add + 1);
        if (!nb)
                return 0;
        memcpy(nb + f->len, data, add);
        f->len += add;
        nb[f->len] = '\0';
        f->body = nb;
        return add;
}

/*
 * follow_redirect, the browser helper: the IdP GETs the redirect itself (the broker's
 * callback listener, trusting --cert as the CA) and answers with what it answered, status and
 * body, so a test signs in with one request, as a browser would with the two.
 */
static enum MHD_Result follow(struct MHD_Connection *c, const char *method, const char *url,
                              const char *location)
{
        struct followed f = {0};
        CURL *h = curl_easy_init();
        CURLcode rc;
        long status = 0;

        if (!h)
                abort();
        curl_easy_setopt(h, CURLOPT_URL, location);
        curl_easy_setopt(h, CURLOPT_CAINFO, idp.cert_path);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
        curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, followed_write);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &f);
        rc = curl_easy_perform(h);
        if (rc == CURLE_OK)
                curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(h);
        if (rc != CURLE_OK) {
                free(f.body);
                return reply_text(c, method, url, 502, "the redirect could not be followed\n");
        }
        return reply_raw(c, method, url, (unsigned)status, "text/html; charset=utf-8",
                         f.body ? f.body : xstrdup(""), f.len, NULL);
}

static enum MHD_Result redirect(struct MHD_Connection *c, const char *method, const char *url,
                                const char *location)
{
        const char *const headers[] = { "Location", location, "Cache-Control", "no-store", NULL };
        char *body;
        bool follow_it;

        pthread_mutex_lock(&idp.lock);
        follow_it = idp.sw.follow_redirect;
        pthread_mutex_unlock(&idp.lock);
        if (follow_it)
                return follow(c, method, url, location);
        body = xstrdup("Redirecting\n");
        return reply_raw(c, method, url, 302, "text/plain", body, strlen(body), headers);
}

/* iss_parameter: "&iss=ISSUER" for an authorization response (RFC 9207), else "". */
static char *iss_param(void)
{
        _cleanup_free_ char *iss = NULL;
        bool on;

        pthread_mutex_lock(&idp.lock);
        on = idp.sw.iss_parameter;
        pthread_mutex_unlock(&idp.lock);
        if (!on)
                return xstrdup("");
        iss = url_escape(idp.issuer);
        return xasprintf("&iss=%s", iss);
}

static enum MHD_Result redirect_error(struct MHD_Connection *c, const char *method,
                                      const char *url, const char *redirect_uri, const char *state,
                                      const char *error, const char *desc)
{
        _cleanup_free_ char *d = url_escape(desc);
        _cleanup_free_ char *s = state ? url_escape(state) : NULL;
        _cleanup_free_ char *iss = iss_param();
        _cleanup_free_ char *loc =
                xasprintf("%s%cerror=%s&error_description=%s%s%s%s", redirect_uri,
                          strchr(redirect_uri, '?') ? '&' : '?', error, d, s ? "&state=" : "",
                          s ? s : "", iss);

        return redirect(c, method, url, loc);
}

static enum MHD_Result login_form(struct MHD_Connection *c, const char *method, const char *url,
                                  const struct form *f)
{
        char *page = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&page, &len);

        if (!m)
                abort();
        fputs("<!DOCTYPE html>\n<html><head><title>latchkey test IdP</title></head><body>\n"
              "<form method=\"post\" action=\"" BASE_PATH "/authorize\">\n", m);
        for (size_t i = 0; i < f->n; i++) {
                _cleanup_free_ char *k = html_escape(f->key[i]);
                _cleanup_free_ char *v = html_escape(f->val[i]);
                if (streq(f->key[i], "username") || streq(f->key[i], "login_hint"))
                        continue;
                fprintf(m, "<input type=\"hidden\" name=\"%s\" value=\"%s\">\n", k, v);
        }
        fputs("<label>User name <input type=\"text\" name=\"username\"></label>\n"
              "<input type=\"submit\" value=\"Sign in\">\n</form></body></html>\n", m);
        if (fclose(m) != 0)
                abort();
        return reply_raw(c, method, url, 200, "text/html; charset=utf-8", page, len, NULL);
}

static enum MHD_Result authorize_endpoint(struct MHD_Connection *c, const char *method,
                                          const char *url, const struct form *f)
{
        const char *response_type = form_get(f, "response_type");
        const char *client_id = form_get(f, "client_id");
        const char *redirect_uri = form_get(f, "redirect_uri");
        const char *state = form_get(f, "state");
        const char *nonce = form_get(f, "nonce");
        const char *challenge = form_get(f, "code_challenge");
        const char *challenge_method = form_get(f, "code_challenge_method");
        const char *scope = form_get(f, "scope");
        const char *user = form_get(f, "username");
        _cleanup_free_ char *code_esc = NULL, *state_esc = NULL, *loc = NULL, *iss = NULL;
        struct code *k;
        bool deny;

        if (!user)
                user = form_get(f, "login_hint");

        pthread_mutex_lock(&idp.lock);
        idp.st.authorize++;
        deny = idp.sw.error_on_authorize;
        pthread_mutex_unlock(&idp.lock);

        /* Without a known client and a registered redirect_uri, never redirect. */
        if (!client_id || !client_by_id(client_id))
                return reply_text(c, method, url, 400, "unknown client_id\n");
        if (!redirect_uri || !redirect_uri_allowed(redirect_uri))
                return reply_text(c, method, url, 400, "redirect_uri not registered\n");
        if (!response_type || !streq(response_type, "code"))
                return redirect_error(c, method, url, redirect_uri, state,
                                      "unsupported_response_type", "Only response_type=code");
        if (challenge && (!challenge_method || !streq(challenge_method, "S256")))
                return redirect_error(c, method, url, redirect_uri, state, "invalid_request",
                                      "code_challenge_method must be S256");
        if (challenge_method && !challenge)
                return redirect_error(c, method, url, redirect_uri, state, "invalid_request",
                                      "code_challenge missing");
        if (deny)
                return redirect_error(c, method, url, redirect_uri, state, "access_denied",
                                      "The user denied the request");
        if (!user)
                return login_form(c, method, url, f);
        if (!user_name_valid(user))
                return reply_text(c, method, url, 400, "bad user name\n");

        k = calloc(1, sizeof(*k));
        if (!k)
                abort();
        k->value = random_token();
        k->client_id = xstrdup(client_id);
        k->redirect_uri = xstrdup(redirect_uri);
        k->user = xstrdup(user);
        k->nonce = nonce ? xstrdup(nonce) : NULL;
        k->challenge = challenge ? xstrdup(challenge) : NULL;
        k->scope = xstrdup(scope ? scope : "openid");
        k->expires = time(NULL) + CODE_LIFETIME;
        code_esc = url_escape(k->value);
        state_esc = state ? url_escape(state) : NULL;

        pthread_mutex_lock(&idp.lock);
        k->next = idp.codes;
        idp.codes = k;
        pthread_mutex_unlock(&idp.lock);

        iss = iss_param();
        loc = xasprintf("%s%ccode=%s%s%s%s", redirect_uri, strchr(redirect_uri, '?') ? '&' : '?',
                        code_esc, state_esc ? "&state=" : "", state_esc ? state_esc : "", iss);
        return redirect(c, method, url, loc);
}

/*
 * RFC 6749 §2.3.1: Basic credentials are form-urlencoded before base64.
 * Returns the client, or NULL with *ret_status and *ret_desc set.
 */
static const struct client *authenticate_client(struct MHD_Connection *c, const struct form *f,
                                                bool *ret_basic, const char **ret_desc)
{
        const char *authz = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        const char *body_id = form_get(f, "client_id");
        const char *body_secret = form_get(f, "client_secret");
        const struct client *cl;

        if (authz && strncasecmp(authz, "Basic ", 6) == 0) {
                const char *b64 = authz + 6;
                size_t n = strlen(b64), pad = 0;
                _cleanup_secret_ char *raw = NULL, *id = NULL, *secret = NULL;
                char *colon;
                int len;

                if (body_secret) {
                        *ret_desc = "More than one client authentication method";
                        return NULL;
                }
                if (n == 0 || n > 4096 || n % 4 != 0) {
                        *ret_desc = "Malformed Basic credentials";
                        return NULL;
                }
                raw = calloc(1, n + 1);
                if (!raw)
                        abort();
                len = EVP_DecodeBlock((unsigned char *)raw, (const unsigned char *)b64, (int)n);
                if (len < 0) {
                        *ret_desc = "Malformed Basic credentials";
                        return NULL;
                }
                if (b64[n - 1] == '=')
                        pad++;
                if (b64[n - 2] == '=')
                        pad++;
                len -= (int)pad;
                raw[len] = 0;
                if (strlen(raw) != (size_t)len || !(colon = strchr(raw, ':'))) {
                        *ret_desc = "Malformed Basic credentials";
                        return NULL;
                }
                if (form_unescape(raw, (size_t)(colon - raw), &id) < 0 ||
                    form_unescape(colon + 1, strlen(colon + 1), &secret) < 0) {
                        *ret_desc = "Malformed Basic credentials";
                        return NULL;
                }
                cl = client_by_id(id);
                if (!cl || !lk_secret_equal(cl->secret, secret) || !cl->basic ||
                    (body_id && !streq(body_id, id))) {
                        *ret_desc = "Client authentication failed";
                        return NULL;
                }
                *ret_basic = true;
                return cl;
        }
        if (!body_id || !body_secret) {
                *ret_desc = "Client authentication missing";
                return NULL;
        }
        cl = client_by_id(body_id);
        if (!cl || !lk_secret_equal(cl->secret, body_secret) || cl->basic) {
                *ret_desc = "Client authentication failed";
                return NULL;
        }
        *ret_basic = false;
        return cl;
}

/* refuse_code / refuse_refresh: the status, with the error body or an empty one. */
static enum MHD_Result reply_refusal(struct MHD_Connection *c, const char *method,
                                     const char *url, const struct switches *sw,
                                     const struct refusal *rf)
{
        const char *const headers[] = { "Cache-Control", "no-store",
                                        sw->retry_after[0] ? "Retry-After" : NULL,
                                        sw->retry_after, NULL };

        if (!rf->error[0])
                return reply_raw(c, method, url, (unsigned)rf->status, NULL, xstrdup(""), 0,
                                 headers);
        return reply_json(c, method, url, (unsigned)rf->status,
                          json_pack("{s:s, s:s}", "error", rf->error, "error_description",
                                    "The test IdP was told to refuse"),
                          headers);
}

/* OneAccess describes every refused grant alike, refresh tokens included (RenewOIDCToken). */
static const char *grant_refused(const struct switches *sw, const char *desc)
{
        return sw->oneaccess ? "Invalid authorization code" : desc;
}

static void sleep_ms(long ms)
{
        while (ms > 0 && !atomic_load(&idp.stopping)) {
                long step = ms < 10 ? ms : 10;
                struct timespec ts = { .tv_sec = 0, .tv_nsec = step * 1000000L };
                nanosleep(&ts, NULL);
                ms -= step;
        }
}

/*
 * A refresh asking for a narrower token: its scope (NULL: the grant's) and its audience, sent
 * as resource (RFC 8707) or audience. The access token then ends in ".", and the base64url of
 * {"scope": ..., "resource" or "audience": ...}, so that tests can read what it is for.
 */
struct narrow {
        const char *scope;
        const char *param; /* "resource", "audience" or NULL */
        const char *value;
};

static void mark_token(struct token *at, const struct narrow *n)
{
        json_t *o = json_object();
        _cleanup_free_ char *text = NULL, *b64 = NULL;
        char *v;

        if (!o)
                abort();
        if (n->scope)
                json_object_set_new(o, "scope", json_string(n->scope));
        if (n->param)
                json_object_set_new(o, n->param, json_string(n->value));
        text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(o);
        if (!text || !(b64 = lk_b64url_encode((const unsigned char *)text, strlen(text))))
                abort();
        v = xasprintf("%s.%s", at->value, b64);
        lk_secret_free(at->value);
        at->value = v;
}

/* true when every space-separated word of want is one of have's. */
static bool scope_within(const char *want, const char *have)
{
        for (const char *p = want; *p;) {
                size_t l = strcspn(p, " ");
                bool found = false;

                for (const char *q = have; *q && l;) {
                        size_t m = strcspn(q, " ");

                        found |= m == l && strncmp(p, q, l) == 0;
                        q += m;
                        q += strspn(q, " ");
                }
                if (l && !found)
                        return false;
                p += l;
                p += strspn(p, " ");
        }
        return true;
}

/* Builds the token response for a grant, with the lock held; n NULL but for a narrower one. */
static json_t *token_response(const struct client *cl, const char *user, const char *nonce,
                              const char *scope, long grant, const struct narrow *n)
{
        const struct switches *sw = &idp.sw;
        time_t now = time(NULL);
        struct token *at, *rt = NULL;
        _cleanup_free_ char *id_token = NULL;
        const char *at_scope = n && n->scope ? n->scope : scope;
        json_t *resp;

        at = add_token(false, cl, user, at_scope, grant, now + sw->expires_in);
        if (n)
                mark_token(at, n);
        if (!sw->omit_refresh_token)
                rt = add_token(true, cl, user, scope, grant, 0);
        if (!sw->omit_id_token) {
                id_token = make_id_token(cl, user, nonce, at->value);
                if (!id_token)
                        return NULL;
        }
        resp = json_pack("{s:s, s:s, s:s}", "access_token", at->value, "token_type", "Bearer",
                         "scope", n && !sw->widen_scope ? at_scope : scope);
        if (sw->expires_in_string)
                json_object_set_new(resp, "expires_in", json_sprintf("%ld", sw->expires_in));
        else
                json_object_set_new(resp, "expires_in", json_integer(sw->expires_in));
        if (rt)
                json_object_set_new(resp, "refresh_token", json_string(rt->value));
        if (id_token)
                json_object_set_new(resp, "id_token", json_string(id_token));
        return resp;
}

static enum MHD_Result token_endpoint(struct MHD_Connection *c, const char *method,
                                      const char *url, const struct form *f)
{
        static const char *const no_store[] = { "Cache-Control", "no-store", "Pragma", "no-cache",
                                                NULL };
        const char *grant_type = form_get(f, "grant_type");
        const struct client *cl;
        const char *desc = NULL;
        struct switches sw;
        bool basic = false;
        json_t *resp = NULL;

        pthread_mutex_lock(&idp.lock);
        if (grant_type && streq(grant_type, "authorization_code"))
                idp.st.token_code++;
        else if (grant_type && streq(grant_type, "refresh_token"))
                idp.st.token_refresh++;
        else if (grant_type && streq(grant_type, DEVICE_GRANT))
                idp.st.token_device++;
        sw = idp.sw;
        pthread_mutex_unlock(&idp.lock);

        sleep_ms(sw.delay_ms);

        if (sw.fail_status)
                return reply_error(c, method, url, (unsigned)sw.fail_status,
                                   sw.fail_status == 503 ? "temporarily_unavailable"
                                                         : "server_error",
                                   "The test IdP was told to fail");
        if (sw.close_after_headers)
                return reply_cut_short(c, method, url);
        if (sw.token_redirect) {
                _cleanup_free_ char *to = NULL;
                pthread_mutex_lock(&idp.lock);
                to = xasprintf("%s/token-moved", idp.issuer);
                pthread_mutex_unlock(&idp.lock);
                const char *const location[] = { "Location", to, NULL };
                return reply_raw(c, method, url, 302, "text/html", xstrdup(""), 0, location);
        }
        if (sw.wrong_content_type[0]) {
                static const char page[] = "<!DOCTYPE html>\n<html><body><form method=\"post\">"
                                           "Please sign in to the proxy</form></body></html>\n";
                return reply_raw(c, method, url, 200, sw.wrong_content_type, xstrdup(page),
                                 strlen(page), no_store);
        }
        if (sw.malformed_json) {
                char *s = xstrdup("{\"access_token\": \"abc\", \"token_type\": Bearer, ");
                return reply_raw(c, method, url, 200, "application/json", s, strlen(s), no_store);
        }
        if (sw.oversized_body) {
                static const char head[] = "{\"padding\":\"";
                char *s = malloc(OVERSIZED_BODY + 1);
                if (!s)
                        abort();
                memset(s, 'a', OVERSIZED_BODY);
                memcpy(s, head, strlen(head));
                memcpy(s + OVERSIZED_BODY - 2, "\"}", 2);
                s[OVERSIZED_BODY] = 0;
                return reply_raw(c, method, url, 200, "application/json", s, OVERSIZED_BODY,
                                 no_store);
        }

        cl = authenticate_client(c, f, &basic, &desc);
        if (!cl)
                return reply_error(c, method, url, 401, "invalid_client", desc);
        pthread_mutex_lock(&idp.lock);
        if (basic)
                idp.st.token_auth_basic++;
        else
                idp.st.token_auth_post++;
        pthread_mutex_unlock(&idp.lock);

        if (!grant_type)
                return reply_error(c, method, url, 400, "invalid_request", "grant_type missing");

        if (streq(grant_type, "authorization_code")) {
                const char *code = form_get(f, "code");
                const char *redirect_uri = form_get(f, "redirect_uri");
                const char *verifier = form_get(f, "code_verifier");
                struct code *k = NULL;
                _cleanup_free_ char *computed = NULL;
                bool pkce_ok;

                if (sw.code_invalid_grant)
                        return reply_error(c, method, url, 400, "invalid_grant",
                                           "Invalid authorization code");
                if (sw.refuse_code.status)
                        return reply_refusal(c, method, url, &sw, &sw.refuse_code);
                if (!code)
                        return reply_error(c, method, url, 400, "invalid_request", "code missing");
                if (verifier && lk_sha256_b64url(verifier, &computed) < 0)
                        abort();

                pthread_mutex_lock(&idp.lock);
                for (k = idp.codes; k; k = k->next)
                        if (lk_secret_equal(k->value, code))
                                break;
                if (!k || !streq(k->client_id, cl->id) || k->expires < time(NULL)) {
                        pthread_mutex_unlock(&idp.lock);
                        return reply_error(c, method, url, 400, "invalid_grant",
                                           "Invalid authorization code");
                }
                if (k->used) {
                        /* A replayed code: refuse it and revoke what it gave (RFC 6749 §4.1.2). */
                        if (k->grant)
                                revoke_grant(k->grant);
                        pthread_mutex_unlock(&idp.lock);
                        return reply_error(c, method, url, 400, "invalid_grant",
                                           "Invalid authorization code");
                }
                /* Any attempt uses the code up, even one with the wrong verifier. */
                k->used = true;
                if (!redirect_uri || !streq(redirect_uri, k->redirect_uri)) {
                        pthread_mutex_unlock(&idp.lock);
                        return reply_error(c, method, url, 400, "invalid_grant",
                                           grant_refused(&sw, "redirect_uri does not match"));
                }
                if (k->challenge)
                        pkce_ok = computed && lk_secret_equal(computed, k->challenge);
                else
                        pkce_ok = !verifier;
                if (!pkce_ok) {
                        pthread_mutex_unlock(&idp.lock);
                        return reply_error(c, method, url, 400, "invalid_grant",
                                           grant_refused(&sw, "PKCE verification failed"));
                }
                k->grant = ++idp.next_grant;
                resp = token_response(cl, k->user, k->nonce, k->scope, k->grant, NULL);
                pthread_mutex_unlock(&idp.lock);
        } else if (streq(grant_type, "refresh_token")) {
                const char *value = form_get(f, "refresh_token");
                struct narrow n = { .scope = form_get(f, "scope") };
                struct token *t;

                if (sw.refresh_invalid_grant)
                        return reply_error(c, method, url, 400, "invalid_grant",
                                           grant_refused(&sw, "Invalid refresh token"));
                if (sw.refuse_refresh.status)
                        return reply_refusal(c, method, url, &sw, &sw.refuse_refresh);
                if (!value)
                        return reply_error(c, method, url, 400, "invalid_request",
                                           "refresh_token missing");
                pthread_mutex_lock(&idp.lock);
                t = find_token(value);
                if (!t || !t->refresh || !t->valid || !streq(t->client_id, cl->id)) {
                        pthread_mutex_unlock(&idp.lock);
                        return reply_error(c, method, url, 400, "invalid_grant",
                                           grant_refused(&sw, "Invalid refresh token"));
                }
                /* RFC 6749 §6: a narrower scope only; RFC 8707 resource, or audience. */
                if (n.scope && !scope_within(n.scope, t->scope)) {
                        pthread_mutex_unlock(&idp.lock);
                        return reply_error(c, method, url, 400, "invalid_scope",
                                           "The scope asked for exceeds the grant");
                }
                if (form_get(f, "resource")) {
                        n.param = "resource";
                        n.value = form_get(f, "resource");
                } else if (form_get(f, "audience")) {
                        n.param = "audience";
                        n.value = form_get(f, "audience");
                }
                /* Rotation: the old refresh token is spent. */
                t->valid = false;
                /* A refreshed id_token carries no nonce (OIDC Core §12.2 leaves it out). */
                resp = token_response(cl, t->user, NULL, t->scope, t->grant,
                                      n.scope || n.param ? &n : NULL);
                pthread_mutex_unlock(&idp.lock);
        } else if (streq(grant_type, DEVICE_GRANT)) {
                const char *value = form_get(f, "device_code");
                struct device *d;

                if (sw.device_answer[0])
                        return reply_error(c, method, url, 400, sw.device_answer,
                                           "The test IdP was told to answer so");
                if (!value)
                        return reply_error(c, method, url, 400, "invalid_request",
                                           "device_code missing");
                pthread_mutex_lock(&idp.lock);
                for (d = idp.devices; d; d = d->next)
                        if (lk_secret_equal(d->device_code, value))
                                break;
                if (!d || !streq(d->client_id, cl->id) || d->used) {
                        pthread_mutex_unlock(&idp.lock);
                        return reply_error(c, method, url, 400, "invalid_grant",
                                           "Invalid device code");
                }
                if (d->expires < time(NULL)) {
                        pthread_mutex_unlock(&idp.lock);
                        return reply_error(c, method, url, 400, "expired_token",
                                           "The device code has expired");
                }
                if (d->state != DEVICE_APPROVED) {
                        bool denied = d->state == DEVICE_DENIED;

                        pthread_mutex_unlock(&idp.lock);
                        return reply_error(c, method, url, 400,
                                           denied ? "access_denied" : "authorization_pending",
                                           denied ? "The user denied the request"
                                                  : "The user has not signed in yet");
                }
                d->used = true;
                /* RFC 8628 has no nonce. */
                resp = token_response(cl, d->user, NULL, d->scope, ++idp.next_grant, NULL);
                pthread_mutex_unlock(&idp.lock);
        } else {
                return reply_error(c, method, url, 400, "unsupported_grant_type",
                                   "Only authorization_code, refresh_token and device_code");
        }
        if (!resp)
                return reply_error(c, method, url, 500, "server_error", "Signing failed");
        return reply_json(c, method, url, 200, resp, no_store);
}

/* RFC 8628 §3.1-3.2: a device code and a user code for an authenticated client. */
static enum MHD_Result device_authorization_endpoint(struct MHD_Connection *c,
                                                     const char *method, const char *url,
                                                     const struct form *f)
{
        static const char *const no_store[] = { "Cache-Control", "no-store", NULL };
        static const char letters[] = "BCDFGHJKLMNPQRSTVWXZ";
        const char *scope = form_get(f, "scope");
        const struct client *cl;
        const char *desc = NULL;
        bool basic = false;
        unsigned char rnd[8];
        char user_code[10];
        struct device *d;
        json_t *j;

        cl = authenticate_client(c, f, &basic, &desc);
        if (!cl)
                return reply_error(c, method, url, 401, "invalid_client", desc);
        if (RAND_bytes(rnd, sizeof(rnd)) != 1)
                abort();
        for (size_t i = 0, o = 0; i < sizeof(rnd); i++) {
                if (i == 4)
                        user_code[o++] = '-';
                user_code[o++] = letters[rnd[i] % (sizeof(letters) - 1)];
        }
        user_code[9] = 0;

        d = calloc(1, sizeof(*d));
        if (!d)
                abort();
        d->device_code = random_token();
        d->user_code = xstrdup(user_code);
        d->client_id = xstrdup(cl->id);
        d->scope = xstrdup(scope ? scope : "openid");

        pthread_mutex_lock(&idp.lock);
        idp.st.device_authorize++;
        d->expires = time(NULL) + idp.sw.device_expires_in;
        d->next = idp.devices;
        idp.devices = d;
        j = json_pack("{s:s, s:s, s:s+, s:I, s:I}", "device_code", d->device_code, "user_code",
                      d->user_code, "verification_uri", idp.issuer, "/device", "expires_in",
                      (json_int_t)idp.sw.device_expires_in, "interval",
                      (json_int_t)idp.sw.device_interval);
        if (!idp.sw.device_no_complete)
                json_object_set_new(j, "verification_uri_complete",
                                    json_sprintf("%s/device?user_code=%s", idp.issuer,
                                                 d->user_code));
        pthread_mutex_unlock(&idp.lock);
        return reply_json(c, method, url, 200, j, no_store);
}

/*
 * The person's side of RFC 8628 §3.3: GET /device?user_code=X shows a form; with username=U
 * it approves the code for U (deny=1: refuses it).
 */
static enum MHD_Result device_page(struct MHD_Connection *c, const char *method, const char *url,
                                   const struct form *f)
{
        const char *user_code = form_get(f, "user_code");
        const char *user = form_get(f, "username");
        const char *deny = form_get(f, "deny");
        static const char form_page[] =
                "<!DOCTYPE html>\n<html><body><form method=\"post\"><input name=\"user_code\">"
                "<input name=\"username\"><input type=\"submit\"></form></body></html>\n";
        struct device *d;
        bool denied;

        if (!user_code || !user)
                return reply_raw(c, method, url, 200, "text/html; charset=utf-8",
                                 xstrdup(form_page), strlen(form_page), NULL);
        if (!user_name_valid(user))
                return reply_text(c, method, url, 400, "bad user name\n");
        pthread_mutex_lock(&idp.lock);
        for (d = idp.devices; d; d = d->next)
                if (streq(d->user_code, user_code))
                        break;
        if (!d || d->state != DEVICE_PENDING || d->expires < time(NULL)) {
                pthread_mutex_unlock(&idp.lock);
                return reply_text(c, method, url, 400, "unknown or used user code\n");
        }
        denied = deny && streq(deny, "1");
        d->state = denied ? DEVICE_DENIED : DEVICE_APPROVED;
        free(d->user);
        d->user = xstrdup(user);
        pthread_mutex_unlock(&idp.lock);
        return reply_text(c, method, url, 200,
                          denied ? "refused\n" : "signed in; go back to your device\n");
}

static enum MHD_Result revoke_endpoint(struct MHD_Connection *c, const char *method,
                                       const char *url, const struct form *f)
{
        const char *value = form_get(f, "token");
        const struct client *cl;
        const char *desc = NULL;
        bool basic;
        struct token *t;

        pthread_mutex_lock(&idp.lock);
        idp.st.revoke++;
        pthread_mutex_unlock(&idp.lock);

        cl = authenticate_client(c, f, &basic, &desc);
        if (!cl)
                return reply_error(c, method, url, 401, "invalid_client", desc);
        if (!value)
                return reply_error(c, method, url, 400, "invalid_request", "token missing");

        pthread_mutex_lock(&idp.lock);
        t = find_token(value);
        /* RFC 7009 §2.2: unknown tokens and other clients' tokens answer 200 too. */
        if (t && streq(t->client_id, cl->id)) {
                if (t->refresh)
                        revoke_grant(t->grant);
                else
                        t->valid = false;
        }
        pthread_mutex_unlock(&idp.lock);
        return reply_raw(c, method, url, 200, NULL, xstrdup(""), 0, NULL);
}

static enum MHD_Result userinfo_endpoint(struct MHD_Connection *c, const char *method,
                                         const char *url)
{
        static const char *const challenge[] = { "WWW-Authenticate",
                                                 "Bearer error=\"invalid_token\"", NULL };
        const char *authz = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        _cleanup_free_ char *user = NULL, *sub = NULL, *name = NULL, *email = NULL;
        struct token *t = NULL;
        bool oneaccess;

        pthread_mutex_lock(&idp.lock);
        idp.st.userinfo++;
        oneaccess = idp.sw.oneaccess;
        if (authz && strncasecmp(authz, "Bearer ", 7) == 0)
                t = find_token(authz + 7);
        if (t && !t->refresh && t->valid && t->expires > time(NULL))
                user = xstrdup(t->user);
        pthread_mutex_unlock(&idp.lock);

        if (!user && oneaccess)
                return reply_json(c, method, url, 401,
                                  json_pack("{s:s, s:s}", "error", "unauthorized",
                                            "error_description",
                                            "Full authentication is required to access this "
                                            "resource"),
                                  challenge);
        if (!user)
                return reply_json(c, method, url, 401,
                                  json_pack("{s:s, s:s}", "error", "invalid_token",
                                            "error_description", "Invalid access token"),
                                  challenge);
        sub = subject_for(user);
        name = xasprintf("Test User %s", user);
        email = xasprintf("%s@example.com", user);
        if (oneaccess) /* ShowUser_0: id, userName, name, email; no sub */
                return reply_json(c, method, url, 200,
                                  json_pack("{s:s, s:s, s:s, s:s}", "id", sub, "name", name,
                                            "userName", user, "email", email),
                                  NULL);
        return reply_json(c, method, url, 200,
                          json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", sub, "sub", sub, "userName",
                                    user, "name", name, "email", email),
                          NULL);
}

static enum MHD_Result discovery_endpoint(struct MHD_Connection *c, const char *method,
                                          const char *url)
{
        _cleanup_free_ char *iss = NULL;
        json_t *j;
        bool wrong, iss_parameter, device_discovery;

        pthread_mutex_lock(&idp.lock);
        idp.st.discovery++;
        device_discovery = idp.sw.device_discovery;
        wrong = idp.sw.discovery_wrong_issuer;
        iss_parameter = idp.sw.iss_parameter;
        pthread_mutex_unlock(&idp.lock);

        iss = wrong ? xasprintf("%s/wrong", idp.issuer) : xstrdup(idp.issuer);
        j = json_pack("{s:s, s:s+, s:s+, s:s+, s:s+, s:s+,"
                      " s:[s], s:[s], s:[s,s,s,s], s:[s,s,s,s], s:[s,s], s:[s], s:[s,s]}",
                      "issuer", iss,
                      "authorization_endpoint", idp.issuer, "/authorize",
                      "token_endpoint", idp.issuer, "/token",
                      "userinfo_endpoint", idp.issuer, "/userinfo",
                      "jwks_uri", idp.issuer, "/jwks",
                      "revocation_endpoint", idp.issuer, "/revoke",
                      "response_types_supported", "code",
                      "subject_types_supported", "public",
                      "id_token_signing_alg_values_supported", "RS256", "RS512", "ES256", "HS256",
                      "scopes_supported", "openid", "profile", "email", "offline_access",
                      "token_endpoint_auth_methods_supported", "client_secret_post",
                      "client_secret_basic",
                      "code_challenge_methods_supported", "S256",
                      "grant_types_supported", "authorization_code", "refresh_token");
        if (iss_parameter)
                json_object_set_new(j, "authorization_response_iss_parameter_supported",
                                    json_true());
        if (device_discovery)
                json_object_set_new(j, "device_authorization_endpoint",
                                    json_sprintf("%s/device_authorization", idp.issuer));
        return reply_json(c, method, url, 200, j, NULL);
}

static enum MHD_Result jwks_endpoint(struct MHD_Connection *c, const char *method, const char *url)
{
        _cleanup_free_ char *cc = NULL;
        json_t *j;

        pthread_mutex_lock(&idp.lock);
        idp.st.jwks++;
        j = jwks_json();
        cc = xasprintf("public, max-age=%ld", idp.sw.jwks_max_age);
        pthread_mutex_unlock(&idp.lock);
        {
                const char *const headers[] = { "Cache-Control", cc, NULL };
                return reply_json(c, method, url, 200, j, headers);
        }
}

/* ---- control API -------------------------------------------------------- */

static int parse_bool(const char *v, bool *ret)
{
        if (!v || streq(v, "") || streq(v, "0") || strcasecmp(v, "false") == 0 ||
            strcasecmp(v, "no") == 0 || strcasecmp(v, "off") == 0) {
                *ret = false;
                return 0;
        }
        if (streq(v, "1") || strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0 ||
            strcasecmp(v, "on") == 0) {
                *ret = true;
                return 0;
        }
        return -LK_ERR_INVALID_ARGUMENT;
}

static int parse_long(const char *v, long min, long max, long *ret)
{
        char *end;
        long n;

        if (isempty(v))
                return -LK_ERR_INVALID_ARGUMENT;
        errno = 0;
        n = strtol(v, &end, 10);
        if (errno != 0 || *end || n < min || n > max)
                return -LK_ERR_INVALID_ARGUMENT;
        *ret = n;
        return 0;
}

#define BOOL_SWITCH(n) { #n, offsetof(struct switches, n) }
static const struct {
        const char *name;
        size_t offset;
} bool_switches[] = {
        BOOL_SWITCH(malformed_json),     BOOL_SWITCH(oversized_body),
        BOOL_SWITCH(expires_in_string),  BOOL_SWITCH(omit_nonce),
        BOOL_SWITCH(omit_refresh_token), BOOL_SWITCH(omit_id_token),
        BOOL_SWITCH(refresh_invalid_grant), BOOL_SWITCH(code_invalid_grant),
        BOOL_SWITCH(wrong_iss),          BOOL_SWITCH(wrong_aud),
        BOOL_SWITCH(no_sub),             BOOL_SWITCH(expired),
        BOOL_SWITCH(iat_future),         BOOL_SWITCH(nbf_future),
        BOOL_SWITCH(wrong_nonce),        BOOL_SWITCH(alg_none),
        BOOL_SWITCH(bad_signature),      BOOL_SWITCH(hs256_with_rsa_pem),
        BOOL_SWITCH(extra_aud_no_azp),   BOOL_SWITCH(omit_kid),
        BOOL_SWITCH(error_on_authorize), BOOL_SWITCH(discovery_wrong_issuer),
        BOOL_SWITCH(close_after_headers), BOOL_SWITCH(token_redirect),
        BOOL_SWITCH(iss_parameter),      BOOL_SWITCH(follow_redirect),
        BOOL_SWITCH(widen_scope),
        BOOL_SWITCH(device_discovery),   BOOL_SWITCH(device_no_complete),
};

/* "STATUS" or "STATUS:ERROR", STATUS 400..499; "" or "0" = off. */
static bool parse_refusal(const char *v, struct refusal *ret)
{
        const char *colon = v ? strchr(v, ':') : NULL;
        char num[8];
        long n;

        if (isempty(v) || streq(v, "0")) {
                *ret = (struct refusal){0};
                return true;
        }
        if ((colon ? (size_t)(colon - v) : strlen(v)) >= sizeof(num))
                return false;
        snprintf(num, sizeof(num), "%.*s", colon ? (int)(colon - v) : (int)strlen(v), v);
        if (parse_long(num, 400, 499, &n) < 0 || (colon && strlen(colon + 1) >= sizeof(ret->error)))
                return false;
        ret->status = n;
        snprintf(ret->error, sizeof(ret->error), "%s", colon ? colon + 1 : "");
        return true;
}

/* Applies one switch; called with the lock held. Returns false for an unknown name or bad value. */
static bool apply_switch(const char *name, const char *value)
{
        struct switches *sw = &idp.sw;
        bool b;

        for (size_t i = 0; i < ELEMENTSOF(bool_switches); i++)
                if (streq(name, bool_switches[i].name)) {
                        if (parse_bool(value, &b) < 0)
                                return false;
                        *(bool *)((char *)sw + bool_switches[i].offset) = b;
                        return true;
                }
        if (streq(name, "delay_ms"))
                return parse_long(value, 0, DELAY_MS_MAX, &sw->delay_ms) == 0;
        if (streq(name, "fail_status")) {
                long n;
                if (parse_long(value, 0, 599, &n) < 0 || (n != 0 && n < 400))
                        return false;
                sw->fail_status = n;
                return true;
        }
        if (streq(name, "expires_in"))
                return parse_long(value, -86400, 100000000, &sw->expires_in) == 0;
        if (streq(name, "device_interval"))
                return parse_long(value, 0, 3600, &sw->device_interval) == 0;
        if (streq(name, "device_expires_in"))
                return parse_long(value, -3600, 86400, &sw->device_expires_in) == 0;
        if (streq(name, "device_answer")) {
                if (value && strlen(value) >= sizeof(sw->device_answer))
                        return false;
                snprintf(sw->device_answer, sizeof(sw->device_answer), "%s", value ? value : "");
                return true;
        }
        if (streq(name, "jwks_max_age"))
                return parse_long(value, 0, 100000000, &sw->jwks_max_age) == 0;
        if (streq(name, "alg")) {
                for (size_t i = 0; i < ELEMENTSOF(alg_names); i++)
                        if (value && streq(value, alg_names[i])) {
                                sw->alg = (enum id_alg)i;
                                return true;
                        }
                return false;
        }
        if (streq(name, "id_token_user")) {
                if (value && strlen(value) > USER_MAX)
                        return false;
                snprintf(sw->id_token_user, sizeof(sw->id_token_user), "%s", value ? value : "");
                return true;
        }
        if (streq(name, "sub")) {
                if (value && strlen(value) > USER_MAX)
                        return false;
                snprintf(sw->sub, sizeof(sw->sub), "%s", value ? value : "");
                return true;
        }
        if (streq(name, "wrong_content_type")) {
                if (value && strlen(value) >= sizeof(sw->wrong_content_type))
                        return false;
                snprintf(sw->wrong_content_type, sizeof(sw->wrong_content_type), "%s",
                         value ? value : "");
                return true;
        }
        if (streq(name, "refuse_code"))
                return parse_refusal(value, &sw->refuse_code);
        if (streq(name, "refuse_refresh"))
                return parse_refusal(value, &sw->refuse_refresh);
        if (streq(name, "retry_after")) {
                if (value && strlen(value) >= sizeof(sw->retry_after))
                        return false;
                snprintf(sw->retry_after, sizeof(sw->retry_after), "%s", value ? value : "");
                return true;
        }
        if (streq(name, "groups")) {
                if (value && strlen(value) >= sizeof(sw->groups))
                        return false;
                snprintf(sw->groups, sizeof(sw->groups), "%s", value ? value : "");
                return true;
        }
        if (streq(name, "oneaccess")) {
                /* A preset: later switches (also in the same request) may change each part. */
                if (parse_bool(value, &b) < 0)
                        return false;
                sw->oneaccess = b;
                sw->expires_in_string = b;
                sw->omit_refresh_token = b;
                sw->omit_nonce = b;
                sw->alg = b ? ALG_RS512 : ALG_RS256;
                return true;
        }
        if (streq(name, "rotate_keys")) {
                if (parse_bool(value, &b) < 0)
                        return false;
                if (b)
                        new_rsa_key();
                return true;
        }
        if (streq(name, "reset")) {
                switches_default(sw);
                idp.st = (struct stats){ 0 };
                return true;
        }
        return false;
}

static json_t *switches_json(void)
{
        const struct switches *sw = &idp.sw;
        json_t *j = json_object();

        for (size_t i = 0; i < ELEMENTSOF(bool_switches); i++)
                json_object_set_new(j, bool_switches[i].name,
                                    json_boolean(*(const bool *)((const char *)sw +
                                                                 bool_switches[i].offset)));
        json_object_set_new(j, "oneaccess", json_boolean(sw->oneaccess));
        json_object_set_new(j, "delay_ms", json_integer(sw->delay_ms));
        json_object_set_new(j, "fail_status", json_integer(sw->fail_status));
        json_object_set_new(j, "expires_in", json_integer(sw->expires_in));
        json_object_set_new(j, "jwks_max_age", json_integer(sw->jwks_max_age));
        json_object_set_new(j, "alg", json_string(alg_names[sw->alg]));
        json_object_set_new(j, "id_token_user", json_string(sw->id_token_user));
        json_object_set_new(j, "sub", json_string(sw->sub));
        json_object_set_new(j, "groups", json_string(sw->groups));
        json_object_set_new(j, "refuse_code",
                            json_sprintf("%ld:%s", sw->refuse_code.status, sw->refuse_code.error));
        json_object_set_new(j, "refuse_refresh", json_sprintf("%ld:%s", sw->refuse_refresh.status,
                                                              sw->refuse_refresh.error));
        json_object_set_new(j, "retry_after", json_string(sw->retry_after));
        json_object_set_new(j, "device_interval", json_integer(sw->device_interval));
        json_object_set_new(j, "device_expires_in", json_integer(sw->device_expires_in));
        json_object_set_new(j, "device_answer", json_string(sw->device_answer));
        json_object_set_new(j, "wrong_content_type", json_string(sw->wrong_content_type));
        json_object_set_new(j, "rsa_kid", json_string(idp.rsa_kid));
        return j;
}

static enum MHD_Result control_endpoint(struct MHD_Connection *c, const char *method,
                                        const char *url, const struct form *f)
{
        json_t *j;

        if (streq(url, "/control/stats")) {
                const struct stats *st = &idp.st;
                pthread_mutex_lock(&idp.lock);
                j = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
                              "authorize", (json_int_t)st->authorize,
                              "token_code", (json_int_t)st->token_code,
                              "token_refresh", (json_int_t)st->token_refresh,
                              "token_auth_basic", (json_int_t)st->token_auth_basic,
                              "token_auth_post", (json_int_t)st->token_auth_post,
                              "jwks", (json_int_t)st->jwks,
                              "discovery", (json_int_t)st->discovery,
                              "userinfo", (json_int_t)st->userinfo,
                              "revoke", (json_int_t)st->revoke,
                              "control", (json_int_t)st->control,
                              "device_authorize", (json_int_t)st->device_authorize,
                              "token_device", (json_int_t)st->token_device);
                pthread_mutex_unlock(&idp.lock);
                return reply_json(c, method, url, 200, j, NULL);
        }
        if (streq(url, "/control/devices")) {
                /* The device codes issued (secrets of the tests': test_secrets.c looks for them). */
                j = json_array();
                pthread_mutex_lock(&idp.lock);
                for (const struct device *d = idp.devices; d; d = d->next)
                        json_array_append_new(j, json_pack("{s:s, s:s}", "device_code",
                                                           d->device_code, "user_code",
                                                           d->user_code));
                pthread_mutex_unlock(&idp.lock);
                return reply_json(c, method, url, 200, j, NULL);
        }
        if (!streq(url, "/control"))
                return reply_text(c, method, url, 404, "not found\n");

        pthread_mutex_lock(&idp.lock);
        for (size_t i = 0; i < f->n; i++)
                if (!apply_switch(f->key[i], f->val[i])) {
                        _cleanup_free_ char *msg = NULL;
                        pthread_mutex_unlock(&idp.lock);
                        msg = xasprintf("unknown switch or bad value: %s", f->key[i]);
                        return reply_error(c, method, url, 400, "invalid_request", msg);
                }
        idp.st.control++;
        j = switches_json();
        pthread_mutex_unlock(&idp.lock);
        return reply_json(c, method, url, 200, j, NULL);
}

/* ---- dispatch ----------------------------------------------------------- */

static enum MHD_Result route(struct MHD_Connection *c, const char *url, const char *method,
                             struct request *r)
{
        struct form f = { 0 };
        enum MHD_Result ret;
        bool get = streq(method, "GET"), post = streq(method, "POST");

        if (r->too_big)
                return reply_text(c, method, url, 413, "request body too large\n");
        if (get) {
                if (MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_arg, &f) < 0 ||
                    f.n >= FORM_FIELDS_MAX) {
                        form_clear(&f);
                        return reply_text(c, method, url, 400, "too many parameters\n");
                }
        } else if (post) {
                if (form_parse(&f, r->body ? r->body : "", r->len) < 0) {
                        form_clear(&f);
                        return reply_text(c, method, url, 400, "malformed form body\n");
                }
        } else {
                return reply_text(c, method, url, 405, "method not allowed\n");
        }

        if (streq(url, BASE_PATH "/authorize"))
                ret = authorize_endpoint(c, method, url, &f);
        else if (post && streq(url, BASE_PATH "/token"))
                ret = token_endpoint(c, method, url, &f);
        else if (post && streq(url, BASE_PATH "/device_authorization"))
                ret = device_authorization_endpoint(c, method, url, &f);
        else if (streq(url, BASE_PATH "/device"))
                ret = device_page(c, method, url, &f);
        else if (post && streq(url, BASE_PATH "/revoke"))
                ret = revoke_endpoint(c, method, url, &f);
        else if (streq(url, BASE_PATH "/userinfo"))
                ret = userinfo_endpoint(c, method, url);
        else if (get && streq(url, BASE_PATH "/.well-known/openid-configuration"))
                ret = discovery_endpoint(c, method, url);
        else if (get && streq(url, BASE_PATH "/jwks"))
                ret = jwks_endpoint(c, method, url);
        else if (streq(url, "/control") || streq(url, "/control/stats") ||
                 streq(url, "/control/devices"))
                ret = control_endpoint(c, method, url, &f);
        else
                ret = reply_text(c, method, url, 404, "not found\n");
        form_clear(&f);
        return ret;
}

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *c, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_size, void **con_cls)
{
        struct request *r = *con_cls;

        if (!r) {
                r = calloc(1, sizeof(*r));
                if (!r)
                        return MHD_NO;
                *con_cls = r;
                return MHD_YES;
        }
        if (*upload_size > 0) {
                if (!r->too_big) {
                        if (*upload_size > BODY_MAX - r->len) {
                                r->too_big = true;
                        } else {
                                char *b = realloc(r->body, r->len + *upload_size + 1);
                                if (!b)
                                        return MHD_NO;
                                memcpy(b + r->len, upload_data, *upload_size);
                                r->len += *upload_size;
                                b[r->len] = 0;
                                r->body = b;
                        }
                }
                *upload_size = 0;
                return MHD_YES;
        }
        return route(c, url, method, r);
}

static void request_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                              enum MHD_RequestTerminationCode toe)
{
        struct request *r = *con_cls;

        if (!r)
                return;
        if (r->body)
                explicit_bzero(r->body, r->len);
        free(r->body);
        free(r);
        *con_cls = NULL;
}

/* ---- main --------------------------------------------------------------- */

static void usage(FILE *out)
{
        fputs("usage: latchkey-test-idp --cert FILE --key FILE --client ID:SECRET:AUTH\n"
              "         --redirect-uri URI [--port N] [--port-file FILE] [--host NAME] [--verbose]\n"
              "  --client ID:SECRET:AUTH  AUTH is post or basic; SECRET may be @FILE to read it\n"
              "                           from a file (keeps it out of argv). Repeatable.\n"
              "  --redirect-uri URI       an allowed redirect_uri. Repeatable.\n"
              "  --port N                 port on 127.0.0.1 (0, the default, picks one)\n"
              "  --port-file FILE         written (atomically) with the port once serving\n"
              "  --host NAME              host name in the issuer (default 127.0.0.1)\n"
              "  --verbose                log each request's method, path and status to stderr\n",
              out);
}

static int add_client(const char *spec)
{
        const char *first = strchr(spec, ':'), *last = strrchr(spec, ':');
        struct client *cl;
        _cleanup_free_ char *secret = NULL;

        if (!first || first == last || first == spec || idp.n_clients >= CLIENTS_MAX)
                return -LK_ERR_INVALID_ARGUMENT;
        cl = &idp.clients[idp.n_clients];
        if (!streq(last + 1, "post") && !streq(last + 1, "basic"))
                return -LK_ERR_INVALID_ARGUMENT;
        secret = strndup(first + 1, (size_t)(last - first - 1));
        if (!secret)
                return -LK_ERR_NOMEM;
        if (secret[0] == '@') {
                struct lk_error e = { 0 };
                char *data = NULL;
                size_t len;
                int r = lk_read_file(secret + 1, 4096, &data, &len, &e);
                if (r < 0) {
                        fprintf(stderr, "latchkey-test-idp: %s\n", e.message);
                        return r;
                }
                while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
                        data[--len] = 0;
                cl->secret = data;
        } else {
                cl->secret = TAKE_PTR(secret);
        }
        if (isempty(cl->secret)) {
                free(cl->secret);
                cl->secret = NULL;
                return -LK_ERR_INVALID_ARGUMENT;
        }
        cl->id = strndup(spec, (size_t)(first - spec));
        if (!cl->id)
                abort();
        cl->basic = streq(last + 1, "basic");
        idp.n_clients++;
        return 0;
}

static int write_port_file(const char *path, unsigned port)
{
        struct lk_error e = { 0 };
        char buf[16];
        int n = snprintf(buf, sizeof(buf), "%u\n", port);
        int r = lk_write_file_atomic(path, buf, (size_t)n, 0644, &e);

        if (r < 0)
                fprintf(stderr, "latchkey-test-idp: %s\n", e.message);
        return r;
}

static void cleanup_state(void)
{
        while (idp.codes) {
                struct code *k = idp.codes;
                idp.codes = k->next;
                free_code(k);
        }
        while (idp.devices) {
                struct device *d = idp.devices;
                idp.devices = d->next;
                lk_secret_free(d->device_code);
                free(d->user_code);
                free(d->client_id);
                free(d->scope);
                free(d->user);
                free(d);
        }
        while (idp.tokens) {
                struct token *t = idp.tokens;
                idp.tokens = t->next;
                free_token(t);
        }
        for (size_t i = 0; i < idp.n_clients; i++) {
                free(idp.clients[i].id);
                lk_secret_free(idp.clients[i].secret);
        }
        EVP_PKEY_free(idp.rsa);
        EVP_PKEY_free(idp.ec);
        lk_secret_free(idp.rsa_pem);
        lk_secret_free(idp.ec_pem);
        free(idp.rsa_pub_pem);
        free(idp.issuer);
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "port", required_argument, NULL, 'p' },
                { "port-file", required_argument, NULL, 'f' },
                { "cert", required_argument, NULL, 'c' },
                { "key", required_argument, NULL, 'k' },
                { "client", required_argument, NULL, 'C' },
                { "redirect-uri", required_argument, NULL, 'r' },
                { "host", required_argument, NULL, 'H' },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        const char *cert_path = NULL, *key_path = NULL, *port_file = NULL;
        _cleanup_free_ char *cert = NULL;
        _cleanup_secret_ char *key = NULL;
        struct lk_error e = { 0 };
        long port = 0;
        size_t len;
        struct sockaddr_in sa = { .sin_family = AF_INET };
        struct MHD_Daemon *d;
        const union MHD_DaemonInfo *info;
        sigset_t mask;
        int sig, c, r = 1;

        curl_global_init(CURL_GLOBAL_DEFAULT);
        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
                switch (c) {
                case 'p':
                        if (parse_long(optarg, 0, 65535, &port) < 0) {
                                fprintf(stderr, "latchkey-test-idp: bad --port '%s'\n", optarg);
                                return 2;
                        }
                        break;
                case 'f': port_file = optarg; break;
                case 'c': cert_path = idp.cert_path = optarg; break;
                case 'k': key_path = optarg; break;
                case 'C':
                        if (add_client(optarg) < 0) {
                                fprintf(stderr, "latchkey-test-idp: bad --client (want ID:SECRET:post|basic)\n");
                                return 2;
                        }
                        break;
                case 'r':
                        if (idp.n_redirect_uris >= REDIRECT_URIS_MAX) {
                                fprintf(stderr, "latchkey-test-idp: too many --redirect-uri\n");
                                return 2;
                        }
                        idp.redirect_uris[idp.n_redirect_uris++] = optarg;
                        break;
                case 'H': idp.host = optarg; break;
                case 'v': idp.verbose = true; break;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        if (optind != argc || !cert_path || !key_path || idp.n_clients == 0 ||
            idp.n_redirect_uris == 0) {
                usage(stderr);
                cleanup_state();
                return 2;
        }
        if (lk_read_file(cert_path, PEM_FILE_MAX, &cert, &len, &e) < 0 ||
            lk_read_file(key_path, PEM_FILE_MAX, &key, &len, &e) < 0) {
                fprintf(stderr, "latchkey-test-idp: %s\n", e.message);
                cleanup_state();
                return 1;
        }

        switches_default(&idp.sw);
        new_rsa_key();
        new_ec_key();

        /* Every thread MHD starts inherits this mask, so only sigwait() sees the signals. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        pthread_sigmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        sa.sin_port = htons((uint16_t)port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        /*
         * Connections: the broker opens at most 128 to one host (oidc/http.c), and the
         * benchmark adds its own browsers and direct token requests beside them, so 128 here
         * refused logins. 512 threads at most; poll(), not select(), so descriptors past
         * FD_SETSIZE are no limit.
         */
        d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                                     MHD_USE_POLL | MHD_USE_TLS |
                                     (idp.verbose ? MHD_USE_ERROR_LOG : 0),
                             0, NULL, NULL, access_handler, NULL,
                             MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                             MHD_OPTION_HTTPS_MEM_CERT, cert,
                             MHD_OPTION_HTTPS_MEM_KEY, key,
                             MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
                             MHD_OPTION_CONNECTION_LIMIT, (unsigned)512,
                             MHD_OPTION_NOTIFY_COMPLETED, request_completed, NULL,
                             MHD_OPTION_END);
        if (!d) {
                fprintf(stderr, "latchkey-test-idp: cannot start the HTTPS server on 127.0.0.1:%ld\n",
                        port);
                cleanup_state();
                return 1;
        }
        info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
        if (!info || info->port == 0) {
                fprintf(stderr, "latchkey-test-idp: cannot learn the port\n");
                goto out;
        }
        pthread_mutex_lock(&idp.lock);
        idp.issuer = xasprintf("https://%s:%u" BASE_PATH, idp.host, (unsigned)info->port);
        pthread_mutex_unlock(&idp.lock);
        if (port_file && write_port_file(port_file, info->port) < 0)
                goto out;
        if (idp.verbose)
                fprintf(stderr, "latchkey-test-idp: serving %s\n", idp.issuer);

        for (;;) {
                if (sigwait(&mask, &sig) == 0 && (sig == SIGTERM || sig == SIGINT))
                        break;
        }
        r = 0;
out:
        atomic_store(&idp.stopping, true);
        MHD_stop_daemon(d);
        cleanup_state();
        return r;
}
