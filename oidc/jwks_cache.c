/* SPDX-License-Identifier: MIT */
#include "oidc/jwks_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "oidc/fileio.h"
#include "oidc/http.h"
#include "oidc/log.h"

/* The disk copy holds the document JSON-escaped, plus a little: never more than this. */
#define CACHE_FILE_MAX (2 * LK_HTTP_MAX_BODY + 4096)
/* A disk copy "fetched" further in the future than this came from a clock that went wrong. */
#define CLOCK_SLACK 300

long lk_cache_lifetime(long max_age)
{
        if (max_age < LK_JWKS_MIN_AGE)
                return LK_JWKS_MIN_AGE;
        if (max_age > LK_JWKS_MAX_AGE)
                return LK_JWKS_MAX_AGE;
        return max_age;
}

static int get_time(const json_t *doc, const char *name, int64_t *ret)
{
        const json_t *v = json_object_get(doc, name);

        if (!json_is_integer(v))
                return -1;
        *ret = (int64_t)json_integer_value(v);
        return 0;
}

void lk_cache_file_clear(struct lk_cache_file *f)
{
        free(f->body);
        free(f->url);
        *f = (struct lk_cache_file){0};
}

static char *string_copy(const json_t *v)
{
        size_t len = json_string_length(v);
        char *s = malloc(len + 1);

        if (s) {
                memcpy(s, json_string_value(v), len);
                s[len] = 0;
        }
        return s;
}

int lk_cache_file_load(const char *path, int64_t now, struct lk_cache_file *ret,
                       struct lk_error *e)
{
        _cleanup_(json_decrefp) json_t *doc = NULL;
        _cleanup_free_ char *text = NULL;
        struct lk_cache_file f = {0};
        const json_t *body, *url;
        json_error_t jerr;
        size_t len;
        int r;

        /* It names the keys that sign id_tokens: only a file the broker wrote is trusted. */
        r = lk_read_private_file(path, LK_PRIVATE_OURS, CACHE_FILE_MAX, &text, &len, NULL, e);
        if (r < 0)
                return r;
        doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!doc)
                return lk_error_set(e, LK_ERR_IO, "%s:%d: not JSON: %s", path, jerr.line,
                                    jerr.text);
        body = json_object_get(doc, "body");
        url = json_object_get(doc, "url");
        if (!json_is_string(body) || (url && !json_is_string(url)) ||
            get_time(doc, "fetched_at", &f.fetched_at) < 0 ||
            get_time(doc, "expires_at", &f.expires_at) < 0)
                return lk_error_set(e, LK_ERR_IO, "%s: body, url, fetched_at or expires_at missing",
                                    path);
        /* fetched_at >= 0 keeps expires_at - fetched_at from overflowing. */
        if (f.fetched_at < 0 || f.fetched_at > now + CLOCK_SLACK || f.expires_at < f.fetched_at ||
            f.expires_at - f.fetched_at > LK_JWKS_MAX_AGE)
                return lk_error_set(e, LK_ERR_IO, "%s: fetched_at or expires_at out of range",
                                    path);
        if (f.expires_at <= now)
                return lk_error_set(e, LK_ERR_NOT_FOUND, "%s is stale", path);

        f.len = json_string_length(body);
        f.body = string_copy(body);
        f.url = url ? string_copy(url) : NULL;
        if (!f.body || (url && !f.url)) {
                lk_cache_file_clear(&f);
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        }
        *ret = f;
        return 0;
}

int lk_cache_file_save(const char *path, const struct lk_cache_file *f, struct lk_error *e)
{
        _cleanup_(json_decrefp) json_t *doc = NULL;
        _cleanup_free_ char *text = NULL;

        doc = json_pack("{s:s%,s:I,s:I}", "body", f->body, f->len, "fetched_at",
                        (json_int_t)f->fetched_at, "expires_at", (json_int_t)f->expires_at);
        if (!doc)
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT,
                                    "Cannot write %s: the document is not UTF-8 text", path);
        if (f->url && json_object_set_new(doc, "url", json_string(f->url)) < 0)
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT,
                                    "Cannot write %s: the URL is not UTF-8 text", path);
        text = json_dumps(doc, JSON_COMPACT);
        if (!text)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        return lk_write_file_atomic(path, text, strlen(text), 0600, e);
}

