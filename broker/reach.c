/* SPDX-License-Identifier: MIT */
#include "broker/reach.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "oidc/log.h"

struct probe {
        lk_reach_fn done;
        void *userdata;
};

static void probe_done(void *userdata, const struct lk_http_response *resp,
                       const struct lk_error *err)
{
        struct probe *p = userdata;
        lk_reach_fn done = p->done;
        void *u = p->userdata;

        free(p);
        if (resp) {
                /* 5xx is ProviderUnavailable's class (SPEC §4); any other answer is the
                 * provider speaking. */
                done(u, 0, resp->status < 500, NULL);
                return;
        }
        if (!err || err->code != LK_ERR_NOMEM) {
                log_info("The provider cannot be reached: %s", err ? err->message : "no answer");
                done(u, 0, false, NULL);
                return;
        }
        done(u, -LK_ERR_NOMEM, false, err);
}

int lk_reach_probe(struct lk_http *h, const struct lk_config *c, lk_reach_fn done,
                   void *userdata, struct lk_error *e)
{
        _cleanup_free_ char *url = NULL;
        size_t n = strlen(c->issuer);
        struct lk_http_request req = {.ca_file = c->ca_file, .timeout = c->timeout};
        struct probe *p;
        int r;

        while (n > 0 && c->issuer[n - 1] == '/')
                n--;
        if (asprintf(&url, "%.*s/.well-known/openid-configuration", (int)n, c->issuer) < 0)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        p = calloc(1, sizeof(*p));
        if (!p)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        *p = (struct probe){.done = done, .userdata = userdata};
        req.url = url;
        r = lk_http_submit(h, &req, probe_done, p, e);
        if (r < 0)
                free(p);
        return r;
}
