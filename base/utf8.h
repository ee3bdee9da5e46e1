/* SPDX-License-Identifier: MIT */
/*
 * Strict UTF-8 (RFC 3629), the one validator of every binary: for strings that
 * come from outside (answers, D-Bus arguments, claims). Depends on nothing.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Decodes the one UTF-8 sequence at s (at most avail bytes) into *ret_cp and
 * returns its length (1..4), or 0 when the bytes there are not well-formed:
 * an overlong form, a surrogate (U+D800..U+DFFF), a value above U+10FFFF, a
 * stray continuation byte or a sequence cut short.
 */
size_t lk_utf8_decode(const char *s, size_t avail, uint32_t *ret_cp);

/*
 * true when the len bytes at s are well-formed UTF-8. U+0000 is well-formed
 * UTF-8 and is accepted; callers that hold C strings or refuse control
 * characters check for those themselves. NULL is valid only with len 0.
 */
bool lk_utf8_valid(const char *s, size_t len);
