/* SPDX-License-Identifier: MIT */
/*
 * libnss_latchkey.so.2 (issue 20): passwd, group and initgroups for provider accounts, from
 * the cache latchkeyd writes (base/accounts_file.h), never from the bus: a lookup is a stat()
 * and a binary search of a mapped file, and with the broker stopped it answers the same.
 *
 * Before a name's first login, root's processes (sshd's monitor looks the user up before
 * PAM runs) get a provisional passwd entry for a name [accounts] allowed_names or
 * allowed_suffixes admit: its uid is the one the broker will give it (base/uidmap.h), its
 * home and shell the templates'. Nothing keeps it: the broker writes the account only when a
 * login completes. Other users' processes never see provisional entries, and enumeration
 * and uid lookups never make them (a uid cannot be turned back into a name).
 *
 * The module links nothing but libc (no D-Bus, no libcurl, no OpenSSL): it is loaded into
 * every process that resolves a user. It refuses entries with a uid or gid below 1000, so a
 * broken or hostile cache cannot name root or a system account.
 */
#include <errno.h>
#include <grp.h>
#include <nss.h>
#include <pthread.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/accounts_conf.h"
#include "base/accounts_file.h"
#include "base/uidmap.h"
#include "base/util.h"
#include "nss/cache.h"

#define ID_FLOOR 1000 /* no account or primary group below it comes from the cache */
#define PASSWORD "*"  /* no password: SSO, or a key */

/* Copies of the answer's strings go into the caller's buffer. */
struct out {
        char *buf;
        size_t left;
};

static char *put(struct out *o, const char *s, size_t len)
{
        char *p = o->buf;

        if (len + 1 > o->left)
                return NULL;
        memcpy(p, s, len);
        p[len] = 0;
        o->buf += len + 1;
        o->left -= len + 1;
        return p;
}

static char **put_ptrs(struct out *o, size_t n)
{
        uintptr_t a = (uintptr_t)o->buf, pad = (sizeof(char *) - a % sizeof(char *)) % sizeof(char *);
        char **p;

        if (pad + n * sizeof(char *) > o->left)
                return NULL;
        p = (char **)(o->buf + pad);
        o->buf += pad + n * sizeof(char *);
        o->left -= pad + n * sizeof(char *);
        return p;
}

static enum nss_status erange(int *errnop)
{
        *errnop = ERANGE;
        return NSS_STATUS_TRYAGAIN;
}

static enum nss_status not_found(int *errnop)
{
        *errnop = ENOENT;
        return NSS_STATUS_NOTFOUND;
}

static bool view_ok(const struct lk_account_view *v)
{
        return v->uid >= ID_FLOOR && v->gid >= ID_FLOOR;
}

static enum nss_status fill_pw(const struct lk_account_view *v, struct passwd *pw, char *buf,
                               size_t buflen, int *errnop)
{
        struct out o = {buf, buflen};

        pw->pw_name = put(&o, v->name, v->name_len);
        pw->pw_passwd = put(&o, PASSWORD, strlen(PASSWORD));
        pw->pw_gecos = put(&o, v->gecos, v->gecos_len);
        pw->pw_dir = put(&o, v->home, v->home_len);
        pw->pw_shell = put(&o, v->shell, v->shell_len);
        if (!pw->pw_name || !pw->pw_passwd || !pw->pw_gecos || !pw->pw_dir || !pw->pw_shell)
                return erange(errnop);
        pw->pw_uid = v->uid;
        pw->pw_gid = v->gid;
        return NSS_STATUS_SUCCESS;
}

/* The per-user primary group of an account: its name, gid = uid, no members. */
static enum nss_status fill_user_group(const struct lk_account_view *v, struct group *gr,
                                       char *buf, size_t buflen, int *errnop)
{
        struct out o = {buf, buflen};

        gr->gr_name = put(&o, v->name, v->name_len);
        gr->gr_passwd = put(&o, PASSWORD, strlen(PASSWORD));
        gr->gr_mem = put_ptrs(&o, 1);
        if (!gr->gr_name || !gr->gr_passwd || !gr->gr_mem)
                return erange(errnop);
        gr->gr_mem[0] = NULL;
        gr->gr_gid = v->gid;
        return NSS_STATUS_SUCCESS;
}

