/* SPDX-License-Identifier: MIT */
#include "base/uidmap.h"

#define PROBE_MAX 64 /* candidates tried; a range of 1000 has at most 2 unusable in a row */

bool lk_uidmap_range_ok(uint32_t uid_min, uint32_t uid_max)
{
        return uid_min >= 1000 && uid_max < UINT32_MAX && uid_max > uid_min &&
               uid_max - uid_min >= LK_UIDMAP_RANGE_MIN;
}

static uint64_t mix(uint64_t x)
{
        x ^= x >> 30;
        x *= 0xbf58476d1ce4e5b9ULL;
        x ^= x >> 27;
        x *= 0x94d049bb133111ebULL;
        x ^= x >> 31;
        return x;
}

static bool usable(uint32_t uid)
{
        return (uid & 0xffff) < 0xfffe;
}

uint32_t lk_uidmap_uid(const char *name, size_t len, uint32_t uid_min, uint32_t uid_max)
{
        uint64_t h = 0xcbf29ce484222325ULL, size = (uint64_t)uid_max - uid_min + 1;
        uint32_t uid = uid_min;

        for (size_t i = 0; i < len; i++) {
                h ^= (unsigned char)name[i];
                h *= 0x100000001b3ULL;
        }
        for (uint64_t k = 0; k < PROBE_MAX; k++) {
                uid = uid_min + (uint32_t)(mix(h + k * 0x9e3779b97f4a7c15ULL) % size);
                if (usable(uid))
                        return uid;
        }
        return uid; /* not reached for a range the config accepts */
}
