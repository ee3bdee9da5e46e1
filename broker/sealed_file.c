/* SPDX-License-Identifier: MIT */
#include "broker/sealed_file.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_CIPHER_CTX *, EVP_CIPHER_CTX_free);

bool lk_sealed_is_sealed(const uint8_t *data, size_t len)
{
        return len >= 4 && memcmp(data, LK_SEALED_MAGIC, 4) == 0;
}

int lk_sealed_parse(const uint8_t *data, size_t len, struct lk_sealed *ret, const char **why)
{
        if (!lk_sealed_is_sealed(data, len))
                return *why = "not a sealed file", -LK_ERR_INVALID_ARGUMENT;
        if (len <= LK_SEALED_OVERHEAD)
                return *why = "a sealed file cut short", -LK_ERR_INVALID_ARGUMENT;
        if (len > LK_SEALED_FILE_MAX)
                return *why = "a sealed file over 256 KiB", -LK_ERR_INVALID_ARGUMENT;
        if (data[4] != LK_SEALED_VERSION)
                return *why = "a sealed file of an unknown format version",
                       -LK_ERR_INVALID_ARGUMENT;
        *ret = (struct lk_sealed){
            .header = data,
            .version = data[4],
            .key_id = data + 5,
            .nonce = data + 5 + LK_SESSION_KEY_ID_SIZE,
            .ciphertext = data + LK_SEALED_HEADER_SIZE,
            .ciphertext_len = len - LK_SEALED_OVERHEAD,
            .tag = data + len - LK_SEALED_TAG_SIZE,
        };
        return 0;
}

/* The additional data: the header as written, then the name of what it holds. */
static bool add_aad(EVP_CIPHER_CTX *c, const uint8_t *header, const char *name)
{
        int n;

        return EVP_EncryptUpdate(c, NULL, &n, header, LK_SEALED_HEADER_SIZE) == 1 &&
               EVP_EncryptUpdate(c, NULL, &n, (const uint8_t *)name,
                                 (int)strlen(name)) == 1;
}

static bool add_aad_dec(EVP_CIPHER_CTX *c, const uint8_t *header, const char *name)
{
        int n;

        return EVP_DecryptUpdate(c, NULL, &n, header, LK_SEALED_HEADER_SIZE) == 1 &&
               EVP_DecryptUpdate(c, NULL, &n, (const uint8_t *)name,
                                 (int)strlen(name)) == 1;
}

int lk_sealed_seal(const struct lk_session_key *key, const char *name, const void *plain,
                   size_t plain_len, uint8_t **ret, size_t *ret_len, struct lk_error *e)
{
        _cleanup_(EVP_CIPHER_CTX_freep) EVP_CIPHER_CTX *c = NULL;
        size_t len = plain_len + LK_SEALED_OVERHEAD;
        uint8_t *out, *p;
        int n = 0, m = 0;

        if (plain_len == 0 || len > LK_SEALED_FILE_MAX)
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT, "%s does not fit in a sealed file",
                                    name);
        out = malloc(len);
        c = EVP_CIPHER_CTX_new();
        if (!out || !c) {
                free(out);
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        }
        memcpy(out, LK_SEALED_MAGIC, 4);
        out[4] = LK_SEALED_VERSION;
        memcpy(out + 5, key->id, LK_SESSION_KEY_ID_SIZE);
        p = out + 5 + LK_SESSION_KEY_ID_SIZE;
        if (RAND_bytes(p, LK_SEALED_NONCE_SIZE) != 1) {
                free(out);
                return lk_error_set(e, LK_ERR_IO, "The random number generator failed");
        }
        if (EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
            EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, LK_SEALED_NONCE_SIZE, NULL) != 1 ||
            EVP_EncryptInit_ex(c, NULL, NULL, key->key, p) != 1 || !add_aad(c, out, name) ||
            EVP_EncryptUpdate(c, out + LK_SEALED_HEADER_SIZE, &n, plain, (int)plain_len) != 1 ||
            EVP_EncryptFinal_ex(c, out + LK_SEALED_HEADER_SIZE + n, &m) != 1 ||
            (size_t)(n + m) != plain_len ||
            EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, LK_SEALED_TAG_SIZE,
                                out + LK_SEALED_HEADER_SIZE + plain_len) != 1) {
                explicit_bzero(out, len);
                free(out);
                return lk_error_set(e, LK_ERR_IO, "Cannot seal %s (OpenSSL)", name);
        }
        *ret = out;
        *ret_len = len;
        return 0;
}

int lk_sealed_open(const struct lk_session_key *key, const char *name,
                   const struct lk_sealed *f, char **ret, size_t *ret_len, const char **why)
{
        _cleanup_(EVP_CIPHER_CTX_freep) EVP_CIPHER_CTX *c = NULL;
        const uint8_t *header = f->header;
        char *out;
        int n = 0, m = 0;

        if (memcmp(f->key_id, key->id, LK_SESSION_KEY_ID_SIZE) != 0)
                return *why = "sealed under another key", -LK_ERR_INVALID_ARGUMENT;
        out = malloc(f->ciphertext_len + 1);
        c = EVP_CIPHER_CTX_new();
        if (!out || !c) {
                free(out);
                return *why = "out of memory", -LK_ERR_NOMEM;
        }
        if (EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
            EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, LK_SEALED_NONCE_SIZE, NULL) != 1 ||
            EVP_DecryptInit_ex(c, NULL, NULL, key->key, f->nonce) != 1 ||
            !add_aad_dec(c, header, name) ||
            EVP_DecryptUpdate(c, (uint8_t *)out, &n, f->ciphertext, (int)f->ciphertext_len) != 1 ||
            EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, LK_SEALED_TAG_SIZE, (void *)f->tag) != 1 ||
            EVP_DecryptFinal_ex(c, (uint8_t *)out + n, &m) != 1 ||
            (size_t)(n + m) != f->ciphertext_len) {
                explicit_bzero(out, f->ciphertext_len + 1);
                free(out);
                return *why = "its seal does not match (changed, cut, or another session's or "
                              "account's file)",
                       -LK_ERR_INVALID_ARGUMENT;
        }
        out[f->ciphertext_len] = '\0';
        *ret = out;
        *ret_len = f->ciphertext_len;
        return 0;
}
