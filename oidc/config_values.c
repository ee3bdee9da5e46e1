/* SPDX-License-Identifier: MIT */
/*
 * The types of value in latchkey.conf (config.c's table): for each, a
 * parse_<type>() that checks one value and stores it, or says why not (the
 * file, line and key are the caller's to add), and what frees its field.
 */
#include <errno.h>
#include <stdio.h>
#include <strings.h>

#include "oidc/config_loader.h"
#include "oidc/listen_address.h"
#include "oidc/url_policy.h"

#define REFUSE(...) (snprintf(why, why_size, __VA_ARGS__), -LK_ERR_CONFIG)

/* RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ); claim names follow it too. */
static bool scope_token_valid(const char *s)
{
        if (!*s)
                return false;
        for (; *s; s++)
                if (*s < 0x21 || *s > 0x7e || *s == '"' || *s == '\\')
                        return false;
        return true;
}

static void free_string(void *dst)
{
        free(*(char **)dst);
        *(char **)dst = NULL;
}

static void free_secret(void *dst)
{
        lk_secret_free(*(char **)dst);
        *(char **)dst = NULL;
}

static void free_words(void *dst)
{
        lk_strv_free(*(char ***)dst);
        *(char ***)dst = NULL;
}

/* Stores a copy of v (NULL when empty) at dst, freeing the old value. */
static int store_string(const char *v, void *dst, bool secret)
{
        char **field = dst, *s = NULL;

        if (*v && !(s = strdup(v)))
                return -LK_ERR_NOMEM;
        if (secret)
                lk_secret_free(*field);
        else
                free(*field);
        *field = s;
        return 0;
}

static int parse_string(const struct conf_key *k, const char *v, void *dst, char *why,
                        size_t why_size)
{
        return store_string(v, dst, false);
}

static int parse_claim(const struct conf_key *k, const char *v, void *dst, char *why,
                       size_t why_size)
{
        char q[CONF_QUOTE_SIZE];

        if (*v && !scope_token_valid(v))
                return REFUSE("'%s' is not a claim name", conf_quote(v, q));
        return store_string(v, dst, false);
}

static int parse_path(const struct conf_key *k, const char *v, void *dst, char *why,
                      size_t why_size)
{
        char q[CONF_QUOTE_SIZE];

        if (*v && v[0] != '/')
                return REFUSE("'%s' is not an absolute path", conf_quote(v, q));
        return store_string(v, dst, false);
}

static int parse_secret(const struct conf_key *k, const char *v, void *dst, char *why,
                        size_t why_size)
{
        return store_string(v, dst, true);
}

static int parse_url(const struct conf_key *k, const char *v, void *dst, char *why,
                     size_t why_size)
{
        int r;

        if (*v) {
                r = lk_url_check(v, why, why_size);
                if (r < 0)
                        return r;
        }
        return store_string(v, dst, false);
}

static int parse_issuer(const struct conf_key *k, const char *v, void *dst, char *why,
                        size_t why_size)
{
        char q[CONF_QUOTE_SIZE];
        int r;

        if (*v) {
                r = lk_url_check(v, why, why_size);
                if (r < 0)
                        return r;
                if (strchr(v, '?'))
                        return REFUSE("'%s': an issuer has no ?query", conf_quote(v, q));
        }
        return store_string(v, dst, false);
}

static int parse_bool(const struct conf_key *k, const char *v, void *dst, char *why,
                      size_t why_size)
{
        static const char *const yes[] = { "yes", "true", "1", "on" };
        static const char *const no[] = { "no", "false", "0", "off" };
        char q[CONF_QUOTE_SIZE];

        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (strcasecmp(v, yes[i]) == 0) {
                        *(bool *)dst = true;
                        return 0;
                }
                if (strcasecmp(v, no[i]) == 0) {
                        *(bool *)dst = false;
                        return 0;
                }
        }
        return REFUSE("'%s' is not a boolean (yes, no, true, false, on, off, 1, 0)",
                      conf_quote(v, q));
}

/* Decimal digits only: no sign, no spaces, no 0x; strtoul checked in full. */
static int parse_uint(const struct conf_key *k, const char *v, void *dst, char *why,
                      size_t why_size)
{
        char q[CONF_QUOTE_SIZE], *end;
        unsigned long n;

        if (*v < '0' || *v > '9')
                return REFUSE("'%s' is not a number", conf_quote(v, q));
        errno = 0;
        n = strtoul(v, &end, 10);
        if (errno != 0 || *end != 0)
                return REFUSE("'%s' is not a number", conf_quote(v, q));
        if (n < k->min || n > k->max)
                return REFUSE("%lu is out of range (%u..%u)", n, k->min, k->max);
        *(unsigned *)dst = (unsigned)n;
        return 0;
}

