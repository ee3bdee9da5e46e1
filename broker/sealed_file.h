/* SPDX-License-Identifier: MIT */
/*
 * A file sealed at rest (issue 22 item 4): a session file, or an offline PIN record. AES-256-GCM
 * (OpenSSL EVP) under the session key (session_key.h), with a random 96-bit nonce per write, and
 * the header and the file's name as additional data: the session id, or "offline/UID" for the
 * record of UID (no session id holds a '/'), so that a file renamed to another session or
 * account, moved to another key id or another format version does not open. The layout, all of
 * it before the ciphertext fixed:
 *
 *   offset  size  what
 *        0     4  magic "LKSF"
 *        4     1  format version (LK_SEALED_VERSION)
 *        5     8  key id (session_key.h: which key sealed it)
 *       13    12  nonce
 *       25     n  ciphertext (n >= 1: a session record, JSON; or a PIN record, pin_record.h)
 *   25 + n    16  GCM tag
 *
 * lk_sealed_parse() reads only that layout (tests/fuzz/fuzz_sealed_file.c drives it and
 * lk_sealed_open()); lk_sealed_open() checks the tag before anything is believed.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/session_key.h"
#include "oidc/error.h"

#define LK_SEALED_MAGIC "LKSF"
#define LK_SEALED_VERSION 1
#define LK_SEALED_NONCE_SIZE 12
#define LK_SEALED_TAG_SIZE 16
#define LK_SEALED_HEADER_SIZE (4 + 1 + LK_SESSION_KEY_ID_SIZE + LK_SEALED_NONCE_SIZE)
#define LK_SEALED_OVERHEAD (LK_SEALED_HEADER_SIZE + LK_SEALED_TAG_SIZE)
/* The largest file (and so record) sealed or opened. */
#define LK_SEALED_FILE_MAX (256 * 1024)

/* A file's parts, pointing into its bytes. */
struct lk_sealed {
        const uint8_t *header; /* LK_SEALED_HEADER_SIZE bytes: part of the additional data */
        uint8_t version;
        const uint8_t *key_id; /* LK_SESSION_KEY_ID_SIZE bytes */
        const uint8_t *nonce;
        const uint8_t *ciphertext;
        size_t ciphertext_len;
        const uint8_t *tag;
};

/* true when data starts as a sealed file does (else it may be a cleartext one of before). */
bool lk_sealed_is_sealed(const uint8_t *data, size_t len);

/* 0 and the parts, or -LK_ERR_INVALID_ARGUMENT with *why (a constant string) saying what. */
int lk_sealed_parse(const uint8_t *data, size_t len, struct lk_sealed *ret, const char **why);

/* Seals plain for name (a session id, or "offline/UID") under key: a malloc'd file in *ret
 * (its size in *ret_len). */
int lk_sealed_seal(const struct lk_session_key *key, const char *name, const void *plain,
                   size_t plain_len, uint8_t **ret, size_t *ret_len, struct lk_error *e);

/*
 * Opens a parsed file of name with key (whose id must be f's): the record, NUL-terminated,
 * in *ret (wipe it), its length in *ret_len. -LK_ERR_INVALID_ARGUMENT with *why when the tag
 * does not match (another key with the same id, another session's or account's file, a changed
 * byte).
 */
int lk_sealed_open(const struct lk_session_key *key, const char *name,
                   const struct lk_sealed *f, char **ret, size_t *ret_len, const char **why);
