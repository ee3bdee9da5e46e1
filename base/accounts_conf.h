/* SPDX-License-Identifier: MIT */
/*
 * The [accounts] settings that the NSS module and the PAM module's account step need, read
 * from latchkey.conf with base/ini_files.c (no inih, no allocation beyond the reader's), and
 * the rules both they and the broker apply: which never-seen names get a provisional answer,
 * and the home and shell templates. latchkeyd reads the same keys through oidc/config_keys.c;
 * tests/unit/test_accounts.c checks that both readers agree on every default and value.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LK_ACCOUNTS_CONFIG_ENV "LATCHKEY_CONFIG" /* honoured unless setuid (secure_getenv) */
#define LK_ACCOUNTS_CONFIG_PATH "/etc/latchkey/latchkey.conf"

/* The defaults, as config_keys.c writes them. */
#define LK_ACCOUNTS_UID_MIN 1900000000u
#define LK_ACCOUNTS_UID_MAX 2140000000u
#define LK_ACCOUNTS_HOME "/home/%u"
#define LK_ACCOUNTS_SHELL "/bin/bash"
#define LK_ACCOUNTS_MAX_OFFLINE_DAYS 30u
#define LK_ACCOUNTS_TEMPLATE_MAX 1024 /* bytes of home, shell and what they expand to */
#define LK_ACCOUNTS_LIST_MAX 4096     /* bytes of allowed_names, allowed_suffixes */

struct lk_accounts_conf {
        bool enabled; /* nss = yes */
        uint32_t uid_min, uid_max;
        unsigned max_offline_days;
        char home[LK_ACCOUNTS_TEMPLATE_MAX + 1];
        char shell[LK_ACCOUNTS_TEMPLATE_MAX + 1];
        char allowed_names[LK_ACCOUNTS_LIST_MAX + 1];    /* glob patterns (fnmatch) */
        char allowed_suffixes[LK_ACCOUNTS_LIST_MAX + 1]; /* the name must end with one */
};

/* $LATCHKEY_CONFIG where it may be honoured, else LK_ACCOUNTS_CONFIG_PATH. */
const char *lk_accounts_config_path(void);

/*
 * The defaults, then [accounts] of path and its drop-ins. A bad value keeps the value before
 * it and is reported through warn (may be NULL); a range that is not usable turns the accounts
 * off (enabled false), since no uid could be given.
 */
void lk_accounts_conf_read(struct lk_accounts_conf *c, const char *path,
                           void (*warn)(void *userdata, const char *path, unsigned line,
                                        const char *what),
                           void *userdata);
/* The same from a text in memory (tests, fuzzing). */
void lk_accounts_conf_read_text(struct lk_accounts_conf *c, const char *text, size_t size);

/* One pattern of allowed_names (fnmatch, no flags) or suffix of allowed_suffixes. */
bool lk_accounts_pattern_match(const char *pattern, size_t len, const char *name);
bool lk_accounts_suffix_match(const char *suffix, size_t len, const char *name);

/* Whether a never-seen name gets a provisional account, on the conf's lists. */
bool lk_accounts_conf_allows(const struct lk_accounts_conf *c, const char *name);

/*
 * A template ("/home/%u") for name: %u is the name, %% a '%'; anything else after '%' is
 * -EINVAL, a result of more than size - 1 bytes -ENAMETOOLONG.
 */
int lk_accounts_expand(const char *template, const char *name, char *buf, size_t size);
