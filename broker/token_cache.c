/* SPDX-License-Identifier: MIT */
#include "broker/token_cache.h"

#include <stdlib.h>
#include <string.h>

#include "base/text.h"
#include "base/util.h"

/* An audience's cap: the bus caps every option string at this already (LK_ARG_ID_MAX). */
#define AUDIENCE_MAX 256

/* RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ) */
static bool scope_char(unsigned char c)
{
        return c == 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e);
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

int lk_scope_normalize(const char *scope, char **ret, struct lk_error *e)
{
        _cleanup_free_ char *copy = NULL;
        _cleanup_free_ char **words = NULL;
        size_t n = 0, len = 0;
        char *out, *p;

        for (const char *q = scope; *q; q++)
                if (*q != ' ' && !scope_char((unsigned char)*q))
                        return lk_error_set(e, LK_ERR_INVALID_ARGUMENT,
                                            "option scope holds a character a scope may not "
                                            "(byte 0x%02x at %zu); scopes are separated by spaces",
                                            (unsigned char)*q, (size_t)(q - scope));
        copy = strdup(scope);
        words = calloc(strlen(scope) / 2 + 2, sizeof(*words));
        if (!copy || !words)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        /* Split at the spaces, in place. */
        for (p = copy; *p;) {
                if (*p == ' ') {
                        *p++ = 0;
                        continue;
                }
                words[n++] = p;
                p += strcspn(p, " ");
        }
        if (n == 0)
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT,
                                    "option scope names no scope; leave it out for the "
                                    "session's own token");
        qsort(words, n, sizeof(*words), cmp_str);
        for (size_t i = 0; i < n; i++)
                len += strlen(words[i]) + 1;
        out = malloc(len);
        if (!out)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        p = out;
        for (size_t i = 0; i < n; i++) {
                size_t l = strlen(words[i]);

                if (i > 0 && streq(words[i], words[i - 1]))
                        continue;
                if (p != out)
                        *p++ = ' ';
                memcpy(p, words[i], l);
                p += l;
        }
        *p = 0;
        *ret = out;
        return 0;
}

/* true when the space-separated list holds word. */
static bool list_has(const char *list, const char *word, size_t len)
{
        for (const char *p = list; *p;) {
                size_t l = strcspn(p, " ");

                if (l == len && strncmp(p, word, len) == 0)
                        return true;
                p += l;
                p += strspn(p, " ");
        }
        return false;
}

int lk_scope_check_subset(const char *want, const char *granted, struct lk_error *e)
{
        for (const char *p = want; *p;) {
                size_t l = strcspn(p, " ");

                if (l && !list_has(granted, p, l)) {
                        char g[LK_TEXT_QUOTE_SIZE * 2];

                        return lk_error_set(e, LK_ERR_INVALID_ARGUMENT,
                                            "scope '%.*s' is not among the session's granted "
                                            "scopes (%s); a token may only be narrower",
                                            (int)(l > 100 ? 100 : l), p,
                                            lk_text_escape(granted, g, sizeof(g)));
                }
                p += l;
                p += strspn(p, " ");
        }
        return 0;
}

char *lk_scope_join(char *const *l)
{
        size_t len = 1;
        char *out, *p;

        for (char *const *w = l; w && *w; w++)
                len += strlen(*w) + 1;
        out = p = malloc(len);
        if (!out)
                return NULL;
        for (char *const *w = l; w && *w; w++) {
                size_t n = strlen(*w);

                if (p != out)
                        *p++ = ' ';
                memcpy(p, *w, n);
                p += n;
        }
        *p = 0;
        return out;
}

bool lk_scope_within(const char *got, const char *want)
{
        for (const char *p = got; *p;) {
                size_t l = strcspn(p, " ");

                if (l && !list_has(want, p, l))
                        return false;
                p += l;
                p += strspn(p, " ");
        }
        return true;
}

int lk_audience_check(const char *audience, struct lk_error *e)
{
        size_t len = strlen(audience);

        if (len == 0 || len > AUDIENCE_MAX)
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT,
                                    "option audience must be 1 to %d characters", AUDIENCE_MAX);
        for (size_t i = 0; i < len; i++)
                if ((unsigned char)audience[i] <= 0x20 || (unsigned char)audience[i] >= 0x7f)
                        return lk_error_set(e, LK_ERR_INVALID_ARGUMENT,
                                            "option audience holds a space or a character "
                                            "outside visible ASCII (byte 0x%02x at %zu)",
                                            (unsigned char)audience[i], i);
        return 0;
}

