/* SPDX-License-Identifier: MIT */
/* The accounts cache's format: see accounts_file.h. */
#include "base/accounts_file.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

#define HEX "0123456789abcdefABCDEF"

const char *lk_accounts_path(void)
{
        const char *p = secure_getenv(LK_ACCOUNTS_FILE_ENV);

        return p && p[0] == '/' ? p : LK_ACCOUNTS_FILE;
}

/* A decimal number of at most 10 digits in 0..max, exactly s[0..len). */
static int parse_u32(const char *s, size_t len, uint32_t max, uint32_t *ret)
{
        uint64_t v = 0;

        if (len == 0 || len > 10)
                return -EINVAL;
        for (size_t i = 0; i < len; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                v = v * 10 + (uint64_t)(s[i] - '0');
        }
        if (v > max)
                return -EINVAL;
        *ret = (uint32_t)v;
        return 0;
}

static int parse_i64(const char *s, size_t len, int64_t *ret)
{
        int64_t v = 0;

        if (len == 0 || len > 18)
                return -EINVAL;
        for (size_t i = 0; i < len; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                v = v * 10 + (s[i] - '0');
        }
        *ret = v;
        return 0;
}

/* No control byte (tab included) and no ':' in s[0..len). */
static bool text_ok(const char *s, size_t len)
{
        for (size_t i = 0; i < len; i++)
                if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || s[i] == ':')
                        return false;
        return true;
}

static bool name_ok(const char *s, size_t len)
{
        return len > 0 && len <= LK_ACCOUNTS_NAME_MAX && text_ok(s, len) && !memchr(s, ',', len) &&
               !memchr(s, ' ', len);
}

/* Splits s[0..len) at ':' into exactly n fields. */
static int split(const char *s, size_t len, unsigned n, const char **f, size_t *fl)
{
        unsigned k = 0;
        const char *start = s, *end = s + len;

        for (const char *p = s;; p++) {
                if (p == end || *p == ':') {
                        if (k == n)
                                return -EINVAL;
                        f[k] = start;
                        fl[k] = (size_t)(p - start);
                        k++;
                        if (p == end)
                                break;
                        start = p + 1;
                }
        }
        return k == n ? 0 : -EINVAL;
}

int lk_account_parse(const char *line, size_t len, struct lk_account_view *ret)
{
        struct lk_account_view v = {0};
        const char *f[10];
        size_t fl[10];

        if (len < 2 || len > LK_ACCOUNTS_LINE_MAX || line[0] != 'P' || line[1] != ' ')
                return -EINVAL;
        if (split(line + 2, len - 2, 10, f, fl) < 0)
                return -EINVAL;
        if (!name_ok(f[0], fl[0]) || parse_u32(f[1], fl[1], UINT32_MAX - 1, &v.uid) < 0 ||
            parse_u32(f[2], fl[2], UINT32_MAX - 1, &v.gid) < 0 || !text_ok(f[3], fl[3]) ||
            fl[4] == 0 || f[4][0] != '/' || !text_ok(f[4], fl[4]) || fl[5] == 0 ||
            f[5][0] != '/' || !text_ok(f[5], fl[5]) || parse_i64(f[6], fl[6], &v.last_signin) < 0)
                return -EINVAL;
        if (fl[7] == 2 && memcmp(f[7], "ok", 2) == 0)
                v.refused = false;
        else if (fl[7] == 7 && memcmp(f[7], "refused", 7) == 0)
                v.refused = true;
        else
                return -EINVAL;
        if (!(fl[8] == 1 && f[8][0] == '-')) {
                const char *p = f[8], *end = f[8] + fl[8];

                while (p <= end) {
                        const char *c = memchr(p, ',', (size_t)(end - p));
                        size_t n = c ? (size_t)(c - p) : (size_t)(end - p);

                        if (v.n_gids == LK_ACCOUNTS_GIDS_MAX ||
                            parse_u32(p, n, UINT32_MAX - 1, &v.gids[v.n_gids]) < 0)
                                return -EINVAL;
                        v.n_gids++;
                        p += n + 1;
                }
        }
        if (!(fl[9] == 1 && f[9][0] == '-')) {
                if (fl[9] == 0 || fl[9] > 128 || strspn(f[9], HEX) < fl[9])
                        return -EINVAL;
                v.identity = f[9];
                v.identity_len = fl[9];
        }
        v.name = f[0];
        v.name_len = fl[0];
        v.gecos = f[3];
        v.gecos_len = fl[3];
        v.home = f[4];
        v.home_len = fl[4];
        v.shell = f[5];
        v.shell_len = fl[5];
        *ret = v;
        return 0;
}

