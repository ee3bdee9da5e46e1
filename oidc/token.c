/* SPDX-License-Identifier: MIT */
#include "oidc/token.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/text.h"
#include "oidc/authorize.h"

/* expires_in above this is nonsense (or a unit mix-up); below 1 is useless. */
#define EXPIRES_IN_MAX ((int64_t)10 * 365 * 24 * 3600)

/* ---- request bodies ---- */

void lk_token_request_clear(struct lk_token_request *r)
{
        if (!r)
                return;
        free(r->url);
        lk_secret_free(r->form);
        lk_secret_free(r->basic_user);
        lk_secret_free(r->basic_password);
        *r = (struct lk_token_request){0};
}

static void token_request_clearp(struct lk_token_request *r)
{
        lk_token_request_clear(r);
}

/* A form body under construction; it holds secrets, so growing it wipes the old buffer. */
struct form {
        char *buf;
        size_t len;
        size_t cap;
};

static void form_clear(struct form *f)
{
        if (f->buf) {
                explicit_bzero(f->buf, f->cap);
                free(f->buf);
        }
        *f = (struct form){0};
}

/*
 * application/x-www-form-urlencoded, as RFC 6749 Appendix B spells it: every
 * octet but ALPHA / DIGIT / "-" / "." / "_" / "~" percent-encoded, a space as
 * '+'. curl_easy_escape() does all of it but the space, which it writes
 * "%20"; every '%' in its output starts a triple, so turning "%20" into '+'
 * cannot touch anything else.
 */
static char *form_escape(const char *value)
{
        char *esc, *out;
        size_t i = 0, o = 0;

        esc = curl_easy_escape(NULL, value, 0);
        if (!esc)
                return NULL;
        out = malloc(strlen(esc) + 1);
        if (out) {
                while (esc[i]) {
                        if (esc[i] == '%' && esc[i + 1] == '2' && esc[i + 2] == '0') {
                                out[o++] = '+';
                                i += 3;
                        } else {
                                out[o++] = esc[i++];
                        }
                }
                out[o] = 0;
        }
        explicit_bzero(esc, strlen(esc));
        curl_free(esc);
        return out;
}

/* Appends "name=value" (value form-encoded; name is one of ours and needs none). */
static int form_add(struct form *f, const char *name, const char *value, struct lk_error *e)
{
        _cleanup_secret_ char *esc = NULL;
        size_t ln, lv, need;

        esc = form_escape(value);
        if (!esc)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        ln = strlen(name);
        lv = strlen(esc);
        need = f->len + 1 + ln + 1 + lv + 1;
        if (need > f->cap) {
                size_t cap = f->cap * 2 > need ? f->cap * 2 : need + 256;
                char *n = calloc(1, cap);

                if (!n)
                        return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
                if (f->buf)
                        memcpy(n, f->buf, f->len);
                form_clear(&(struct form){.buf = f->buf, .cap = f->cap});
                f->buf = n;
                f->cap = cap;
        }
        if (f->len > 0)
                f->buf[f->len++] = '&';
        memcpy(f->buf + f->len, name, ln);
        f->len += ln;
        f->buf[f->len++] = '=';
        memcpy(f->buf + f->len, esc, lv);
        f->len += lv;
        f->buf[f->len] = 0;
        return 0;
}

/*
 * Client authentication (RFC 6749 §2.3.1). client_secret_basic: client_id and
 * secret, each form-encoded, become the Basic user and password, and the body
 * carries neither. client_secret_post, and a public client (no secret) with
 * either setting: client_id (and the secret, when there is one) in the body.
 */
static int add_client_auth(const struct lk_config *c, struct form *f, struct lk_token_request *req,
                           struct lk_error *e)
{
        bool has_secret = !isempty(c->client_secret);
        int r;

        if (isempty(c->client_id))
                return lk_error_set(e, LK_ERR_CONFIG, "[provider] client_id is not set");

        if (has_secret && c->client_auth == LK_CLIENT_AUTH_BASIC) {
                req->basic_user = form_escape(c->client_id);
                req->basic_password = form_escape(c->client_secret);
                if (!req->basic_user || !req->basic_password)
                        return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
                return 0;
        }

