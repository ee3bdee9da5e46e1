/* SPDX-License-Identifier: MIT */
#include "base/ini_files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"

static void warn_at(lk_ini_warn_fn warn, void *userdata, const char *path, unsigned line,
                    const char *what)
{
        if (warn)
                warn(userdata, path, line, what);
}

void lk_ini_text_read(const char *path, const char *text, size_t size, lk_ini_key_fn key,
                      lk_ini_warn_fn warn, void *userdata)
{
        const char *section = NULL;
        size_t section_len = 0;
        unsigned line = 0;

        for (const char *p = text, *end = text + size; p < end;) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
                struct lk_ini_line il;
                const char *s = p;

                p += len + 1;
                line++;
                if (len > LK_INI_LINE_MAX || memchr(s, 0, len)) {
                        warn_at(warn, userdata, path, line,
                                "longer than 4096 bytes or holding a NUL byte, ignoring the line");
                        continue;
                }
                lk_ini_line(s, len, line == 1, &il);
                switch (il.kind) {
                case LK_INI_NOTHING:
                        break;
                case LK_INI_SECTION:
                        section = il.name;
                        section_len = il.name_len;
                        break;
                case LK_INI_UNCLOSED:
                        section = NULL;
                        break;
                case LK_INI_KEY:
                        if (section)
                                key(userdata, path, line, section, section_len, &il);
                        break;
                case LK_INI_NO_VALUE:
                        warn_at(warn, userdata, path, line,
                                "expected 'key = value', ignoring the line");
                        break;
                }
        }
}

static void read_one(const char *path, lk_ini_key_fn key, lk_ini_warn_fn warn, void *userdata)
{
        _cleanup_free_ char *text = NULL;
        struct stat st;
        size_t len = 0;
        ssize_t k;
        int fd;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                if (errno != ENOENT)
                        warn_at(warn, userdata, path, 0, "cannot be read; its settings do not apply");
                return;
        }
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 022) ||
            st.st_size > LK_INI_FILE_MAX) {
                warn_at(warn, userdata, path, 0,
                        "ignored: not a regular file of at most 65536 bytes that only its owner "
                        "may write");
                close(fd);
                return;
        }
        text = malloc(LK_INI_FILE_MAX + 1);
        if (!text) {
                close(fd);
                return;
        }
        while (len <= LK_INI_FILE_MAX &&
               (k = read(fd, text + len, LK_INI_FILE_MAX + 1 - len)) != 0) {
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        break;
                len += (size_t)k;
        }
        close(fd);
        if (len > LK_INI_FILE_MAX) {
                warn_at(warn, userdata, path, 0, "ignored: larger than 65536 bytes");
                return;
        }
        lk_ini_text_read(path, text, len, key, warn, userdata);
}

static int cmp_names(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

void lk_ini_files_read(const char *path, lk_ini_key_fn key, lk_ini_warn_fn warn, void *userdata)
{
        _cleanup_free_ char *dir = NULL;
        char **names = NULL;
        size_t n = 0;
        struct dirent *de;
        struct stat st;
        DIR *d;

        read_one(path, key, warn, userdata);
        if (asprintf(&dir, "%s.d", path) < 0) {
                dir = NULL;
                return;
        }
        d = opendir(dir);
        if (!d) {
                if (errno != ENOENT)
                        warn_at(warn, userdata, dir, 0, "cannot be read; its settings do not apply");
                return;
        }
        if (fstat(dirfd(d), &st) < 0 || (st.st_mode & 022)) {
                warn_at(warn, userdata, dir, 0, "ignored: group or others may write it");
                closedir(d);
                return;
        }
        while ((de = readdir(d)) && n < LK_INI_DROPINS_MAX) {
                char **grown;

                if (de->d_name[0] == '.' || !lk_endswith(de->d_name, ".conf"))
                        continue;
                grown = reallocarray(names, n + 1, sizeof(char *));
                if (!grown)
                        break;
                names = grown;
                if (asprintf(&names[n], "%s/%s", dir, de->d_name) < 0)
                        break;
                n++;
        }
        closedir(d);
        if (n > 0)
                qsort(names, n, sizeof(char *), cmp_names);
        for (size_t i = 0; i < n; i++) {
                read_one(names[i], key, warn, userdata);
                free(names[i]);
        }
        free(names);
}
