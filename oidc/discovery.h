/* SPDX-License-Identifier: MIT */
/* The provider's endpoints: from OpenID Connect Discovery, or set by hand. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "oidc/config.h"
#include "oidc/error.h"

struct lk_endpoints {
        char *authorization_endpoint;
        char *token_endpoint;
        char *jwks_uri;
        char *userinfo_endpoint;   /* may be NULL */
        char *revocation_endpoint; /* may be NULL */
        char *device_authorization_endpoint; /* RFC 8628; may be NULL */
        char **id_token_algs;      /* id_token_signing_alg_values_supported, may be NULL */
        bool iss_parameter;        /* authorization_response_iss_parameter_supported (RFC 9207) */
};

void lk_endpoints_clear(struct lk_endpoints *ep);

/* The grant a login uses: [provider] flow, and for auto what the provider offers. */
enum lk_flow lk_endpoints_flow(const struct lk_config *c, const struct lk_endpoints *ep);

/* "{issuer}/.well-known/openid-configuration", built with curl's URL API. */
int lk_discovery_url(const char *issuer, char **ret, struct lk_error *e);

/*
 * Parses a discovery document. Its issuer must equal c->issuer exactly;
 * endpoints set by hand in c win over the document's; every endpoint passes
 * lk_check_endpoint_url().
 */
int lk_discovery_parse(const struct lk_config *c, const char *body, size_t len,
                       struct lk_endpoints *ret, struct lk_error *e);

/* With discovery = no: the endpoints from the config; required ones must be there. */
int lk_endpoints_from_config(const struct lk_config *c, struct lk_endpoints *ret,
                             struct lk_error *e);