        r = form_add(f, "client_id", c->client_id, e);
        if (r < 0 || !has_secret)
                return r;
        return form_add(f, "client_secret", c->client_secret, e);
}

/* One field of a request's form; an empty or NULL value is left out. */
struct field {
        const char *name, *value;
};

/* The request to endpoint: the fields (ended by a NULL name), then the client's authentication. */
static int build_request(const struct lk_config *c, const char *endpoint,
                         const struct field *fields, struct lk_token_request *ret,
                         struct lk_error *e)
{
        _cleanup_(token_request_clearp) struct lk_token_request req = {0};
        _cleanup_(form_clear) struct form f = {0};
        int r = 0;

        for (const struct field *x = fields; x->name && r >= 0; x++)
                if (!isempty(x->value))
                        r = form_add(&f, x->name, x->value, e);
        if (r >= 0)
                r = add_client_auth(c, &f, &req, e);
        if (r < 0)
                return r;
        req.url = strdup(endpoint);
        if (!req.url)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        req.form = TAKE_PTR(f.buf);
        f = (struct form){0};
        *ret = req;
        req = (struct lk_token_request){0};
        return 0;
}

int lk_token_request_code(const struct lk_config *c, const char *token_endpoint, const char *code,
                          const char *verifier, struct lk_token_request *ret, struct lk_error *e)
{
        if (isempty(token_endpoint))
                return lk_error_set(e, LK_ERR_CONFIG, "No token endpoint is known");
        if (isempty(code))
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT, "No authorization code");
        if (isempty(c->redirect_uri))
                return lk_error_set(e, LK_ERR_CONFIG, "[provider] redirect_uri is not set");
        return build_request(c, token_endpoint, (const struct field[]){
                {"grant_type", "authorization_code"}, {"code", code},
                {"redirect_uri", c->redirect_uri}, {"code_verifier", verifier}, {NULL, NULL},
        }, ret, e);
}

int lk_token_request_refresh(const struct lk_config *c, const char *token_endpoint,
                             const char *refresh_token, struct lk_token_request *ret,
                             struct lk_error *e)
{
        return lk_token_request_refresh_for(c, token_endpoint, refresh_token, NULL, NULL, ret, e);
}

int lk_token_request_refresh_for(const struct lk_config *c, const char *token_endpoint,
                                 const char *refresh_token, const char *scope,
                                 const char *audience, struct lk_token_request *ret,
                                 struct lk_error *e)
{
        if (isempty(token_endpoint))
                return lk_error_set(e, LK_ERR_CONFIG, "No token endpoint is known");
        if (isempty(refresh_token))
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT, "No refresh token");
        return build_request(c, token_endpoint, (const struct field[]){
                {"grant_type", "refresh_token"}, {"refresh_token", refresh_token},
                {"scope", scope},
                {c->audience_parameter == LK_AUDIENCE_AUDIENCE ? "audience" : "resource", audience},
                {NULL, NULL},
        }, ret, e);
}

int lk_token_request_device_authorization(const struct lk_config *c, const char *endpoint,
                                          struct lk_token_request *ret, struct lk_error *e)
{
        _cleanup_free_ char *scope = NULL;

        if (isempty(endpoint))
                return lk_error_set(e, LK_ERR_CONFIG,
                                    "No device authorization endpoint is known (the provider "
                                    "offers none; set [provider] device_authorization_endpoint "
                                    "or flow = code)");
        scope = lk_scope_string(c->scopes);
        if (!scope)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        return build_request(c, endpoint, (const struct field[]){{"scope", scope}, {NULL, NULL}},
                             ret, e);
}

int lk_token_request_device_code(const struct lk_config *c, const char *token_endpoint,
                                 const char *device_code, struct lk_token_request *ret,
                                 struct lk_error *e)
{
        if (isempty(token_endpoint))
                return lk_error_set(e, LK_ERR_CONFIG, "No token endpoint is known");
        if (isempty(device_code))
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT, "No device code");
        return build_request(c, token_endpoint, (const struct field[]){
                {"grant_type", "urn:ietf:params:oauth:grant-type:device_code"},
                {"device_code", device_code}, {NULL, NULL},
        }, ret, e);
}

