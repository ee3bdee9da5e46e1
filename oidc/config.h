/* SPDX-License-Identifier: MIT */
/*
 * latchkey.conf (SPEC §3): loaded with inih from the main file, then from
 * <main>.d/ *.conf in name order, later values winning. Every problem names
 * the file, the line and the key. The parts: oidc/config_loader.h.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "oidc/error.h"
#include "oidc/url_policy.h" /* lk_check_endpoint_url(), for the endpoints discovery names */

#define LK_CONFIG_PATH "/etc/latchkey/latchkey.conf"

enum lk_client_auth {
        LK_CLIENT_AUTH_POST,  /* client_secret_post */
        LK_CLIENT_AUTH_BASIC, /* client_secret_basic */
};

/* [provider] flow: which grant a login uses (RFC 6749 §4.1, or RFC 8628). */
enum lk_flow {
        LK_FLOW_AUTO,   /* device where the provider offers it, else code */
        LK_FLOW_CODE,   /* authorization code with PKCE, finished by paste (or the listener) */
        LK_FLOW_DEVICE, /* device authorization grant: the broker polls */
};

/* How a GetToken audience is sent in a refresh request: RFC 8707 resource=, or audience=. */
enum lk_audience_parameter {
        LK_AUDIENCE_RESOURCE, /* resource (RFC 8707) */
        LK_AUDIENCE_AUDIENCE, /* audience (Auth0, Okta's and others' own parameter) */
};

enum lk_nonce_mode {
        LK_NONCE_REQUIRED,
        LK_NONCE_IF_PRESENT,
        LK_NONCE_OFF,
};

/* id_token signing algorithms, as bits of lk_config.algorithms */
enum lk_alg {
        LK_ALG_RS256 = 1u << 0,
        LK_ALG_RS384 = 1u << 1,
        LK_ALG_RS512 = 1u << 2,
        LK_ALG_ES256 = 1u << 3,
        LK_ALG_ES384 = 1u << 4,
        LK_ALG_ES512 = 1u << 5,
        LK_ALG_HS256 = 1u << 6,
        LK_ALG_HS384 = 1u << 7,
        LK_ALG_HS512 = 1u << 8,
};
#define LK_ALG_DEFAULT \
        (LK_ALG_RS256 | LK_ALG_RS384 | LK_ALG_RS512 | LK_ALG_ES256 | LK_ALG_ES384 | LK_ALG_ES512)

/* "RS256" -> LK_ALG_RS256; 0 for anything else ("none" included). In alg.c. */
unsigned lk_alg_from_name(const char *name);
/* LK_ALG_RS256 -> "RS256"; NULL for anything but a single known bit. */
const char *lk_alg_name(unsigned alg);

struct lk_config {
        /* [provider] */
        char *issuer;
        bool discovery;
        char *authorization_endpoint; /* NULL when not set by hand */
        char *token_endpoint;
        char *jwks_uri;
        char *userinfo_endpoint;
        char *revocation_endpoint;
        char *device_authorization_endpoint; /* RFC 8628; NULL when not set by hand */
        enum lk_flow flow;
        char *client_id;
        char *client_secret_file; /* as written; NULL when not set */
        char *client_secret; /* a secret: wiped on free; NULL when none */
        char *client_secret_source; /* where it came from (a path, or "client_secret"), for messages */
        enum lk_client_auth client_auth;
        char *redirect_uri;
        char **scopes;        /* NULL-terminated; always holds "openid" first */
        char *prompt;         /* OIDC prompt= for the authorization URL (e.g. "consent"); NULL: none */
        bool pkce;
        enum lk_nonce_mode nonce;
        unsigned algorithms;  /* LK_ALG_* bits */
        char *ca_file;
        unsigned timeout;     /* seconds for one HTTP exchange */
        unsigned clock_skew;  /* seconds */
        enum lk_audience_parameter audience_parameter;

        /* [users] */
        char *username_claim;
        char *strip_suffix;
        char **allowed_users;  /* NULL or empty = anyone */
        char **allowed_groups; /* NULL or empty = no group rule */
        char *groups_claim;
        char **allow_system_users; /* root and system accounts SSO may log in as; NULL: none */

        /* [sessions] */
        unsigned refresh_margin;
        bool refresh_ahead; /* refresh in the background at refresh_margin (refresh_ahead.c) */
        unsigned login_timeout;
        bool revoke_on_close;
        unsigned idle_exit;

        /* [callback]: the broker's own HTTPS listener for the redirect (NULL: none) */
        char *callback_listen;      /* ADDRESS:PORT or [IPv6]:PORT, lk_listen_address_parse() */
        char *callback_certificate; /* PEM */
        char *callback_key;         /* PEM, read as a private file */

        /* [offline]: the PIN (broker/offline.c) */
        bool offline_pin;
        unsigned pin_min_length;
        unsigned argon2_memory;      /* KiB */
        unsigned argon2_time;        /* passes */
        unsigned argon2_parallelism; /* lanes */
        unsigned lockout_after;      /* wrong PINs before the first wait */
        unsigned lockout_delay;      /* seconds of the first wait; doubles with each failure */
        unsigned max_failures;       /* wrong PINs after which only an online sign-in helps */

        /* [accounts] (issue 20): provider accounts through libnss_latchkey.so.2 */
        bool nss;                 /* write the accounts cache; answer never-seen names */
        unsigned uid_min, uid_max; /* the range uids are hashed into (base/uidmap.h) */
        char **allowed_names;     /* glob patterns of names that may appear before a login */
        char **allowed_suffixes;  /* or suffixes */
        char *home, *shell;       /* templates: %u the name */
        char *gecos_claim;
        char **group_map;         /* "provider-group:local-group" words */
        unsigned max_offline_days;
};

/* One thing wrong in a config file. line is 0 where it is not about one line. */
struct lk_config_problem {
        char *file;
        unsigned line;
        char *section;
        char *key; /* NULL where it is not about one key */
        char *message;
};

struct lk_config_problems {
        struct lk_config_problem *items;
        size_t n;
};

void lk_config_problems_clear(struct lk_config_problems *p);
/* "FILE:LINE: [section] key: message", as lk_error gets the first one; NULL on OOM. Free it. */
char *lk_config_problem_string(const struct lk_config_problem *p);

/*
 * Loads path and path.d/ *.conf, fills defaults, checks required keys and
 * values. On any problem returns -LK_ERR_CONFIG with the first problem in e
 * ("latchkey.conf:12: [provider] timeout: 'abc' is not a number"), and every
 * problem in problems (may be NULL; its old content is freed first, so start
 * it zeroed). The client secret is read from client_secret_file (refused when
 * a symlink, not owned by root or the euid, or open to group or others), or
 * client_secret (refused when the file holding it is open to group or
 * others), or $CREDENTIALS_DIRECTORY/client_secret. path NULL means
 * LK_CONFIG_PATH. Not thread-safe: inih's options are process-wide.
 */
int lk_config_load(const char *path, struct lk_config **ret, struct lk_config_problems *problems,
                   struct lk_error *e);

/* The same for a config held in memory (tests, fuzzing); no conf.d, name used in messages. */
int lk_config_load_string(const char *text, const char *name, struct lk_config **ret,
                          struct lk_config_problems *problems, struct lk_error *e);

void lk_config_free(struct lk_config *c);
static inline void lk_config_freep(struct lk_config **c)
{
        lk_config_free(*c);
}
