/* SPDX-License-Identifier: MIT */
/*
 * latchkey.conf (SPEC §3): the table of keys with their types and defaults,
 * and what sets one key from one line. The load is in config.c, the other
 * parts in config_loader.h. Adding a key is a field in struct lk_config and
 * one row below (and its entry in latchkey.conf(5)); a new type of value is a
 * conf_type in config_values.c.
 *
 * Values are checked as each line is read, so check-config reports every bad
 * line, even one a later file overrides. Checks between keys (required keys,
 * the client secret, HS* needing it) run once every file has been read.
 *
 * A value holding " #" or " ;" is refused with a hint, since it is nearly
 * always a note copied from the example (inline comments are off: see
 * config_reader.c); client_secret is exempt and taken verbatim.
 *
 * A key set twice in one file: the later line wins, exactly as when a later
 * file sets it again. We do not refuse it: conf.d overrides work the same
 * way, and every check still runs on both lines.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

#include "oidc/config_loader.h"

_Static_assert(sizeof(enum lk_client_auth) == sizeof(int) &&
                       sizeof(enum lk_nonce_mode) == sizeof(int) &&
                       sizeof(enum lk_flow) == sizeof(int) &&
                       sizeof(enum lk_audience_parameter) == sizeof(int),
               "conf_parse_enum stores an int");

static const struct conf_enum client_auth_names[] = {
        { "client_secret_post", LK_CLIENT_AUTH_POST },
        { "client_secret_basic", LK_CLIENT_AUTH_BASIC },
        { NULL, 0 },
};

static const struct conf_enum flow_names[] = {
        { "auto", LK_FLOW_AUTO },
        { "code", LK_FLOW_CODE },
        { "device", LK_FLOW_DEVICE },
        { NULL, 0 },
};

static const struct conf_enum nonce_names[] = {
        { "required", LK_NONCE_REQUIRED },
        { "if-present", LK_NONCE_IF_PRESENT },
        { "off", LK_NONCE_OFF },
        { NULL, 0 },
};

static const struct conf_enum audience_parameter_names[] = {
        { "resource", LK_AUDIENCE_RESOURCE },
        { "audience", LK_AUDIENCE_AUDIENCE },
        { NULL, 0 },
};

/*
 * { section, key, type, field of struct lk_config, then .def (the default, as
 * it would be written in the file), .flags, .min/.max, .names }
 */
#define KEY(sec, key, t, field, ...)                                            \
        { .section = sec, .name = key, .type = &conf_type_##t,                 \
          .offset = offsetof(struct lk_config, field), __VA_ARGS__ }