/* A local group the broker puts its accounts in: its members are those accounts. */
static enum nss_status fill_mapped_group(const struct lk_group_view *g, struct group *gr,
                                         char *buf, size_t buflen, int *errnop)
{
        struct out o = {buf, buflen};
        size_t n = g->members_len ? 1 : 0, k = 0;
        char *members;

        for (size_t i = 0; i < g->members_len; i++)
                n += g->members[i] == ',';
        gr->gr_name = put(&o, g->name, g->name_len);
        gr->gr_passwd = put(&o, PASSWORD, strlen(PASSWORD));
        members = put(&o, g->members, g->members_len);
        gr->gr_mem = put_ptrs(&o, n + 1);
        if (!gr->gr_name || !gr->gr_passwd || !members || !gr->gr_mem)
                return erange(errnop);
        for (char *p = members; n > 0 && p;) {
                char *c = strchr(p, ',');

                if (c)
                        *c++ = 0;
                if (*p)
                        gr->gr_mem[k++] = p;
                p = c;
        }
        gr->gr_mem[k] = NULL;
        gr->gr_gid = g->gid;
        return NSS_STATUS_SUCCESS;
}

/* A never-seen name that [accounts] lets appear, for root's processes only. */
static enum nss_status provisional(const char *name, const struct lk_accounts_map *m,
                                   struct passwd *pw, char *buf, size_t buflen, int *errnop)
{
        struct lk_accounts_conf *c;
        struct lk_account_view v = {0}, other;
        char home[LK_ACCOUNTS_TEMPLATE_MAX + 1], shell[LK_ACCOUNTS_TEMPLATE_MAX + 1];
        enum nss_status s = NSS_STATUS_NOTFOUND;

        if (geteuid() != 0)
                return not_found(errnop);
        c = malloc(sizeof(*c));
        if (!c) {
                *errnop = ENOMEM;
                return NSS_STATUS_TRYAGAIN;
        }
        lk_accounts_conf_read(c, lk_accounts_config_path(), NULL, NULL);
        if (lk_accounts_conf_allows(c, name) &&
            lk_accounts_expand(c->home, name, home, sizeof(home)) == 0 &&
            lk_accounts_expand(c->shell, name, shell, sizeof(shell)) == 0 && home[0] == '/' &&
            shell[0] == '/' && lk_accounts_field_ok(home, LK_ACCOUNTS_TEMPLATE_MAX) &&
            lk_accounts_field_ok(shell, LK_ACCOUNTS_TEMPLATE_MAX)) {
                v.name = name;
                v.name_len = strlen(name);
                v.uid = v.gid = lk_uidmap_uid(name, v.name_len, c->uid_min, c->uid_max);
                v.gecos = "";
                v.home = home;
                v.home_len = strlen(home);
                v.shell = shell;
                v.shell_len = strlen(shell);
                /* A uid another account holds is no answer: the broker will refuse it too. */
                if (!m || lk_accounts_find_uid(m, v.uid, &other) == -ENOENT)
                        s = fill_pw(&v, pw, buf, buflen, errnop);
        }
        free(c);
        if (s == NSS_STATUS_NOTFOUND)
                *errnop = ENOENT;
        return s;
}

enum nss_status _nss_latchkey_getpwnam_r(const char *name, struct passwd *pw, char *buf,
                                         size_t buflen, int *errnop);
enum nss_status _nss_latchkey_getpwnam_r(const char *name, struct passwd *pw, char *buf,
                                         size_t buflen, int *errnop)
{
        const struct lk_accounts_map *m = NULL;
        struct lk_account_view v;
        enum nss_status s;
        int r;

        r = lk_nss_cache_lock(&m);
        if (r == 0 && lk_accounts_find_name(m, name, &v) == 0 && view_ok(&v))
                s = fill_pw(&v, pw, buf, buflen, errnop);
        else if (r == 0 || r == -ENOENT)
                s = provisional(name, r == 0 ? m : NULL, pw, buf, buflen, errnop);
        else
                s = not_found(errnop);
        lk_nss_cache_unlock();
        return s;
}

enum nss_status _nss_latchkey_getpwuid_r(uid_t uid, struct passwd *pw, char *buf, size_t buflen,
                                         int *errnop);
