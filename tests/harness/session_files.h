/* SPDX-License-Identifier: MIT */
/*
 * The broker's session files (and offline PIN records) as the tests read and write them: sealed under the key file of
 * the state dir (broker/sealed_file.h, broker/session_key.h), as the broker itself does, so
 * that a test can look inside a session, or make copies of one, without a cleartext format.
 */
#pragma once

#include <jansson.h>

#include "tests/harness/harness.h"

/* The bytes inside the sealed file path, whose seal names name (a session id, "offline/UID"),
 * NUL-terminated (their length in *ret_len; the file's own when it is in cleartext), or NULL
 * with why on stderr. */
char *lkh_read_sealed(struct lkh *h, const char *path, const char *name, size_t *ret_len);
/* The text of uid's offline PIN record (pin_record.h), sealed or not, or NULL. */
char *lkh_read_offline_record(struct lkh *h, unsigned uid);
/* The record of session id from h's state dir (a sealed file, or a cleartext one of before
 * issue 22), or NULL with why on stderr. */
json_t *lkh_read_session(struct lkh *h, const char *id);
/* Writes the record o as session id's file, sealed under the key file's current key. */
int lkh_write_session(struct lkh *h, const char *id, json_t *o);
/* The session key's 64 hex digits from h's key file (the current key), or NULL. */
char *lkh_session_key_hex(struct lkh *h);
