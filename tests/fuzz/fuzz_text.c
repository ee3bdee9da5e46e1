/* SPDX-License-Identifier: MIT */
/*
 * The base's lk_text_escape() (base/text.c), the one way provider text reaches
 * a log line, an error message or a screen in all four binaries: whatever the
 * bytes, the copy fits its buffer, is valid UTF-8, holds no control, bidi or
 * format character, a cut copy is the whole one's beginning and "...", and
 * escaping the copy again changes nothing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/text.h"
#include "base/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Written apart from base/text.c's table, so the two can disagree: C0, DEL, C1, Cf, Zl, Zp. */
static bool must_be_escaped(uint32_t cp)
{
        return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0xad ||
               (cp >= 0x600 && cp <= 0x605) || cp == 0x61c || cp == 0x6dd || cp == 0x70f ||
               cp == 0x180e || (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202e) ||
               (cp >= 0x2060 && cp <= 0x2064) || (cp >= 0x2066 && cp <= 0x206f) ||
               cp == 0xfeff || (cp >= 0xfff9 && cp <= 0xfffb) || cp == 0xe0001 ||
               (cp >= 0xe0020 && cp <= 0xe007f);
}

static void check_shown(const char *out, size_t bufsize)
{
        size_t n = strlen(out), i = 0;

        if (n >= bufsize || !lk_utf8_valid(out, n))
                abort();
        while (i < n) {
                uint32_t cp;
                size_t k = lk_utf8_decode(out + i, n - i, &cp);

                if (k == 0 || must_be_escaped(cp))
                        abort();
                i += k;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const size_t sizes[] = { 1, 2, 4, 5, 7, 16, 64, 128, 512 };
        char *s, *whole, *again;
        size_t whole_size, whole_len;

        if (size > 16 * 1024)
                return 0;
        s = malloc(size + 1);
        whole_size = LK_TEXT_ESCAPED_SIZE(size);
        whole = malloc(whole_size);
        again = malloc(whole_size);
        if (!s || !whole || !again)
                abort();
        memcpy(s, data, size);
        s[size] = 0;

        /* Never cut at its own size; escaping twice is escaping once. */
        lk_text_escape(s, whole, whole_size);
        check_shown(whole, whole_size);
        whole_len = strlen(whole);
        if (whole_len < strlen(s))
                abort();
        lk_text_escape(whole, again, whole_size);
        if (strcmp(whole, again) != 0)
                abort();

        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
                char out[512];
                size_t n;

                lk_text_escape(s, out, sizes[i]);
                check_shown(out, sizes[i]);
                n = strlen(out);
                if (whole_len < sizes[i]) {
                        if (strcmp(out, whole) != 0)
                                abort();
                        continue;
                }
                /* Cut: the beginning of the whole copy, then as much of "..." as fits. */
                if (sizes[i] >= 4 && (n < 3 || memcmp(out + n - 3, "...", 3) != 0))
                        abort();
                n = sizes[i] >= 4 ? n - 3 : 0;
                if (memcmp(out, whole, n) != 0)
                        abort();
        }
        free(again);
        free(whole);
        free(s);
        return 0;
}
