/* SPDX-License-Identifier: MIT */
/*
 * The client secret's three sources (SPEC §3), at most one of them used:
 * client_secret in the config itself, the file client_secret_file names, or
 * the systemd credential client_secret (LoadCredential=client_secret:...).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include "oidc/config_loader.h"
#include "oidc/fileio.h"

#define SECRET_FILE_MAX 4096

/*
 * A file holding the secret: lk_read_private_file() with no access at all for
 * group and others.
 */
static int read_secret_file(const char *path, char **ret, char *why, size_t why_size)
{
        struct lk_error e = {0};
        char *buf = NULL;
        size_t len = 0;
        int r;

        r = lk_read_private_file(path, LK_PRIVATE_SECRET, SECRET_FILE_MAX, &buf, &len, NULL, &e);
        if (r == -LK_ERR_NOMEM)
                return r;
        if (r < 0) {
                snprintf(why, why_size, "%.*s", (int)why_size - 1, e.message);
                return -LK_ERR_CONFIG;
        }

        /* One trailing newline is what editors and `echo` leave; the secret is the rest. */
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
                buf[--len] = 0;
        if (len == 0 || memchr(buf, 0, len)) {
                snprintf(why, why_size, "%s %s", path, len == 0 ? "is empty" : "holds a NUL byte");
                conf_wipe_free(buf, len);
                return -LK_ERR_CONFIG;
        }
        *ret = buf;
        return 0;
}

/* Hands secret and the name of where it came from (copied) to the config. */
static void take_secret(struct conf_loader *l, char *secret, const char *source)
{
        char *s = strdup(source);

        if (!s) {
                lk_secret_free(secret);
                l->oom = true;
                return;
        }
        l->c->client_secret = secret;
        l->c->client_secret_source = s;
}

/* client_secret = ...: SPEC §3 refuses it in a file others may read. */
static void secret_inline(struct conf_loader *l)
{
        const struct conf_source *s = &l->sources[conf_origin_of(l, "client_secret")->source];
        struct stat st = { .st_mode = s->mode, .st_uid = s->uid };
        struct lk_error e = {0};

        if (s->is_file && lk_check_private(s->name, &st, LK_PRIVATE_SECRET, &e) < 0)
                conf_key_problem(l, "client_secret",
                                 "this file holds the client secret, but %s; or use "
                                 "client_secret_file",
                                 e.message);
        else if (!(l->c->client_secret_source = strdup("client_secret")))
                l->oom = true;
}

/* client_secret_file = PATH */
static void secret_file(struct conf_loader *l)
{
        const char *path = l->c->client_secret_file;
        char why[LK_ERROR_MESSAGE_MAX - 64], *secret = NULL;
        int r;

        r = read_secret_file(path, &secret, why, sizeof(why));
        if (r == -LK_ERR_NOMEM)
                l->oom = true;
        else if (r < 0)
                conf_key_problem(l, "client_secret_file", "%s", why);
        else
                take_secret(l, secret, path);
}

/* $CREDENTIALS_DIRECTORY/client_secret, when it exists. */
static void secret_credential(struct conf_loader *l)
{
        const char *dir = secure_getenv("CREDENTIALS_DIRECTORY");
        _cleanup_free_ char *path = NULL;
        char why[LK_ERROR_MESSAGE_MAX - 64], *secret = NULL;
        struct stat st;
        size_t src;
        int r;

        if (isempty(dir))
                return;
        if (asprintf(&path, "%s/client_secret", dir) < 0) {
                path = NULL;
                l->oom = true;
                return;
        }
        if (lstat(path, &st) < 0 && errno == ENOENT)
                return;
        r = read_secret_file(path, &secret, why, sizeof(why));
        if (r == -LK_ERR_NOMEM || (r < 0 && conf_add_source(l, path, &src) < 0))
                l->oom = true;
        else if (r < 0)
                conf_problem(l, src, 0, NULL, NULL, "systemd credential: %s", why);
        else
                take_secret(l, secret, path);
}

void conf_load_secret(struct conf_loader *l)
{
        const struct conf_origin *of = conf_origin_of(l, "client_secret_file");
        const struct conf_origin *oi = conf_origin_of(l, "client_secret");

        if (l->c->client_secret_file && l->c->client_secret) {
                /* Report it where the later of the two was set. */
                bool file_later = of->source > oi->source ||
                                  (of->source == oi->source && of->line > oi->line);

                conf_key_problem(l, file_later ? "client_secret_file" : "client_secret",
                                 "client_secret_file and client_secret are both set; keep one");
        } else if (l->c->client_secret)
                secret_inline(l);
        else if (l->c->client_secret_file)
                secret_file(l);
        else
                secret_credential(l);
}