enum nss_status _nss_latchkey_getpwuid_r(uid_t uid, struct passwd *pw, char *buf, size_t buflen,
                                         int *errnop)
{
        const struct lk_accounts_map *m;
        struct lk_account_view v;
        enum nss_status s = NSS_STATUS_NOTFOUND;

        *errnop = ENOENT;
        if (lk_nss_cache_lock(&m) == 0 && lk_accounts_find_uid(m, (uint32_t)uid, &v) == 0 &&
            view_ok(&v))
                s = fill_pw(&v, pw, buf, buflen, errnop);
        lk_nss_cache_unlock();
        return s;
}

enum nss_status _nss_latchkey_getgrnam_r(const char *name, struct group *gr, char *buf,
                                         size_t buflen, int *errnop);
enum nss_status _nss_latchkey_getgrnam_r(const char *name, struct group *gr, char *buf,
                                         size_t buflen, int *errnop)
{
        const struct lk_accounts_map *m;
        struct lk_account_view v;
        struct lk_group_view g;
        enum nss_status s = NSS_STATUS_NOTFOUND;

        *errnop = ENOENT;
        if (lk_nss_cache_lock(&m) == 0) {
                if (lk_accounts_find_group(m, name, &g) == 0)
                        s = fill_mapped_group(&g, gr, buf, buflen, errnop);
                else if (lk_accounts_find_name(m, name, &v) == 0 && view_ok(&v) &&
                         v.gid == v.uid)
                        s = fill_user_group(&v, gr, buf, buflen, errnop);
        }
        lk_nss_cache_unlock();
        return s;
}

enum nss_status _nss_latchkey_getgrgid_r(gid_t gid, struct group *gr, char *buf, size_t buflen,
                                         int *errnop);
enum nss_status _nss_latchkey_getgrgid_r(gid_t gid, struct group *gr, char *buf, size_t buflen,
                                         int *errnop)
{
        const struct lk_accounts_map *m;
        struct lk_account_view v;
        struct lk_group_view g;
        enum nss_status s = NSS_STATUS_NOTFOUND;

        *errnop = ENOENT;
        if (lk_nss_cache_lock(&m) == 0) {
                if (lk_accounts_find_uid(m, (uint32_t)gid, &v) == 0 && view_ok(&v) &&
                    v.gid == gid)
                        s = fill_user_group(&v, gr, buf, buflen, errnop);
                else if (lk_accounts_find_gid(m, (uint32_t)gid, &g) == 0)
                        s = fill_mapped_group(&g, gr, buf, buflen, errnop);
        }
        lk_nss_cache_unlock();
        return s;
}

enum nss_status _nss_latchkey_initgroups_dyn(const char *user, gid_t group, long int *start,
                                             long int *size, gid_t **groupsp, long int limit,
                                             int *errnop);
enum nss_status _nss_latchkey_initgroups_dyn(const char *user, gid_t group, long int *start,
                                             long int *size, gid_t **groupsp, long int limit,
                                             int *errnop)
{
        const struct lk_accounts_map *m;
        struct lk_account_view v;
        enum nss_status s = NSS_STATUS_NOTFOUND;

        *errnop = ENOENT;
        if (lk_nss_cache_lock(&m) != 0 || lk_accounts_find_name(m, user, &v) != 0 ||
            !view_ok(&v))
                goto out;
        s = NSS_STATUS_SUCCESS;
        for (unsigned k = 0; k < v.n_gids; k++) {
                gid_t gid = v.gids[k];
                bool have = gid == group;

                for (long i = 0; i < *start && !have; i++)
                        have = (*groupsp)[i] == gid;
                if (have)
                        continue;
                if (*start == *size) {
                        long n;
                        gid_t *grown;

                        if (limit > 0 && *size >= limit)
                                break;
                        n = *size ? *size * 2 : 16;
                        if (limit > 0 && n > limit)
                                n = limit;
                        grown = realloc(*groupsp, (size_t)n * sizeof(gid_t));
                        if (!grown) {
                                *errnop = ENOMEM;
                                s = NSS_STATUS_TRYAGAIN;
                                break;
                        }
                        *groupsp = grown;
                        *size = n;
                }
                (*groupsp)[(*start)++] = gid;
        }
out:
        lk_nss_cache_unlock();
        return s;
}

/* ---- enumeration: a map of its own, from set*ent to end*ent ---- */

struct walk {
        pthread_mutex_t lock;
        struct lk_accounts_map map;
        bool open;
        bool tried;   /* opened since the last set*ent or end*ent */
        size_t pos;   /* in the P section */
        size_t gpos;  /* in the G section (groups: the per-user ones first) */
};

