/* SPDX-License-Identifier: MIT */
/*
 * pam_latchkey's handling of text from the broker: whatever the bytes, what
 * reaches a person's screen is valid UTF-8, fits its buffer, and holds no
 * control character and no bidirectional override. The module's UTF-8 check
 * must agree with the broker's (broker/core/utf8.c) on every NUL-free input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"
#include "utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_for_person(const char *out, size_t bufsize)
{
        const unsigned char *p = (const unsigned char *)out;
        size_t n = strlen(out);

        if (n >= bufsize || !lkp_utf8_valid(out, n))
                abort();
        for (size_t i = 0; i < n; i++) {
                if (p[i] < 0x20 || p[i] == 0x7f)
                        abort();
                if (p[i] == 0xc2 && i + 1 < n && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f)
                        abort(); /* C1 control */
                if (p[i] == 0xe2 && i + 2 < n &&
                    ((p[i + 1] == 0x80 && (p[i + 2] == 0x8e || p[i + 2] == 0x8f ||
                                           (p[i + 2] >= 0xa8 && p[i + 2] <= 0xae))) ||
                     (p[i + 1] == 0x81 && p[i + 2] >= 0xa6 && p[i + 2] <= 0xa9)))
                        abort(); /* bidi override, isolate or line separator */
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const size_t sizes[] = { 4, 5, 7, 16, 64, LKP_MESSAGE_MAX };
        char out[LKP_MESSAGE_MAX];
        char *s;

        if (size > 64 * 1024)
                return 0;
        s = malloc(size + 1);
        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = 0;

        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
                lkp_text_for_person(s, out, sizes[i]);
                check_for_person(out, sizes[i]);
        }

        if (!memchr(data, 0, size) && lkp_utf8_valid(s, size) != lk_utf8_valid(s, size))
                abort();

        if (lkp_word_valid(s, 256)) {
                for (size_t i = 0; s[i]; i++)
                        if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
                                abort();
                if (strlen(s) > 256)
                        abort();
        }

        lkp_strip(s);
        size_t n = strlen(s);
        if (n > 0 && (strchr(" \t\r\n", s[0]) || strchr(" \t\r\n", s[n - 1])))
                abort();
        free(s);
        return 0;
}
