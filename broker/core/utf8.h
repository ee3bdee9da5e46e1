/* SPDX-License-Identifier: MIT */
/* Strict UTF-8 validation, for strings that come from outside (answers, D-Bus arguments). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/*
 * true when the len bytes at s are well-formed UTF-8 (RFC 3629): no overlong
 * forms, no surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no truncated
 * sequence. U+0000 is well-formed UTF-8 and is accepted; callers that hold C
 * strings or refuse control characters check for those themselves.
 */
bool lk_utf8_valid(const char *s, size_t len);

/*
 * Copies text from outside (a provider's error, an issuer) for a message:
 * printable ASCII kept, every other byte replaced by '?', cut to fit size
 * (ending in "..." when cut). in may be NULL (gives "").
 */
void lk_text_sanitize(const char *in, char *out, size_t size);

/*
 * The same for a value quoted inside a message ("kid \"%s\""): printable ASCII
 * kept but for '"', anything else '?', cut to size - 4 bytes followed by "...".
 * Returns buf, or "(none)" when s is NULL. LK_TEXT_PRINTABLE(s) uses a
 * 72-byte buffer of the calling expression.
 */
const char *lk_text_printable(const char *s, char *buf, size_t size);
#define LK_TEXT_PRINTABLE(s) lk_text_printable((s), (char[72]){0}, 72)
