/* SPDX-License-Identifier: MIT */
/* Reading files with a size cap, and writing them whole. */
#pragma once

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "oidc/error.h"

#define LK_PRIVATE_DIR (1u << 0)    /* a folder, not a regular file */
#define LK_PRIVATE_SECRET (1u << 1) /* group and others may not even read it */
#define LK_PRIVATE_OURS (1u << 2)   /* owned by our euid (else root or our euid) */

/*
 * The one check for what decides what the broker does (latchkey.conf and its
 * drop-ins, secrets, the state folder and files): st (of path, for messages)
 * is a regular file (a folder with LK_PRIVATE_DIR), owned by root or our euid
 * (our euid alone with LK_PRIVATE_OURS), that neither group nor others may
 * write (nor read, with LK_PRIVATE_SECRET). The error names the file and the
 * fix (chmod go-w FILE, chown root FILE). LK_ERR_IO.
 */
int lk_check_private(const char *path, const struct stat *st, unsigned flags, struct lk_error *e);

/*
 * Reads a private file whole, as lk_read_file(): path must not be a symbolic
 * link, the open file passes lk_check_private(), and so does its folder (as
 * LK_PRIVATE_DIR, not LK_PRIVATE_SECRET): whoever may write the folder may
 * replace the file. *ret_st (when not NULL) is the file's. LK_ERR_NOT_FOUND
 * when it does not exist, LK_ERR_NOMEM, else LK_ERR_IO.
 */
int lk_read_private_file(const char *path, unsigned flags, size_t max, char **ret,
                         size_t *ret_len, struct stat *ret_st, struct lk_error *e);

/*
 * Reads a whole file of at most max bytes into a NUL-terminated buffer.
 * A larger file is an error, never a truncated read.
 */
int lk_read_file(const char *path, size_t max, char **ret, size_t *ret_len, struct lk_error *e);
/* The same from an open fd; name is for messages. The fd stays open. */
int lk_read_fd(int fd, const char *name, size_t max, char **ret, size_t *ret_len,
               struct lk_error *e);

/*
 * Writes the file whole or not at all: a temporary file in the same folder,
 * written, fsync'ed, renamed over path, then the folder fsync'ed. On failure
 * the previous content of path is untouched and the temporary file removed.
 */
int lk_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                         struct lk_error *e);
