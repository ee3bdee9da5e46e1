/* SPDX-License-Identifier: MIT */
/* Provider accounts, the broker's side of the accounts cache: see accounts.h. */
#include "broker/accounts.h"

#include <errno.h>
#include <grp.h>
#include <openssl/evp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "base/accounts_conf.h"
#include "base/accounts_file.h"
#include "base/text.h"
#include "base/uidmap.h"
#include "base/user_name.h"
#include "base/util.h"
#include "oidc/fileio.h"
#include "oidc/log.h"

#define IDENTITY_BYTES 16   /* of SHA-256(issuer "\n" sub), in hex: 32 digits */
#define GECOS_MAX 256       /* bytes of GECOS kept from the claim */
/*
 * A refresh that changes nothing but the time rewrites the cache only this often (seconds):
 * the time counts in days (max_offline_days), and every write is the whole file.
 */
#define TOUCH_INTERVAL_S 3600

struct lk_accounts {
        const struct lk_config *config;
        char *path;
        struct lk_account *list;
        size_t n;
};

static struct lk_account *find(const struct lk_accounts *a, const char *name)
{
        for (size_t i = 0; i < a->n; i++)
                if (streq(a->list[i].name, name))
                        return &a->list[i];
        return NULL;
}

static struct lk_account *find_uid(const struct lk_accounts *a, uint32_t uid)
{
        for (size_t i = 0; i < a->n; i++)
                if (a->list[i].uid == uid)
                        return &a->list[i];
        return NULL;
}

/* Rebuilds each account's group names from the G lines, for the next write. */
static int name_groups(struct lk_account *acc, const struct lk_accounts_map *m)
{
        for (unsigned k = 0; k < acc->n_gids; k++) {
                struct lk_group_view g;

                if (lk_accounts_find_gid(m, acc->gids[k], &g) < 0)
                        continue;
                acc->group_names[k] = strndup(g.name, g.name_len);
                if (!acc->group_names[k])
                        return -ENOMEM;
        }
        return 0;
}

static int load(struct lk_accounts *a, struct lk_error *e)
{
        _cleanup_free_ char *text = NULL;
        struct lk_accounts_map m;
        struct lk_account_view v;
        size_t len = 0, pos = 0;
        int r;

        if (access(a->path, F_OK) < 0 && errno == ENOENT)
                return 0; /* no account yet */
        r = lk_read_file(a->path, LK_ACCOUNTS_FILE_MAX, &text, &len, e);
        if (r < 0)
                return r;
        if (lk_accounts_map_init(&m, text, len) < 0 || lk_accounts_validate(&m) < 0) {
                log_error("%s is not an accounts cache of this version; starting with no "
                          "cached accounts, and replacing it at the next sign-in", a->path);
                return 0;
        }
        while ((r = lk_accounts_next(&m, &pos, &v)) > 0) {
                struct lk_account *grown = reallocarray(a->list, a->n + 1, sizeof(*a->list));

                if (!grown)
                        return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
                a->list = grown;
                if (lk_account_from_view(&v, &a->list[a->n]) < 0)
                        return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
                a->n++;
                if (name_groups(&a->list[a->n - 1], &m) < 0)
                        return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        }
        return 0;
}

int lk_accounts_new(const struct lk_config *config, const char *path, struct lk_accounts **ret,
                    struct lk_error *e)
{
        struct lk_accounts *a;
        int r;

        a = calloc(1, sizeof(*a));
        if (!a || !(a->path = strdup(path))) {
                free(a);
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        }
        a->config = config;
        r = load(a, e);
        if (r < 0) {
                lk_accounts_free(a);
                return r;
        }
        *ret = a;
        return 0;
}

void lk_accounts_free(struct lk_accounts *a)
{
        if (!a)
                return;
        for (size_t i = 0; i < a->n; i++)
                lk_account_clear(&a->list[i]);
        free(a->list);
        free(a->path);
        free(a);
}

static int save(struct lk_accounts *a, struct lk_error *e)
{
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r;

        r = lk_accounts_format(a->list, a->n, &text, &len);
        if (r == -ENOMEM)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        if (r < 0)
                return lk_error_set(e, LK_ERR_IO, "The accounts cache cannot be written: a field "
                                    "holds what the format refuses");
        /* World-readable: the NSS module runs in every user's processes. No secret is in it. */
        return lk_write_file_atomic(a->path, text, len, 0644, e);
}

