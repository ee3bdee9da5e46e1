/* SPDX-License-Identifier: MIT */
#include "tests/harness/session_files.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "broker/sealed_file.h"
#include "broker/session_key.h"

static char *read_whole(const char *path, size_t *ret_len)
{
        FILE *f = fopen(path, "re");
        char *buf = malloc(LK_SEALED_FILE_MAX + 1);
        size_t n;

        if (!f || !buf) {
                fprintf(stderr, "cannot read %s: %m\n", path);
                if (f)
                        fclose(f);
                free(buf);
                return NULL;
        }
        n = fread(buf, 1, LK_SEALED_FILE_MAX, f);
        fclose(f);
        buf[n] = '\0';
        *ret_len = n;
        return buf;
}

static int load_keys(struct lkh *h, struct lk_session_keys *ks)
{
        _cleanup_free_ char *path = lkh_xasprintf("%s/%s", h->state_dir, LK_SESSION_KEY_FILE);
        const char *why = NULL;
        size_t len = 0;
        char *text = read_whole(path, &len);
        int r;

        *ks = (struct lk_session_keys){0};
        if (!text)
                return -ENOENT;
        r = lk_session_keys_parse(text, len, ks, &why);
        explicit_bzero(text, len);
        free(text);
        if (r < 0)
                fprintf(stderr, "%s: %s\n", path, why);
        return r < 0 ? -EINVAL : 0;
}

char *lkh_read_sealed(struct lkh *h, const char *path, const char *name, size_t *ret_len)
{
        _cleanup_free_ char *text = NULL;
        struct lk_session_keys ks = {0};
        const struct lk_session_key *k;
        char *plain = NULL;
        const char *why = NULL;
        size_t len = 0, plain_len = 0;
        struct lk_sealed s;

        text = read_whole(path, &len);
        if (!text)
                return NULL;
        if (!lk_sealed_is_sealed((uint8_t *)text, len)) {
                *ret_len = len;
                return TAKE_PTR(text);
        }
        if (lk_sealed_parse((uint8_t *)text, len, &s, &why) < 0 || load_keys(h, &ks) < 0) {
                fprintf(stderr, "%s: %s\n", path, why ? why : "no key file");
                return NULL;
        }
        k = lk_session_keys_find(&ks, s.key_id);
        if (!k || lk_sealed_open(k, name, &s, &plain, &plain_len, &why) < 0) {
                fprintf(stderr, "%s: %s\n", path, k ? why : "under a key the key file lacks");
                lk_session_keys_clear(&ks);
                return NULL;
        }
        lk_session_keys_clear(&ks);
        *ret_len = plain_len;
        return plain;
}

json_t *lkh_read_session(struct lkh *h, const char *id)
{
        _cleanup_free_ char *path = lkh_xasprintf("%s/sessions/%s.json", h->state_dir, id);
        char *plain;
        size_t plain_len = 0;
        json_error_t jerr;
        json_t *o;

        plain = lkh_read_sealed(h, path, id, &plain_len);
        if (!plain)
                return NULL;
        o = json_loadb(plain, plain_len, JSON_REJECT_DUPLICATES, &jerr);
        explicit_bzero(plain, plain_len);
        free(plain);
        if (!o)
                fprintf(stderr, "%s: %s\n", path, jerr.text);
        return o;
}

char *lkh_read_offline_record(struct lkh *h, unsigned uid)
{
        _cleanup_free_ char *path = lkh_xasprintf("%s/offline/%u", h->state_dir, uid);
        _cleanup_free_ char *name = lkh_xasprintf("offline/%u", uid);
        size_t len = 0;

        return lkh_read_sealed(h, path, name, &len);
}

int lkh_write_session(struct lkh *h, const char *id, json_t *o)
{
        _cleanup_free_ char *path = lkh_xasprintf("%s/sessions/%s.json", h->state_dir, id);
        _cleanup_free_ char *text = json_dumps(o, JSON_COMPACT);
        _cleanup_free_ uint8_t *sealed = NULL;
        struct lk_session_keys ks = {0};
        struct lk_error e = {0};
        size_t len = 0;
        int fd, r;

        if (!text || load_keys(h, &ks) < 0)
                return -EINVAL;
        r = lk_sealed_seal(&ks.keys[0], id, text, strlen(text), &sealed, &len, &e);
        lk_session_keys_clear(&ks);
        explicit_bzero(text, strlen(text));
        if (r < 0) {
                fprintf(stderr, "cannot seal %s: %s\n", path, e.message);
                return -EINVAL;
        }
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        if (write(fd, sealed, len) != (ssize_t)len) {
                close(fd);
                return -EIO;
        }
        return close(fd) < 0 ? -errno : 0;
}

char *lkh_session_key_hex(struct lkh *h)
{
        _cleanup_free_ char *path = lkh_xasprintf("%s/%s", h->state_dir, LK_SESSION_KEY_FILE);
        size_t len = 0, skip = strlen(LK_SESSION_KEY_FILE_HEADER) + 1;
        char *text = read_whole(path, &len), *hex;

        if (!text || len < skip + 64) {
                free(text);
                return NULL;
        }
        hex = strndup(text + skip, 64);
        explicit_bzero(text, len);
        free(text);
        return hex;
}