int lk_group_parse(const char *line, size_t len, struct lk_group_view *ret)
{
        struct lk_group_view v = {0};
        const char *f[3];
        size_t fl[3];

        if (len < 2 || len > LK_ACCOUNTS_LINE_MAX || line[0] != 'G' || line[1] != ' ')
                return -EINVAL;
        if (split(line + 2, len - 2, 3, f, fl) < 0)
                return -EINVAL;
        if (!name_ok(f[0], fl[0]) || parse_u32(f[1], fl[1], UINT32_MAX - 1, &v.gid) < 0 ||
            !text_ok(f[2], fl[2]) || memchr(f[2], ' ', fl[2]))
                return -EINVAL;
        v.name = f[0];
        v.name_len = fl[0];
        v.members = f[2];
        v.members_len = fl[2];
        *ret = v;
        return 0;
}

/* An I line: "I " 10 digits " " name. */
static int index_parse(const char *line, size_t len, uint32_t *ret_uid, const char **ret_name,
                       size_t *ret_name_len)
{
        if (len < 14 || line[0] != 'I' || line[1] != ' ' || line[12] != ' ' ||
            parse_u32(line + 2, 10, UINT32_MAX - 1, ret_uid) < 0 ||
            !name_ok(line + 13, len - 13))
                return -EINVAL;
        *ret_name = line + 13;
        *ret_name_len = len - 13;
        return 0;
}

static bool line_start(const struct lk_accounts_map *m, size_t off)
{
        return off == m->size || (off > 0 && off <= m->size && m->data[off - 1] == '\n');
}

int lk_accounts_map_init(struct lk_accounts_map *m, const char *data, size_t size)
{
        const size_t magic = strlen(LK_ACCOUNTS_MAGIC);
        const char *nl;
        size_t off[4];
        const char *p;

        *m = (struct lk_accounts_map){.data = data, .size = size};
        if (size < magic || size > LK_ACCOUNTS_FILE_MAX || memcmp(data, LK_ACCOUNTS_MAGIC, magic) ||
            data[size - 1] != '\n')
                return -EINVAL;
        nl = memchr(data, '\n', size < 128 ? size : 128);
        if (!nl)
                return -EINVAL;
        p = data + magic;
        for (unsigned k = 0; k < 4; k++) {
                uint64_t v = 0;
                unsigned digits = 0;

                while (p < nl && *p >= '0' && *p <= '9' && digits < 10) {
                        v = v * 10 + (uint64_t)(*p++ - '0');
                        digits++;
                }
                if (digits == 0)
                        return -EINVAL;
                if (k < 3) {
                        if (p == nl || *p != ' ')
                                return -EINVAL;
                        p++;
                }
                off[k] = (size_t)v;
        }
        if (p != nl || off[3] != size || off[0] != (size_t)(nl - data) + 1 || off[1] < off[0] ||
            off[2] < off[1] || off[3] < off[2])
                return -EINVAL;
        m->p = off[0];
        m->i = off[1];
        m->g = off[2];
        if (!line_start(m, m->i) || !line_start(m, m->g) ||
            (m->p < m->i && data[m->p] != 'P') || (m->i < m->g && data[m->i] != 'I') ||
            (m->g < m->size && data[m->g] != 'G'))
                return -EINVAL;
        return 0;
}

