/* SPDX-License-Identifier: MIT */
#include "broker/session_key.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "oidc/fileio.h"
#include "oidc/log.h"

#define KEY_HEX (2 * LK_SESSION_KEY_SIZE)
/* The header line, then a line per key. */
#define KEY_FILE_LEN(n) (sizeof(LK_SESSION_KEY_FILE_HEADER) + (size_t)(n) * (KEY_HEX + 1))

void lk_session_key_make_id(struct lk_session_key *k)
{
        static const char label[] = "latchkey session key id"; /* and its NUL */
        uint8_t in[sizeof(label) + LK_SESSION_KEY_SIZE], md[EVP_MAX_MD_SIZE];
        unsigned n = 0;

        memcpy(in, label, sizeof(label));
        memcpy(in + sizeof(label), k->key, LK_SESSION_KEY_SIZE);
        if (EVP_Digest(in, sizeof(in), md, &n, EVP_sha256(), NULL) != 1 || n < sizeof(k->id))
                memset(md, 0, sizeof(md)); /* never: SHA-256 does not fail on a buffer */
        memcpy(k->id, md, sizeof(k->id));
        explicit_bzero(in, sizeof(in));
}

void lk_session_key_id_hex(const uint8_t id[LK_SESSION_KEY_ID_SIZE],
                           char out[LK_SESSION_KEY_ID_HEX])
{
        static const char hex[] = "0123456789abcdef";

        for (size_t i = 0; i < LK_SESSION_KEY_ID_SIZE; i++) {
                out[2 * i] = hex[id[i] >> 4];
                out[2 * i + 1] = hex[id[i] & 15];
        }
        out[2 * LK_SESSION_KEY_ID_SIZE] = '\0';
}

const struct lk_session_key *lk_session_keys_find(const struct lk_session_keys *ks,
                                                  const uint8_t id[LK_SESSION_KEY_ID_SIZE])
{
        for (size_t i = 0; i < ks->n; i++)
                if (memcmp(ks->keys[i].id, id, LK_SESSION_KEY_ID_SIZE) == 0)
                        return &ks->keys[i];
        return NULL;
}

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

/* 64 lowercase hex digits into a key. */
static bool parse_hex_key(const char *s, uint8_t key[LK_SESSION_KEY_SIZE])
{
        for (size_t i = 0; i < LK_SESSION_KEY_SIZE; i++) {
                int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

                if (hi < 0 || lo < 0)
                        return false;
                key[i] = (uint8_t)(hi << 4 | lo);
        }
        return true;
}

/* Adds a key; false when ks is full or has it already (*why set). */
static bool add_key(struct lk_session_keys *ks, const uint8_t key[LK_SESSION_KEY_SIZE],
                    const char **why)
{
        struct lk_session_key k;

        memcpy(k.key, key, LK_SESSION_KEY_SIZE);
        lk_session_key_make_id(&k);
        if (lk_session_keys_find(ks, k.id)) {
                explicit_bzero(&k, sizeof(k));
                return *why = "a key is there twice", false;
        }
        if (ks->n >= LK_SESSION_KEYS_MAX) {
                explicit_bzero(&k, sizeof(k));
                return *why = "more than 4 keys", false;
        }
        ks->keys[ks->n++] = k;
        explicit_bzero(&k, sizeof(k));
        return true;
}

int lk_session_keys_parse(const char *text, size_t len, struct lk_session_keys *ks,
                          const char **why)
{
        size_t h = strlen(LK_SESSION_KEY_FILE_HEADER), at, n0 = ks->n;
        uint8_t key[LK_SESSION_KEY_SIZE];

        if (len < h + 1 || memcmp(text, LK_SESSION_KEY_FILE_HEADER, h) != 0 || text[h] != '\n')
                return *why = "its first line is not \"" LK_SESSION_KEY_FILE_HEADER "\"",
                       -LK_ERR_INVALID_ARGUMENT;
        for (at = h + 1; at < len; at += KEY_HEX + 1) {
                if (len - at < KEY_HEX + 1 || text[at + KEY_HEX] != '\n' ||
                    !parse_hex_key(text + at, key)) {
                        explicit_bzero(key, sizeof(key));
                        ks->n = n0;
                        return *why = "a line is not 64 lowercase hex digits",
                               -LK_ERR_INVALID_ARGUMENT;
                }
                if (!add_key(ks, key, why)) {
                        explicit_bzero(key, sizeof(key));
                        ks->n = n0;
                        return -LK_ERR_INVALID_ARGUMENT;
                }
        }
        explicit_bzero(key, sizeof(key));
        if (ks->n == n0)
                return *why = "it holds no key", -LK_ERR_INVALID_ARGUMENT;
        return 0;
}

