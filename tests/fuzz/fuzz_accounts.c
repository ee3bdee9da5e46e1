/* SPDX-License-Identifier: MIT */
/*
 * The accounts cache (base/accounts_file.c) as the NSS module, pam_latchkey and latchkeyctl
 * read it, with anything at all in the file: every lookup must be refused or answer within
 * the buffer, never crash or read past it. A file that validates must also survive a round
 * trip through the writer unchanged. The first bytes pick the names and ids looked up.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/accounts_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void roundtrip(const struct lk_accounts_map *m, const char *text, size_t size)
{
        struct lk_account *a = NULL;
        struct lk_account_view v;
        size_t n = 0, pos = 0, len = 0;
        char *again = NULL;

        while (lk_accounts_next(m, &pos, &v) > 0) {
                struct lk_account *grown = realloc(a, (n + 1) * sizeof(*a));

                if (!grown)
                        abort();
                a = grown;
                if (lk_account_from_view(&v, &a[n]) < 0)
                        abort();
                for (unsigned k = 0; k < a[n].n_gids; k++) {
                        struct lk_group_view g;

                        if (lk_accounts_find_gid(m, a[n].gids[k], &g) == 0)
                                a[n].group_names[k] = strndup(g.name, g.name_len);
                }
                n++;
        }
        /* The writer may refuse what the reader takes (a gid two G lines share); never crash. */
        if (lk_accounts_format(a, n, &again, &len) == 0) {
                struct lk_accounts_map m2;

                if (lk_accounts_map_init(&m2, again, len) != 0 || lk_accounts_validate(&m2) != 0)
                        abort();
        }
        (void)text;
        (void)size;
        free(again);
        for (size_t i = 0; i < n; i++)
                lk_account_clear(&a[i]);
        free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct lk_accounts_map m;
        struct lk_account_view v;
        struct lk_group_view g;
        char name[16];
        uint32_t id = 0;
        char *copy;
        size_t pos = 0;

        if (size < 8)
                return 0;
        memcpy(&id, data, 4);
        memcpy(name, data + 4, 4);
        name[4] = 0;
        /* An exact-size copy, so that a read past the end is caught. */
        copy = malloc(size - 8);
        if (!copy && size > 8)
                return 0;
        memcpy(copy, data + 8, size - 8);
        if (lk_accounts_map_init(&m, copy, size - 8) == 0) {
                (void)lk_accounts_find_name(&m, name, &v);
                (void)lk_accounts_find_uid(&m, id, &v);
                (void)lk_accounts_find_group(&m, name, &g);
                (void)lk_accounts_find_gid(&m, id, &g);
                while (lk_accounts_next(&m, &pos, &v) > 0)
                        ;
                pos = 0;
                while (lk_accounts_next_group(&m, &pos, &g) > 0)
                        ;
                if (lk_accounts_validate(&m) == 0)
                        roundtrip(&m, copy, size - 8);
        }
        free(copy);
        return 0;
}