/* The line holding off within [lo, hi): its start and length (without '\n'). */
static void line_at(const struct lk_accounts_map *m, size_t lo, size_t hi, size_t off,
                    size_t *ret_start, size_t *ret_len)
{
        size_t s = off, e = off;

        while (s > lo && m->data[s - 1] != '\n')
                s--;
        while (e < hi && m->data[e] != '\n')
                e++;
        *ret_start = s;
        *ret_len = e - s;
}

typedef int (*cmp_fn)(const char *line, size_t len, const void *key, bool *bad);

/* The first line of [lo, hi) whose key is >= key: its start, or hi. */
static int bsearch_lines(const struct lk_accounts_map *m, size_t lo, size_t hi, cmp_fn cmp,
                         const void *key, size_t *ret)
{
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2, s, len;
                bool bad = false;
                int c;

                line_at(m, lo, hi, mid, &s, &len);
                c = cmp(m->data + s, len, key, &bad);
                if (bad)
                        return -EINVAL;
                if (c < 0)
                        lo = s + len + 1;
                else
                        hi = s;
        }
        *ret = lo;
        return 0;
}

static int cmp_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
        int c = memcmp(a, b, alen < blen ? alen : blen);

        return c ? c : alen < blen ? -1 : alen > blen;
}

/* A P or G line's name (up to the first ':') against the key. */
static int cmp_name(const char *line, size_t len, const void *key, bool *bad)
{
        const char *colon = len > 2 ? memchr(line + 2, ':', len - 2) : NULL;

        if (!colon) {
                *bad = true;
                return 0;
        }
        return cmp_bytes(line + 2, (size_t)(colon - line - 2), key, strlen(key));
}

static int cmp_uid(const char *line, size_t len, const void *key, bool *bad)
{
        uint32_t uid, want = *(const uint32_t *)key;
        const char *name;
        size_t nl;

        if (index_parse(line, len, &uid, &name, &nl) < 0) {
                *bad = true;
                return 0;
        }
        return uid < want ? -1 : uid > want;
}

/* The whole line starting at off in [off, hi). */
static size_t line_len(const struct lk_accounts_map *m, size_t off, size_t hi)
{
        const char *nl = memchr(m->data + off, '\n', hi - off);

        return nl ? (size_t)(nl - (m->data + off)) : hi - off;
}

int lk_accounts_find_name(const struct lk_accounts_map *m, const char *name,
                          struct lk_account_view *ret)
{
        struct lk_account_view v;
        size_t at;
        int r;

        r = bsearch_lines(m, m->p, m->i, cmp_name, name, &at);
        if (r < 0)
                return r;
        if (at >= m->i)
                return -ENOENT;
        if (lk_account_parse(m->data + at, line_len(m, at, m->i), &v) < 0)
                return -EINVAL;
        if (v.name_len != strlen(name) || memcmp(v.name, name, v.name_len) != 0)
                return -ENOENT;
        *ret = v;
        return 0;
}

int lk_accounts_find_uid(const struct lk_accounts_map *m, uint32_t uid,
                         struct lk_account_view *ret)
{
        char name[LK_ACCOUNTS_NAME_MAX + 1];
        struct lk_account_view v;
        const char *n;
        size_t at, nl;
        uint32_t found;
        int r;

        r = bsearch_lines(m, m->i, m->g, cmp_uid, &uid, &at);
        if (r < 0)
                return r;
        if (at >= m->g)
                return -ENOENT;
        if (index_parse(m->data + at, line_len(m, at, m->g), &found, &n, &nl) < 0)
                return -EINVAL;
        if (found != uid)
                return -ENOENT;
        memcpy(name, n, nl);
        name[nl] = 0;
        r = lk_accounts_find_name(m, name, &v);
        if (r < 0)
                return r == -ENOENT ? -EINVAL : r; /* an index line without its account */
        if (v.uid != uid)
                return -EINVAL;
        *ret = v;
        return 0;
}

int lk_accounts_find_group(const struct lk_accounts_map *m, const char *name,
                           struct lk_group_view *ret)
{
        struct lk_group_view v;
        size_t at;
        int r;