/* The key file's text for keys[0..n): wipe it. */
static char *key_file_text(const struct lk_session_key *keys, size_t n, size_t *ret_len)
{
        static const char hex[] = "0123456789abcdef";
        size_t len = KEY_FILE_LEN(n);
        char *t = malloc(len), *p;

        if (!t)
                return NULL;
        memcpy(t, LK_SESSION_KEY_FILE_HEADER "\n", sizeof(LK_SESSION_KEY_FILE_HEADER));
        p = t + sizeof(LK_SESSION_KEY_FILE_HEADER);
        for (size_t i = 0; i < n; i++) {
                for (size_t j = 0; j < LK_SESSION_KEY_SIZE; j++) {
                        *p++ = hex[keys[i].key[j] >> 4];
                        *p++ = hex[keys[i].key[j] & 15];
                }
                *p++ = '\n';
        }
        *ret_len = (size_t)(p - t);
        return t;
}

static int write_key_file(const char *path, const struct lk_session_key *keys, size_t n,
                          struct lk_error *e)
{
        size_t len = 0;
        char *t = key_file_text(keys, n, &len);
        int r;

        if (!t)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        r = lk_write_file_atomic(path, t, len, 0600, e);
        explicit_bzero(t, len);
        free(t);
        return r;
}

/* Reads the key file at path into ks (appending); -LK_ERR_NOT_FOUND when there is none. */
static int read_key_file(const char *path, struct lk_session_keys *ks, struct lk_error *e)
{
        _cleanup_secret_ char *text = NULL;
        const char *why = NULL;
        size_t len = 0;
        int r;

        r = lk_read_private_file(path, LK_PRIVATE_SECRET | LK_PRIVATE_OURS, LK_SESSION_KEY_FILE_MAX,
                                 &text, &len, NULL, e);
        if (r < 0)
                return r;
        r = lk_session_keys_parse(text, len, ks, &why);
        if (r < 0)
                return lk_error_set(e, LK_ERR_IO, "The session key file %s is unusable: %s", path,
                                    why);
        return 0;
}

/* A credential's key: 32 bytes as they are, or 64 hex digits and a newline or not. 1 when
 * there is no such credential. */
static int read_credential(const char *name, struct lk_session_keys *ks, struct lk_error *e)
{
        const char *dir = secure_getenv("CREDENTIALS_DIRECTORY");
        _cleanup_free_ char *path = NULL;
        _cleanup_secret_ char *text = NULL;
        uint8_t key[LK_SESSION_KEY_SIZE];
        const char *why = NULL;
        size_t len = 0;
        bool ok;
        int r;

        if (isempty(dir))
                return 1;
        if (asprintf(&path, "%s/%s", dir, name) < 0) {
                path = NULL;
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        }
        if (access(path, F_OK) < 0 && errno == ENOENT)
                return 1;
        r = lk_read_private_file(path, LK_PRIVATE_SECRET, LK_SESSION_KEY_FILE_MAX, &text, &len,
                                 NULL, e);
        if (r < 0)
                return r;
        if (len == LK_SESSION_KEY_SIZE) {
                memcpy(key, text, LK_SESSION_KEY_SIZE);
                ok = true;
        } else
                ok = (len == KEY_HEX || (len == KEY_HEX + 1 && text[KEY_HEX] == '\n')) &&
                     parse_hex_key(text, key);
        if (!ok) {
                explicit_bzero(key, sizeof(key));
                return lk_error_set(e, LK_ERR_IO,
                                    "The credential %s is not a session key: 32 bytes, or 64 hex "
                                    "digits, are expected (%zu bytes)",
                                    path, len);
        }
        ok = add_key(ks, key, &why);
        explicit_bzero(key, sizeof(key));
        if (!ok)
                return lk_error_set(e, LK_ERR_IO, "The credential %s: %s", path, why);
        return 0;
}

/* The lock that rotate and retire take around the read and rewrite of the key file. */
static int lock_keys(const char *file, struct lk_error *e)
{
        _cleanup_free_ char *path = NULL;
        int fd;

        if (asprintf(&path, "%s.lock", file) < 0) {
                path = NULL;
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        }
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0 || flock(fd, LOCK_EX) < 0) {
                int r = lk_error_set(e, LK_ERR_IO, "Cannot lock %s: %s", path, strerror(errno));

                if (fd >= 0)
                        close(fd);
                return r;
        }
        return fd;
}

static int new_key(struct lk_session_key *k, struct lk_error *e)
{
        if (RAND_bytes(k->key, sizeof(k->key)) != 1)
                return lk_error_set(e, LK_ERR_IO, "The random number generator failed");
        lk_session_key_make_id(k);
        return 0;
}

void lk_session_keys_clear(struct lk_session_keys *ks)
{
        explicit_bzero(ks->keys, sizeof(ks->keys));
        free(ks->file);
        *ks = (struct lk_session_keys){0};
}