const struct conf_key conf_keys[] = {
        KEY("provider", "issuer",                 issuer,     issuer),
        KEY("provider", "discovery",              bool,       discovery, .def = "yes"),
        KEY("provider", "authorization_endpoint", url,        authorization_endpoint),
        KEY("provider", "token_endpoint",         url,        token_endpoint),
        KEY("provider", "jwks_uri",               url,        jwks_uri),
        KEY("provider", "userinfo_endpoint",      url,        userinfo_endpoint),
        KEY("provider", "revocation_endpoint",    url,        revocation_endpoint),
        KEY("provider", "device_authorization_endpoint", url, device_authorization_endpoint),
        KEY("provider", "flow",                   enum,       flow,
            .def = "auto", .names = flow_names),
        KEY("provider", "client_id",              string,     client_id),
        KEY("provider", "client_secret_file",     path,       client_secret_file),
        KEY("provider", "client_secret",          secret,     client_secret, .flags = CONF_SECRET),
        KEY("provider", "client_auth",            enum,       client_auth,
            .def = "client_secret_post", .names = client_auth_names),
        KEY("provider", "redirect_uri",           url,        redirect_uri),
        KEY("provider", "scopes",                 scopes,     scopes, .def = "openid profile"),
        KEY("provider", "prompt",                 string,     prompt),
        KEY("provider", "pkce",                   bool,       pkce, .def = "yes"),
        KEY("provider", "nonce",                  enum,       nonce,
            .def = "required", .names = nonce_names),
        KEY("provider", "id_token_algorithms",    algorithms, algorithms,
            .def = "RS256 RS384 RS512 ES256 ES384 ES512"), /* LK_ALG_DEFAULT */
        KEY("provider", "ca_file",                path,       ca_file),
        KEY("provider", "timeout",                uint,       timeout,
            .def = "15", .min = 1, .max = 300),
        KEY("provider", "clock_skew",             uint,       clock_skew,
            .def = "60", .min = 0, .max = 3600),
        KEY("provider", "audience_parameter",     enum,       audience_parameter,
            .def = "resource", .names = audience_parameter_names),

        KEY("users",    "username_claim",         claim,      username_claim,
            .def = "preferred_username"),
        KEY("users",    "strip_suffix",           string,     strip_suffix),
        KEY("users",    "allowed_users",          words,      allowed_users),
        KEY("users",    "allowed_groups",         words,      allowed_groups),
        KEY("users",    "groups_claim",           claim,      groups_claim, .def = "groups"),
        KEY("users",    "allow_system_users",     words,      allow_system_users),

        KEY("sessions", "refresh_margin",         uint,       refresh_margin,
            .def = "120", .min = 0, .max = 86400),
        KEY("sessions", "refresh_ahead",          bool,       refresh_ahead, .def = "yes"),
        KEY("sessions", "login_timeout",          uint,       login_timeout,
            .def = "600", .min = 1, .max = 86400),
        KEY("sessions", "revoke_on_close",        bool,       revoke_on_close, .def = "no"),
        KEY("sessions", "idle_exit",              uint,       idle_exit,
            .def = "300", .min = 0, .max = 86400),

        KEY("callback", "listen",                 listen,     callback_listen),
        KEY("callback", "certificate",            path,       callback_certificate),
        KEY("callback", "key",                    path,       callback_key),

        /* The defaults are base/accounts_conf.h's, which the NSS and PAM modules read. */
        KEY("accounts", "nss",                    bool,       nss, .def = "no"),
        KEY("accounts", "uid_min",                uint,       uid_min,
            .def = "1900000000", .min = 1000, .max = 4294967294u),
        KEY("accounts", "uid_max",                uint,       uid_max,
            .def = "2140000000", .min = 1000, .max = 4294967294u),
        KEY("accounts", "allowed_names",          words,      allowed_names),
        KEY("accounts", "allowed_suffixes",       words,      allowed_suffixes),
        KEY("accounts", "home",                   path,       home, .def = "/home/%u"),
        KEY("accounts", "shell",                  path,       shell, .def = "/bin/bash"),
        KEY("accounts", "gecos_claim",            claim,      gecos_claim, .def = "name"),
        KEY("accounts", "group_map",              words,      group_map),
        KEY("accounts", "max_offline_days",       uint,       max_offline_days,
            .def = "30", .min = 1, .max = 3650),

        KEY("offline",  "pin",                    bool,       offline_pin, .def = "no"),
        KEY("offline",  "pin_min_length",         uint,       pin_min_length,
            .def = "4", .min = 1, .max = 128),
        KEY("offline",  "argon2_memory",          uint,       argon2_memory,
            .def = "65536", .min = 8192, .max = 1048576),
        KEY("offline",  "argon2_time",            uint,       argon2_time,
            .def = "3", .min = 1, .max = 64),
        KEY("offline",  "argon2_parallelism",     uint,       argon2_parallelism,
            .def = "1", .min = 1, .max = 16),
        KEY("offline",  "lockout_after",          uint,       lockout_after,
            .def = "3", .min = 1, .max = 100),
        KEY("offline",  "lockout_delay",          uint,       lockout_delay,
            .def = "30", .min = 1, .max = 3600),
        KEY("offline",  "max_failures",           uint,       max_failures,
            .def = "10", .min = 1, .max = 1000),
};

const size_t conf_n_keys = ELEMENTSOF(conf_keys);

