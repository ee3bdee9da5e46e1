/* SPDX-License-Identifier: MIT */
/* What a local user name from the provider may look like: one rule for the broker and NSS. */
#pragma once

#include <stddef.h>

#define LK_USER_NAME_MAX 256 /* SPEC §4: user names are capped at 256 bytes */

/*
 * NULL when name[0..len) can be a local user name, else what is wrong with it ("holds ':'"):
 * not empty, at most LK_USER_NAME_MAX bytes, no NUL, valid UTF-8, not starting with '-', not
 * "." or "..", and no control character, '/', ':' (the passwd field separator), ',' (the group
 * member separator) or space.
 */
const char *lk_user_name_problem(const char *name, size_t len);