static bool strv_match(char *const *l, const char *name,
                       bool (*match)(const char *, size_t, const char *))
{
        for (char *const *i = l; i && *i; i++)
                if (match(*i, strlen(*i), name))
                        return true;
        return false;
}

static bool allowed_before_login(const struct lk_config *c, const char *name)
{
        if (!c->nss || lk_user_name_problem(name, strlen(name)))
                return false;
        return strv_match(c->allowed_names, name, lk_accounts_pattern_match) ||
               strv_match(c->allowed_suffixes, name, lk_accounts_suffix_match);
}

static uint32_t uid_of(const struct lk_config *c, const char *name)
{
        return lk_uidmap_uid(name, strlen(name), c->uid_min, c->uid_max);
}

/* getpwnam(): 1 and the uid when found, 0 when not. */
static int local_user(const char *user, uid_t *ret_uid)
{
        struct passwd pw, *res = NULL;
        char buf[4096];

        if (getpwnam_r(user, &pw, buf, sizeof(buf), &res) != 0 || !res)
                return 0;
        *ret_uid = res->pw_uid;
        return 1;
}

/* A name NSS knows that is not our cached account of that uid: the admin's own user. */
static bool is_local(const struct lk_accounts *a, const char *user)
{
        const struct lk_account *acc = find(a, user);
        uid_t uid;

        return local_user(user, &uid) && (!acc || acc->uid != uid);
}

int lk_accounts_resolve_user(const struct lk_accounts *a, const char *user, uid_t *ret_uid,
                             struct lk_error *e)
{
        const struct lk_account *acc;

        if (isempty(user))
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT, "The user name is empty");
        if (local_user(user, ret_uid))
                return 0;
        if (a && (acc = find(a, user))) {
                *ret_uid = acc->uid;
                return 0;
        }
        if (a && allowed_before_login(a->config, user)) {
                *ret_uid = uid_of(a->config, user);
                return 0;
        }
        return lk_error_set(e, LK_ERR_NOT_FOUND, "There is no local user '%s'", LK_ESCAPED(user));
}

static int identity_of(const json_t *claims, char out[2 * IDENTITY_BYTES + 1])
{
        const char *iss = json_string_value(json_object_get(claims, "iss"));
        const char *sub = json_string_value(json_object_get(claims, "sub"));
        unsigned char md[EVP_MAX_MD_SIZE];
        _cleanup_free_ char *text = NULL;
        unsigned mdlen = 0;

        if (!iss || !sub || asprintf(&text, "%s\n%s", iss, sub) < 0)
                return -1;
        if (!EVP_Digest(text, strlen(text), md, &mdlen, EVP_sha256(), NULL) ||
            mdlen < IDENTITY_BYTES)
                return -1;
        for (unsigned i = 0; i < IDENTITY_BYTES; i++)
                snprintf(out + 2 * i, 3, "%02x", md[i]);
        return 0;
}

/* The claim as GECOS: printable, without ':' or control characters, capped. */
static int gecos_of(const struct lk_config *c, const json_t *claims, char **ret)
{
        const char *v = c->gecos_claim ? json_string_value(json_object_get(claims, c->gecos_claim))
                                       : NULL;
        char *s = strndup(v ?: "", GECOS_MAX);

        if (!s)
                return -ENOMEM;
        for (unsigned char *p = (unsigned char *)s; *p; p++)
                if (*p < 0x20 || *p == 0x7f || *p == ':')
                        *p = ' ';
        *ret = s;
        return 0;
}

static bool claim_has(const json_t *groups, const char *name)
{
        size_t i;
        json_t *g;

        if (json_is_string(groups))
                return streq(json_string_value(groups), name);
        json_array_foreach(groups, i, g)
                if (json_is_string(g) && streq(json_string_value(g), name))
                        return true;
        return false;
}

/* group_map applied to the groups claim: the local groups, with their gids. */
static int map_groups(const struct lk_config *c, const char *user, const json_t *claims,
                      struct lk_account *acc)
{
        const json_t *groups = json_object_get(claims, c->groups_claim ?: "groups");