static struct walk pw_walk = {.lock = PTHREAD_MUTEX_INITIALIZER};
static struct walk gr_walk = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* With w->lock held. */
static void walk_open(struct walk *w)
{
        if (w->open)
                lk_nss_cache_close(&w->map);
        w->open = lk_nss_cache_open(&w->map) == 0;
        w->tried = true;
        w->pos = w->gpos = 0;
}

static enum nss_status walk_set(struct walk *w)
{
        pthread_mutex_lock(&w->lock);
        walk_open(w);
        pthread_mutex_unlock(&w->lock);
        return NSS_STATUS_SUCCESS;
}

static enum nss_status walk_end(struct walk *w)
{
        pthread_mutex_lock(&w->lock);
        if (w->open)
                lk_nss_cache_close(&w->map);
        w->open = false;
        w->tried = false;
        pthread_mutex_unlock(&w->lock);
        return NSS_STATUS_SUCCESS;
}

/*
 * The next usable account of the walk, or 0 at the end (or at a broken line). With w->lock
 * held. A get*ent without set*ent opens the cache once; after the end it stays at the end.
 */
static int walk_next(struct walk *w, struct lk_account_view *v, size_t *ret_pos)
{
        int r;

        if (!w->open && !w->tried)
                walk_open(w);
        w->tried = true;
        if (!w->open)
                return 0;
        for (;;) {
                *ret_pos = w->pos;
                r = lk_accounts_next(&w->map, &w->pos, v);
                if (r <= 0)
                        return 0;
                if (view_ok(v))
                        return 1;
        }
}

enum nss_status _nss_latchkey_setpwent(int stayopen);
enum nss_status _nss_latchkey_setpwent(int stayopen)
{
        return walk_set(&pw_walk);
}

enum nss_status _nss_latchkey_endpwent(void);
enum nss_status _nss_latchkey_endpwent(void)
{
        return walk_end(&pw_walk);
}

enum nss_status _nss_latchkey_getpwent_r(struct passwd *pw, char *buf, size_t buflen,
                                         int *errnop);
enum nss_status _nss_latchkey_getpwent_r(struct passwd *pw, char *buf, size_t buflen,
                                         int *errnop)
{
        struct lk_account_view v;
        enum nss_status s = NSS_STATUS_NOTFOUND;
        size_t at;

        *errnop = ENOENT;
        pthread_mutex_lock(&pw_walk.lock);
        if (walk_next(&pw_walk, &v, &at)) {
                s = fill_pw(&v, pw, buf, buflen, errnop);
                if (s == NSS_STATUS_TRYAGAIN)
                        pw_walk.pos = at; /* the same entry again, with a larger buffer */
        }
        pthread_mutex_unlock(&pw_walk.lock);
        return s;
}

enum nss_status _nss_latchkey_setgrent(int stayopen);
enum nss_status _nss_latchkey_setgrent(int stayopen)
{
        return walk_set(&gr_walk);
}

enum nss_status _nss_latchkey_endgrent(void);
enum nss_status _nss_latchkey_endgrent(void)
{
        return walk_end(&gr_walk);
}

enum nss_status _nss_latchkey_getgrent_r(struct group *gr, char *buf, size_t buflen,
                                         int *errnop);
enum nss_status _nss_latchkey_getgrent_r(struct group *gr, char *buf, size_t buflen,
                                         int *errnop)
{
        struct lk_account_view v;
        struct lk_group_view g;
        enum nss_status s = NSS_STATUS_NOTFOUND;
        size_t at;

        *errnop = ENOENT;
        pthread_mutex_lock(&gr_walk.lock);
        if (walk_next(&gr_walk, &v, &at)) {
                s = fill_user_group(&v, gr, buf, buflen, errnop);
                if (s == NSS_STATUS_TRYAGAIN)
                        gr_walk.pos = at;
        } else if (gr_walk.open) {
                at = gr_walk.gpos;
                if (lk_accounts_next_group(&gr_walk.map, &gr_walk.gpos, &g) > 0) {
                        s = fill_mapped_group(&g, gr, buf, buflen, errnop);
                        if (s == NSS_STATUS_TRYAGAIN)
                                gr_walk.gpos = at;
                }
        }
        pthread_mutex_unlock(&gr_walk.lock);
        return s;
}
