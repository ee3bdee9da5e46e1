/* SPDX-License-Identifier: MIT */
/* The start of a login: state, nonce, PKCE verifier, and the authorization URL. */
#pragma once

#include "oidc/config.h"
#include "oidc/discovery.h"
#include "oidc/error.h"

/* "openid profile email", from the config's list; "openid" when the list is empty. NULL: OOM. */
char *lk_scope_string(char *const *scopes);

struct lk_authorization {
        char *state;    /* secret */
        char *nonce;    /* secret */
        char *verifier; /* secret: the PKCE code_verifier; NULL when pkce = no */
        char *url;      /* the authorization URL to show the person (carries state, nonce, challenge) */
};

/*
 * Makes fresh state, nonce and verifier from the CSPRNG (256 bits each) and
 * the URL: authorization_endpoint plus response_type=code, client_id,
 * redirect_uri, scope, state, nonce, code_challenge, code_challenge_method=S256
 * (and login_hint when given), every value encoded with curl's API.
 */
int lk_authorization_new(const struct lk_config *c, const struct lk_endpoints *ep,
                         const char *login_hint, struct lk_authorization **ret,
                         struct lk_error *e);
void lk_authorization_free(struct lk_authorization *a);
static inline void lk_authorization_freep(struct lk_authorization **a)
{
        lk_authorization_free(*a);
}
