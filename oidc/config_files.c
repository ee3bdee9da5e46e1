/* SPDX-License-Identifier: MIT */
/*
 * The files: latchkey.conf, then latchkey.conf.d/ *.conf, each read with
 * lk_read_private_file() (it decides the issuer, the keys and who may log
 * in: no one else may write it, nor its folder).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "oidc/config_loader.h"
#include "oidc/fileio.h"

#define CONFIG_FILE_MAX (64 * 1024) /* one config file */
#define CONFIG_DROPINS_MAX 256      /* files in latchkey.conf.d */

int conf_parse_file(struct conf_loader *l, const char *path)
{
        struct lk_error e = {0};
        struct stat st;
        char *text = NULL;
        size_t len = 0, source;
        int r;

        r = conf_add_source(l, path, &source);
        if (r < 0)
                return r;

        /* It decides the issuer, the keys and who may log in: no one else may write it. */
        r = lk_read_private_file(path, 0, CONFIG_FILE_MAX, &text, &len, &st, &e);
        if (r == -LK_ERR_NOMEM)
                return r;
        if (r < 0) {
                conf_problem(l, source, 0, NULL, NULL, "%s", e.message);
                return 0;
        }
        l->sources[source].is_file = true;
        l->sources[source].mode = st.st_mode;
        l->sources[source].uid = st.st_uid;

        r = conf_parse_text(l, source, text, len);
        conf_wipe_free(text, len); /* it may hold client_secret */
        return r;
}

static int cmp_names(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The drop-in folder: not a symbolic link, and as private as the files in it. */
static DIR *open_dropin_dir(const char *dir, struct lk_error *e)
{
        struct stat st;
        DIR *d;
        int fd, r;

        fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
                if (errno == ENOENT)
                        lk_error_set(e, LK_ERR_NOT_FOUND, "%s does not exist", dir);
                else
                        lk_error_set(e, LK_ERR_IO, "cannot open the folder: %s",
                                     errno == ELOOP ? "it is a symbolic link" : strerror(errno));
                return NULL;
        }
        if (fstat(fd, &st) < 0)
                r = lk_error_set(e, LK_ERR_IO, "cannot stat the folder: %s", strerror(errno));
        else
                r = lk_check_private(dir, &st, LK_PRIVATE_DIR, e);
        if (r < 0) {
                close(fd);
                return NULL;
        }
        d = fdopendir(fd);
        if (!d) {
                lk_error_set(e, LK_ERR_IO, "cannot open the folder: %s", strerror(errno));
                close(fd);
        }
        return d;
}

/* <path>.d/ *.conf, in byte order of their names (not the locale's), later winning. */
int conf_parse_dropins(struct conf_loader *l, const char *path)
{
        _cleanup_free_ char *dir = NULL;
        _cleanup_strv_ char **names = NULL;
        struct lk_error e = {0};
        size_t n = 0, source;
        struct dirent *de;
        DIR *d;
        int r = 0;

        if (asprintf(&dir, "%s.d", path) < 0) {
                dir = NULL;
                return -LK_ERR_NOMEM;
        }
        d = open_dropin_dir(dir, &e);
        if (!d) {
                if (e.code == LK_ERR_NOT_FOUND)
                        return 0;
                if (conf_add_source(l, dir, &source) < 0)
                        return -LK_ERR_NOMEM;
                conf_problem(l, source, 0, NULL, NULL, "%s", e.message);
                return 0;
        }
        names = calloc(1, sizeof(char *));
        if (!names) {
                closedir(d);
                return -LK_ERR_NOMEM;
        }
        while ((de = readdir(d))) {
                char **grown;

                if (de->d_name[0] == '.' || !lk_endswith(de->d_name, ".conf"))
                        continue;
                if (n == CONFIG_DROPINS_MAX) {
                        if (conf_add_source(l, dir, &source) < 0) {
                                closedir(d);
                                return -LK_ERR_NOMEM;
                        }
                        conf_problem(l, source, 0, NULL, NULL,
                                    "more than %d .conf files; ignoring the rest",
                                    CONFIG_DROPINS_MAX);
                        break;
                }
                grown = reallocarray(names, n + 2, sizeof(char *));
                if (!grown) {
                        closedir(d);
                        return -LK_ERR_NOMEM;
                }
                names = grown;
                if (asprintf(&names[n], "%s/%s", dir, de->d_name) < 0) {
                        names[n] = NULL;
                        closedir(d);
                        return -LK_ERR_NOMEM;
                }
                names[++n] = NULL;
        }
        closedir(d);

        qsort(names, n, sizeof(char *), cmp_names);
        for (size_t i = 0; i < n && r == 0; i++)
                r = conf_parse_file(l, names[i]);
        return r;
}