static const char *const sections[] = {
        "provider", "users", "sessions", "callback", "accounts", "offline", "pam",
};

/* [pam] belongs to pam_latchkey.so (pam_latchkey(8)), which reads it itself; here only its names. */
static const char *const pam_keys[] = { "services", "users", "groups", "methods" };

bool conf_section_known(const char *name)
{
        for (size_t i = 0; i < ELEMENTSOF(sections); i++)
                if (streq(name, sections[i]))
                        return true;
        return false;
}

const struct conf_key *conf_key_by_name(const char *name)
{
        for (size_t i = 0; i < ELEMENTSOF(conf_keys); i++)
                if (streq(conf_keys[i].name, name))
                        return &conf_keys[i];
        return NULL;
}

struct conf_origin *conf_origin_of(struct conf_loader *l, const char *name)
{
        return &l->origins[conf_key_by_name(name) - conf_keys];
}

static const struct conf_key *find_key(const char *section, const char *name)
{
        for (size_t i = 0; i < ELEMENTSOF(conf_keys); i++)
                if (streq(conf_keys[i].section, section) && streq(conf_keys[i].name, name))
                        return &conf_keys[i];
        return NULL;
}

static bool looks_like_inline_comment(const char *v)
{
        for (const char *p = v; *p; p++)
                if ((*p == '#' || *p == ';') && p > v && (p[-1] == ' ' || p[-1] == '\t'))
                        return true;
        return false;
}

/* A key of a known section, but not in our table: a [pam] key, or a problem. */
static void other_key(struct conf_loader *l, size_t source, unsigned line, const char *section,
                      const char *name)
{
        const struct conf_key *elsewhere = conf_key_by_name(name);

        if (streq(section, "pam")) {
                for (size_t i = 0; i < ELEMENTSOF(pam_keys); i++)
                        if (streq(name, pam_keys[i]))
                                return;
                conf_problem(l, source, line, section, name,
                             "unknown key (known here: services, users, groups, methods)");
        } else if (elsewhere)
                conf_problem(l, source, line, section, name,
                             "unknown key here; it belongs under [%s]", elsewhere->section);
        else
                conf_problem(l, source, line, section, name, "unknown key");
}

void conf_set_key(struct conf_loader *l, size_t source, unsigned line, const char *section,
                  const char *name, const char *value)
{
        const struct conf_key *k;
        struct conf_origin *o;
        char why[LK_ERROR_MESSAGE_MAX], q[CONF_QUOTE_SIZE];
        int r;

        if (!section) {
                k = conf_key_by_name(name);
                if (k)
                        conf_problem(l, source, line, NULL, name,
                                     "is outside any section; put it under [%s]", k->section);
                else
                        conf_problem(l, source, line, NULL, name,
                                     "is outside any section, and not a key latchkey knows");
                return;
        }
        k = find_key(section, name);
        if (!k) {
                other_key(l, source, line, section, name);
                return;
        }

        /* The secret is never copied, not even to a buffer that is not shown. */
        if (!(k->flags & CONF_SECRET) && looks_like_inline_comment(value)) {
                r = -LK_ERR_CONFIG;
                snprintf(why, sizeof(why), "'%s' holds a comment; a comment must be a whole line "
                         "starting with # or ;", conf_quote(value, q));
        } else
                r = k->type->parse(k, value, (char *)l->c + k->offset, why, sizeof(why));
        if (r == -LK_ERR_NOMEM)
                l->oom = true;
        else if (r < 0)
                conf_problem(l, source, line, k->section, k->name, "%s", why);

        o = &l->origins[k - conf_keys];
        o->source = source;
        o->line = line;
        o->bad = r < 0;
}

void conf_key_problem(struct conf_loader *l, const char *name, const char *fmt, ...)
{
        const struct conf_origin *o = conf_origin_of(l, name);
        va_list ap;

        va_start(ap, fmt);
        conf_vproblem(l, o->source == SIZE_MAX ? 0 : o->source, o->line,
                      conf_key_by_name(name)->section, name, fmt, ap);
        va_end(ap);
}