static int parse_words(const struct conf_key *k, const char *v, void *dst, char *why,
                       size_t why_size)
{
        char **list = NULL, ***field = dst;

        if (*v && !(list = lk_strv_split(v)))
                return -LK_ERR_NOMEM;
        lk_strv_free(*field);
        *field = list;
        return 0;
}

static int parse_scopes(const struct conf_key *k, const char *v, void *dst, char *why,
                        size_t why_size)
{
        _cleanup_strv_ char **words = NULL, **scopes = NULL;
        char ***field = dst, q[CONF_QUOTE_SIZE];
        size_t n = 1;

        words = lk_strv_split(v);
        if (!words)
                return -LK_ERR_NOMEM;
        scopes = calloc(lk_strv_length(words) + 2, sizeof(char *));
        if (!scopes)
                return -LK_ERR_NOMEM;
        scopes[0] = strdup("openid");
        if (!scopes[0])
                return -LK_ERR_NOMEM;
        for (char **w = words; *w; w++) {
                if (!scope_token_valid(*w))
                        return REFUSE("'%s' is not a valid scope", conf_quote(*w, q));
                if (lk_strv_contains(scopes, *w))
                        continue; /* openid, or a repeat */
                scopes[n] = strdup(*w);
                if (!scopes[n++])
                        return -LK_ERR_NOMEM;
        }
        lk_strv_free(*field);
        *field = TAKE_PTR(scopes);
        return 0;
}

static int parse_algorithms(const struct conf_key *k, const char *v, void *dst, char *why,
                            size_t why_size)
{
        _cleanup_strv_ char **words = NULL;
        char q[CONF_QUOTE_SIZE];
        unsigned algs = 0;

        words = lk_strv_split(v);
        if (!words)
                return -LK_ERR_NOMEM;
        for (char **w = words; *w; w++) {
                unsigned a = lk_alg_from_name(*w);

                if (strcasecmp(*w, "none") == 0)
                        return REFUSE("'none' is never accepted: an unsigned id_token "
                                      "proves nothing");
                if (a == 0)
                        return REFUSE("'%s' is not an algorithm latchkey knows (RS256 RS384 "
                                      "RS512 ES256 ES384 ES512 HS256 HS384 HS512)",
                                      conf_quote(*w, q));
                algs |= a;
        }
        if (algs == 0)
                return REFUSE("names no algorithm");
        *(unsigned *)dst = algs;
        return 0;
}

static int parse_enum(const struct conf_key *k, const char *v, void *dst, char *why,
                      size_t why_size)
{
        char q[CONF_QUOTE_SIZE], names[256] = "";
        size_t len = 0;

        for (const struct conf_enum *n = k->names; n->name; n++)
                if (streq(v, n->name)) {
                        *(int *)dst = n->value;
                        return 0;
                }
        for (const struct conf_enum *n = k->names; n->name && len < sizeof(names); n++)
                len += (size_t)snprintf(names + len, sizeof(names) - len, "%s%s",
                                        n == k->names ? "" : ", ", n->name);
        return REFUSE("'%s' is not one of %s", conf_quote(v, q), names);
}

static int parse_listen(const struct conf_key *k, const char *v, void *dst, char *why,
                        size_t why_size)
{
        char q[CONF_QUOTE_SIZE], reason[160];

        if (*v && lk_listen_address_parse(v, NULL, NULL, reason, sizeof(reason)) < 0)
                return REFUSE("'%s' %s", conf_quote(v, q), reason);
        return store_string(v, dst, false);
}

const struct conf_type conf_type_string = { parse_string, free_string };
const struct conf_type conf_type_claim = { parse_claim, free_string };
const struct conf_type conf_type_path = { parse_path, free_string };
const struct conf_type conf_type_secret = { parse_secret, free_secret };
const struct conf_type conf_type_url = { parse_url, free_string };
const struct conf_type conf_type_issuer = { parse_issuer, free_string };
const struct conf_type conf_type_bool = { parse_bool, NULL };
const struct conf_type conf_type_uint = { parse_uint, NULL };
const struct conf_type conf_type_words = { parse_words, free_words };
const struct conf_type conf_type_scopes = { parse_scopes, free_words };
const struct conf_type conf_type_algorithms = { parse_algorithms, NULL };
const struct conf_type conf_type_enum = { parse_enum, NULL };
const struct conf_type conf_type_listen = { parse_listen, free_string };
