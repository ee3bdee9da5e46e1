/* SPDX-License-Identifier: MIT */
/* The list of problems a load found, each naming its file, line, section and key. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

#include "oidc/config_loader.h"

#define CONFIG_PROBLEMS_MAX 100 /* then one "too many" and silence */

void lk_config_problems_clear(struct lk_config_problems *p)
{
        if (!p)
                return;
        for (size_t i = 0; i < p->n; i++) {
                free(p->items[i].file);
                free(p->items[i].section);
                free(p->items[i].key);
                free(p->items[i].message);
        }
        free(p->items);
        p->items = NULL;
        p->n = 0;
}

char *lk_config_problem_string(const struct lk_config_problem *p)
{
        char line[16] = "";
        char *s;

        if (p->line > 0)
                snprintf(line, sizeof(line), ":%u", p->line);
        if (asprintf(&s, "%s%s:%s%s%s%s%s%s %s", p->file, line, p->section ? " [" : "",
                     p->section ?: "", p->section ? "]" : "", p->key ? " " : "", p->key ?: "",
                     p->section || p->key ? ":" : "", p->message) < 0)
                return NULL;
        return s;
}

int conf_add_source(struct conf_loader *l, const char *name, size_t *ret)
{
        struct conf_source *grown;
        char *copy;

        copy = strdup(name);
        if (!copy)
                return -LK_ERR_NOMEM;
        grown = reallocarray(l->sources, l->n_sources + 1, sizeof(*grown));
        if (!grown) {
                free(copy);
                return -LK_ERR_NOMEM;
        }
        l->sources = grown;
        l->sources[l->n_sources] = (struct conf_source){ .name = copy };
        *ret = l->n_sources++;
        return 0;
}

/* A section or key name from the file, for a message: escaped, cut near 40 bytes. */
static char *strdup_name(const char *in)
{
        char buf[44];

        return strdup(lk_text_escape(in, buf, sizeof(buf)));
}

static void add(struct conf_loader *l, size_t source, unsigned line, const char *section,
                const char *key, const char *msg)
{
        struct lk_config_problem p = {0}, *grown;

        grown = reallocarray(l->problems.items, l->problems.n + 1, sizeof(*grown));
        if (!grown) {
                l->oom = true;
                return;
        }
        l->problems.items = grown;

        p.line = line;
        p.file = strdup(source < l->n_sources ? l->sources[source].name : "(config)");
        p.section = section ? strdup_name(section) : NULL;
        p.key = key ? strdup_name(key) : NULL;
        p.message = strdup(msg);
        if (!p.file || (section && !p.section) || (key && !p.key) || !p.message) {
                free(p.file);
                free(p.section);
                free(p.key);
                free(p.message);
                l->oom = true;
                return;
        }
        l->problems.items[l->problems.n++] = p;
}

void conf_vproblem(struct conf_loader *l, size_t source, unsigned line, const char *section,
                   const char *key, const char *fmt, va_list ap)
{
        char msg[LK_ERROR_MESSAGE_MAX];

        if (l->problems.n > CONFIG_PROBLEMS_MAX)
                return;
        if (l->problems.n == CONFIG_PROBLEMS_MAX) {
                snprintf(msg, sizeof(msg), "more than %d problems; not reporting further ones",
                         CONFIG_PROBLEMS_MAX);
                add(l, source, 0, NULL, NULL, msg);
                return;
        }
        vsnprintf(msg, sizeof(msg), fmt, ap);
        add(l, source, line, section, key, msg);
}

void conf_problem(struct conf_loader *l, size_t source, unsigned line, const char *section,
                  const char *key, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        conf_vproblem(l, source, line, section, key, fmt, ap);
        va_end(ap);
}
