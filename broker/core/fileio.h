/* SPDX-License-Identifier: MIT */
/* Reading files with a size cap, and writing them whole. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#include "error.h"

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
