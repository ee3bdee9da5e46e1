/* SPDX-License-Identifier: MIT */
/* Cleanups for libcurl's types; header-only, so the base itself needs no libcurl. */
#pragma once

#include <curl/curl.h>
#include <string.h>

#include "base/util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(CURLU *, curl_url_cleanup);
DEFINE_TRIVIAL_CLEANUP_FUNC(char *, curl_free);

/* curl's copies of a secret (a code in an answer, state and nonce in a URL): wiped, then freed. */
static inline void curl_secret_freep(char **p)
{
        if (*p) {
                explicit_bzero(*p, strlen(*p));
                curl_free(*p);
        }
}
