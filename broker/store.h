/* SPDX-License-Identifier: MIT */
/*
 * Sessions on disk: one JSON file per session in <state_dir>/sessions/, mode
 * 0600, written whole (temp file, fsync, rename). Loaded at start: a corrupt
 * file is moved aside (*.corrupt) with a log line; a session of another boot
 * is dropped, since logind reuses session ids.
 */
#pragma once

#include "error.h"

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
/* Loads every session file; problems with single files are logged and skipped. */
int lk_store_load_all(struct broker *b, struct lk_error *e);
