/* SPDX-License-Identifier: MIT */
/*
 * A session file as anyone might have written it into the sessions folder (broker/
 * sealed_file.h): the header parser must refuse it or give parts inside the input, and the
 * opening must refuse anything the fuzzer made (it cannot forge a GCM tag), even under the
 * key id the file names (a seed sealed with the fuzzing key opens). Then the input as a record:
 * sealed and opened again, byte for byte.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/sealed_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct lk_session_key k = {.key = "fuzzing key, 32 bytes, not used"};
        struct lk_sealed f;
        struct lk_error e = {0};
        const char *why = NULL;
        uint8_t *sealed = NULL;
        char *plain = NULL;
        size_t sealed_len = 0, plain_len = 0;

        lk_session_key_make_id(&k);
        if (lk_sealed_parse(data, size, &f, &why) == 0) {
                if (f.ciphertext < data || f.tag + LK_SEALED_TAG_SIZE != data + size ||
                    f.ciphertext + f.ciphertext_len != f.tag || f.ciphertext_len == 0 ||
                    f.version != LK_SEALED_VERSION || !lk_sealed_is_sealed(data, size))
                        abort();
                /* Under the key it names, as if we had it: only a seed sealed with this very key
                 * opens (the fuzzer cannot forge a tag), and then whole. */
                memcpy(k.id, f.key_id, sizeof(k.id));
                if (lk_sealed_open(&k, "fuzz", &f, &plain, &plain_len, &why) == 0) {
                        if (plain_len != f.ciphertext_len || plain[plain_len] != '\0')
                                abort();
                        free(plain);
                        plain = NULL;
                } else if (!why || plain)
                        abort();
                lk_session_key_make_id(&k);
        } else if (!why)
                abort();

        if (size == 0)
                return 0;
        if (lk_sealed_seal(&k, "fuzz", data, size, &sealed, &sealed_len, &e) < 0) {
                if (size + LK_SEALED_OVERHEAD <= LK_SEALED_FILE_MAX)
                        abort();
                return 0;
        }
        if (lk_sealed_parse(sealed, sealed_len, &f, &why) < 0 ||
            lk_sealed_open(&k, "fuzz", &f, &plain, &plain_len, &why) < 0 || plain_len != size ||
            memcmp(plain, data, size) != 0 ||
            lk_sealed_open(&k, "fuzz2", &f, &plain, &plain_len, &why) == 0)
                abort();
        free(plain);
        free(sealed);
        return 0;
}
