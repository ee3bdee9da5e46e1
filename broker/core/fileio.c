/* SPDX-License-Identifier: MIT */
#include "fileio.h"

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
                        return lk_error_set(e, LK_ERR_IO, "Cannot read %s: %s", name,
                                            strerror(errno));
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
                return lk_error_set(e, LK_ERR_IO, "Cannot open %s: %s", path, strerror(errno));
        r = lk_read_fd(fd, path, max, ret, ret_len, e);
        close(fd);
        return r;
}

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
                return lk_error_set(e, LK_ERR_IO, "Cannot create a temporary file for %s: %s", path,
                                    strerror(errno));

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
                return lk_error_set(e, LK_ERR_IO, "Cannot write %s: %s", path, strerror(-r));
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
