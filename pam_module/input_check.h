/* SPDX-License-Identifier: MIT */
/*
 * Strings that come from outside the module: the PAM environment, the person's
 * answer. The broker's replies are checked by the client stubs' one rule set
 * (client/reply_check.h), which this module uses for ids in its environment too.
 * Nothing from there reaches a log line, a D-Bus message or a person's screen
 * without passing through here or there.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "base/text.h" /* lk_text_escape(): text for a log line or a person's screen */
#include "base/utf8.h"
#include "client/reply_check.h" /* LK_ARG_ID_MAX, LK_ARG_ANSWER_MAX; lk_reply_word_valid() */

/* true when the len bytes at s are well-formed UTF-8 (RFC 3629, lk_utf8_valid) without U+0000. */
bool lkp_utf8_valid(const char *s, size_t len);

/* Removes spaces, tabs and line breaks at both ends, in place; returns s. */
char *lkp_strip(char *s);
