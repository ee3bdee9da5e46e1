/* SPDX-License-Identifier: MIT */
/* Drives the latchkey.conf parser and checks with arbitrary text. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "oidc/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct lk_config_problems problems = {0};
        struct lk_config *c = NULL;
        struct lk_error e = {0};
        char *text;
        int r;

        if (size > 128 * 1024)
                return 0;
        /* No secret files from the environment: only the input decides. */
        unsetenv("CREDENTIALS_DIRECTORY");

        text = malloc(size + 1);
        if (!text)
                return 0;
        memcpy(text, data, size);
        text[size] = 0;

        r = lk_config_load_string(text, "fuzz.conf", &c, &problems, &e);
        if (r == 0) {
                /* A config that loads keeps the promises its users rely on. */
                if (!c || !c->issuer || !c->client_id || !c->redirect_uri || !c->scopes ||
                    !c->scopes[0] || strcmp(c->scopes[0], "openid") != 0 || c->algorithms == 0 ||
                    problems.n != 0)
                        abort();
                for (size_t i = 1; c->scopes[i]; i++)
                        if (strcmp(c->scopes[i], "openid") == 0)
                                abort();
                lk_config_free(c);
        } else {
                if (c || e.message[0] == 0)
                        abort();
                if (r == -LK_ERR_CONFIG && problems.n == 0)
                        abort();
                for (size_t i = 0; i < problems.n; i++)
                        free(lk_config_problem_string(&problems.items[i]));
        }
        lk_config_problems_clear(&problems);
        free(text);
        return 0;
}
