/* SPDX-License-Identifier: MIT */
/*
 * Sessions on disk: one JSON file per session in <state_dir>/sessions/, mode
 * 0600, written whole (temp file, fsync, rename). Read after the start, in
 * slices between calls, and one by one on demand: a corrupt file is moved
 * aside (*.corrupt) with a log line; a session of another boot is dropped,
 * since logind reuses session ids. The store reads and writes records; what
 * becomes of a record read is its reader's business (session.c).
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "oidc/error.h"
#include "oidc/token.h"

struct lk_session_keys;

#define LK_SESSION_ID_MAX 64

/* Session ids become file names: [A-Za-z0-9._-]{1,64}, not starting with '.'. */
int lk_session_check_id(const char *id, struct lk_error *e);

/* What a session file holds. */
struct lk_session_record {
        char *id;
        char *user;
        uid_t uid;
        int64_t opened_at;
        bool expired;
        struct lk_tokens tokens;
        json_t *claims;
};
/* Wipes the tokens and frees the fields (not r). */
void lk_session_record_clear(struct lk_session_record *r);

/*
 * Where records read go: has() says the reader holds that id already (memory is newer than
 * the file), take() takes a record over (its fields; r itself is the store's).
 */
struct lk_store_reader {
        bool (*has)(void *userdata, const char *id);
        void (*take)(void *userdata, struct lk_session_record *r);
        void *userdata;
};

struct lk_session_store;

/* Checks the state dir (ours, 0700; made when missing) and makes sessions/ in it. */
int lk_store_new(const char *state_dir, const char *boot_id, struct lk_session_store **ret,
                 struct lk_error *e);
void lk_store_free(struct lk_session_store *st);
/* The keys that seal (session_key.h), which the offline records (offline.h) are sealed under too. */
const struct lk_session_keys *lk_store_keys(const struct lk_session_store *st);
/*
 * n files outside sessions/ (the offline records whose rewrite failed) are still under an older
 * key: the end of the load keeps the older keys, as it does for a session file not rewritten.
 */
void lk_store_hold_older_keys(struct lk_session_store *st, unsigned n);
/* The boot id of this boot, from /proc/sys/kernel/random/boot_id. */
int lk_store_read_boot_id(char *buf, size_t size, struct lk_error *e);

int lk_store_save(struct lk_session_store *st, const struct lk_session_record *r,
                  struct lk_error *e);
void lk_store_remove(struct lk_session_store *st, const char *session_id);
/*
 * Removes the temporary files (tokens and all) that a broker killed in the middle of a
 * write left behind. Only once we own the bus name: no other broker writes here then.
 */
void lk_store_remove_leftovers(struct lk_session_store *st);
/*
 * Starts reading the session files for reader; lk_store_load_some() then reads them a slice
 * at a time. Problems with single files are logged and skipped.
 */
int lk_store_load_begin(struct lk_session_store *st, const struct lk_store_reader *reader,
                        struct lk_error *e);
/* true while files of the last run are still to be read. */
bool lk_store_loading(const struct lk_session_store *st);
/* Reads files for about budget_us; true once every file is read. */
bool lk_store_load_some(struct lk_session_store *st, int64_t budget_us);
/* Reads the file of that session now, while loading, if the reader does not hold it. */
void lk_store_load_id(struct lk_session_store *st, const char *id);
/* Reads every session file now (lk_store_load_begin and all the slices at once). */
int lk_store_load_all(struct lk_session_store *st, const struct lk_store_reader *reader,
                      struct lk_error *e);