        for (unsigned k = 0; k < acc->n_gids; k++) {
                free(acc->group_names[k]);
                acc->group_names[k] = NULL;
        }
        acc->n_gids = 0;
        for (char **w = c->group_map; groups && w && *w; w++) {
                const char *colon = strrchr(*w, ':');
                _cleanup_free_ char *provider = NULL;
                struct group gr, *res = NULL;
                char buf[16384];
                bool seen = false;

                if (!colon)
                        continue;
                provider = strndup(*w, (size_t)(colon - *w));
                if (!provider)
                        return -ENOMEM;
                if (!claim_has(groups, provider))
                        continue;
                if (getgrnam_r(colon + 1, &gr, buf, sizeof(buf), &res) != 0 || !res) {
                        log_warning("[accounts] group_map: %s is in provider group %s, but there "
                                    "is no local group %s; not adding it", user,
                                    LK_ESCAPED(provider), colon + 1);
                        continue;
                }
                for (unsigned k = 0; k < acc->n_gids; k++)
                        seen = seen || acc->gids[k] == res->gr_gid;
                if (seen || acc->n_gids == LK_ACCOUNTS_GIDS_MAX)
                        continue;
                acc->group_names[acc->n_gids] = strdup(res->gr_name);
                if (!acc->group_names[acc->n_gids])
                        return -ENOMEM;
                acc->gids[acc->n_gids++] = res->gr_gid;
        }
        return 0;
}

/* Whether uid (and gid = uid) is free for user: no other account, user or group holds it. */
static int check_free(const struct lk_accounts *a, const char *user, uint32_t uid,
                      struct lk_error *e)
{
        const struct lk_account *other = find_uid(a, uid);
        struct passwd pw, *pres = NULL;
        struct group gr, *gres = NULL;
        char buf[16384];
        const char *holder = NULL, *what = NULL;

        if (other && !streq(other->name, user)) {
                holder = other->name;
                what = "the provider account";
        } else if (getpwuid_r(uid, &pw, buf, sizeof(buf), &pres) == 0 && pres &&
                   !streq(pres->pw_name, user)) {
                holder = pres->pw_name;
                what = "the local user";
        } else if (getgrgid_r(uid, &gr, buf, sizeof(buf), &gres) == 0 && gres &&
                   !streq(gres->gr_name, user)) {
                holder = gres->gr_name;
                what = "the local group";
        }
        if (!holder)
                return 0;
        lk_log_auth(LOG_ERR,
                    "Refusing provider account %s: its uid %u (from its name, [accounts] "
                    "uid_min..uid_max) is already %s %s's; see libnss_latchkey(8) \"UIDS\" for the "
                    "ways out", user, (unsigned)uid, what, LK_ESCAPED(holder));
        return lk_error_set(e, LK_ERR_NOT_ALLOWED,
                            "The uid of %s (%u) is already taken on this host; ask the "
                            "administrator", user, (unsigned)uid);
}

