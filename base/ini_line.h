/* SPDX-License-Identifier: MIT */
/*
 * One line of latchkey.conf, as SPEC §3's grammar reads it: blank, a whole-line
 * comment ('#' or ';' first), a [section] header, or "key = value" (or
 * "key: value", inih's two delimiters), with blanks trimmed at both ends of
 * the line, the key and the value; no continuation lines, no inline comments.
 * Shared by latchkeyd's reader (oidc/config_reader.c, where inih splits the
 * keys: tests/unit/test_ini_line.c proves the two agree) and pam_latchkey.so,
 * which must not use inih: Debian's inih keeps its options in process-wide
 * variables, which a module inside someone else's program must not set (and
 * their defaults allow inline comments and continuation lines).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

enum lk_ini_kind {
        LK_INI_NOTHING,   /* blank, or a comment */
        LK_INI_SECTION,   /* "[name]": name */
        LK_INI_UNCLOSED,  /* '[' without ']' */
        LK_INI_KEY,       /* "key = value": name, value */
        LK_INI_NO_VALUE,  /* anything else: neither header nor comment, and no delimiter */
};

struct lk_ini_line {
        enum lk_ini_kind kind;
        const char *name;  /* section or key, not NUL-terminated */
        size_t name_len;
        const char *value; /* LK_INI_KEY's value, not NUL-terminated */
        size_t value_len;
        bool trailing;     /* LK_INI_SECTION: text after ']' that is not a comment */
};

/* Reads s[0..len) (no newline); first: it is the file's first line (a UTF-8 BOM may open it). */
void lk_ini_line(const char *s, size_t len, bool first, struct lk_ini_line *ret);
