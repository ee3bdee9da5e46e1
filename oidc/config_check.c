/* SPDX-License-Identifier: MIT */
/* The checks between keys, run once every file has been read. */
#include <errno.h>
#include <stdio.h>
#include <strings.h>
#include <unistd.h>

#include "base/accounts_conf.h"
#include "base/uidmap.h"
#include "base/user_name.h"
#include "oidc/config_loader.h"

/* A string key that is unset, and not because its last line was refused (reported already). */
static bool missing(struct conf_loader *l, const char *name)
{
        const struct conf_key *k = conf_key_by_name(name);

        return !*(char **)((char *)l->c + k->offset) && !conf_origin_of(l, name)->bad;
}

/* [callback]: the listener needs its certificate and key, and serves redirect_uri's path. */
static void check_callback(struct conf_loader *l)
{
        struct lk_config *c = l->c;

        if (!c->callback_listen) {
                if (c->callback_certificate)
                        conf_key_problem(l, "certificate",
                                         "is set, but [callback] listen is not: nothing listens");
                if (c->callback_key)
                        conf_key_problem(l, "key",
                                         "is set, but [callback] listen is not: nothing listens");
                return;
        }
        if (missing(l, "certificate"))
                conf_key_problem(l, "listen", "needs [callback] certificate (the listener speaks "
                                 "only HTTPS)");
        if (missing(l, "key"))
                conf_key_problem(l, "listen", "needs [callback] key (the certificate's private "
                                 "key)");
        if (c->callback_certificate && access(c->callback_certificate, R_OK) < 0)
                conf_key_problem(l, "certificate", "cannot read %s: %s", c->callback_certificate,
                                 strerror(errno));
        if (c->redirect_uri && strncasecmp(c->redirect_uri, "https://", 8) != 0)
                conf_key_problem(l, "redirect_uri",
                                 "must be an https:// address of this host (or a name that "
                                 "reaches it) when [callback] listen is set: the listener "
                                 "speaks only HTTPS");
}

/* [accounts] between its keys: the range, the templates, the group map (issue 20). */
static void check_accounts(struct conf_loader *l)
{
        struct lk_config *c = l->c;
        char buf[LK_ACCOUNTS_TEMPLATE_MAX + 1];

        if (!lk_uidmap_range_ok(c->uid_min, c->uid_max))
                conf_key_problem(l, "uid_max",
                                 "uid_min..uid_max (%u..%u) must hold at least %u uids, from 1000 up",
                                 c->uid_min, c->uid_max, LK_UIDMAP_RANGE_MIN);
        if (c->nss && !c->home)
                conf_key_problem(l, "home", "must be set when nss = yes");
        if (c->nss && !c->shell)
                conf_key_problem(l, "shell", "must be set when nss = yes");
        if (c->home && lk_accounts_expand(c->home, "u", buf, sizeof(buf)) < 0)
                conf_key_problem(l, "home", "'%.200s': only %%u (the name) and %%%% may follow a %%",
                                 c->home);
        if (c->shell && lk_accounts_expand(c->shell, "u", buf, sizeof(buf)) < 0)
                conf_key_problem(l, "shell", "'%.200s': only %%u (the name) and %%%% may follow a %%",
                                 c->shell);
        for (char **w = c->group_map; w && *w; w++) {
                const char *colon = strrchr(*w, ':');

                if (!colon || colon == *w || lk_user_name_problem(colon + 1, strlen(colon + 1)))
                        conf_key_problem(l, "group_map",
                                         "'%.200s' is not provider-group:local-group", *w);
        }
}

void conf_check_keys(struct conf_loader *l)
{
        static const char *const required[] = { "issuer", "client_id", "redirect_uri" };
        static const char *const manual[] = { "authorization_endpoint", "token_endpoint",
                                              "jwks_uri" };
        struct lk_config *c = l->c;

        for (size_t i = 0; i < ELEMENTSOF(required); i++)
                if (missing(l, required[i]))
                        conf_key_problem(l, required[i], "required, but not set");

        if (!c->discovery)
                for (size_t i = 0; i < ELEMENTSOF(manual); i++) {
                        const struct conf_origin *d = conf_origin_of(l, "discovery");

                        if (missing(l, manual[i]))
                                conf_problem(l, d->source, d->line, "provider", manual[i],
                                             "must be set when discovery = no");
                }

        if (!c->discovery && c->flow == LK_FLOW_DEVICE &&
            missing(l, "device_authorization_endpoint")) {
                const struct conf_origin *f = conf_origin_of(l, "flow");

                conf_problem(l, f->source, f->line, "provider", "device_authorization_endpoint",
                             "must be set when flow = device and discovery = no");
        }

        conf_load_secret(l);

        if ((c->algorithms & (LK_ALG_HS256 | LK_ALG_HS384 | LK_ALG_HS512)) && !c->client_secret &&
            !conf_origin_of(l, "client_secret_file")->bad &&
            !conf_origin_of(l, "client_secret")->bad)
                conf_key_problem(l, "id_token_algorithms",
                                 "HS* algorithms need the client secret as key, and none is set");

        if (missing(l, "username_claim"))
                conf_key_problem(l, "username_claim", "must not be empty");

        if (c->allowed_groups && c->allowed_groups[0] && !c->groups_claim)
                conf_key_problem(l, "groups_claim", "must be set when allowed_groups is set");

        check_accounts(l);

        if (c->ca_file && access(c->ca_file, R_OK) < 0)
                conf_key_problem(l, "ca_file", "cannot read %s: %s", c->ca_file, strerror(errno));

        check_callback(l);
}