int lk_session_keys_load(const char *state_dir, struct lk_session_keys *ks, struct lk_error *e)
{
        char id[LK_SESSION_KEY_ID_HEX];
        int r;

        *ks = (struct lk_session_keys){0};
        if (asprintf(&ks->file, "%s/%s", state_dir, LK_SESSION_KEY_FILE) < 0) {
                ks->file = NULL;
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        }
        r = read_credential(LK_SESSION_KEY_CREDENTIAL, ks, e);
        if (r == 0) {
                ks->from_credential = true;
                r = read_credential(LK_SESSION_KEY_CREDENTIAL_PREVIOUS, ks, e);
                ks->previous_credential = r == 0;
        }
        if (r < 0)
                goto fail;
        r = read_key_file(ks->file, ks, e);
        if (r == -LK_ERR_NOT_FOUND) {
                lk_error_clear(e);
                r = 0;
        } else if (r == 0)
                ks->file_exists = true;
        if (r < 0)
                goto fail;
        if (ks->n == 0) {
                r = new_key(&ks->keys[0], e);
                if (r < 0)
                        goto fail;
                ks->n = 1;
                r = write_key_file(ks->file, ks->keys, 1, e);
                if (r < 0)
                        goto fail;
                ks->file_exists = true;
                lk_session_key_id_hex(ks->keys[0].id, id);
                lk_log(LOG_NOTICE, "Made a new session key %s in %s (no credential %s was given)",
                       id, ks->file, LK_SESSION_KEY_CREDENTIAL);
        } else {
                lk_session_key_id_hex(ks->keys[0].id, id);
                log_info("Session files are sealed under key %s, from %s%s", id,
                         ks->from_credential ? "the credential " : "",
                         ks->from_credential ? LK_SESSION_KEY_CREDENTIAL : ks->file);
        }
        return 0;
fail:
        lk_session_keys_clear(ks);
        return r;
}

int lk_session_keys_retire(struct lk_session_keys *ks, struct lk_error *e)
{
        struct lk_session_keys now = {0};
        struct lk_session_key keep[LK_SESSION_KEYS_MAX];
        size_t n_keep = 0;
        int fd, r;

        if (ks->n <= 1 && !(ks->from_credential && ks->file_exists))
                return 0;
        fd = lock_keys(ks->file, e);
        if (fd < 0)
                return fd;
        /* The file again, under the lock: a rotation may have put a new key first meanwhile. */
        r = read_key_file(ks->file, &now, e);
        if (r == -LK_ERR_NOT_FOUND) {
                lk_error_clear(e);
                r = 0;
        }
        if (r < 0)
                goto out;
        for (size_t i = 0; i < now.n; i++) {
                const struct lk_session_key *k = lk_session_keys_find(ks, now.keys[i].id);

                /* Ours and not the one that seals: no file uses it any more. */
                if (k && (k != &ks->keys[0] || ks->from_credential))
                        continue;
                keep[n_keep++] = now.keys[i];
        }
        if (n_keep == now.n)
                r = 0;
        else if (n_keep == 0) {
                if (unlink(ks->file) < 0 && errno != ENOENT)
                        r = lk_error_set(e, LK_ERR_IO, "Cannot remove %s: %s", ks->file,
                                         strerror(errno));
                else
                        lk_log(LOG_NOTICE,
                               "Every session file and offline record is sealed under the "
                               "credential %s: removed the key file %s",
                               LK_SESSION_KEY_CREDENTIAL, ks->file);
                ks->file_exists = false;
        } else {
                r = write_key_file(ks->file, keep, n_keep, e);
                if (r == 0)
                        lk_log(LOG_NOTICE,
                               "Every session file and offline record is sealed under the "
                               "current key: dropped %zu older key(s) from %s",
                               now.n - n_keep, ks->file);
        }
        if (r == 0) {
                if (ks->previous_credential)
                        lk_log(LOG_NOTICE, "The credential %s is no longer needed",
                               LK_SESSION_KEY_CREDENTIAL_PREVIOUS);
                explicit_bzero(ks->keys + 1, sizeof(ks->keys) - sizeof(ks->keys[0]));
                ks->n = 1;
        }
out:
        explicit_bzero(keep, sizeof(keep));
        lk_session_keys_clear(&now);
        close(fd);
        return r;
}

int lk_session_keys_rotate(const char *state_dir, char ret_id[LK_SESSION_KEY_ID_HEX],
                           struct lk_error *e)
{
        struct lk_session_keys ks = {0};
        struct lk_session_key k;
        _cleanup_free_ char *file = NULL;
        int fd, r;

        if (asprintf(&file, "%s/%s", state_dir, LK_SESSION_KEY_FILE) < 0) {
                file = NULL;
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        }
        fd = lock_keys(file, e);
        if (fd < 0)
                return fd;
        r = read_key_file(file, &ks, e);
        if (r == -LK_ERR_NOT_FOUND) {
                lk_error_clear(e);
                r = 0;
        }
        if (r == 0 && ks.n >= LK_SESSION_KEYS_MAX)
                r = lk_error_set(e, LK_ERR_INVALID_ARGUMENT,
                                 "%s holds %d keys: the last rotations are not finished; start "
                                 "latchkeyd first, so that it rewrites every session file",
                                 file, LK_SESSION_KEYS_MAX);
        if (r == 0)
                r = new_key(&k, e);
        if (r == 0) {
                memmove(ks.keys + 1, ks.keys, ks.n * sizeof(ks.keys[0]));
                ks.keys[0] = k;
                ks.n++;
                explicit_bzero(&k, sizeof(k));
                r = write_key_file(file, ks.keys, ks.n, e);
        }
        if (r == 0)
                lk_session_key_id_hex(ks.keys[0].id, ret_id);
        lk_session_keys_clear(&ks);
        close(fd);
        return r;
}
