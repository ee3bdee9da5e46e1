/* SPDX-License-Identifier: MIT */
/*
 * The disk copy of the keys or the discovery document (jwks_cache.c), as if
 * someone had written anything at all into the cache folder: it must be
 * refused or give a fresh, bounded entry, never a crash.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "oidc/jwks_cache.h"

#define NOW 1700000000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[] = "/tmp/fuzz-cache-file.XXXXXX";
static char path[64];

static void remove_dir(void)
{
        unlink(path);
        rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct lk_cache_file f = {0};
        struct lk_jwks_cache c;
        struct lk_error e = {0};
        static bool made;
        int fd, r;

        /* A file in a folder of our own, mode 0600: what the broker itself writes (a file
         * others may write, or reached through a symbolic link, is refused before it is read). */
        if (!made) {
                if (!mkdtemp(dir))
                        abort();
                snprintf(path, sizeof(path), "%s/cache.json", dir);
                atexit(remove_dir);
                made = true;
        }
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                abort();
        if (write(fd, data, size) != (ssize_t)size)
                abort();

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
