/* SPDX-License-Identifier: MIT */
/* Small helpers used everywhere: cleanup attributes, ownership transfer, string lists, secrets. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_secret_ _cleanup_(lk_secret_freep)
#define _cleanup_strv_ _cleanup_(lk_strv_freep)
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

/*
 * Defines func##p(type *p), which calls func(*p) unless *p is NULL: the cleanup for
 * _cleanup_(func##p) of a library's type (cleanup_dbus.h, cleanup_curl.h, cleanup_openssl.h).
 */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                   \
        static inline void func##p(type *p)                       \
        {                                                         \
                if (*p)                                           \
                        func(*p);                                 \
        }                                                         \
        struct lk_trivial_cleanup_func_ends_with_a_semicolon_

/* Hands the pointer on and leaves NULL behind, so the cleanup attribute does nothing. */
#define TAKE_PTR(p)                           \
        ({                                    \
                __typeof__(p) _p_ = (p);      \
                (p) = NULL;                   \
                _p_;                          \
        })

static inline void freep(void *p)
{
        free(*(void **)p);
}

/* Frees a NULL-terminated string array and every string in it. NULL is fine. */
void lk_strv_free(char **l);
static inline void lk_strv_freep(char ***l)
{
        lk_strv_free(*l);
}
size_t lk_strv_length(char *const *l);
bool lk_strv_contains(char *const *l, const char *s);
/* Splits on spaces, tabs and commas; empty words are dropped. Returns NULL on OOM. */
char **lk_strv_split(const char *s);

/* Wipes a NUL-terminated secret, then frees it: the one "wipe then free". NULL is fine. */
void lk_secret_free(char *s);
static inline void lk_secret_freep(char **s)
{
        lk_secret_free(*s);
}

static inline bool streq(const char *a, const char *b)
{
        return strcmp(a, b) == 0;
}

static inline bool streq_ptr(const char *a, const char *b)
{
        if (!a || !b)
                return a == b;
        return strcmp(a, b) == 0;
}

static inline bool isempty(const char *s)
{
        return !s || !*s;
}

/* true when s ends with suffix */
bool lk_endswith(const char *s, const char *suffix);
