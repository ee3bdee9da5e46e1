/* SPDX-License-Identifier: MIT */
/*
 * latchkey.conf (SPEC §3): the table of keys, their defaults, and the load.
 * The parts are in config_internal.h; adding a key is one row below (and a
 * field in struct lk_config, a default in config_new(), its free in
 * lk_config_free(), a line in latchkey.conf(5)).
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
#include "oidc/config.h"

#include <stdint.h>
#include <stdio.h>

#include "oidc/config_internal.h"

_Static_assert(sizeof(enum lk_client_auth) == sizeof(int) &&
                       sizeof(enum lk_nonce_mode) == sizeof(int),
               "conf_parse_enum stores an int");

static const struct conf_enum client_auth_names[] = {
        { "client_secret_post", LK_CLIENT_AUTH_POST },
        { "client_secret_basic", LK_CLIENT_AUTH_BASIC },
        { NULL, 0 },
};

static const struct conf_enum nonce_names[] = {
        { "required", LK_NONCE_REQUIRED },
        { "if-present", LK_NONCE_IF_PRESENT },
        { "off", LK_NONCE_OFF },
        { NULL, 0 },
};

/* { section, key, parse_<type>, field of struct lk_config, then .flags, .min/.max, .names } */
#define KEY(sec, key, type, field, ...)                                          \
        { .section = sec, .name = key, .parse = conf_parse_##type,              \
          .offset = offsetof(struct lk_config, field), __VA_ARGS__ }

const struct conf_key conf_keys[] = {
        KEY("provider", "issuer",                 issuer,     issuer),
        KEY("provider", "discovery",              bool,       discovery),
        KEY("provider", "authorization_endpoint", url,        authorization_endpoint),
        KEY("provider", "token_endpoint",         url,        token_endpoint),
        KEY("provider", "jwks_uri",               url,        jwks_uri),
        KEY("provider", "userinfo_endpoint",      url,        userinfo_endpoint),
        KEY("provider", "revocation_endpoint",    url,        revocation_endpoint),
        KEY("provider", "client_id",              string,     client_id),
        KEY("provider", "client_secret_file",     path,       client_secret_file),
        KEY("provider", "client_secret",          secret,     client_secret, .flags = CONF_SECRET),
        KEY("provider", "client_auth",            enum,       client_auth, .names = client_auth_names),
        KEY("provider", "redirect_uri",           url,        redirect_uri),
        KEY("provider", "scopes",                 scopes,     scopes),
        KEY("provider", "prompt",                 string,     prompt),
        KEY("provider", "pkce",                   bool,       pkce),
        KEY("provider", "nonce",                  enum,       nonce, .names = nonce_names),
        KEY("provider", "id_token_algorithms",    algorithms, algorithms),
        KEY("provider", "ca_file",                path,       ca_file),
        KEY("provider", "timeout",                uint,       timeout, .min = 1, .max = 300),
        KEY("provider", "clock_skew",             uint,       clock_skew, .min = 0, .max = 3600),

        KEY("users",    "username_claim",         claim,      username_claim),
        KEY("users",    "strip_suffix",           string,     strip_suffix),
        KEY("users",    "allowed_users",          words,      allowed_users),
        KEY("users",    "allowed_groups",         words,      allowed_groups),
        KEY("users",    "groups_claim",           claim,      groups_claim),
        KEY("users",    "allow_system_users",     words,      allow_system_users),

        KEY("sessions", "refresh_margin",         uint,       refresh_margin, .min = 0, .max = 86400),
        KEY("sessions", "login_timeout",          uint,       login_timeout, .min = 1, .max = 86400),
        KEY("sessions", "revoke_on_close",        bool,       revoke_on_close),
        KEY("sessions", "idle_exit",              uint,       idle_exit, .min = 0, .max = 86400),
};
const size_t conf_n_keys = ELEMENTSOF(conf_keys);

static const char *const sections[] = { "provider", "users", "sessions", "pam" };

/* [pam] belongs to pam_latchkey.so (pam_latchkey(8)), which reads it itself; here only its names. */
static const char *const pam_keys[] = { "services", "users", "groups" };

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
                             "unknown key (known here: services, users, groups)");
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
                r = k->parse(k, value, (char *)l->c + k->offset, why, sizeof(why));
        if (r == -LK_ERR_NOMEM)
                l->oom = true;
        else if (r < 0)
                conf_problem(l, source, line, k->section, k->name, "%s", why);

        o = &l->origins[k - conf_keys];
        o->source = source;
        o->line = line;
        o->bad = r < 0;
}