int lk_token_request_revoke(const struct lk_config *c, const char *revocation_endpoint,
                            const char *token, const char *hint, struct lk_token_request *ret,
                            struct lk_error *e)
{
        if (isempty(revocation_endpoint))
                return lk_error_set(e, LK_ERR_CONFIG, "No revocation endpoint is known");
        if (isempty(token))
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT, "No token to revoke");
        return build_request(c, revocation_endpoint, (const struct field[]){
                {"token", token}, {"token_type_hint", hint}, {NULL, NULL},
        }, ret, e);
}

/* ---- responses ---- */

void lk_tokens_clear(struct lk_tokens *t)
{
        if (!t)
                return;
        lk_secret_free(t->access_token);
        lk_secret_free(t->refresh_token);
        lk_secret_free(t->id_token);
        free(t->token_type);
        free(t->scope);
        *t = (struct lk_tokens){0};
}

static void tokens_clearp(struct lk_tokens *t)
{
        lk_tokens_clear(t);
}

bool lk_is_json_content_type(const char *ct)
{
        static const char json[] = "application/json";
        size_t l = sizeof(json) - 1;

        while (*ct == ' ' || *ct == '\t')
                ct++;
        if (strncasecmp(ct, json, l) != 0)
                return false;
        ct += l;
        while (*ct == ' ' || *ct == '\t')
                ct++;
        return *ct == 0 || *ct == ';';
}

/* An RFC 6749 error object: {"error": "...", "error_description": "..."}, words sanitized. */
static bool oauth_error(json_t *j, char *err, size_t err_size, char *desc, size_t desc_size)
{
        json_t *v;

        if (!json_is_object(j))
                return false;
        v = json_object_get(j, "error");
        if (!json_is_string(v) || json_string_length(v) == 0)
                return false;
        lk_text_escape(json_string_value(v), err, err_size);
        v = json_object_get(j, "error_description");
        lk_text_escape(json_is_string(v) ? json_string_value(v) : NULL, desc, desc_size);
        return true;
}

/* The same from a body, whatever its content type said (error bodies are often mislabelled). */
static bool oauth_error_body(const char *body, size_t len, char *err, size_t err_size, char *desc,
                             size_t desc_size)
{
        _cleanup_(json_decrefp) json_t *j = NULL;

        if (!body || len == 0)
                return false;
        j = json_loadb(body, len, 0, NULL);
        return oauth_error(j, err, err_size, desc, desc_size);
}

/* Keeps the provider's words for the D-Bus error (lk_dbus_error_message). */
static void keep_words(struct lk_error *e, const char *err, const char *desc)
{
        if (e && e->code == 0) {
                snprintf(e->provider_error, sizeof(e->provider_error), "%s", err);
                snprintf(e->provider_description, sizeof(e->provider_description), "%s", desc);
        }
}

static int refused(struct lk_error *e, int code, const char *prefix, const char *err,
                   const char *desc)
{
        keep_words(e, err, desc);
        if (isempty(desc))
                return lk_error_set(e, code, "%s: %s", prefix, err);
        return lk_error_set(e, code, "%s: %s (%s)", prefix, err, desc);
}

/*
 * An OAuth error, by whose problem it is. invalid_client and unauthorized_client
 * (RFC 6749 §5.2) say latchkey's own registration is refused: a rotated secret, a
 * client the provider no longer knows or lets use this grant. That is the admin's to
 * fix and says nothing about the person's code or refresh token. Every other error
 * refuses the grant itself, whatever its name: providers answer a dead refresh token
 * with invalid_request or access_denied as well as with invalid_grant.
 */
static int oauth_refused(struct lk_error *e, const char *err, const char *desc)
{
        if (streq(err, "invalid_client") || streq(err, "unauthorized_client")) {
                keep_words(e, err, desc);
                return lk_error_set(e, LK_ERR_CLIENT_REFUSED,
                                    "The provider refused latchkey's client credentials (%s%s%s): "
                                    "check [provider] client_id and the client secret",
                                    err, isempty(desc) ? "" : ": ", desc);
        }
        return refused(e, LK_ERR_INVALID_GRANT, "The provider refused the request", err, desc);
}