        r = bsearch_lines(m, m->g, m->size, cmp_name, name, &at);
        if (r < 0)
                return r;
        if (at >= m->size)
                return -ENOENT;
        if (lk_group_parse(m->data + at, line_len(m, at, m->size), &v) < 0)
                return -EINVAL;
        if (v.name_len != strlen(name) || memcmp(v.name, name, v.name_len) != 0)
                return -ENOENT;
        *ret = v;
        return 0;
}

int lk_accounts_next(const struct lk_accounts_map *m, size_t *pos, struct lk_account_view *ret)
{
        size_t at = m->p + *pos, len;

        if (at >= m->i)
                return 0;
        len = line_len(m, at, m->i);
        if (lk_account_parse(m->data + at, len, ret) < 0)
                return -EINVAL;
        *pos += len + 1;
        return 1;
}

int lk_accounts_next_group(const struct lk_accounts_map *m, size_t *pos,
                           struct lk_group_view *ret)
{
        size_t at = m->g + *pos, len;

        if (at >= m->size)
                return 0;
        len = line_len(m, at, m->size);
        if (lk_group_parse(m->data + at, len, ret) < 0)
                return -EINVAL;
        *pos += len + 1;
        return 1;
}

int lk_accounts_find_gid(const struct lk_accounts_map *m, uint32_t gid, struct lk_group_view *ret)
{
        struct lk_group_view v;
        size_t pos = 0;
        int r;

        while ((r = lk_accounts_next_group(m, &pos, &v)) > 0)
                if (v.gid == gid) {
                        *ret = v;
                        return 0;
                }
        return r < 0 ? r : -ENOENT;
}

int lk_accounts_validate(const struct lk_accounts_map *m)
{
        struct lk_account_view v, prev = {0};
        struct lk_group_view g, gprev = {0};
        size_t pos = 0, n = 0, at;
        uint32_t last_uid = 0;
        int r;

        while ((r = lk_accounts_next(m, &pos, &v)) > 0) {
                if (++n > LK_ACCOUNTS_MAX ||
                    (prev.name && cmp_bytes(prev.name, prev.name_len, v.name, v.name_len) >= 0))
                        return -EINVAL;
                prev = v;
        }
        if (r < 0)
                return r;
        /* Every index line names an account of that uid, in order, one per account. */
        for (at = m->i; at < m->g;) {
                char name[LK_ACCOUNTS_NAME_MAX + 1];
                size_t len = line_len(m, at, m->g), nl;
                const char *nm;
                uint32_t uid;

                if (index_parse(m->data + at, len, &uid, &nm, &nl) < 0 ||
                    (at > m->i && uid <= last_uid) || n == 0)
                        return -EINVAL;
                memcpy(name, nm, nl);
                name[nl] = 0;
                if (lk_accounts_find_name(m, name, &v) < 0 || v.uid != uid)
                        return -EINVAL;
                last_uid = uid;
                n--;
                at += len + 1;
        }
        if (n != 0)
                return -EINVAL;
        pos = 0;
        while ((r = lk_accounts_next_group(m, &pos, &g)) > 0) {
                if (gprev.name && cmp_bytes(gprev.name, gprev.name_len, g.name, g.name_len) >= 0)
                        return -EINVAL;
                gprev = g;
        }
        return r;
}

/* ---- writing ---- */

bool lk_accounts_field_ok(const char *s, size_t max)
{
        size_t len;

        if (!s)
                return false;
        len = strlen(s);
        return len <= max && text_ok(s, len);
}

static int cmp_account_name(const void *a, const void *b)
{
        return strcmp((*(const struct lk_account *const *)a)->name,
                      (*(const struct lk_account *const *)b)->name);
}

static int cmp_account_uid(const void *a, const void *b)
{
        uint32_t x = (*(const struct lk_account *const *)a)->uid;
        uint32_t y = (*(const struct lk_account *const *)b)->uid;

        return x < y ? -1 : x > y;
}

struct group_out {
        const char *name;
        uint32_t gid;
        const struct lk_account *first; /* members: accounts in name order */
};

