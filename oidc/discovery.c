/* SPDX-License-Identifier: MIT */
#include "oidc/discovery.h"

#include <curl/curl.h>
#include <jansson.h>
#include <string.h>

#include "base/cleanup_curl.h"
#include "base/text.h"
#include "oidc/http.h"

#define WELL_KNOWN "/.well-known/openid-configuration"
/* Caps on what a discovery document may hand us, beyond the body cap. */
#define ENDPOINT_MAX 4096
#define ALGS_MAX 64
#define ALG_NAME_MAX 32

void lk_endpoints_clear(struct lk_endpoints *ep)
{
        if (!ep)
                return;
        free(ep->authorization_endpoint);
        free(ep->token_endpoint);
        free(ep->jwks_uri);
        free(ep->userinfo_endpoint);
        free(ep->revocation_endpoint);
        free(ep->device_authorization_endpoint);
        lk_strv_free(ep->id_token_algs);
        *ep = (struct lk_endpoints){0};
}

static void endpoints_clearp(struct lk_endpoints *ep)
{
        lk_endpoints_clear(ep);
}

/*
 * OpenID Connect Discovery 1.0 §4: the path of the issuer is kept and any
 * terminating "/" removed before the well-known suffix is appended, so
 * https://t.example.com/api/v1/oauth2 and .../oauth2/ both give
 * https://t.example.com/api/v1/oauth2/.well-known/openid-configuration.
 */
int lk_discovery_url(const char *issuer, char **ret, struct lk_error *e)
{
        _cleanup_(curl_url_cleanupp) CURLU *u = NULL;
        _cleanup_(curl_freep) char *path = NULL, *query = NULL, *fragment = NULL, *url = NULL;
        _cleanup_free_ char *newpath = NULL;
        size_t len;
        char *s;

        if (isempty(issuer))
                return lk_error_set(e, LK_ERR_CONFIG, "[provider] issuer is not set");

        u = curl_url();
        if (!u)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        if (curl_url_set(u, CURLUPART_URL, issuer, CURLU_PATH_AS_IS) != CURLUE_OK)
                return lk_error_set(e, LK_ERR_CONFIG, "[provider] issuer is not a valid URL");

        /* An issuer identifier has no query or fragment (OpenID Connect Discovery §2). */
        if (curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK ||
            curl_url_get(u, CURLUPART_FRAGMENT, &fragment, 0) == CURLUE_OK)
                return lk_error_set(e, LK_ERR_CONFIG,
                                    "[provider] issuer must not carry a query or a fragment");

        if (curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK)
                return lk_error_set(e, LK_ERR_CONFIG, "[provider] issuer is not a valid URL");

        len = strlen(path);
        while (len > 0 && path[len - 1] == '/')
                len--;
        newpath = malloc(len + sizeof(WELL_KNOWN));
        if (!newpath)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        memcpy(newpath, path, len);
        memcpy(newpath + len, WELL_KNOWN, sizeof(WELL_KNOWN));

        if (curl_url_set(u, CURLUPART_PATH, newpath, CURLU_PATH_AS_IS) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_URL, &url, 0) != CURLUE_OK)
                return lk_error_set(e, LK_ERR_CONFIG,
                                    "[provider] issuer does not give a valid discovery URL");

        s = strdup(url);
        if (!s)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        *ret = s;
        return 0;
}

/*
 * One endpoint: the one set by hand wins; else the document's (a string when
 * present). Either way it must pass lk_check_endpoint_url().
 */
static int pick_endpoint(json_t *doc, const char *name, const char *manual, bool required,
                         char **ret, struct lk_error *e)
{
        const char *v = manual;
        char *s;
        int r;

        if (isempty(v) && doc) {
                json_t *j = json_object_get(doc, name);

                if (j && !json_is_null(j)) {
                        if (!json_is_string(j))
                                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                                    "discovery document: %s is not a string", name);
                        if (json_string_length(j) > ENDPOINT_MAX)
                                return lk_error_set(
                                    e, LK_ERR_PROVIDER_RESPONSE,
                                    "discovery document: %s is longer than %d bytes", name,
                                    ENDPOINT_MAX);
                        if (strlen(json_string_value(j)) != json_string_length(j))
                                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                                    "discovery document: %s holds a NUL byte",
                                                    name);
                        v = json_string_value(j);
                }
        }

        if (isempty(v)) {
                if (!required) {
                        *ret = NULL;
                        return 0;
                }
                if (doc)
                        return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                            "discovery document has no %s", name);
                return lk_error_set(e, LK_ERR_CONFIG,
                                    "[provider] %s is required when discovery = no", name);
        }

        if (v == manual) {
                r = lk_check_endpoint_url(v, name, e);
                if (r < 0)
                        return r;
        } else {
                struct lk_error check = {0};

                /* The provider sent it: its fault, not the config's. */
                r = lk_check_endpoint_url(v, name, &check);
                if (r < 0)
                        return lk_error_set(
                            e, r == -LK_ERR_NOMEM ? LK_ERR_NOMEM : LK_ERR_PROVIDER_RESPONSE,
                            "discovery document: %s", check.message);
        }

        s = strdup(v);
        if (!s)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        *ret = s;
        return 0;
}

