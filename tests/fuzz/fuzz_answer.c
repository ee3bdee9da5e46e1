/* SPDX-License-Identifier: MIT */
/*
 * lk_answer_parse() on anything. The first byte's bits select an expected
 * state (1), an expected issuer (2) and iss being required (4); the rest, up
 * to a NUL, is the answer.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "oidc/answer.h"

#define STATE "Qm9vdHN0cmFwcGluZy1zdGF0ZS0yNTYtYml0cy14eHh4"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct lk_error e = {0};
        char *answer, *code = NULL;
        int r;

        if (size < 1)
                return 0;
        answer = malloc(size);
        if (!answer)
                return 0;
        memcpy(answer, data + 1, size - 1);
        answer[size - 1] = 0;

        r = lk_answer_parse(answer, (data[0] & 1) ? STATE : NULL,
                            (data[0] & 2) ? "https://idp.example.com" : NULL, data[0] & 4, &code,
                            &e);
        if (r == 0) {
                /* A code is always printable ASCII without spaces, within its cap. */
                size_t len = strlen(code);

                if (len == 0 || len > 2048)
                        __builtin_trap();
                for (size_t i = 0; i < len; i++)
                        if (code[i] <= 0x20 || code[i] >= 0x7f)
                                __builtin_trap();
                free(code);
        } else if (e.code != -r || !e.message[0] || code) {
                __builtin_trap();
        }
        free(answer);
        return 0;
}
