/* SPDX-License-Identifier: MIT */
#include "pam_module/options.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>
#include <security/pam_ext.h>
#include <security/pam_modutil.h>

#include "base/ini_files.h"
#include "base/ini_line.h"
#include "base/util.h"
#include "pam_module/input_check.h"

#include "base/text.h"

#define LIST_SEPARATORS " \t," /* as the broker splits its lists (lk_strv_split) */

/* A whole decimal number in min..max, or -EINVAL / -ERANGE. */
static int parse_unsigned(const char *s, unsigned min, unsigned max, unsigned *ret)
{
        char *end = NULL;
        long v;

        if (!s || *s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtol(s, &end, 10);
        if (errno == ERANGE)
                return -ERANGE;
        if (errno != 0 || end == s || *end != 0)
                return -EINVAL;
        if (v < (long)min || v > (long)max)
                return -ERANGE;
        *ret = (unsigned)v;
        return 0;
}

static int parse_number_arg(pam_handle_t *pamh, const char *arg, const char *value, unsigned min,
                            unsigned max, unsigned *ret)
{
        int r = parse_unsigned(value, min, max, ret);

        if (r < 0 && pamh)
                pam_syslog(pamh, LOG_ERR, "bad value in argument \"%s\": want a number from %u to %u, ignoring",
                           arg, min, max);
        return r;
}

/* ---- the [pam] section of latchkey.conf ---- */

/*
 * The config is read with lk_ini_line(), the grammar of the broker's reader
 * (SPEC §3), not with inih as the broker does: Debian's inih keeps its options
 * in process-wide variables, which a module loaded into someone else's program
 * must not set. A bad line is logged and skipped, never fatal: the broker's
 * check-config reports it.
 */

static bool word_is(const char *s, size_t len, const char *word)
{
        return strlen(word) == len && memcmp(s, word, len) == 0;
}

static char *list_field(struct options *o, const char *key, size_t len)
{
        if (word_is(key, len, "services"))
                return o->services;
        if (word_is(key, len, "users"))
                return o->users;
        if (word_is(key, len, "groups"))
                return o->groups;
        if (word_is(key, len, "methods"))
                return o->methods;
        return NULL;
}

/* One "key = value" line of [pam]. */
static void config_line(struct options *o, pam_handle_t *pamh, const char *path, unsigned line,
                        const struct lk_ini_line *il)
{
        char *dst = list_field(o, il->name, il->name_len);

        if (!dst) {
                char name[44], shown[64];

                snprintf(name, sizeof(name), "%.*s", il->name_len > 40 ? 40 : (int)il->name_len,
                         il->name);
                lk_text_escape(name, shown, sizeof(shown));
                if (pamh)
                        pam_syslog(pamh, LOG_ERR, "%s:%u: [pam]: unknown key \"%s\" (known: services, "
                                   "users, groups, methods), ignoring it", path, line, shown);
                return;
        }
        /* a line holds at most LKP_LIST_MAX bytes, so any value fits */
        memcpy(dst, il->value, il->value_len);
        dst[il->value_len] = 0;
}

/* The reader's state (base/ini_files.c hands it every "key = value" line of every section). */
struct config_reader {
        struct options *o;
        pam_handle_t *pamh;
};

static void config_key(void *userdata, const char *path, unsigned line, const char *section,
                       size_t section_len, const struct lk_ini_line *il)
{
        struct config_reader *rd = userdata;

        if (word_is(section, section_len, "pam"))
                config_line(rd->o, rd->pamh, path, line, il);
}

/* A file that cannot be read (a screen locker running as the user, a mode of 0600), is not a
 * regular file, is too large, or that group or others may write, and a bad line: logged and
 * skipped; the defaults hold. A missing file is fine. */
static void config_warn(void *userdata, const char *path, unsigned line, const char *what)
{
        struct config_reader *rd = userdata;

        if (!rd->pamh)
                return;
        if (line)
                pam_syslog(rd->pamh, LOG_WARNING, "%s:%u: %s", path, line, what);
        else
                pam_syslog(rd->pamh, LOG_WARNING, "%s: %s (see pam_latchkey(8))", path, what);
}

/* ---- the arguments ---- */

/* "name=value" → value, for a list argument; NULL when a is not one. */
static char *list_arg(struct options *o, const char *a, const char **ret_value)
{
        const char *eq = strchr(a, '=');
        char *dst;

        if (!eq)
                return NULL;
        dst = list_field(o, a, (size_t)(eq - a));
        if (dst)
                *ret_value = eq + 1;
        return dst;
}

/* The last config=PATH among the arguments, if usable; else LKP_CONFIG_PATH. */
static void find_config(struct options *o, pam_handle_t *pamh, int argc, const char **argv)
{
        const char *path = LKP_CONFIG_PATH;

        for (int i = 0; i < argc && argv; i++) {
                const char *a = argv[i];

                if (!a || strncmp(a, "config=", 7) != 0)
                        continue;
                if (a[7] == '/' && strlen(a + 7) <= LKP_PATH_MAX)
                        path = a + 7;
                else if (pamh)
                        pam_syslog(pamh, LOG_ERR, "bad value in argument \"%.40s\": want an absolute "
                                   "path of at most %d bytes, ignoring", a, LKP_PATH_MAX);
        }
        snprintf(o->config, sizeof(o->config), "%s", path);
}

int lkp_options_parse(struct options *o, pam_handle_t *pamh, int argc, const char **argv)
{
        int ignored = 0;

        *o = (struct options) {
                .timeout = LKP_TIMEOUT_DEFAULT,
                .tries = LKP_TRIES_DEFAULT,
                .services = LKP_SERVICES_DEFAULT,
                .methods = LKP_METHODS_DEFAULT,
        };
        for (int i = 0; i < argc && argv; i++)
                if (argv[i] && streq(argv[i], "debug"))
                        o->debug = true; /* for the config's own log lines */
        find_config(o, pamh, argc, argv);
        lk_ini_files_read(o->config, config_key, config_warn,
                          &(struct config_reader){.o = o, .pamh = pamh});

        for (int i = 0; i < argc && argv; i++) {
                const char *a = argv[i], *value = NULL;
                char *dst;

                if (!a)
                        continue;
                if (streq(a, "debug"))
                        o->debug = true;
                else if (streq(a, "qr"))
                        o->qr = true;
                else if (streq(a, "noqr"))
                        o->qr = false;
                else if (streq(a, "ignore_unknown_user"))
                        o->ignore_unknown_user = true;
                else if (streq(a, "authtok"))
                        o->authtok = true;
                else if (streq(a, "use_first_pass") || streq(a, "try_first_pass"))
                        ; /* read by pam_get_authtok() itself, for authtok */
                else if (strncmp(a, "config=", 7) == 0)
                        ; /* read above */
                else if ((dst = list_arg(o, a, &value))) {
                        if (strlen(value) > LKP_LIST_MAX) {
                                if (pamh)
                                        pam_syslog(pamh, LOG_ERR, "argument \"%.40s...\" is longer "
                                                   "than %d bytes, ignoring", a, LKP_LIST_MAX);
                                ignored++;
                        } else {
                                snprintf(dst, LKP_LIST_MAX + 1, "%s", value);
                        }
                } else if (strncmp(a, "timeout=", 8) == 0) {
                        if (parse_number_arg(pamh, a, a + 8, 1, LKP_TIMEOUT_MAX, &o->timeout) < 0)
                                ignored++;
                } else if (strncmp(a, "tries=", 6) == 0) {
                        if (parse_number_arg(pamh, a, a + 6, 1, LKP_TRIES_MAX, &o->tries) < 0)
                                ignored++;
                } else {
                        if (pamh)
                                pam_syslog(pamh, LOG_ERR, "unknown argument \"%s\", ignoring", a);
                        ignored++;
                }
        }
        return ignored;
}

/* ---- who meets SSO ---- */

bool lkp_list_has(const char *list, const char *word)
{
        size_t n = word ? strlen(word) : 0;

        if (!list || n == 0)
                return false;
        for (const char *s = list; *s;) {
                size_t len;

                s += strspn(s, LIST_SEPARATORS);
                len = strcspn(s, LIST_SEPARATORS);
                if (len == n && memcmp(s, word, n) == 0)
                        return true;
                s += len;
        }
        return false;
}

bool lkp_sso_service(const struct options *o, const char *service)
{
        return lkp_list_has(o->services, service);
}

/* The bits of "web+offline" (s[0..len)); unknown words count as none (fail closed). */
static unsigned method_bits(const char *s, size_t len)
{
        unsigned bits = 0;

        while (len > 0) {
                const char *plus = memchr(s, '+', len);
                size_t n = plus ? (size_t)(plus - s) : len;

                if (word_is(s, n, "web"))
                        bits |= LKP_METHOD_WEB;
                else if (word_is(s, n, "offline"))
                        bits |= LKP_METHOD_OFFLINE;
                else if (word_is(s, n, "pin"))
                        bits |= LKP_METHOD_PIN;
                s += n;
                len -= n;
                if (len > 0) {
                        s++;
                        len--;
                }
        }
        return bits;
}

unsigned lkp_service_methods(const struct options *o, const char *service)
{
        size_t n = service ? strlen(service) : 0;
        bool found = false, listed;
        unsigned bits = 0;

        if (n == 0)
                return 0;
        /* The last entry for the service wins, as a later line does. */
        for (const char *s = o->methods; *s;) {
                size_t len;

                s += strspn(s, LIST_SEPARATORS);
                len = strcspn(s, LIST_SEPARATORS);
                if (len > n && s[n] == ':' && memcmp(s, service, n) == 0) {
                        found = true;
                        bits = method_bits(s + n + 1, len - n - 1);
                }
                s += len;
        }
        listed = lkp_sso_service(o, service);
        if (!listed)
                return found ? bits & LKP_METHOD_PIN : 0;
        return found ? bits : LKP_METHOD_WEB | LKP_METHOD_OFFLINE;
}

bool lkp_sso_user(const struct options *o, pam_handle_t *pamh, const char *user)
{
        char group[LKP_LIST_MAX + 1];

        if (!user || !*user)
                return false;
        if (lkp_list_has(o->users, "*") || lkp_list_has(o->users, user))
                return true;
        for (const char *s = o->groups; *s;) {
                size_t len;

                s += strspn(s, LIST_SEPARATORS);
                len = strcspn(s, LIST_SEPARATORS);
                if (len == 0)
                        break;
                memcpy(group, s, len);
                group[len] = 0;
                if (pamh && pam_modutil_user_in_group_nam_nam(pamh, user, group))
                        return true;
                s += len;
        }
        return false;
}
