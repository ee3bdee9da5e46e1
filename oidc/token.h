/* SPDX-License-Identifier: MIT */
/* The token endpoint (SPEC §5): request bodies and response parsing. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "oidc/config.h"
#include "oidc/error.h"
#include "oidc/http.h"

/* A token request ready for lk_http_submit(); every field is owned and wiped on clear. */
struct lk_token_request {
        char *url;
        char *form;
        char *basic_user;
        char *basic_password;
};
void lk_token_request_clear(struct lk_token_request *r);

/* grant_type=authorization_code with code, redirect_uri, code_verifier (when given) and client auth. */
int lk_token_request_code(const struct lk_config *c, const char *token_endpoint, const char *code,
                          const char *verifier, struct lk_token_request *ret, struct lk_error *e);
/* grant_type=refresh_token */
int lk_token_request_refresh(const struct lk_config *c, const char *token_endpoint,
                             const char *refresh_token, struct lk_token_request *ret,
                             struct lk_error *e);
/* RFC 8628 §3.1: the device authorization request (client auth and scope). */
int lk_token_request_device_authorization(const struct lk_config *c, const char *endpoint,
                                          struct lk_token_request *ret, struct lk_error *e);
/* RFC 8628 §3.4: grant_type=urn:ietf:params:oauth:grant-type:device_code, one poll. */
int lk_token_request_device_code(const struct lk_config *c, const char *token_endpoint,
                                 const char *device_code, struct lk_token_request *ret,
                                 struct lk_error *e);
/*
 * The same, for a narrower token: scope (space-separated) and audience, each left out when
 * NULL; the audience as c->audience_parameter says (resource= of RFC 8707, or audience=).
 */
int lk_token_request_refresh_for(const struct lk_config *c, const char *token_endpoint,
                                 const char *refresh_token, const char *scope,
                                 const char *audience, struct lk_token_request *ret,
                                 struct lk_error *e);
/* RFC 7009 revocation of token with token_type_hint */
int lk_token_request_revoke(const struct lk_config *c, const char *revocation_endpoint,
                            const char *token, const char *hint, struct lk_token_request *ret,
                            struct lk_error *e);

/* "application/json", any case, with or without parameters ("; charset=UTF-8"). */
bool lk_is_json_content_type(const char *ct);

struct lk_tokens {
        char *access_token;  /* secret */
        char *refresh_token; /* secret, NULL when none */
        char *id_token;      /* secret, NULL when none */
        char *token_type;    /* "Bearer" */
        char *scope;         /* NULL when none */
        int64_t expires_at;  /* now + expires_in; 0 when the provider gave no expires_in */
};
void lk_tokens_clear(struct lk_tokens *t);

/*
 * A token (or revocation) endpoint's answer other than 200, by whose problem it is,
 * provider words kept in e->provider_error / provider_description where it sent some:
 *  5xx                                          -> LK_ERR_PROVIDER_UNAVAILABLE
 *  429, whatever the body                       -> LK_ERR_TOO_MANY_REQUESTS
 *  4xx with error invalid_client or unauthorized_client -> LK_ERR_CLIENT_REFUSED
 *  4xx with any other OAuth error               -> LK_ERR_INVALID_GRANT
 *  400, 401, 403 without an OAuth error body    -> LK_ERR_INVALID_GRANT
 *  anything else (404, 3xx, ...)                -> LK_ERR_PROVIDER_RESPONSE
 * Always returns < 0.
 */
int lk_token_error_parse(long status, const char *body, size_t len, struct lk_error *e);

/*
 * Parses a token endpoint response (SPEC §5). A status other than 200 is
 * classified by lk_token_error_parse(); a 200 carrying an OAuth error body
 * (no access_token) is a refusal as if it came with a 4xx; body not JSON,
 * wrong content type, missing access_token, token_type not Bearer (any case),
 * expires_in neither number nor numeric string -> LK_ERR_PROVIDER_RESPONSE;
 * body over LK_HTTP_MAX_BODY -> the same.
 */
int lk_token_response_parse(long status, const char *content_type, const char *body, size_t len,
                            int64_t now, struct lk_tokens *ret, struct lk_error *e);
