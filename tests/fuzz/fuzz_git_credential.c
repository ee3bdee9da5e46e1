/* SPDX-License-Identifier: MIT */
/*
 * latchkeyctl credential's two parsers (cli/git_map.c) on anything: the first byte's low bit
 * picks git's request on stdin (0) or the admin's host map (1); the rest is the text. A
 * request that parses names a protocol and a host within their caps, without control
 * characters; a map entry found has a user name and a min_valid within bounds.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cli/git_map.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_field(const char *s, bool nonempty)
{
        size_t len = strnlen(s, GIT_FIELD_MAX + 1);

        if (len > GIT_FIELD_MAX || (nonempty && len == 0))
                __builtin_trap();
        for (size_t i = 0; i < len; i++)
                if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
                        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *text = (const char *)data + 1;
        char why[256];

        if (size < 1)
                return 0;
        if (data[0] & 1) {
                struct git_host h;
                int r = git_map_find(text, size - 1, "git.example.com", &h, why, sizeof(why));

                if (r == 1) {
                        check_field(h.scope, false);
                        check_field(h.audience, false);
                        check_field(h.username, true);
                        if (h.min_valid > GIT_MIN_VALID_MAX)
                                __builtin_trap();
                } else if (r < 0 && !why[0]) {
                        __builtin_trap();
                }
        } else {
                struct git_request rq;

                if (git_request_parse(text, size - 1, &rq, why, sizeof(why))) {
                        check_field(rq.protocol, true);
                        check_field(rq.host, true);
                }
        }
        return 0;
}
