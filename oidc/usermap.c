/* SPDX-License-Identifier: MIT */
/*
 * From verified id_token claims to a local user name ([users], SPEC §3).
 *
 * The name comes from the provider, and ends up in getpwnam(), in file names
 * under the state folder and in log lines, so it must look like a user name
 * before anything else sees it.
 */
#include "oidc/usermap.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/text.h"
#include "base/user_name.h"
#include "base/utf8.h"

#define USER_NAME_MAX LK_USER_NAME_MAX

static bool group_allowed(const struct lk_config *c, const json_t *groups)
{
        size_t i;
        json_t *g;

        if (json_is_string(groups))
                return lk_strv_contains(c->allowed_groups, json_string_value(groups));
        json_array_foreach(groups, i, g)
                /* Not a string: it cannot match a name, so it is skipped. */
                if (json_is_string(g) && lk_strv_contains(c->allowed_groups, json_string_value(g)))
                        return true;
        return false;
}

int lk_usermap(const struct lk_config *c, const json_t *claims, char **ret_user, struct lk_error *e)
{
        _cleanup_free_ char *name = NULL;
        const char *claim = c->username_claim ?: "preferred_username", *why;
        json_t *v;
        size_t len;

        v = json_object_get(claims, claim);
        if (!v)
                return lk_error_set(e, LK_ERR_INVALID_ID_TOKEN, "The id_token has no '%s' claim",
                                    claim);
        if (!json_is_string(v))
                return lk_error_set(e, LK_ERR_INVALID_ID_TOKEN,
                                    "The id_token's '%s' claim is not a string", claim);

        len = json_string_length(v);
        if (len > 4 * USER_NAME_MAX)
                return lk_error_set(e, LK_ERR_INVALID_ID_TOKEN,
                                    "The id_token's '%s' claim is longer than 256 bytes", claim);
        name = malloc(len + 1);
        if (!name)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        memcpy(name, json_string_value(v), len);
        name[len] = 0;

        if (!isempty(c->strip_suffix) && strlen(name) == len &&
            lk_endswith(name, c->strip_suffix)) {
                len -= strlen(c->strip_suffix);
                name[len] = 0;
        }

        why = lk_user_name_problem(name, len);
        if (why)
                return lk_error_set(e, LK_ERR_INVALID_ID_TOKEN,
                                    "The id_token's '%s' claim ('%s') is not a usable user name: "
                                    "it %s",
                                    claim, LK_ESCAPED(name), why);

        /* Both rules apply where both are set, as sshd's AllowUsers and AllowGroups. */
        if (c->allowed_users && c->allowed_users[0] && !lk_strv_contains(c->allowed_users, name))
                return lk_error_set(e, LK_ERR_NOT_ALLOWED, "User %s is not in allowed_users",
                                    LK_ESCAPED(name));

        if (c->allowed_groups && c->allowed_groups[0]) {
                const char *gclaim = c->groups_claim ?: "groups";
                json_t *groups = json_object_get(claims, gclaim);

                if (!groups)
                        return lk_error_set(e, LK_ERR_NOT_ALLOWED,
                                            "User %s is not allowed: the id_token has no '%s' "
                                            "claim, and allowed_groups is set",
                                            LK_ESCAPED(name), gclaim);
                if (!json_is_string(groups) && !json_is_array(groups))
                        return lk_error_set(e, LK_ERR_NOT_ALLOWED,
                                            "User %s is not allowed: the id_token's '%s' claim is "
                                            "neither a string nor an array of strings",
                                            LK_ESCAPED(name), gclaim);
                if (!group_allowed(c, groups))
                        return lk_error_set(e, LK_ERR_NOT_ALLOWED,
                                            "User %s is in none of the allowed_groups",
                                            LK_ESCAPED(name));
        }

        *ret_user = TAKE_PTR(name);
        return 0;
}

static bool is_blank(char c)
{
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* One login.defs line: true with the value (cut in place) when it sets name. */
static bool defs_line(char *line, const char *name, char **ret_value)
{
        size_t n = strlen(name);
        char *v, *end;

        while (is_blank(*line))
                line++;
        if (strncmp(line, name, n) != 0 || !is_blank(line[n]))
                return false;
        v = line + n;
        while (is_blank(*v))
                v++;
        end = v + strlen(v);
        while (end > v && is_blank(end[-1]))
                end--;
        *end = 0;
        if (end - v >= 2 && v[0] == '"' && end[-1] == '"') {
                end[-1] = 0;
                v++;
        }
        *ret_value = v;
        return true;
}

int lk_login_defs_uid_min(const char *path, uid_t *ret, struct lk_error *e)
{
        return lk_login_defs_uid(path, "UID_MIN", LK_UID_MIN_DEFAULT, ret, e);
}

int lk_login_defs_uid(const char *path, const char *name, uid_t def, uid_t *ret,
                      struct lk_error *e)
{
        _cleanup_free_ char *line = NULL;
        unsigned long uid_min = def;
        size_t cap = 0;
        unsigned lineno = 0;
        FILE *f;

        f = fopen(path, "re");
        if (!f) {
                if (errno == ENOENT) {
                        *ret = def;
                        return 0;
                }
                return lk_error_from_errno(e, errno, "Cannot read %s", path);
        }
        while (getline(&line, &cap, f) >= 0) {
                char *v, *end = NULL;
                char shown[32];
                unsigned long n;

                lineno++;
                if (!defs_line(line, name, &v))
                        continue;
                errno = 0;
                n = strtoul(v, &end, 0);
                if (*v == 0 || *v == '-' || *v == '+' || errno != 0 || *end != 0 ||
                    n >= (uid_t)-1) {
                        lk_text_escape(v, shown, sizeof(shown));
                        fclose(f);
                        return lk_error_set(e, LK_ERR_CONFIG,
                                            "%s:%u: %s '%s' is not a uid", path, lineno,
                                            name, shown);
                }
                uid_min = n;
        }
        if (ferror(f)) {
                fclose(f);
                return lk_error_set(e, LK_ERR_IO, "Cannot read %s", path);
        }
        fclose(f);
        *ret = (uid_t)uid_min;
        return 0;
}

int lk_usermap_check_account(const struct lk_config *c, uid_t uid_min, const char *user,
                             uid_t uid, struct lk_error *e)
{
        char show[64];

        if (uid != 0 && uid >= uid_min)
                return 0;
        if (lk_strv_contains(c->allow_system_users, user))
                return 0;
        lk_text_escape(user, show, sizeof(show));
        if (uid == 0)
                return lk_error_set(e, LK_ERR_NOT_ALLOWED,
                                    "%s is root (uid 0): single sign-on may log in as root only "
                                    "where [users] allow_system_users names it",
                                    show);
        return lk_error_set(e, LK_ERR_NOT_ALLOWED,
                            "%s is a system account (uid %u, below UID_MIN %u): single sign-on "
                            "may log in as it only where [users] allow_system_users names it",
                            show, (unsigned)uid, (unsigned)uid_min);
}