static void entry_free(struct lk_scoped_token *t)
{
        if (!t)
                return;
        free(t->scope);
        free(t->audience);
        lk_tokens_clear(&t->tokens);
        free(t->refresh_error);
        free(t->waiters);
        free(t);
}

struct lk_scoped_token *lk_token_cache_find(struct lk_token_cache *c, const char *scope,
                                            const char *audience)
{
        for (size_t i = 0; i < c->n; i++)
                if (streq(c->entry[i]->scope, scope) && streq(c->entry[i]->audience, audience))
                        return c->entry[i];
        return NULL;
}

int lk_token_cache_add(struct lk_token_cache *c, const char *scope, const char *audience,
                       const struct lk_scoped_token *busy, struct lk_scoped_token **ret,
                       struct lk_error *e)
{
        struct lk_scoped_token *t;

        if (c->n == LK_TOKEN_CACHE_MAX) {
                size_t victim = SIZE_MAX;

                for (size_t i = 0; i < c->n; i++) {
                        struct lk_scoped_token *x = c->entry[i];

                        if (x == busy || x->n_waiters > 0)
                                continue;
                        if (victim == SIZE_MAX || x->used_at < c->entry[victim]->used_at)
                                victim = i;
                }
                if (victim == SIZE_MAX)
                        return lk_error_set(e, LK_ERR_TOO_MANY_REQUESTS,
                                            "The session's %d tokens for other scopes and "
                                            "audiences are all being fetched; try again",
                                            LK_TOKEN_CACHE_MAX);
                entry_free(c->entry[victim]);
                c->entry[victim] = c->entry[--c->n];
        }
        t = calloc(1, sizeof(*t));
        if (!t || !(t->scope = strdup(scope)) || !(t->audience = strdup(audience))) {
                entry_free(t);
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        }
        c->entry[c->n++] = t;
        *ret = t;
        return 0;
}

struct lk_scoped_token *lk_token_cache_next_wanted(struct lk_token_cache *c)
{
        for (size_t i = 0; i < c->n; i++)
                if (c->entry[i]->wanted)
                        return c->entry[i];
        return NULL;
}

int lk_scoped_wait(struct lk_scoped_token *t, lk_scoped_fn fn, void *userdata,
                   struct lk_error *e)
{
        struct lk_scoped_waiter *w;

        if (t->n_waiters >= LK_TOKEN_CACHE_WAITERS_MAX)
                return lk_error_set(e, LK_ERR_TOO_MANY_REQUESTS,
                                    "Too many callers are waiting for this token");
        w = realloc(t->waiters, (t->n_waiters + 1) * sizeof(*w));
        if (!w)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        t->waiters = w;
        w[t->n_waiters++] = (struct lk_scoped_waiter){fn, userdata};
        return 0;
}

void lk_scoped_answer(struct lk_scoped_token *t, int r, const struct lk_error *e, int64_t now)
{
        struct lk_scoped_waiter *w = TAKE_PTR(t->waiters);
        size_t n = t->n_waiters;
        bool stale_ok = r < 0 && r != -LK_ERR_TOKEN_EXPIRED && r != -LK_ERR_NOT_FOUND &&
                        t->tokens.access_token &&
                        (t->tokens.expires_at == 0 || t->tokens.expires_at > now);

        t->n_waiters = 0;
        t->wanted = false;
        for (size_t i = 0; i < n; i++) {
                if (r == 0 || stale_ok)
                        w[i].fn(w[i].userdata, &t->tokens, 0, NULL);
                else
                        w[i].fn(w[i].userdata, NULL, r, e);
        }
        free(w);
}

void lk_token_cache_clear(struct lk_token_cache *c, int r, const struct lk_error *e)
{
        while (c->n > 0) {
                struct lk_scoped_token *t = c->entry[--c->n];

                c->entry[c->n] = NULL;
                /* No stale answer: the token goes with the entry. */
                lk_tokens_clear(&t->tokens);
                lk_scoped_answer(t, r, e, 0);
                entry_free(t);
        }
}
