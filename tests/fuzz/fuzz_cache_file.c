/* SPDX-License-Identifier: MIT */
/*
 * The disk copy of the keys or the discovery document (jwks_cache.c), as if
 * someone had written anything at all into the cache folder: it must be
 * refused or give a fresh, bounded entry, never a crash.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jwks_cache.h"

#define NOW 1700000000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct lk_cache_file f = {0};
        struct lk_jwks_cache c;
        struct lk_error e = {0};
        char path[64];
        int fd, r;

        fd = memfd_create("cache", MFD_CLOEXEC);
        if (fd < 0)
                return 0;
        /* A memfd is 0777; a disk copy others may write is refused before it is read. */
        if (fchmod(fd, 0600) < 0) {
                close(fd);
                return 0;
        }
        if (write(fd, data, size) != (ssize_t)size) {
                close(fd);
                return 0;
        }
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);

        r = lk_cache_file_load(path, NOW, &f, &e);
        if (r == 0) {
                if (!f.body || f.expires_at <= NOW || f.expires_at < f.fetched_at ||
                    f.expires_at - f.fetched_at > LK_JWKS_MAX_AGE)
                        abort();
                lk_cache_file_clear(&f);
        } else if (e.code == 0 || f.body) {
                abort();
        }

        if (lk_jwks_cache_init(&c, path, NOW) == 0) {
                if (c.keys && lk_jwks_cache_stale(&c, NOW))
                        abort();
                lk_jwks_cache_clear(&c);
        }
        close(fd);
        return 0;
}
