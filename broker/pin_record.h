/* SPDX-License-Identifier: MIT */
/*
 * One account's offline record (broker/offline.c keeps them): the Argon2id hash of its PIN,
 * the last online sign-in, the wrong PINs and the lockout, whether the provider refused the
 * account. Its file format, written and read here so that a fuzzer can drive the parser:
 *
 *     latchkey-offline 1
 *     uid 1000
 *     user alice
 *     online_at 1764680000
 *     failures 0
 *     locked_until 0
 *     disabled 0
 *     hash $argon2id$v=19$m=65536,t=3,p=1$<salt, base64>$<hash, base64>
 *
 * One "key value" per line, each key at most once, in any order after the first line; hash
 * is absent when no PIN is set; numbers are decimal seconds since the epoch or counts. At most
 * LK_PIN_RECORD_MAX bytes. Anything else is refused, naming the line.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "oidc/error.h"

#define LK_PIN_RECORD_MAX 4096  /* bytes of one file */
#define LK_PIN_HASH_MAX 512     /* bytes of the encoded hash */
#define LK_PIN_USER_MAX 256     /* bytes of the user name (LK_ARG_ID_MAX) */
/* Argon2id parameters a stored hash may carry (the config's bounds): a file can never make
 * one check take more. */
#define LK_PIN_MEMORY_MAX 1048576 /* KiB */
#define LK_PIN_TIME_MAX 64
#define LK_PIN_LANES_MAX 16

struct lk_pin_record {
        uid_t uid;
        char user[LK_PIN_USER_MAX + 1];
        int64_t online_at;    /* the last online sign-in, seconds since the epoch */
        unsigned failures;    /* wrong PINs since the last online sign-in or right PIN */
        int64_t locked_until; /* no check before this (seconds since the epoch), or 0 */
        bool disabled;        /* the provider refused the account's refresh */
        char hash[LK_PIN_HASH_MAX + 1]; /* empty: no PIN */
};

/* Parses a file's bytes (need not be NUL-terminated). 0, or LK_ERR_IO with e naming the line. */
int lk_pin_record_parse(const char *data, size_t len, struct lk_pin_record *ret,
                        struct lk_error *e);

/* The file's text, NUL-terminated, into buf (LK_PIN_RECORD_MAX); its length, or -LK_ERR_IO. */
int lk_pin_record_format(const struct lk_pin_record *r, char *buf, size_t size);

/* The m=, t=, p= of an encoded $argon2id$ hash, each within the caps above; false if not. */
bool lk_pin_hash_params(const char *hash, unsigned *m, unsigned *t, unsigned *p);
