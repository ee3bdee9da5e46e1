/* SPDX-License-Identifier: MIT */
#include "base/accounts_conf.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/ini_files.h"
#include "base/uidmap.h"
#include "base/user_name.h"
#include "base/util.h"

#define SEPARATORS " \t," /* as the broker splits its lists (lk_strv_split) */

typedef void (*warn_fn)(void *userdata, const char *path, unsigned line, const char *what);

struct reader {
        struct lk_accounts_conf *c;
        warn_fn warn;
        void *userdata;
};

const char *lk_accounts_config_path(void)
{
        const char *p = secure_getenv(LK_ACCOUNTS_CONFIG_ENV);

        return p && p[0] == '/' ? p : LK_ACCOUNTS_CONFIG_PATH;
}

static bool is(const char *s, size_t len, const char *word)
{
        return strlen(word) == len && memcmp(s, word, len) == 0;
}

static int parse_uint(const char *s, size_t len, unsigned long min, unsigned long max,
                      unsigned long *ret)
{
        char buf[16], *end = NULL;
        unsigned long v;

        if (len == 0 || len >= sizeof(buf) || s[0] < '0' || s[0] > '9')
                return -EINVAL;
        memcpy(buf, s, len);
        buf[len] = 0;
        errno = 0;
        v = strtoul(buf, &end, 10);
        if (errno || *end || v < min || v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

/* bool as the broker reads it (config_values.c): yes/no, true/false, on/off, 1/0. */
static int parse_bool(const char *s, size_t len, bool *ret)
{
        static const char *const yes[] = { "yes", "true", "on", "1" };
        static const char *const no[] = { "no", "false", "off", "0" };

        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (len == strlen(yes[i]) && strncasecmp(s, yes[i], len) == 0) {
                        *ret = true;
                        return 0;
                }
                if (len == strlen(no[i]) && strncasecmp(s, no[i], len) == 0) {
                        *ret = false;
                        return 0;
                }
        }
        return -EINVAL;
}

static int copy(char *dst, size_t size, const char *v, size_t len)
{
        if (len >= size)
                return -EINVAL;
        memcpy(dst, v, len);
        dst[len] = 0;
        return 0;
}

static void on_key(void *userdata, const char *path, unsigned line, const char *section,
                   size_t section_len, const struct lk_ini_line *il)
{
        struct reader *rd = userdata;
        struct lk_accounts_conf *c = rd->c;
        const char *v = il->value;
        size_t len = il->value_len;
        unsigned long n;
        int r = 0;

        if (!is(section, section_len, "accounts"))
                return;
        if (is(il->name, il->name_len, "nss"))
                r = parse_bool(v, len, &c->enabled);
        else if (is(il->name, il->name_len, "uid_min") || is(il->name, il->name_len, "uid_max")) {
                r = parse_uint(v, len, 1000, UINT32_MAX - 1, &n);
                if (r == 0 && il->name[4] == 'm' && il->name[5] == 'i')
                        c->uid_min = (uint32_t)n;
                else if (r == 0)
                        c->uid_max = (uint32_t)n;
        } else if (is(il->name, il->name_len, "max_offline_days")) {
                r = parse_uint(v, len, 1, 3650, &n);
                if (r == 0)
                        c->max_offline_days = (unsigned)n;
        } else if (is(il->name, il->name_len, "home"))
                r = len ? copy(c->home, sizeof(c->home), v, len) : -EINVAL;
        else if (is(il->name, il->name_len, "shell"))
                r = len ? copy(c->shell, sizeof(c->shell), v, len) : -EINVAL;
        else if (is(il->name, il->name_len, "allowed_names"))
                r = copy(c->allowed_names, sizeof(c->allowed_names), v, len);
        else if (is(il->name, il->name_len, "allowed_suffixes"))
                r = copy(c->allowed_suffixes, sizeof(c->allowed_suffixes), v, len);
        /* The other keys are the broker's. */
        if (r < 0 && rd->warn)
                rd->warn(rd->userdata, path, line, "[accounts]: a bad value, ignoring the line");
}

static void defaults(struct lk_accounts_conf *c)
{
        *c = (struct lk_accounts_conf){
                .uid_min = LK_ACCOUNTS_UID_MIN,
                .uid_max = LK_ACCOUNTS_UID_MAX,
                .max_offline_days = LK_ACCOUNTS_MAX_OFFLINE_DAYS,
        };
        snprintf(c->home, sizeof(c->home), "%s", LK_ACCOUNTS_HOME);
        snprintf(c->shell, sizeof(c->shell), "%s", LK_ACCOUNTS_SHELL);
}

void lk_accounts_conf_read(struct lk_accounts_conf *c, const char *path, warn_fn warn,
                           void *userdata)
{
        struct reader rd = {c, warn, userdata};

        defaults(c);
        lk_ini_files_read(path, on_key, warn, &rd);
        if (!lk_uidmap_range_ok(c->uid_min, c->uid_max))
                c->enabled = false;
}

void lk_accounts_conf_read_text(struct lk_accounts_conf *c, const char *text, size_t size)
{
        struct reader rd = {c, NULL, NULL};

        defaults(c);
        lk_ini_text_read("(text)", text, size, on_key, NULL, &rd);
        if (!lk_uidmap_range_ok(c->uid_min, c->uid_max))
                c->enabled = false;
}

bool lk_accounts_pattern_match(const char *pattern, size_t len, const char *name)
{
        char p[LK_ACCOUNTS_LIST_MAX + 1];

        if (len == 0 || len > LK_ACCOUNTS_LIST_MAX)
                return false;
        memcpy(p, pattern, len);
        p[len] = 0;
        return fnmatch(p, name, 0) == 0;
}

bool lk_accounts_suffix_match(const char *suffix, size_t len, const char *name)
{
        size_t n = strlen(name);

        /* The suffix alone is no name: "@example.com" does not match "@example.com". */
        return len > 0 && n > len && memcmp(name + n - len, suffix, len) == 0;
}

static bool list_matches(const char *list, const char *name,
                         bool (*match)(const char *, size_t, const char *))
{
        for (const char *p = list; *p;) {
                size_t len;

                p += strspn(p, SEPARATORS);
                len = strcspn(p, SEPARATORS);
                if (len == 0)
                        break;
                if (match(p, len, name))
                        return true;
                p += len;
        }
        return false;
}

bool lk_accounts_conf_allows(const struct lk_accounts_conf *c, const char *name)
{
        if (!c->enabled || lk_user_name_problem(name, strlen(name)))
                return false;
        return list_matches(c->allowed_names, name, lk_accounts_pattern_match) ||
               list_matches(c->allowed_suffixes, name, lk_accounts_suffix_match);
}

int lk_accounts_expand(const char *template, const char *name, char *buf, size_t size)
{
        size_t n = 0, nl = strlen(name);

        for (const char *p = template; *p; p++) {
                const char *add = p;
                size_t len = 1;

                if (*p == '%') {
                        p++;
                        if (*p == 'u') {
                                add = name;
                                len = nl;
                        } else if (*p != '%')
                                return -EINVAL;
                }
                if (n + len >= size)
                        return -ENAMETOOLONG;
                memcpy(buf + n, add, len);
                n += len;
        }
        if (size == 0)
                return -ENAMETOOLONG;
        buf[n] = 0;
        return 0;
}
