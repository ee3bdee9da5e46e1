/* SPDX-License-Identifier: MIT */
/* The greeter's JSON reply (pam_module/gdm_json.c) on anything: 0, -ECANCELED or -EBADMSG. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "pam_module/gdm_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        int r = lkp_gdm_eidp_reply_parse((const char *)data, size);

        if (r != 0 && r != -ECANCELED && r != -EBADMSG)
                __builtin_trap();
        return 0;
}
