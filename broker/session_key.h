/* SPDX-License-Identifier: MIT */
/*
 * The keys that seal session files and the offline PIN records (sealed_file.h). The current key comes from the systemd
 * credential LK_SESSION_KEY_CREDENTIAL (LoadCredentialEncrypted= in latchkeyd.service, made
 * with systemd-creds: sealed to the TPM2 where there is one, else to the host key), or, without
 * one (no systemd: CI, tests, hand starts), from the key file <state_dir>/session-key (mode
 * 0600, the broker's), which the broker makes when it is missing.
 *
 * Older keys are kept until no file uses them: a key file holds the current key and the older
 * ones (latchkeyd --rotate-key puts a new one first); with a credential, the credential
 * LK_SESSION_KEY_CREDENTIAL_PREVIOUS and a key file of before the credential are older keys.
 * The broker rewrites every file it reads under an older key (or in cleartext, as before
 * issue 22) under the current one; once every file is (session files and offline records:
 * lk_store_hold_older_keys), it drops the older keys from the key
 * file (or removes the key file, when a credential is the current key).
 *
 * The key file, parsed by lk_session_keys_parse() (tests/fuzz/fuzz_key_file.c):
 *
 *   latchkey-session-key 1
 *   <64 lowercase hex digits: the current key>
 *   <64 hex digits: an older key>        (0 to LK_SESSION_KEYS_MAX - 1 of these)
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "oidc/error.h"

#define LK_SESSION_KEY_SIZE 32
/* The first bytes of SHA-256("latchkey session key id" NUL key): names a key, tells nothing. */
#define LK_SESSION_KEY_ID_SIZE 8
#define LK_SESSION_KEY_ID_HEX (2 * LK_SESSION_KEY_ID_SIZE + 1)
/* Keys in use at once: the current one and the older ones a rotation still needs. */
#define LK_SESSION_KEYS_MAX 4
#define LK_SESSION_KEY_FILE "session-key"
#define LK_SESSION_KEY_FILE_HEADER "latchkey-session-key 1"
#define LK_SESSION_KEY_FILE_MAX 1024
#define LK_SESSION_KEY_CREDENTIAL "latchkey-session-key"
#define LK_SESSION_KEY_CREDENTIAL_PREVIOUS "latchkey-session-key-previous"

struct lk_session_key {
        uint8_t id[LK_SESSION_KEY_ID_SIZE];
        uint8_t key[LK_SESSION_KEY_SIZE];
};

struct lk_session_keys {
        struct lk_session_key keys[LK_SESSION_KEYS_MAX]; /* [0] seals; all open */
        size_t n;
        bool from_credential;     /* keys[0] is the credential's */
        bool previous_credential; /* keys[1] is LK_SESSION_KEY_CREDENTIAL_PREVIOUS's */
        char *file;               /* <state_dir>/session-key, whether it exists or not */
        bool file_exists;
};

/* The id of a key, and its hex form (for log lines: an id is no secret). */
void lk_session_key_make_id(struct lk_session_key *k);
void lk_session_key_id_hex(const uint8_t id[LK_SESSION_KEY_ID_SIZE],
                           char out[LK_SESSION_KEY_ID_HEX]);

/* The key of that id, or NULL. */
const struct lk_session_key *lk_session_keys_find(const struct lk_session_keys *ks,
                                                  const uint8_t id[LK_SESSION_KEY_ID_SIZE]);

/* Parses a key file's text into ks->keys (appended after those ks has). *why says what is
 * wrong (a constant string; never a key). */
int lk_session_keys_parse(const char *text, size_t len, struct lk_session_keys *ks,
                          const char **why);

/*
 * The keys of a broker with that state dir: the credential's (in $CREDENTIALS_DIRECTORY) and
 * those of the key file, which is made (a fresh random key, written whole) when there is
 * neither. Logs which key seals.
 */
int lk_session_keys_load(const char *state_dir, struct lk_session_keys *ks, struct lk_error *e);

/* Every file is sealed under keys[0] now: drops the older keys (see above). */
int lk_session_keys_retire(struct lk_session_keys *ks, struct lk_error *e);

/*
 * latchkeyd --rotate-key: a new random key first in the key file of state_dir, the current
 * and older ones kept after it. The new id in *ret_id. Refused when a credential seals (make a
 * new credential instead), or when the key file holds LK_SESSION_KEYS_MAX keys already (a
 * rotation not finished: start the broker first).
 */
int lk_session_keys_rotate(const char *state_dir, char ret_id[LK_SESSION_KEY_ID_HEX],
                           struct lk_error *e);

/* Wipes the keys and frees the path. */
void lk_session_keys_clear(struct lk_session_keys *ks);
