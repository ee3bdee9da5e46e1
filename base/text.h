/* SPDX-License-Identifier: MIT */
/*
 * Text from outside (a provider's claims and errors, a broker's reply, a file)
 * on its way to a log line, an error message or a terminal. One rule set for
 * latchkeyd, pam_latchkey.so, liblatchkey and latchkeyctl. Depends on nothing.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Copies in for a person or a log. Well-formed UTF-8 is kept as it is, but
 * for the characters that break a line, move the cursor, or reorder or hide
 * the text around them, which are shown escaped, never dropped:
 *   - line feed, carriage return, tab: \n \r \t;
 *   - other C0 controls and DEL: \xNN (ESC is \x1b);
 *   - C1 controls (U+0080..U+009F), the bidirectional controls (U+061C,
 *     U+200E, U+200F, U+202A..U+202E, U+2066..U+2069), the line and
 *     paragraph separators and the other format characters (Unicode's Cf, such
 *     as U+200B, U+2060, U+FEFF and the tags): \uXXXX, or \UXXXXXXXX above
 *     U+FFFF;
 *   - each byte that is not part of well-formed UTF-8: \xNN.
 * A backslash is kept as it is: escaping text twice changes nothing, so a
 * client may pass a broker's message through again.
 *
 * Cut to fit size, between two characters or escapes, ending in "..." when
 * cut; never more than size - 1 bytes and a NUL. LK_TEXT_ESCAPED_SIZE(n)
 * bytes never cut n bytes of input. NULL gives "". size 0 writes nothing.
 * Returns out.
 */
const char *lk_text_escape(const char *in, char *out, size_t size);
#define LK_TEXT_ESCAPED_SIZE(n) (4 * (n) + 1)

/* What a message quotes of a value (a kid, an issuer, a sub): at most 127 bytes, cut. */
#define LK_TEXT_QUOTE_SIZE 128
#define LK_ESCAPED(s) lk_text_escape((s) ?: "(none)", (char[LK_TEXT_QUOTE_SIZE]){0}, \
                                     LK_TEXT_QUOTE_SIZE)

/* A time for a person, "2026-12-30 14:05 UTC" (seconds since the epoch), into buf; returns buf.
 * The offline PIN's dates in the broker's errors and the PAM module's lines. */
const char *lk_text_utc_date(int64_t t, char *buf, size_t size);