/*
 * An answer other than 200, classified (the table in latchkeyd(8), "Provider
 * refusals"): 5xx is unavailable; 429 is too many requests, whatever its body (the
 * caller honours Retry-After); any other 4xx with an OAuth error body is a refusal
 * (oauth_refused); 400, 401 and 403 without one are refusals too, since providers
 * answer a dead refresh token with an empty 400 or 401. Anything else (a 404 from a
 * wrong token_endpoint, a 3xx, a 4xx HTML page) is an answer we cannot use.
 */
int lk_token_error_parse(long status, const char *body, size_t len, struct lk_error *e)
{
        char err[sizeof(e->provider_error)], desc[sizeof(e->provider_description)];
        char prefix[64];
        bool words;

        if (status >= 500 && status <= 599)
                return lk_error_set(e, LK_ERR_PROVIDER_UNAVAILABLE, "provider answered HTTP %ld",
                                    status);
        if (status == 429)
                return lk_error_set(e, LK_ERR_TOO_MANY_REQUESTS,
                                    "The provider is refusing requests for now (HTTP 429 Too "
                                    "Many Requests)");
        words = oauth_error_body(body, len, err, sizeof(err), desc, sizeof(desc));
        if (words && status >= 400 && status <= 499)
                return oauth_refused(e, err, desc);
        if (status == 400 || status == 401 || status == 403)
                return lk_error_set(e, LK_ERR_INVALID_GRANT,
                                    "The provider refused the request (HTTP %ld, without an OAuth "
                                    "error)",
                                    status);
        snprintf(prefix, sizeof(prefix), "the token endpoint answered HTTP %ld", status);
        if (words)
                return refused(e, LK_ERR_PROVIDER_RESPONSE, prefix, err, desc);
        return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE, "%s", prefix);
}

/* A token: present, a string, 1*VSCHAR (RFC 6749 Appendix A), so it can go into a header. */
static int get_token(json_t *doc, const char *name, bool required, char **ret, struct lk_error *e)
{
        json_t *v = json_object_get(doc, name);
        const char *s;
        size_t len;
        char *copy;

        if (!v || json_is_null(v) ||
            (json_is_string(v) && !required && json_string_length(v) == 0)) {
                if (required)
                        return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                            "the token endpoint's answer has no %s", name);
                *ret = NULL;
                return 0;
        }
        if (!json_is_string(v))
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "the token endpoint's %s is not a string", name);
        s = json_string_value(v);
        len = json_string_length(v);
        if (len == 0)
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE, "the token endpoint's %s is empty",
                                    name);
        for (size_t i = 0; i < len; i++)
                if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
                        return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                            "the token endpoint's %s holds characters other "
                                            "than printable ASCII",
                                            name);
        copy = strdup(s);
        if (!copy)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        *ret = copy;
        return 0;
}

/*
 * expires_in: a JSON number, or a string of decimal digits (OneAccess documents
 * a string and sends a number). 0 when absent.
 */
static int get_expires_in(json_t *doc, int64_t *ret, struct lk_error *e)
{
        json_t *v = json_object_get(doc, "expires_in");
        int64_t n;

        if (!v || json_is_null(v)) {
                *ret = 0;
                return 0;
        }
        if (json_is_integer(v)) {
                n = (int64_t)json_integer_value(v);
        } else if (json_is_real(v)) {
                double d = json_real_value(v);

                /* 3600.0 is a whole number of seconds; 3599.5 is not. */
                if (!(d >= 1 && d <= (double)EXPIRES_IN_MAX) || (double)(int64_t)d != d)
                        return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                            "the token endpoint's expires_in is not a whole "
                                            "number of seconds between 1 and 10 years");
                n = (int64_t)d;
        } else if (json_is_string(v)) {
                const char *s = json_string_value(v);
                size_t len = json_string_length(v);
                char shown[32];
                char *end = NULL;
                long long ll;

                lk_text_escape(s, shown, sizeof(shown));
                if (len == 0 || len > 18 || strspn(s, "0123456789") != len)
                        return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                            "the token endpoint's expires_in '%s' is not a whole "
                                            "number of seconds",
                                            shown);
                errno = 0;
                ll = strtoll(s, &end, 10);
                if (errno != 0 || !end || *end)
                        return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                            "the token endpoint's expires_in '%s' is not a whole "
                                            "number of seconds",
                                            shown);
                n = (int64_t)ll;
        } else {
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "the token endpoint's expires_in is neither a number nor a "
                                    "string of digits");
        }

        if (n <= 0 || n > EXPIRES_IN_MAX)
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "the token endpoint's expires_in %" PRId64
                                    " is out of range (1 second to 10 years)",
                                    n);
        *ret = n;
        return 0;
}

