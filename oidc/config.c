/* SPDX-License-Identifier: MIT */
/*
 * latchkey.conf (SPEC §3): the load. A config starts from every key's default
 * (the table in config_keys.c); the main file and its drop-ins are read
 * (config_files.c), then the keys are checked against each other
 * (config_check.c). The parts are in config_loader.h.
 */
#include "oidc/config.h"

#include <assert.h>
#include <stdint.h>

#include "oidc/config_loader.h"

/* ---- the whole config ---- */

/* A config holding every key's default. */
static struct lk_config *config_new(void)
{
        struct lk_config *c;
        char why[LK_ERROR_MESSAGE_MAX];

        c = calloc(1, sizeof(*c));
        if (!c)
                return NULL;
        for (size_t i = 0; i < conf_n_keys; i++) {
                const struct conf_key *k = &conf_keys[i];
                int r;

                if (!k->def)
                        continue;
                r = k->type->parse(k, k->def, (char *)c + k->offset, why, sizeof(why));
                assert(r != -LK_ERR_CONFIG); /* the table's own default, refused by its type */
                if (r < 0) {
                        lk_config_free(c);
                        return NULL;
                }
        }
        return c;
}

void lk_config_free(struct lk_config *c)
{
        if (!c)
                return;
        for (size_t i = 0; i < conf_n_keys; i++)
                if (conf_keys[i].type->free)
                        conf_keys[i].type->free((char *)c + conf_keys[i].offset);
        free(c->client_secret_source); /* the one field that is not a key */
        free(c);
}

static void loader_done(struct conf_loader *l)
{
        lk_config_free(l->c);
        lk_config_problems_clear(&l->problems);
        for (size_t i = 0; i < l->n_sources; i++)
                free(l->sources[i].name);
        free(l->sources);
        free(l->origins);
}

static int loader_init(struct conf_loader *l)
{
        *l = (struct conf_loader){0};
        l->origins = calloc(conf_n_keys, sizeof(*l->origins));
        l->c = config_new();
        if (!l->origins || !l->c)
                return -LK_ERR_NOMEM;
        for (size_t i = 0; i < conf_n_keys; i++)
                l->origins[i].source = SIZE_MAX;
        return 0;
}

/* Hands the result over: the config on success, else every problem and the first in e. */
static int loader_finish(struct conf_loader *l, int r, struct lk_config **ret,
                         struct lk_config_problems *problems, struct lk_error *e)
{
        if (r == 0 && !l->oom)
                conf_check_keys(l);
        if (r < 0 || l->oom) {
                loader_done(l);
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory reading the configuration");
        }
        if (l->problems.n > 0) {
                _cleanup_free_ char *first = lk_config_problem_string(&l->problems.items[0]);

                r = lk_error_set(e, LK_ERR_CONFIG, "%s", first ?: "configuration error");
                if (problems) {
                        *problems = l->problems;
                        l->problems = (struct lk_config_problems){0};
                }
                loader_done(l);
                return r;
        }
        *ret = TAKE_PTR(l->c);
        loader_done(l);
        return 0;
}

int lk_config_load(const char *path, struct lk_config **ret, struct lk_config_problems *problems,
                   struct lk_error *e)
{
        struct conf_loader l;
        int r;

        lk_config_problems_clear(problems);
        if (!path)
                path = LK_CONFIG_PATH;
        r = loader_init(&l);
        if (r == 0)
                r = conf_parse_file(&l, path);
        if (r == 0)
                r = conf_parse_dropins(&l, path);
        return loader_finish(&l, r, ret, problems, e);
}

int lk_config_load_string(const char *text, const char *name, struct lk_config **ret,
                          struct lk_config_problems *problems, struct lk_error *e)
{
        struct conf_loader l;
        size_t source;
        int r;

        lk_config_problems_clear(problems);
        r = loader_init(&l);
        if (r == 0)
                r = conf_add_source(&l, name ?: "(config)", &source);
        if (r == 0)
                r = conf_parse_text(&l, source, text, strlen(text));
        return loader_finish(&l, r, ret, problems, e);
}