int lk_accounts_signed_in(struct lk_accounts *a, const char *user, uid_t uid,
                          const json_t *claims, struct lk_error *e)
{
        char identity[2 * IDENTITY_BYTES + 1];
        struct lk_account *acc, fresh = {0};
        char home[LK_ACCOUNTS_TEMPLATE_MAX + 1], shell[LK_ACCOUNTS_TEMPLATE_MAX + 1];
        bool added = false;
        int r;

        if (!a || !a->config->nss || is_local(a, user))
                return 0;
        if (identity_of(claims, identity) < 0)
                return lk_error_set(e, LK_ERR_INVALID_ID_TOKEN,
                                    "The id_token has no usable iss and sub");
        acc = find(a, user);
        if (acc && acc->identity && !streq(acc->identity, identity)) {
                lk_log_auth(LOG_ERR,
                            "Refusing %s: the account was made for another identity at the "
                            "provider (the name now maps to a different sub); if the name really "
                            "changed hands, run 'latchkeyctl forget %s' first", user, user);
                return lk_error_set(e, LK_ERR_NOT_ALLOWED,
                                    "The account %s belongs to another identity at the provider",
                                    user);
        }
        if (!acc) {
                if (!allowed_before_login(a->config, user))
                        return 0; /* neither cached nor admitted: not ours to keep */
                r = check_free(a, user, (uint32_t)uid, e);
                if (r < 0)
                        return r;
                if (lk_accounts_expand(a->config->home ?: LK_ACCOUNTS_HOME, user, home,
                                       sizeof(home)) < 0 ||
                    lk_accounts_expand(a->config->shell ?: LK_ACCOUNTS_SHELL, user, shell,
                                       sizeof(shell)) < 0)
                        return lk_error_set(e, LK_ERR_CONFIG,
                                            "[accounts] home or shell does not expand for %s", user);
                fresh.name = strdup(user);
                fresh.home = strdup(home);
                fresh.shell = strdup(shell);
                fresh.uid = fresh.gid = (uint32_t)uid;
                if (!fresh.name || !fresh.home || !fresh.shell) {
                        lk_account_clear(&fresh);
                        return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
                }
                acc = reallocarray(a->list, a->n + 1, sizeof(*a->list));
                if (!acc) {
                        lk_account_clear(&fresh);
                        return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
                }
                a->list = acc;
                acc = &a->list[a->n++];
                *acc = fresh;
                added = true;
        }
        free(acc->identity);
        free(acc->gecos);
        acc->gecos = NULL;
        acc->identity = strdup(identity);
        if (!acc->identity || gecos_of(a->config, claims, &acc->gecos) < 0 ||
            map_groups(a->config, user, claims, acc) < 0)
                r = lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        else {
                acc->last_signin = (int64_t)time(NULL);
                acc->refused = false;
                r = save(a, e);
        }
        if (r < 0 && added) {
                lk_account_clear(acc);
                a->n--;
        }
        if (r == 0 && added)
                lk_log_auth(LOG_NOTICE, "Provider account %s made: uid %u, %u local groups",
                            user, (unsigned)uid, acc->n_gids);
        return r;
}

void lk_accounts_refreshed(struct lk_accounts *a, const char *user, const json_t *claims)
{
        struct lk_account *acc = a ? find(a, user) : NULL;
        uint32_t before[LK_ACCOUNTS_GIDS_MAX];
        unsigned n_before;
        struct lk_error e = {0};
        int64_t now = (int64_t)time(NULL);

        if (!acc)
                return;
        n_before = acc->n_gids;
        memcpy(before, acc->gids, sizeof(before));
        if (claims && map_groups(a->config, user, claims, acc) < 0)
                return;
        if (!acc->refused && acc->n_gids == n_before &&
            memcmp(before, acc->gids, n_before * sizeof(before[0])) == 0 &&
            now - acc->last_signin < TOUCH_INTERVAL_S)
                return; /* nothing the cache's readers would see */
        acc->last_signin = now;
        acc->refused = false;
        if (save(a, &e) < 0)
                log_error("Cannot write the accounts cache: %s", e.message);
}

void lk_accounts_refused(struct lk_accounts *a, const char *user)
{
        struct lk_account *acc = a ? find(a, user) : NULL;
        struct lk_error e = {0};

        if (!acc || acc->refused)
                return;
        acc->refused = true;
        if (save(a, &e) < 0)
                log_error("Cannot write the accounts cache: %s", e.message);
        else
                lk_log_auth(LOG_NOTICE, "Provider account %s: the provider refused its refresh; "
                            "the account step refuses it until it signs in again", user);
}

int lk_accounts_forget(struct lk_accounts *a, const char *user, struct lk_error *e)
{
        struct lk_account *acc = a ? find(a, user) : NULL;
        struct lk_account gone;
        int r;

        if (!acc)
                return lk_error_set(e, LK_ERR_NOT_FOUND, "No cached provider account '%s'",
                                    LK_ESCAPED(user));
        gone = *acc;
        *acc = a->list[--a->n];
        r = save(a, e);
        if (r < 0) {
                a->list[a->n++] = *acc;
                *acc = gone;
                return r;
        }
        lk_log_auth(LOG_NOTICE, "Provider account %s (uid %u) forgotten", gone.name,
                    (unsigned)gone.uid);
        lk_account_clear(&gone);
        return 0;
}
