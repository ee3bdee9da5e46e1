/* SPDX-License-Identifier: MIT */
/*
 * pam_latchkey's checks on text from the broker. What reaches a person's
 * screen goes through the base's lk_text_escape(), fuzzed in fuzz_text.c. The
 * module's UTF-8 check must agree with the base's (base/utf8.c) on every
 * NUL-free input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pam_module/input_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *s;

        if (size > 64 * 1024)
                return 0;
        s = malloc(size + 1);
        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = 0;

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
