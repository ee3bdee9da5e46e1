/* SPDX-License-Identifier: MIT */
/*
 * Strings that come from outside the module: the broker's replies, the PAM
 * environment, the person's answer. Nothing from there reaches a log line, a
 * D-Bus message or a person's screen without passing through here.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "base/text.h" /* lk_text_escape(): text for a log line or a person's screen */
#include "base/utf8.h"

#define LKP_ID_MAX 256          /* login ids, session ids, user names (SPEC §4) */
#define LKP_ANSWER_MAX 8192     /* the person's answer (SPEC §4) */
#define LKP_URL_MAX 8192        /* the authorization address from the broker */
#define LKP_MESSAGE_MAX 512     /* a one-line reason shown to the person */

/* true when the len bytes at s are well-formed UTF-8 (RFC 3629, lk_utf8_valid) without U+0000. */
bool lkp_utf8_valid(const char *s, size_t len);

/*
 * true when s is 1..max bytes of printable ASCII without spaces: what an id
 * and an address must look like before they go into the PAM environment or
 * onto a screen.
 */
bool lkp_word_valid(const char *s, size_t max);

/* Removes spaces, tabs and line breaks at both ends, in place; returns s. */
char *lkp_strip(char *s);
