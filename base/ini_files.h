/* SPDX-License-Identifier: MIT */
/*
 * latchkey.conf and latchkey.conf.d/ *.conf read line by line with lk_ini_line(), for the
 * programs that must not use inih (its options are process-wide): the NSS module and the PAM
 * module's account step read [accounts] with it. The same files in the same order as the
 * broker (later lines win), and the same refusals: a file that is not a regular file of at
 * most LK_INI_FILE_MAX bytes, or that group or others may write, is skipped.
 */
#pragma once

#include <stddef.h>

#include "base/ini_line.h"

#define LK_INI_FILE_MAX (64 * 1024) /* bytes of one file, as the broker reads them */
#define LK_INI_DROPINS_MAX 256      /* .conf files read from PATH.d */
#define LK_INI_LINE_MAX 4096        /* bytes of one line; longer lines are skipped */

/* One "key = value" line of section (not NUL-terminated: section_len). */
typedef void (*lk_ini_key_fn)(void *userdata, const char *path, unsigned line,
                              const char *section, size_t section_len,
                              const struct lk_ini_line *il);
/* A file skipped or a line not understood: what, for a log line (may be NULL). */
typedef void (*lk_ini_warn_fn)(void *userdata, const char *path, unsigned line, const char *what);

/* Reads path, then path.d/ *.conf in byte order of their names. A missing file is no problem. */
void lk_ini_files_read(const char *path, lk_ini_key_fn key, lk_ini_warn_fn warn, void *userdata);

/* The same for one text in memory (tests, fuzzing). */
void lk_ini_text_read(const char *path, const char *text, size_t size, lk_ini_key_fn key,
                      lk_ini_warn_fn warn, void *userdata);
