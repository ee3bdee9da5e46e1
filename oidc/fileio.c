/* SPDX-License-Identifier: MIT */
#include "oidc/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The buffer may hold secrets (session files hold tokens): wiped when a read fails. */
static void wipe_freep(char **p)
{
        if (*p) {
                explicit_bzero(*p, malloc_usable_size(*p));
                free(*p);
        }
}

int lk_read_fd(int fd, const char *name, size_t max, char **ret, size_t *ret_len,
               struct lk_error *e)
{
        _cleanup_(wipe_freep) char *buf = NULL;
        size_t len = 0;

        buf = malloc(max + 1);
        if (!buf)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory reading %s", name);
        for (;;) {
                ssize_t n;

                /* Read one byte past the cap, to tell "exactly max" from "too big". */
                if (len == max + 1)
                        break;
                n = read(fd, buf + len, max + 1 - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return lk_error_from_errno(e, errno, "Cannot read %s", name);
                }
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        if (len > max)
                return lk_error_set(e, LK_ERR_IO, "%s is larger than %zu bytes", name, max);
        buf[len] = 0;
        *ret = TAKE_PTR(buf);
        if (ret_len)
                *ret_len = len;
        return 0;
}

int lk_read_file(const char *path, size_t max, char **ret, size_t *ret_len, struct lk_error *e)
{
        int fd, r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return lk_error_from_errno(e, errno, "Cannot open %s", path);
        r = lk_read_fd(fd, path, max, ret, ret_len, e);
        close(fd);
        return r;
}

int lk_check_private(const char *path, const struct stat *st, unsigned flags, struct lk_error *e)
{
        bool dir = flags & LK_PRIVATE_DIR;
        unsigned uid = (unsigned)geteuid();

        if (dir ? !S_ISDIR(st->st_mode) : !S_ISREG(st->st_mode))
                return lk_error_set(e, LK_ERR_IO, "%s is not a %s", path,
                                    dir ? "directory" : "regular file");
        if (flags & LK_PRIVATE_OURS) {
                if (st->st_uid != uid)
                        return lk_error_set(e, LK_ERR_IO,
                                            "%s is owned by uid %u; it must be owned by uid %u "
                                            "(chown %u %s)",
                                            path, (unsigned)st->st_uid, uid, uid, path);
        } else if (st->st_uid != 0 && st->st_uid != uid)
                return lk_error_set(e, LK_ERR_IO,
                                    "%s is owned by uid %u; it must be owned by root or by uid %u "
                                    "(chown root %s)",
                                    path, (unsigned)st->st_uid, uid, path);
        if ((flags & LK_PRIVATE_SECRET) && (st->st_mode & 0077))
                return lk_error_set(e, LK_ERR_IO,
                                    "%s has mode %04o; a secret must not be open to group or "
                                    "others (chmod %s %s)",
                                    path, (unsigned)(st->st_mode & 07777), dir ? "0700" : "0600",
                                    path);
        if (st->st_mode & 0022)
                return lk_error_set(e, LK_ERR_IO,
                                    "%s has mode %04o; it is writable by group or others "
                                    "(chmod go-w %s)",
                                    path, (unsigned)(st->st_mode & 07777), path);
        return 0;
}

/* The folder that holds path: a file there can be replaced by whoever may write it. */
static int check_parent(const char *path, struct lk_error *e)
{
        _cleanup_free_ char *copy = strdup(path);
        struct stat st;
        const char *dir;

        if (!copy)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        dir = dirname(copy);
        if (stat(dir, &st) < 0)
                return lk_error_from_errno(e, errno, "Cannot stat %s", dir);
        return lk_check_private(dir, &st, LK_PRIVATE_DIR, e);
}

int lk_read_private_file(const char *path, unsigned flags, size_t max, char **ret,
                         size_t *ret_len, struct stat *ret_st, struct lk_error *e)
{
        struct stat st;
        int fd, r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0) {
                if (errno == ENOENT)
                        return lk_error_set(e, LK_ERR_NOT_FOUND, "%s does not exist", path);
                if (errno == ELOOP)
                        return lk_error_set(e, LK_ERR_IO,
                                            "%s is a symbolic link; name the file itself", path);
                return lk_error_from_errno(e, errno, "Cannot open %s", path);
        }
        /* Checked on the open fd, so on what is read (no race). */
        if (fstat(fd, &st) < 0)
                r = lk_error_from_errno(e, errno, "Cannot stat %s", path);
        else
                r = lk_check_private(path, &st, flags & ~LK_PRIVATE_DIR, e);
        if (r == 0)
                r = check_parent(path, e);
        if (r == 0)
                r = lk_read_fd(fd, path, max, ret, ret_len, e);
        close(fd);
        if (r == 0 && ret_st)
                *ret_st = st;
        return r;
}

/* 0 or -errno, which lk_write_file_atomic() turns into its error. */
static int write_all(int fd, const char *p, size_t len)
{
        while (len > 0) {
                ssize_t n = write(fd, p, len);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

int lk_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                         struct lk_error *e)
{
        _cleanup_free_ char *tmp = NULL, *dircopy = NULL;
        int fd, r, dfd;

        if (asprintf(&tmp, "%s.tmp.XXXXXX", path) < 0) {
                tmp = NULL;
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory writing %s", path);
        }
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return lk_error_from_errno(e, errno, "Cannot create a temporary file for %s", path);

        r = fchmod(fd, mode) < 0 ? -errno : 0;
        if (r == 0)
                r = write_all(fd, data, len);
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        if (close(fd) < 0 && r == 0)
                r = -errno;
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                unlink(tmp);
                return lk_error_from_errno(e, r, "Cannot write %s", path);
        }

        /* The rename is durable only once the folder is synced too. */
        dircopy = strdup(path);
        if (dircopy) {
                dfd = open(dirname(dircopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dfd >= 0) {
                        (void)fsync(dfd);
                        close(dfd);
                }
        }
        return 0;
}
