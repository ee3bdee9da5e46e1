/* SPDX-License-Identifier: MIT */
#include "nss/cache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
        struct lk_accounts_map map;
        void *base;
        size_t size;
        dev_t dev;
        ino_t ino;
        struct timespec mtim;
        int r; /* the map's state: 0, or why there is none */
        bool valid;
} cur;

static bool same(const struct stat *st)
{
        return cur.valid && st->st_dev == cur.dev && st->st_ino == cur.ino &&
               (size_t)st->st_size == cur.size && st->st_mtim.tv_sec == cur.mtim.tv_sec &&
               st->st_mtim.tv_nsec == cur.mtim.tv_nsec;
}

/*
 * Maps path. A file that others than its owner may write is not trusted: whoever could
 * write it could name any account.
 */
static int map_file(const char *path, struct stat *st, void **ret_base, struct lk_accounts_map *m)
{
        void *base;
        int fd, r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return errno == ENOENT ? -ENOENT : -EINVAL;
        if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode) || (st->st_mode & 022) ||
            st->st_size <= 0 || (size_t)st->st_size > LK_ACCOUNTS_FILE_MAX) {
                close(fd);
                return -EINVAL;
        }
        base = mmap(NULL, (size_t)st->st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        close(fd);
        if (base == MAP_FAILED)
                return -EINVAL;
        r = lk_accounts_map_init(m, base, (size_t)st->st_size);
        if (r < 0) {
                munmap(base, (size_t)st->st_size);
                return r;
        }
        *ret_base = base;
        return 0;
}

/* A fork while another thread holds the lock must not leave the child locked out. */
static void before_fork(void)
{
        pthread_mutex_lock(&lock);
}

static void after_fork(void)
{
        pthread_mutex_unlock(&lock);
}

__attribute__((constructor)) static void at_load(void)
{
        (void)pthread_atfork(before_fork, after_fork, after_fork);
}

int lk_nss_cache_lock(const struct lk_accounts_map **ret)
{
        const char *path = lk_accounts_path();
        struct lk_accounts_map m = {0};
        struct stat st = {0};
        void *base = NULL;
        int r;

        pthread_mutex_lock(&lock);
        if (stat(path, &st) < 0) {
                r = errno == ENOENT ? -ENOENT : -EINVAL;
                goto drop;
        }
        if (same(&st)) {
                if (cur.r == 0)
                        *ret = &cur.map;
                return cur.r;
        }
        r = map_file(path, &st, &base, &m);
drop:
        if (cur.base)
                munmap(cur.base, cur.size);
        cur.base = base;
        cur.map = m;
        cur.r = r;
        cur.valid = r != -ENOENT;
        cur.size = (size_t)st.st_size;
        cur.dev = st.st_dev;
        cur.ino = st.st_ino;
        cur.mtim = st.st_mtim;
        if (r == 0)
                *ret = &cur.map;
        return r;
}

void lk_nss_cache_unlock(void)
{
        pthread_mutex_unlock(&lock);
}

int lk_nss_cache_open(struct lk_accounts_map *ret)
{
        struct stat st;
        void *base;

        return map_file(lk_accounts_path(), &st, &base, ret);
}

void lk_nss_cache_close(struct lk_accounts_map *m)
{
        if (m->data)
                munmap((void *)m->data, m->size);
        *m = (struct lk_accounts_map){0};
}
