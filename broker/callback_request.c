/* SPDX-License-Identifier: MIT */
#include "broker/callback_request.h"

#include <string.h>

#include "oidc/answer.h"

int lk_callback_target(const char *target, const char *path, const char **ret_query,
                       size_t *ret_len)
{
        size_t plen = strlen(path);
        const char *q, *hash;

        if (strncmp(target, path, plen) != 0 || target[plen] != '?')
                return -LK_ERR_NOT_FOUND;
        q = target + plen + 1;
        hash = strchr(q, '#');
        *ret_query = q;
        *ret_len = hash ? (size_t)(hash - q) : strlen(q);
        return 0;
}

int lk_callback_request_state(const char *target, const char *path, const char **ret_query,
                              size_t *ret_len, char **ret_state, struct lk_error *e)
{
        const char *q;
        size_t len;
        int r;

        r = lk_callback_target(target, path, &q, &len);
        if (r < 0)
                return lk_error_set(e, -r, "Not a callback address");
        r = lk_answer_query_state(q, len, ret_state, e);
        if (r < 0)
                return r;
        *ret_query = q;
        *ret_len = len;
        return 0;
}
