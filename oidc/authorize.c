/* SPDX-License-Identifier: MIT */
#include "oidc/authorize.h"

#include <curl/curl.h>
#include <string.h>

#include "base/cleanup_curl.h"
#include "oidc/secret.h"

/* 32 bytes = 256 bits from the CSPRNG, 43 base64url characters (RFC 7636 §4.1 wants 43..128). */
#define RANDOM_BYTES 32

void lk_authorization_free(struct lk_authorization *a)
{
        if (!a)
                return;
        lk_secret_free(a->state);
        lk_secret_free(a->nonce);
        lk_secret_free(a->verifier);
        lk_secret_free(a->url);
        free(a);
}

char *lk_scope_string(char *const *scopes)
{
        size_t len = 0;
        char *s, *p;

        if (!scopes || !scopes[0])
                return strdup("openid");
        for (char *const *i = scopes; *i; i++)
                len += strlen(*i) + 1;
        s = malloc(len);
        if (!s)
                return NULL;
        p = s;
        for (char *const *i = scopes; *i; i++) {
                size_t l = strlen(*i);

                if (p != s)
                        *p++ = ' ';
                memcpy(p, *i, l);
                p += l;
        }
        *p = 0;
        return s;
}

/*
 * Appends name=value to the URL's query. curl encodes everything after the
 * first '=' that is not unreserved (a space becomes '+'), and keeps a query
 * the endpoint already has.
 */
static int add_param(CURLU *u, const char *name, const char *value, struct lk_error *e)
{
        _cleanup_secret_ char *piece = NULL;
        size_t ln = strlen(name), lv = strlen(value);
        CURLUcode rc;

        piece = malloc(ln + 1 + lv + 1);
        if (!piece)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        memcpy(piece, name, ln);
        piece[ln] = '=';
        memcpy(piece + ln + 1, value, lv + 1);

        rc = curl_url_set(u, CURLUPART_QUERY, piece, CURLU_APPENDQUERY | CURLU_URLENCODE);
        if (rc == CURLUE_OUT_OF_MEMORY)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        if (rc != CURLUE_OK)
                return lk_error_set(e, LK_ERR_CONFIG, "Cannot add %s to the authorization URL: %s",
                                    name, curl_url_strerror(rc));
        return 0;
}

int lk_authorization_new(const struct lk_config *c, const struct lk_endpoints *ep,
                         const char *login_hint, struct lk_authorization **ret, struct lk_error *e)
{
        _cleanup_(lk_authorization_freep) struct lk_authorization *a = NULL;
        _cleanup_(curl_url_cleanupp) CURLU *u = NULL;
        _cleanup_(curl_secret_freep) char *url = NULL;
        _cleanup_free_ char *scope = NULL;
        _cleanup_free_ char *challenge = NULL;
        CURLUcode rc;
        int r;

        if (!ep || isempty(ep->authorization_endpoint))
                return lk_error_set(e, LK_ERR_CONFIG, "No authorization endpoint is known");
        if (isempty(c->client_id) || isempty(c->redirect_uri))
                return lk_error_set(e, LK_ERR_CONFIG,
                                    "[provider] client_id and redirect_uri are required");

        a = calloc(1, sizeof(*a));
        if (!a)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");

        r = lk_random_b64url(RANDOM_BYTES, &a->state);
        if (r >= 0)
                r = lk_random_b64url(RANDOM_BYTES, &a->nonce);
        if (r >= 0 && c->pkce)
                r = lk_random_b64url(RANDOM_BYTES, &a->verifier);
        if (r >= 0 && c->pkce)
                r = lk_sha256_b64url(a->verifier, &challenge);
        if (r < 0)
                return lk_error_set(e, r, "Cannot make the login's random values");

        scope = lk_scope_string(c->scopes);
        if (!scope)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");

        u = curl_url();
        if (!u)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        rc = curl_url_set(u, CURLUPART_URL, ep->authorization_endpoint, 0);
        if (rc != CURLUE_OK)
                return lk_error_set(e, LK_ERR_CONFIG,
                                    "The authorization endpoint %s is not a URL: %s",
                                    ep->authorization_endpoint, curl_url_strerror(rc));

        r = add_param(u, "response_type", "code", e);
        if (r >= 0)
                r = add_param(u, "client_id", c->client_id, e);
        if (r >= 0)
                r = add_param(u, "redirect_uri", c->redirect_uri, e);
        if (r >= 0)
                r = add_param(u, "scope", scope, e);
        if (r >= 0)
                r = add_param(u, "state", a->state, e);
        if (r >= 0)
                r = add_param(u, "nonce", a->nonce, e);
        if (r >= 0 && challenge) {
                r = add_param(u, "code_challenge", challenge, e);
                if (r >= 0)
                        r = add_param(u, "code_challenge_method", "S256", e);
        }
        if (r >= 0 && !isempty(c->prompt))
                r = add_param(u, "prompt", c->prompt, e);
        if (r >= 0 && !isempty(login_hint))
                r = add_param(u, "login_hint", login_hint, e);
        if (r < 0)
                return r;

        rc = curl_url_get(u, CURLUPART_URL, &url, 0);
        if (rc != CURLUE_OK)
                return lk_error_set(e, rc == CURLUE_OUT_OF_MEMORY ? LK_ERR_NOMEM : LK_ERR_CONFIG,
                                    "Cannot build the authorization URL: %s",
                                    curl_url_strerror(rc));
        a->url = strdup(url);
        if (!a->url)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");

        *ret = TAKE_PTR(a);
        return 0;
}