static int pick_endpoints(const struct lk_config *c, json_t *doc, struct lk_endpoints *ep,
                          struct lk_error *e)
{
        int r;

        r = pick_endpoint(doc, "authorization_endpoint", c->authorization_endpoint, true,
                          &ep->authorization_endpoint, e);
        if (r < 0)
                return r;
        r = pick_endpoint(doc, "token_endpoint", c->token_endpoint, true, &ep->token_endpoint, e);
        if (r < 0)
                return r;
        r = pick_endpoint(doc, "jwks_uri", c->jwks_uri, true, &ep->jwks_uri, e);
        if (r < 0)
                return r;
        r = pick_endpoint(doc, "userinfo_endpoint", c->userinfo_endpoint, false,
                          &ep->userinfo_endpoint, e);
        if (r < 0)
                return r;
        r = pick_endpoint(doc, "revocation_endpoint", c->revocation_endpoint, false,
                          &ep->revocation_endpoint, e);
        if (r < 0)
                return r;
        return pick_endpoint(doc, "device_authorization_endpoint",
                             c->device_authorization_endpoint, false,
                             &ep->device_authorization_endpoint, e);
}

enum lk_flow lk_endpoints_flow(const struct lk_config *c, const struct lk_endpoints *ep)
{
        if (c->flow != LK_FLOW_AUTO)
                return c->flow;
        return ep && ep->device_authorization_endpoint ? LK_FLOW_DEVICE : LK_FLOW_CODE;
}

static int parse_algs(json_t *doc, char ***ret, struct lk_error *e)
{
        static const char key[] = "id_token_signing_alg_values_supported";
        _cleanup_strv_ char **l = NULL;
        json_t *a, *v;
        size_t i, n;

        a = json_object_get(doc, key);
        if (!a || json_is_null(a)) {
                *ret = NULL;
                return 0;
        }
        if (!json_is_array(a))
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "discovery document: %s is not an array", key);
        n = json_array_size(a);
        if (n > ALGS_MAX)
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "discovery document: %s lists more than %d algorithms", key,
                                    ALGS_MAX);

        l = calloc(n + 1, sizeof(char *));
        if (!l)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        for (i = 0; i < n; i++) {
                v = json_array_get(a, i);
                if (!json_is_string(v) || json_string_length(v) == 0 ||
                    json_string_length(v) > ALG_NAME_MAX ||
                    strlen(json_string_value(v)) != json_string_length(v))
                        return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                            "discovery document: %s[%zu] is not an algorithm name",
                                            key, i);
                l[i] = strdup(json_string_value(v));
                if (!l[i])
                        return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        }
        *ret = TAKE_PTR(l);
        return 0;
}

int lk_discovery_parse(const struct lk_config *c, const char *body, size_t len,
                       struct lk_endpoints *ret, struct lk_error *e)
{
        _cleanup_(json_decrefp) json_t *doc = NULL;
        _cleanup_(endpoints_clearp) struct lk_endpoints ep = {0};
        json_error_t jerr;
        json_t *iss;
        int r;

        if (!body)
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE, "discovery document is empty");
        if (len > LK_HTTP_MAX_BODY)
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "discovery document is larger than %d bytes", LK_HTTP_MAX_BODY);

        doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!doc)
                /* jerr.text may quote the body; line and column are enough. */
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "discovery document is not valid JSON (line %d, column %d)",
                                    jerr.line, jerr.column);
        if (!json_is_object(doc))
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "discovery document is not a JSON object");

        iss = json_object_get(doc, "issuer");
        if (!iss || !json_is_string(iss))
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "discovery document has no issuer string");
        /* Exactly equal: no normalisation of case, slashes or ports (OIDC Discovery §4.3). */
        if (strlen(json_string_value(iss)) != json_string_length(iss) ||
            !streq_ptr(json_string_value(iss), c->issuer)) {
                char shown[256];

                lk_text_escape(json_string_value(iss), shown, sizeof(shown));
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "discovery document names issuer %s, configured issuer is %s",
                                    shown, c->issuer ? c->issuer : "(none)");
        }

        r = pick_endpoints(c, doc, &ep, e);
        if (r < 0)
                return r;
        r = parse_algs(doc, &ep.id_token_algs, e);
        if (r < 0)
                return r;
        /* Only a JSON true counts (RFC 8414 §2): anything else is "not promised". */
        ep.iss_parameter =
                json_is_true(json_object_get(doc, "authorization_response_iss_parameter_supported"));

        *ret = ep;
        ep = (struct lk_endpoints){0};
        return 0;
}

int lk_endpoints_from_config(const struct lk_config *c, struct lk_endpoints *ret,
                             struct lk_error *e)
{
        _cleanup_(endpoints_clearp) struct lk_endpoints ep = {0};
        int r;

        r = pick_endpoints(c, NULL, &ep, e);
        if (r < 0)
                return r;
        *ret = ep;
        ep = (struct lk_endpoints){0};
        return 0;
}
