/* SPDX-License-Identifier: MIT */
/*
 * The accounts cache (issue 20): the file latchkeyd writes for the NSS module
 * libnss_latchkey.so.2, pam_latchkey's account step and `latchkeyctl users`.
 * World-readable (0644) and holding no secret: names, ids, GECOS, home, shell,
 * the local groups, the last sign-in, whether the provider refused the last
 * refresh, and a fingerprint of the identity (issuer and sub).
 *
 * The format, text with one record a line, every line ending in '\n':
 *
 *   latchkey-accounts 1 P I G SIZE       header: byte offsets of the three sections, the size
 *   P name:uid:gid:gecos:home:shell:last_signin:state:gids:identity      sorted by name
 *   I uuuuuuuuuu name                    the uid in 10 digits; sorted by uid
 *   G name:gid:member,member             local groups the [accounts] group_map fills; by name
 *
 * state is "ok" or "refused"; gids is "-" or decimal gids joined by ','; identity is "-" or
 * hex. The sorted sections let a reader binary-search a mapped file without reading it all:
 * a lookup touches about log2(n) lines, each checked as it is read. No field may hold ':',
 * '\n' or a NUL (the writer refuses them). Pure C, no allocation in the readers: the NSS
 * module runs inside every process.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LK_ACCOUNTS_FILE "/var/cache/latchkey/accounts"
#define LK_ACCOUNTS_FILE_ENV "LATCHKEY_ACCOUNTS_FILE" /* honoured unless setuid (secure_getenv) */
#define LK_ACCOUNTS_MAGIC "latchkey-accounts 1 "
#define LK_ACCOUNTS_FILE_MAX (64u << 20)   /* bytes: 100,000 accounts fit in a quarter */
#define LK_ACCOUNTS_MAX 100000             /* accounts in one cache */
#define LK_ACCOUNTS_LINE_MAX 4096          /* bytes of one line */
#define LK_ACCOUNTS_GIDS_MAX 64            /* local groups of one account */
#define LK_ACCOUNTS_NAME_MAX 256           /* bytes of a user or group name (SPEC §4's cap) */

/* One P line, its text fields pointing into the file (not NUL-terminated). */
struct lk_account_view {
        const char *name, *gecos, *home, *shell, *identity;
        size_t name_len, gecos_len, home_len, shell_len, identity_len;
        uint32_t uid, gid;
        int64_t last_signin; /* Unix seconds */
        bool refused;        /* the provider refused its last refresh */
        uint32_t gids[LK_ACCOUNTS_GIDS_MAX];
        unsigned n_gids;
};

/* One G line. members: the text after the second ':', names joined by ','. */
struct lk_group_view {
        const char *name, *members;
        size_t name_len, members_len;
        uint32_t gid;
};

/* A whole file in memory (mapped or read), its sections found and checked. */
struct lk_accounts_map {
        const char *data;
        size_t size;
        size_t p, i, g; /* offsets of the sections; each ends where the next begins */
};

/* Checks the header and finds the sections: 0, or -EINVAL (not a cache of this format). */
int lk_accounts_map_init(struct lk_accounts_map *m, const char *data, size_t size);

/* Parses one P / G line (without its '\n'): 0 or -EINVAL. */
int lk_account_parse(const char *line, size_t len, struct lk_account_view *ret);
int lk_group_parse(const char *line, size_t len, struct lk_group_view *ret);

/* Binary searches: 0 and the record, -ENOENT, or -EINVAL for a broken line met on the way. */
int lk_accounts_find_name(const struct lk_accounts_map *m, const char *name,
                          struct lk_account_view *ret);
int lk_accounts_find_uid(const struct lk_accounts_map *m, uint32_t uid,
                         struct lk_account_view *ret);
int lk_accounts_find_group(const struct lk_accounts_map *m, const char *name,
                           struct lk_group_view *ret);
/* G lines are few (one per mapped local group): a scan. */
int lk_accounts_find_gid(const struct lk_accounts_map *m, uint32_t gid, struct lk_group_view *ret);

/*
 * Iteration over a section: *pos starts at 0; returns 1 with the next record, 0 at the end,
 * -EINVAL for a broken line.
 */
int lk_accounts_next(const struct lk_accounts_map *m, size_t *pos, struct lk_account_view *ret);
int lk_accounts_next_group(const struct lk_accounts_map *m, size_t *pos,
                           struct lk_group_view *ret);

/* Checks every line of every section, order and index included: 0 or -EINVAL. */
int lk_accounts_validate(const struct lk_accounts_map *m);

/* ---- writing ---- */

/* One account to write; the strings NUL-terminated. */
struct lk_account {
        char *name, *gecos, *home, *shell, *identity; /* identity may be NULL */
        uint32_t uid, gid;
        int64_t last_signin;
        bool refused;
        uint32_t gids[LK_ACCOUNTS_GIDS_MAX];
        unsigned n_gids;
        char *group_names[LK_ACCOUNTS_GIDS_MAX]; /* the local group of each gid, for G lines */
};

/* true when s can be a field: no ':', '\n', other control characters or NUL, at most max. */
bool lk_accounts_field_ok(const char *s, size_t max);

/*
 * The whole file for n accounts (any order): sorted, indexed, with the G lines of the local
 * groups they are in. 0 and a malloc'ed text, -EINVAL (a field that cannot be written, two
 * accounts with one name or one uid), -ENOMEM.
 */
int lk_accounts_format(const struct lk_account *a, size_t n, char **ret, size_t *ret_len);

/* A view as an owned struct lk_account (group_names left NULL); -ENOMEM. */
int lk_account_from_view(const struct lk_account_view *v, struct lk_account *ret);
void lk_account_clear(struct lk_account *a);

/* The path of the cache: $LATCHKEY_ACCOUNTS_FILE where it may be honoured, else the default. */
const char *lk_accounts_path(void);