static int get_scope(json_t *doc, char **ret, struct lk_error *e)
{
        json_t *v = json_object_get(doc, "scope");
        char *s;

        if (!v || json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0)) {
                *ret = NULL;
                return 0;
        }
        if (!json_is_string(v))
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "the token endpoint's scope is not a string");
        if (json_string_length(v) > 4096)
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "the token endpoint's scope is longer than 4096 bytes");
        for (const char *p = json_string_value(v); *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                            "the token endpoint's scope holds control characters");
        s = strdup(json_string_value(v));
        if (!s)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        *ret = s;
        return 0;
}

int lk_token_response_parse(long status, const char *content_type, const char *body, size_t len,
                            int64_t now, struct lk_tokens *ret, struct lk_error *e)
{
        _cleanup_(json_decrefp) json_t *doc = NULL;
        _cleanup_(tokens_clearp) struct lk_tokens t = {0};
        char err[sizeof(e->provider_error)], desc[sizeof(e->provider_description)];
        json_error_t jerr;
        json_t *v;
        int64_t expires_in = 0;
        int r;

        if (len > LK_HTTP_MAX_BODY)
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "the token endpoint's answer is larger than %d bytes",
                                    LK_HTTP_MAX_BODY);
        if (!body)
                len = 0;

        if (status != 200)
                return lk_token_error_parse(status, body, len, e);

        if (isempty(content_type))
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "the token endpoint's answer has no content type");
        if (!lk_is_json_content_type(content_type)) {
                char shown[64];

                lk_text_escape(content_type, shown, sizeof(shown));
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "the token endpoint answered with content type %s, not "
                                    "application/json",
                                    shown);
        }
        if (len == 0)
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "the token endpoint's answer is empty");

        doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!doc)
                /* jerr.text may quote the body, which holds tokens: line and column only. */
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "the token endpoint's answer is not valid JSON (line %d, "
                                    "column %d)",
                                    jerr.line, jerr.column);
        if (!json_is_object(doc))
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "the token endpoint's answer is not a JSON object");

        /* Some providers answer 200 with an error body. */
        if (!json_object_get(doc, "access_token") &&
            oauth_error(doc, err, sizeof(err), desc, sizeof(desc)))
                return oauth_refused(e, err, desc);

        r = get_token(doc, "access_token", true, &t.access_token, e);
        if (r < 0)
                return r;

        v = json_object_get(doc, "token_type");
        if (!v)
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "the token endpoint's answer has no token_type");
        if (!json_is_string(v))
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "the token endpoint's token_type is not a string");
        if (strcasecmp(json_string_value(v), "bearer") != 0 || json_string_length(v) != 6) {
                char shown[32];

                lk_text_escape(json_string_value(v), shown, sizeof(shown));
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "the token endpoint's token_type is '%s', not Bearer", shown);
        }
        t.token_type = strdup("Bearer");
        if (!t.token_type)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");

        r = get_expires_in(doc, &expires_in, e);
        if (r < 0)
                return r;
        if (expires_in > 0 && now > INT64_MAX - expires_in)
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT, "The clock is out of range");
        t.expires_at = expires_in > 0 ? now + expires_in : 0;

        r = get_token(doc, "refresh_token", false, &t.refresh_token, e);
        if (r < 0)
                return r;
        r = get_token(doc, "id_token", false, &t.id_token, e);
        if (r < 0)
                return r;
        r = get_scope(doc, &t.scope, e);
        if (r < 0)
                return r;

        *ret = t;
        t = (struct lk_tokens){0};
        return 0;
}