static int cmp_group(const void *a, const void *b)
{
        return strcmp(((const struct group_out *)a)->name, ((const struct group_out *)b)->name);
}

static bool account_ok(const struct lk_account *a)
{
        size_t nl = a->name ? strlen(a->name) : 0;

        if (!name_ok(a->name ?: "", nl) || !lk_accounts_field_ok(a->gecos, 1024) ||
            !lk_accounts_field_ok(a->home, 1024) || a->home[0] != '/' ||
            !lk_accounts_field_ok(a->shell, 1024) || a->shell[0] != '/' ||
            a->uid == UINT32_MAX || a->gid == UINT32_MAX || a->last_signin < 0 ||
            a->last_signin > 999999999999999999LL || a->n_gids > LK_ACCOUNTS_GIDS_MAX)
                return false;
        if (a->identity && (!*a->identity || strlen(a->identity) > 128 ||
                            strspn(a->identity, HEX) != strlen(a->identity)))
                return false;
        for (unsigned k = 0; k < a->n_gids; k++)
                if (a->gids[k] == UINT32_MAX ||
                    (a->group_names[k] &&
                     !name_ok(a->group_names[k], strlen(a->group_names[k]))))
                        return false;
        return true;
}

/* A growing text: the writer's one buffer. */
struct text {
        char *s;
        size_t len, cap;
        bool oom;
};

static void put(struct text *t, const char *fmt, ...) _printf_(2, 3);
static void put(struct text *t, const char *fmt, ...)
{
        va_list ap;
        int n;

        if (t->oom)
                return;
        for (;;) {
                va_start(ap, fmt);
                n = vsnprintf(t->s ? t->s + t->len : NULL, t->s ? t->cap - t->len : 0, fmt, ap);
                va_end(ap);
                if (n < 0) {
                        t->oom = true;
                        return;
                }
                if (t->s && (size_t)n < t->cap - t->len) {
                        t->len += (size_t)n;
                        return;
                }
                size_t cap = (t->cap ? t->cap * 2 : 4096) + (size_t)n;
                char *g = realloc(t->s, cap);
                if (!g) {
                        t->oom = true;
                        return;
                }
                t->s = g;
                t->cap = cap;
        }
}

static void put_account(struct text *t, const struct lk_account *a)
{
        put(t, "P %s:%" PRIu32 ":%" PRIu32 ":%s:%s:%s:%" PRId64 ":%s:", a->name, a->uid, a->gid,
            a->gecos, a->home, a->shell, a->last_signin, a->refused ? "refused" : "ok");
        if (a->n_gids == 0)
                put(t, "-");
        for (unsigned k = 0; k < a->n_gids; k++)
                put(t, "%s%" PRIu32, k ? "," : "", a->gids[k]);
        put(t, ":%s\n", a->identity ?: "-");
}