/* ---- the whole config ---- */

static struct lk_config *config_new(void)
{
        struct lk_config *c;

        c = calloc(1, sizeof(*c));
        if (!c)
                return NULL;
        c->discovery = true;
        c->client_auth = LK_CLIENT_AUTH_POST;
        c->scopes = lk_strv_split("openid profile");
        c->pkce = true;
        c->nonce = LK_NONCE_REQUIRED;
        c->algorithms = LK_ALG_DEFAULT;
        c->timeout = 15;
        c->clock_skew = 60;
        c->username_claim = strdup("preferred_username");
        c->groups_claim = strdup("groups");
        c->refresh_margin = 120;
        c->login_timeout = 600;
        c->revoke_on_close = false;
        c->idle_exit = 300;
        if (!c->scopes || !c->username_claim || !c->groups_claim) {
                lk_config_free(c);
                return NULL;
        }
        return c;
}

void lk_config_free(struct lk_config *c)
{
        if (!c)
                return;
        free(c->issuer);
        free(c->authorization_endpoint);
        free(c->token_endpoint);
        free(c->jwks_uri);
        free(c->userinfo_endpoint);
        free(c->revocation_endpoint);
        free(c->client_id);
        free(c->client_secret_file);
        lk_secret_free(c->client_secret);
        free(c->client_secret_source);
        free(c->redirect_uri);
        lk_strv_free(c->scopes);
        free(c->prompt);
        free(c->ca_file);
        free(c->username_claim);
        free(c->strip_suffix);
        lk_strv_free(c->allowed_users);
        lk_strv_free(c->allowed_groups);
        free(c->groups_claim);
        lk_strv_free(c->allow_system_users);
        free(c);
}

static void loader_done(struct conf_loader *l)
{
        lk_config_free(l->c);
        lk_config_problems_clear(&l->problems);
        for (size_t i = 0; i < l->n_sources; i++)
                free(l->sources[i].name);
        free(l->sources);
        free(l->origins);
}

static int loader_init(struct conf_loader *l)
{
        *l = (struct conf_loader){0};
        l->origins = calloc(ELEMENTSOF(conf_keys), sizeof(*l->origins));
        l->c = config_new();
        if (!l->origins || !l->c)
                return -LK_ERR_NOMEM;
        for (size_t i = 0; i < ELEMENTSOF(conf_keys); i++)
                l->origins[i].source = SIZE_MAX;
        return 0;
}

/* Hands the result over: the config on success, else every problem and the first in e. */
static int loader_finish(struct conf_loader *l, int r, struct lk_config **ret,
                         struct lk_config_problems *problems, struct lk_error *e)
{
        if (r == 0 && !l->oom)
                conf_check_keys(l);
        if (r < 0 || l->oom) {
                loader_done(l);
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory reading the configuration");
        }
        if (l->problems.n > 0) {
                _cleanup_free_ char *first = lk_config_problem_string(&l->problems.items[0]);

                r = lk_error_set(e, LK_ERR_CONFIG, "%s", first ?: "configuration error");
                if (problems) {
                        *problems = l->problems;
                        l->problems = (struct lk_config_problems){0};
                }
                loader_done(l);
                return r;
        }
        *ret = TAKE_PTR(l->c);
        loader_done(l);
        return 0;
}

int lk_config_load(const char *path, struct lk_config **ret, struct lk_config_problems *problems,
                   struct lk_error *e)
{
        struct conf_loader l;
        int r;

        lk_config_problems_clear(problems);
        if (!path)
                path = LK_CONFIG_PATH;
        r = loader_init(&l);
        if (r == 0)
                r = conf_parse_file(&l, path);
        if (r == 0)
                r = conf_parse_dropins(&l, path);
        return loader_finish(&l, r, ret, problems, e);
}

int lk_config_load_string(const char *text, const char *name, struct lk_config **ret,
                          struct lk_config_problems *problems, struct lk_error *e)
{
        struct conf_loader l;
        size_t source;
        int r;

        lk_config_problems_clear(problems);
        r = loader_init(&l);
        if (r == 0)
                r = conf_add_source(&l, name ?: "(config)", &source);
        if (r == 0)
                r = conf_parse_text(&l, source, text, strlen(text));
        return loader_finish(&l, r, ret, problems, e);
}
