/* SPDX-License-Identifier: MIT */
/*
 * Sessions on disk: one JSON file per session in <state_dir>/sessions/, mode
 * 0600, written whole (temp file, fsync, rename). Read after the start, in
 * slices between calls, and one by one on demand (session_store.c): a corrupt file is
 * moved aside (*.corrupt) with a log line; a session of another boot is
 * dropped, since logind reuses session ids.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "oidc/error.h"

struct broker;
struct lk_session;

/* Checks the state dir (ours, 0700; made when missing) and makes sessions/ in it. */
int lk_store_init(struct broker *b, struct lk_error *e);
/* The boot id of this boot, from /proc/sys/kernel/random/boot_id. */
int lk_store_read_boot_id(char *buf, size_t size, struct lk_error *e);

int lk_store_save(struct broker *b, const struct lk_session *s, struct lk_error *e);
void lk_store_remove(struct broker *b, const char *session_id);
/*
 * Removes the temporary files (tokens and all) that a broker killed in the middle of a
 * write left behind. Only once we own the bus name: no other broker writes here then.
 */
void lk_store_remove_leftovers(struct broker *b);
/*
 * Starts reading the session files (b->loader); lk_store_load_some() then reads them a slice
 * at a time. Problems with single files are logged and skipped.
 */
int lk_store_load_begin(struct broker *b, struct lk_error *e);
/* Reads files for about budget_us; true once every file is read (b->loader is gone then). */
bool lk_store_load_some(struct broker *b, int64_t budget_us);
/* Reads the file of that session now, if there is one and it is not in memory yet. */
void lk_store_load_id(struct broker *b, const char *id);
void lk_store_loader_free(struct broker *b);
/* Reads every session file now (lk_store_load_begin and all the slices at once). */
int lk_store_load_all(struct broker *b, struct lk_error *e);