static void load_disk_copy(struct lk_jwks_cache *c, int64_t now)
{
        struct lk_cache_file f = {0};
        struct lk_jwks *keys = NULL;
        struct lk_error e = {0};

        if (lk_cache_file_load(c->path, now, &f, &e) < 0 ||
            lk_jwks_parse(f.body, f.len, &keys, &e) < 0) {
                log_debug("Not using the cached keys: %s", e.message);
                lk_cache_file_clear(&f);
                return;
        }
        c->keys = keys;
        c->fetched_at = f.fetched_at;
        c->expires_at = f.expires_at;
        c->url = TAKE_PTR(f.url);
        lk_cache_file_clear(&f);
        log_debug("Using the cached keys from %s (%zu keys)", c->path, keys->n);
}

int lk_jwks_cache_init(struct lk_jwks_cache *c, const char *path, int64_t now)
{
        *c = (struct lk_jwks_cache){.last_forced = INT64_MIN};
        if (path) {
                c->path = strdup(path);
                if (!c->path)
                        return -LK_ERR_NOMEM;
                load_disk_copy(c, now);
        }
        return 0;
}

void lk_jwks_cache_clear(struct lk_jwks_cache *c)
{
        lk_jwks_free(c->keys);
        free(c->path);
        free(c->url);
        *c = (struct lk_jwks_cache){.last_forced = INT64_MIN};
}

int lk_jwks_cache_bind(struct lk_jwks_cache *c, const char *url)
{
        char *copy;

        if (streq_ptr(c->url, url))
                return 0;
        copy = url ? strdup(url) : NULL;
        if (url && !copy)
                return -LK_ERR_NOMEM;
        if (c->keys)
                log_debug("Dropping the cached keys: they came from %s, not %s",
                          c->url ? c->url : "an unknown URL", url ? url : "(none)");
        lk_jwks_free(c->keys);
        c->keys = NULL;
        c->fetched_at = c->expires_at = 0;
        free(c->url);
        c->url = copy;
        return 0;
}

bool lk_jwks_cache_stale(const struct lk_jwks_cache *c, int64_t now)
{
        return !c->keys || now >= c->expires_at;
}

bool lk_jwks_cache_may_refetch(struct lk_jwks_cache *c, int64_t now)
{
        /* Within the interval either way: a clock that stepped back does not open the gate. */
        if (c->last_forced != INT64_MIN && now > c->last_forced - LK_JWKS_REFETCH_INTERVAL &&
            now < c->last_forced + LK_JWKS_REFETCH_INTERVAL)
                return false;
        c->last_forced = now;
        return true;
}

int lk_jwks_cache_store(struct lk_jwks_cache *c, const char *body, size_t len, long max_age,
                        int64_t now, struct lk_error *e)
{
        struct lk_jwks *keys = NULL;
        struct lk_error we = {0};
        int r;

        r = lk_jwks_parse(body, len, &keys, e);
        if (r < 0)
                return r;
        lk_jwks_free(c->keys);
        c->keys = keys;
        c->fetched_at = now;
        c->expires_at = now + lk_cache_lifetime(max_age);

        if (c->path) {
                struct lk_cache_file f = {
                        .body = (char *)body, .len = len, .url = c->url,
                        .fetched_at = c->fetched_at, .expires_at = c->expires_at,
                };

                if (lk_cache_file_save(c->path, &f, &we) < 0)
                        log_warning("Cannot keep a copy of the provider's keys, ignoring: %s",
                                    we.message);
        }
        return 0;
}
