/* SPDX-License-Identifier: MIT */
/*
 * Argon2id off the event loop: a few threads take PIN hashes and checks from one bounded
 * queue and hand the outcome back to the loop through a pipe, so a check (about a third of
 * a second and argon2_memory of RAM) never stalls the other callers. Bounded in all and per
 * uid; beyond, TooManyRequests at once.
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "broker/loop.h"
#include "oidc/error.h"

#define LK_PIN_THREADS 2     /* checks that run at once: argon2_memory each */
#define LK_PIN_JOBS_MAX 8    /* queued and running, in all */
#define LK_PIN_JOBS_PER_UID 1 /* queued and running, per uid: one guess at a time */
#define LK_PIN_SALT_BYTES 16
#define LK_PIN_HASH_BYTES 32

struct lk_pin_worker;

struct lk_pin_params {
        unsigned memory_kib, time, lanes;
};

/*
 * A job ended, on the loop: r 0 (verify: the PIN matches; hash: hash holds the encoded hash),
 * 1 (verify: it does not), or a negative LK_ERR_*. hash is only valid during the call.
 */
typedef void (*lk_pin_done_fn)(void *userdata, int r, const char *hash);

int lk_pin_worker_new(struct lk_loop *loop, struct lk_pin_worker **ret);
/* Stops the threads; jobs not ended yet hear -LK_ERR_IO. NULL is fine. */
void lk_pin_worker_free(struct lk_pin_worker *w);

/* Queue a check of pin against the encoded hash, or the hash of a new pin; the PIN is copied
 * (and wiped when done). TooManyRequests when the caps are reached. */
int lk_pin_worker_verify(struct lk_pin_worker *w, uid_t uid, const char *hash, const char *pin,
                         lk_pin_done_fn done, void *userdata, struct lk_error *e);
int lk_pin_worker_hash(struct lk_pin_worker *w, uid_t uid, const struct lk_pin_params *p,
                       const char *pin, lk_pin_done_fn done, void *userdata, struct lk_error *e);
/* Jobs queued or running (the idle exit waits for none). */
unsigned lk_pin_worker_busy(const struct lk_pin_worker *w);

/* The same work, here and now (the benchmark, tests): 0, 1 (mismatch) or -LK_ERR_*. */
int lk_pin_hash_now(const struct lk_pin_params *p, const char *pin, char *ret_hash, size_t size);
int lk_pin_verify_now(const char *hash, const char *pin);