int lk_accounts_format(const struct lk_account *a, size_t n, char **ret, size_t *ret_len)
{
        _cleanup_free_ const struct lk_account **byname = NULL, **byuid = NULL;
        _cleanup_free_ struct group_out *groups = NULL;
        struct text t = {0};
        size_t ng = 0, p, i, g, header_len;
        char header[96];

        if (n > LK_ACCOUNTS_MAX)
                return -EINVAL;
        byname = calloc(n + 1, sizeof(*byname));
        byuid = calloc(n + 1, sizeof(*byuid));
        groups = calloc(n * LK_ACCOUNTS_GIDS_MAX + 1, sizeof(*groups));
        if (!byname || !byuid || !groups)
                return -ENOMEM;
        for (size_t k = 0; k < n; k++) {
                if (!account_ok(&a[k]))
                        return -EINVAL;
                byname[k] = byuid[k] = &a[k];
        }
        qsort(byname, n, sizeof(*byname), cmp_account_name);
        qsort(byuid, n, sizeof(*byuid), cmp_account_uid);
        for (size_t k = 1; k < n; k++)
                if (streq(byname[k - 1]->name, byname[k]->name) ||
                    byuid[k - 1]->uid == byuid[k]->uid)
                        return -EINVAL;

        /* The local groups named, once each. */
        for (size_t k = 0; k < n; k++)
                for (unsigned j = 0; j < a[k].n_gids; j++) {
                        bool seen = false;

                        if (!a[k].group_names[j])
                                continue;
                        for (size_t q = 0; q < ng && !seen; q++)
                                if (streq(groups[q].name, a[k].group_names[j])) {
                                        if (groups[q].gid != a[k].gids[j])
                                                return -EINVAL;
                                        seen = true;
                                }
                        if (!seen)
                                groups[ng++] = (struct group_out){a[k].group_names[j], a[k].gids[j],
                                                                  NULL};
                }
        qsort(groups, ng, sizeof(*groups), cmp_group);
        for (size_t q = 1; q < ng; q++)
                if (groups[q - 1].gid == groups[q].gid)
                        return -EINVAL;

        /* The header's offsets depend on its own length: write the body, then prepend it. */
        for (size_t k = 0; k < n; k++)
                put_account(&t, byname[k]);
        i = t.len;
        for (size_t k = 0; k < n; k++)
                put(&t, "I %010" PRIu32 " %s\n", byuid[k]->uid, byuid[k]->name);
        g = t.len;
        for (size_t q = 0; q < ng; q++) {
                bool first = true;

                put(&t, "G %s:%" PRIu32 ":", groups[q].name, groups[q].gid);
                for (size_t k = 0; k < n; k++)
                        for (unsigned j = 0; j < byname[k]->n_gids; j++)
                                if (byname[k]->group_names[j] &&
                                    streq(byname[k]->group_names[j], groups[q].name)) {
                                        put(&t, "%s%s", first ? "" : ",", byname[k]->name);
                                        first = false;
                                }
                put(&t, "\n");
        }
        if (t.oom) {
                free(t.s);
                return -ENOMEM;
        }
        /* Offsets grow the header; two rounds settle its length. */
        header_len = 0;
        for (int round = 0; round < 3; round++) {
                size_t base = header_len;
                int hn = snprintf(header, sizeof(header), LK_ACCOUNTS_MAGIC "%zu %zu %zu %zu\n",
                                  base, base + i, base + g, base + t.len);
                header_len = (size_t)hn;
                if (header_len == base)
                        break;
        }
        p = header_len;
        {
                char *out = malloc(header_len + t.len + 1);

                if (!out) {
                        free(t.s);
                        return -ENOMEM;
                }
                snprintf(header, sizeof(header), LK_ACCOUNTS_MAGIC "%zu %zu %zu %zu\n", p, p + i,
                         p + g, p + t.len);
                memcpy(out, header, header_len);
                if (t.len)
                        memcpy(out + header_len, t.s, t.len);
                out[header_len + t.len] = 0;
                free(t.s);
                *ret = out;
                *ret_len = header_len + t.len;
        }
        return 0;
}

int lk_account_from_view(const struct lk_account_view *v, struct lk_account *ret)
{
        struct lk_account a = {0};

        a.name = strndup(v->name, v->name_len);
        a.gecos = strndup(v->gecos, v->gecos_len);
        a.home = strndup(v->home, v->home_len);
        a.shell = strndup(v->shell, v->shell_len);
        a.identity = v->identity ? strndup(v->identity, v->identity_len) : NULL;
        if (!a.name || !a.gecos || !a.home || !a.shell || (v->identity && !a.identity)) {
                lk_account_clear(&a);
                return -ENOMEM;
        }
        a.uid = v->uid;
        a.gid = v->gid;
        a.last_signin = v->last_signin;
        a.refused = v->refused;
        a.n_gids = v->n_gids;
        memcpy(a.gids, v->gids, sizeof(a.gids));
        *ret = a;
        return 0;
}

void lk_account_clear(struct lk_account *a)
{
        free(a->name);
        free(a->gecos);
        free(a->home);
        free(a->shell);
        free(a->identity);
        for (unsigned k = 0; k < LK_ACCOUNTS_GIDS_MAX; k++)
                free(a->group_names[k]);
        *a = (struct lk_account){0};
}
