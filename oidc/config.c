/* SPDX-License-Identifier: MIT */
/*
 * latchkey.conf (SPEC §3).
 *
 * inih splits the lines; everything else is ours. We feed inih through our
 * own reader (ini_parse_stream), one line per call, so we always know the
 * line number (Debian's inih is built without INI_HANDLER_LINENO), can refuse
 * over-long lines instead of letting inih cut them in two, and can wipe
 * inih's line buffer at the end, since a line may hold the client secret.
 *
 * Values are checked as each line is read, so check-config reports every bad
 * line, even one a later file overrides. Checks between keys (required keys,
 * the client secret, HS* needing it) run once every file has been read.
 *
 * Comments: as SPEC §3 says, a comment is a whole line starting with '#' or
 * ';'. Inline comments are off, so "a ; b" is never silently cut to "a"
 * (that would truncate a client secret holding " ;"). A value holding " #"
 * or " ;" is refused with a hint, since it is nearly always a note copied
 * from the example; client_secret is exempt and taken verbatim.
 *
 * A key set twice in one file: the later line wins, exactly as when a later
 * file sets it again. We do not refuse it: conf.d overrides work the same
 * way, and every check still runs on both lines.
 */
#include "oidc/config.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/text.h"
#include "oidc/fileio.h"

#define CONFIG_FILE_MAX (64 * 1024) /* one config file */
#define CONFIG_LINE_MAX 4096        /* one line, without its newline */
#define CONFIG_DROPINS_MAX 256      /* files in latchkey.conf.d */
#define CONFIG_PROBLEMS_MAX 100     /* then one "too many" and silence */
#define SECRET_FILE_MAX 4096
#define QUOTE_MAX 80                /* how much of a bad value a message quotes */

enum key_type {
        KEY_URL,         /* char *, lk_check_endpoint_url(); empty = unset */
        KEY_ISSUER,      /* KEY_URL, and no ?query (OpenID Connect Discovery §2) */
        KEY_STRING,      /* char *; empty = unset */
        KEY_CLAIM,       /* char *, a claim name; empty = unset */
        KEY_PATH,        /* char *, absolute path; empty = unset */
        KEY_SECRET,      /* char *, never quoted, never checked for comments */
        KEY_BOOL,
        KEY_UINT,
        KEY_LIST,        /* char **, words; empty = NULL */
        KEY_SCOPES,      /* char **, "openid" first */
        KEY_ALGS,        /* unsigned, LK_ALG_* bits */
        KEY_NONCE,       /* enum lk_nonce_mode */
        KEY_CLIENT_AUTH, /* enum lk_client_auth */
};

#define NOT_IN_CONFIG SIZE_MAX /* stored in the loader instead (client_secret_file) */

struct key_def {
        const char *section;
        const char *name;
        enum key_type type;
        size_t offset;
        unsigned min, max; /* KEY_UINT */
};

#define KEY(sec, field, type) { sec, #field, type, offsetof(struct lk_config, field), 0, 0 }
#define NUM(sec, field, lo, hi) { sec, #field, KEY_UINT, offsetof(struct lk_config, field), lo, hi }

static const struct key_def keys[] = {
        KEY("provider", issuer, KEY_ISSUER),
        KEY("provider", discovery, KEY_BOOL),
        KEY("provider", authorization_endpoint, KEY_URL),
        KEY("provider", token_endpoint, KEY_URL),
        KEY("provider", jwks_uri, KEY_URL),
        KEY("provider", userinfo_endpoint, KEY_URL),
        KEY("provider", revocation_endpoint, KEY_URL),
        KEY("provider", client_id, KEY_STRING),
        { "provider", "client_secret_file", KEY_PATH, NOT_IN_CONFIG, 0, 0 },
        KEY("provider", client_secret, KEY_SECRET),
        KEY("provider", client_auth, KEY_CLIENT_AUTH),
        KEY("provider", redirect_uri, KEY_URL),
        KEY("provider", scopes, KEY_SCOPES),
        KEY("provider", prompt, KEY_STRING),
        KEY("provider", pkce, KEY_BOOL),
        KEY("provider", nonce, KEY_NONCE),
        { "provider", "id_token_algorithms", KEY_ALGS,
          offsetof(struct lk_config, algorithms), 0, 0 },
        KEY("provider", ca_file, KEY_PATH),
        NUM("provider", timeout, 1, 300),
        NUM("provider", clock_skew, 0, 3600),

        KEY("users", username_claim, KEY_CLAIM),
        KEY("users", strip_suffix, KEY_STRING),
        KEY("users", allowed_users, KEY_LIST),
        KEY("users", allowed_groups, KEY_LIST),
        KEY("users", groups_claim, KEY_CLAIM),
        KEY("users", allow_system_users, KEY_LIST),

        NUM("sessions", refresh_margin, 0, 86400),
        NUM("sessions", login_timeout, 1, 86400),
        KEY("sessions", revoke_on_close, KEY_BOOL),
        NUM("sessions", idle_exit, 0, 86400),
};

static const char *const sections[] = { "provider", "users", "sessions", "pam" };

/* [pam] belongs to pam_latchkey.so (pam_latchkey(8)), which reads it itself; here only its names. */
static const char *const pam_keys[] = { "services", "users", "groups" };

/* One file read (or the text given to lk_config_load_string). */
struct source {
        char *name;
        bool is_file; /* mode and uid are known */
        mode_t mode;
        uid_t uid;
};

struct origin {
        size_t source; /* index into loader.sources; SIZE_MAX: never set */
        unsigned line;
        bool bad;      /* the last line setting it was refused */
};

struct loader {
        struct lk_config *c;
        struct lk_config_problems problems;
        bool oom;

        struct source *sources;
        size_t n_sources;
        size_t cur; /* the source being read */

        /* Our reader's view of the text being read */
        const char *pos, *end;
        unsigned line;
        const char *line_start;
        size_t line_len;
        bool line_done; /* inih called the handler for it, or we judged it already */
        char section[64];
        bool have_section; /* a known [section] is open */
        bool skip_keys;    /* after an unknown or broken section header */

        struct origin origins[ELEMENTSOF(keys)];
        char *secret_file;
};

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

/* Copies text from the file into a message (lk_text_escape()), cut near max bytes with "...". */
static void quote(const char *in, size_t max, char *out, size_t size)
{
        lk_text_escape(in, out, size < max + 4 ? size : max + 4);
}

static char *strdup_quoted(const char *in, size_t max)
{
        char buf[128];

        quote(in, max, buf, sizeof(buf));
        return strdup(buf);
}

static void add_problem(struct loader *l, size_t source, unsigned line, const char *section,
                        const char *key, const char *fmt, ...) _printf_(6, 7);

static void add_problem(struct loader *l, size_t source, unsigned line, const char *section,
                        const char *key, const char *fmt, ...)
{
        struct lk_config_problem p = {0}, *grown;
        char msg[LK_ERROR_MESSAGE_MAX];
        va_list ap;

        if (l->problems.n > CONFIG_PROBLEMS_MAX)
                return;
        if (l->problems.n == CONFIG_PROBLEMS_MAX) {
                section = key = NULL;
                line = 0;
                snprintf(msg, sizeof(msg), "more than %d problems; not reporting further ones",
                         CONFIG_PROBLEMS_MAX);
        } else {
                va_start(ap, fmt);
                vsnprintf(msg, sizeof(msg), fmt, ap);
                va_end(ap);
        }

        grown = reallocarray(l->problems.items, l->problems.n + 1, sizeof(*grown));
        if (!grown) {
                l->oom = true;
                return;
        }
        l->problems.items = grown;

        p.line = line;
        p.file = strdup(source < l->n_sources ? l->sources[source].name : "(config)");
        p.section = section ? strdup_quoted(section, 40) : NULL;
        p.key = key ? strdup_quoted(key, 40) : NULL;
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

/* ---- URLs ---- */

static bool host_is_loopback(const char *host)
{
        struct in_addr a4;
        struct in6_addr a6;
        char inner[INET6_ADDRSTRLEN + 1];
        size_t len;

        if (strcasecmp(host, "localhost") == 0 || strcasecmp(host, "localhost.") == 0)
                return true;
        if (inet_pton(AF_INET, host, &a4) == 1)
                return (ntohl(a4.s_addr) >> 24) == 127;

        /* curl hands IPv6 hosts back in brackets: "[::1]" */
        len = strlen(host);
        if (len < 3 || host[0] != '[' || host[len - 1] != ']' || len - 2 >= sizeof(inner))
                return false;
        memcpy(inner, host + 1, len - 2);
        inner[len - 2] = 0;
        if (inet_pton(AF_INET6, inner, &a6) != 1)
                return false;
        if (IN6_IS_ADDR_LOOPBACK(&a6))
                return true;
        return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
}

static bool url_has_part(CURLU *u, CURLUPart part)
{
        char *v = NULL;
        CURLUcode rc = curl_url_get(u, part, &v, 0);

        curl_free(v);
        return rc == CURLUE_OK;
}

/*
 * The URL parsing is curl's (the same library that will fetch it), never
 * ours. On failure writes why into why, without the key's name. Returns 0,
 * -LK_ERR_CONFIG or -LK_ERR_NOMEM.
 */
static int check_url(const char *url, char *why, size_t why_size)
{
        CURLU *u;
        CURLUcode rc;
        char *scheme = NULL, *host = NULL;
        char shown[QUOTE_MAX + 8];
        int r = -LK_ERR_CONFIG;

        /* A URL with a user name may hold a password: never quote one with '@'. */
        if (strchr(url, '@'))
                snprintf(shown, sizeof(shown), "the URL");
        else {
                char q[QUOTE_MAX + 4];

                quote(url, QUOTE_MAX, q, sizeof(q));
                snprintf(shown, sizeof(shown), "'%s'", q);
        }

        u = curl_url();
        if (!u) {
                snprintf(why, why_size, "out of memory");
                return -LK_ERR_NOMEM;
        }
        rc = curl_url_set(u, CURLUPART_URL, url, 0);
        if (rc != CURLUE_OK) {
                snprintf(why, why_size, "%s is not an absolute http(s) URL (%s)", shown,
                         curl_url_strerror(rc));
                goto out;
        }
        if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
            (!streq(scheme, "https") && !streq(scheme, "http"))) {
                snprintf(why, why_size, "%s is not an http(s) URL", shown);
                goto out;
        }
        if (url_has_part(u, CURLUPART_USER) || url_has_part(u, CURLUPART_PASSWORD)) {
                snprintf(why, why_size, "the URL must not hold a user name or password");
                goto out;
        }
        if (url_has_part(u, CURLUPART_FRAGMENT)) {
                snprintf(why, why_size, "%s must not have a #fragment", shown);
                goto out;
        }
        if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || isempty(host)) {
                snprintf(why, why_size, "%s has no host", shown);
                goto out;
        }
        if (streq(scheme, "http") && !host_is_loopback(host)) {
                snprintf(why, why_size,
                         "%s is refused: http:// is allowed only for a loopback host "
                         "(127.0.0.0/8, ::1, localhost); use https://",
                         shown);
                goto out;
        }
        r = 0;
out:
        curl_free(scheme);
        curl_free(host);
        curl_url_cleanup(u);
        return r;
}

int lk_check_endpoint_url(const char *url, const char *what, struct lk_error *e)
{
        char why[LK_ERROR_MESSAGE_MAX - 64];
        int r;

        if (isempty(url))
                return lk_error_set(e, LK_ERR_CONFIG, "%s: empty URL", what);
        r = check_url(url, why, sizeof(why));
        if (r < 0)
                return lk_error_set(e, -r, "%s: %s", what, why);
        return 0;
}

/* ---- values ---- */

static bool parse_bool(const char *v, bool *ret)
{
        static const char *const yes[] = { "yes", "true", "1", "on" };
        static const char *const no[] = { "no", "false", "0", "off" };

        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (strcasecmp(v, yes[i]) == 0) {
                        *ret = true;
                        return true;
                }
                if (strcasecmp(v, no[i]) == 0) {
                        *ret = false;
                        return true;
                }
        }
        return false;
}

/* Decimal digits only: no sign, no spaces, no 0x; strtoul checked in full. */
static bool parse_uint(const char *v, unsigned long *ret)
{
        unsigned long n;
        char *end;

        if (*v < '0' || *v > '9')
                return false;
        errno = 0;
        n = strtoul(v, &end, 10);
        if (errno != 0 || *end != 0)
                return false;
        *ret = n;
        return true;
}

/* RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ) */
static bool scope_token_valid(const char *s)
{
        if (!*s)
                return false;
        for (; *s; s++)
                if (*s < 0x21 || *s > 0x7e || *s == '"' || *s == '\\')
                        return false;
        return true;
}

static bool looks_like_inline_comment(const char *v)
{
        for (const char *p = v; *p; p++)
                if ((*p == '#' || *p == ';') && p > v && (p[-1] == ' ' || p[-1] == '\t'))
                        return true;
        return false;
}

static void **field(struct lk_config *c, const struct key_def *k)
{
        return (void **)((char *)c + k->offset);
}

/* Parses one value; on success stores it (freeing the old one), else adds a problem. */
static int set_value(struct loader *l, const struct key_def *k, const char *v)
{
        struct lk_config *c = l->c;
        char q[QUOTE_MAX + 4];
        char why[LK_ERROR_MESSAGE_MAX - 64];

#define PROBLEM(...) \
        (add_problem(l, l->cur, l->line, k->section, k->name, __VA_ARGS__), -LK_ERR_CONFIG)
#define OOM() (l->oom = true, -LK_ERR_NOMEM)

        /* The secret is never copied, not even to a buffer that is not shown. */
        if (k->type != KEY_SECRET)
                quote(v, QUOTE_MAX, q, sizeof(q));
        else
                q[0] = 0;
        if (k->type != KEY_SECRET && looks_like_inline_comment(v))
                return PROBLEM("'%s' holds a comment; a comment must be a whole line "
                               "starting with # or ;", q);

        switch (k->type) {
        case KEY_URL:
        case KEY_ISSUER:
        case KEY_STRING:
        case KEY_CLAIM:
        case KEY_PATH:
        case KEY_SECRET: {
                char *s = NULL, **dst;
                int r;

                if (*v) {
                        if (k->type == KEY_URL || k->type == KEY_ISSUER) {
                                r = check_url(v, why, sizeof(why));
                                if (r == -LK_ERR_NOMEM)
                                        return OOM();
                                if (r < 0)
                                        return PROBLEM("%s", why);
                                if (k->type == KEY_ISSUER && strchr(v, '?'))
                                        return PROBLEM("'%s': an issuer has no ?query", q);
                        }
                        if (k->type == KEY_PATH && v[0] != '/')
                                return PROBLEM("'%s' is not an absolute path", q);
                        if (k->type == KEY_CLAIM && !scope_token_valid(v))
                                return PROBLEM("'%s' is not a claim name", q);
                        s = strdup(v);
                        if (!s)
                                return OOM();
                }
                dst = k->offset == NOT_IN_CONFIG ? &l->secret_file : (char **)field(c, k);
                if (k->type == KEY_SECRET)
                        lk_secret_free(*dst);
                else
                        free(*dst);
                *dst = s;
                return 0;
        }
        case KEY_BOOL: {
                bool b;

                if (!parse_bool(v, &b))
                        return PROBLEM("'%s' is not a boolean "
                                       "(yes, no, true, false, on, off, 1, 0)", q);
                *(bool *)field(c, k) = b;
                return 0;
        }
        case KEY_UINT: {
                unsigned long n;

                if (!parse_uint(v, &n))
                        return PROBLEM("'%s' is not a number", q);
                if (n < k->min || n > k->max)
                        return PROBLEM("%lu is out of range (%u..%u)", n, k->min, k->max);
                *(unsigned *)field(c, k) = (unsigned)n;
                return 0;
        }
        case KEY_LIST: {
                char **list = NULL, ***dst = (char ***)field(c, k);

                if (*v) {
                        list = lk_strv_split(v);
                        if (!list)
                                return OOM();
                }
                lk_strv_free(*dst);
                *dst = list;
                return 0;
        }
        case KEY_SCOPES: {
                _cleanup_strv_ char **words = NULL, **scopes = NULL;
                size_t n = 1;

                words = lk_strv_split(v);
                if (!words)
                        return OOM();
                scopes = calloc(lk_strv_length(words) + 2, sizeof(char *));
                if (!scopes)
                        return OOM();
                scopes[0] = strdup("openid");
                if (!scopes[0])
                        return OOM();
                for (char **w = words; *w; w++) {
                        if (!scope_token_valid(*w)) {
                                quote(*w, QUOTE_MAX, q, sizeof(q));
                                return PROBLEM("'%s' is not a valid scope", q);
                        }
                        if (lk_strv_contains(scopes, *w))
                                continue; /* openid, or a repeat */
                        scopes[n] = strdup(*w);
                        if (!scopes[n++])
                                return OOM();
                }
                lk_strv_free(c->scopes);
                c->scopes = TAKE_PTR(scopes);
                return 0;
        }
        case KEY_ALGS: {
                _cleanup_strv_ char **words = NULL;
                unsigned algs = 0;

                words = lk_strv_split(v);
                if (!words)
                        return OOM();
                for (char **w = words; *w; w++) {
                        unsigned a = lk_alg_from_name(*w);

                        quote(*w, QUOTE_MAX, q, sizeof(q));
                        if (strcasecmp(*w, "none") == 0)
                                return PROBLEM("'none' is never accepted: an unsigned id_token "
                                               "proves nothing");
                        if (a == 0)
                                return PROBLEM("'%s' is not an algorithm latchkey knows (RS256 "
                                               "RS384 RS512 ES256 ES384 ES512 HS256 HS384 HS512)",
                                               q);
                        algs |= a;
                }
                if (algs == 0)
                        return PROBLEM("names no algorithm");
                *(unsigned *)field(c, k) = algs;
                return 0;
        }
        case KEY_NONCE:
                if (streq(v, "required"))
                        c->nonce = LK_NONCE_REQUIRED;
                else if (streq(v, "if-present"))
                        c->nonce = LK_NONCE_IF_PRESENT;
                else if (streq(v, "off"))
                        c->nonce = LK_NONCE_OFF;
                else
                        return PROBLEM("'%s' is not one of required, if-present, off", q);
                return 0;
        case KEY_CLIENT_AUTH:
                if (streq(v, "client_secret_post"))
                        c->client_auth = LK_CLIENT_AUTH_POST;
                else if (streq(v, "client_secret_basic"))
                        c->client_auth = LK_CLIENT_AUTH_BASIC;
                else
                        return PROBLEM("'%s' is not one of client_secret_post, "
                                       "client_secret_basic", q);
                return 0;
        }
#undef PROBLEM
#undef OOM
        return -LK_ERR_CONFIG;
}

static const struct key_def *find_key(const char *section, const char *name, bool *ret_elsewhere)
{
        *ret_elsewhere = false;
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                if (streq(keys[i].name, name)) {
                        if (streq(keys[i].section, section))
                                return &keys[i];
                        *ret_elsewhere = true;
                }
        return NULL;
}

static const char *section_of(const char *name)
{
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                if (streq(keys[i].name, name))
                        return keys[i].section;
        return NULL;
}

/* ---- inih glue ---- */

static bool is_space(char ch)
{
        return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == '\v' || ch == '\f';
}

/*
 * Judges a line inih did not hand to the handler, the way inih reads it: a
 * blank line, a comment, a [section] header, or else a syntax error. Called
 * before the next line is read, so a header is taken before the keys under it.
 */
static void finish_line(struct loader *l)
{
        const char *s = l->line_start, *close, *rest;
        size_t n = l->line_len;

        if (l->line == 0 || l->line_done)
                return;
        l->line_done = true;

        if (l->line == 1 && n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
                s += 3;
                n -= 3;
        }
        while (n > 0 && is_space(*s)) {
                s++;
                n--;
        }
        while (n > 0 && is_space(s[n - 1]))
                n--;
        if (n == 0 || *s == '#' || *s == ';')
                return;

        if (*s != '[') {
                add_problem(l, l->cur, l->line, l->have_section ? l->section : NULL, NULL,
                            "expected 'key = value', a [section] header or a comment");
                return;
        }

        close = memchr(s, ']', n);
        if (!close) {
                add_problem(l, l->cur, l->line, NULL, NULL, "section header without a closing ']'");
                l->skip_keys = true;
                l->have_section = false;
                return;
        }
        rest = close + 1;
        if (rest < s + n && *rest != '#' && *rest != ';') {
                add_problem(l, l->cur, l->line, NULL, NULL, "unexpected text after ']'");
                /* still take the section: inih does */
        }

        l->have_section = false;
        l->skip_keys = true;
        if ((size_t)(close - s - 1) < sizeof(l->section)) {
                memcpy(l->section, s + 1, (size_t)(close - s - 1));
                l->section[close - s - 1] = 0;
                for (size_t i = 0; i < ELEMENTSOF(sections); i++)
                        if (streq(l->section, sections[i])) {
                                l->have_section = true;
                                l->skip_keys = false;
                        }
        }
        if (!l->have_section) {
                char name[48], shown[64];
                size_t len = (size_t)(close - s - 1);

                if (len >= sizeof(name))
                        len = sizeof(name) - 1;
                memcpy(name, s + 1, len);
                name[len] = 0;
                quote(name, 40, shown, sizeof(shown));
                add_problem(l, l->cur, l->line, shown, NULL,
                            "unknown section (known: [provider], [users], [sessions], [pam])");
        }
}

/* inih's ini_reader: one line per call, like fgets, from l->pos. */
static char *read_line(char *str, int num, void *stream)
{
        struct loader *l = stream;
        const char *nl;
        size_t len;

        finish_line(l);

        if (l->pos >= l->end) {
                /* inih's line buffer held every line, the client secret's too */
                explicit_bzero(str, (size_t)num);
                return NULL;
        }
        nl = memchr(l->pos, '\n', (size_t)(l->end - l->pos));
        len = nl ? (size_t)(nl - l->pos) : (size_t)(l->end - l->pos);
        l->line++;
        l->line_start = l->pos;
        l->line_len = len;
        l->line_done = false;
        l->pos += len + (nl ? 1 : 0);

        if (len + 3 > (size_t)num || len > CONFIG_LINE_MAX) {
                add_problem(l, l->cur, l->line, NULL, NULL, "line is longer than %d bytes",
                            num - 3 < CONFIG_LINE_MAX ? num - 3 : CONFIG_LINE_MAX);
                l->line_done = true;
                memcpy(str, "#\n", 3); /* inih skips it */
                return str;
        }
        if (memchr(l->line_start, 0, len)) {
                add_problem(l, l->cur, l->line, NULL, NULL, "line holds a NUL byte");
                l->line_done = true;
                memcpy(str, "#\n", 3);
                return str;
        }
        memcpy(str, l->line_start, len);
        str[len] = '\n';
        str[len + 1] = 0;
        return str;
}

static int handle_key(void *user, const char *section, const char *name, const char *value)
{
        struct loader *l = user;
        const struct key_def *k;
        bool elsewhere;

        l->line_done = true;
        /* Our reader tracks sections itself: inih cuts long names and keeps the old
         * section after a broken header. */
        (void)section;
        if (l->skip_keys)
                return 1; /* the header was reported */
        if (!l->have_section) {
                const char *where = section_of(name);

                if (where)
                        add_problem(l, l->cur, l->line, NULL, name,
                                    "is outside any section; put it under [%s]", where);
                else
                        add_problem(l, l->cur, l->line, NULL, name,
                                    "is outside any section, and not a key latchkey knows");
                return 1;
        }

        if (streq(l->section, "pam")) {
                for (size_t i = 0; i < ELEMENTSOF(pam_keys); i++)
                        if (streq(name, pam_keys[i]))
                                return 1;
                add_problem(l, l->cur, l->line, l->section, name,
                            "unknown key (known here: services, users, groups)");
                return 1;
        }
        k = find_key(l->section, name, &elsewhere);
        if (!k) {
                if (elsewhere)
                        add_problem(l, l->cur, l->line, l->section, name,
                                    "unknown key here; it belongs under [%s]", section_of(name));
                else
                        add_problem(l, l->cur, l->line, l->section, name, "unknown key");
                return 1;
        }

        struct origin *o = &l->origins[k - keys];
        if (set_value(l, k, value) < 0) {
                o->source = l->cur;
                o->line = l->line;
                o->bad = true;
                return 1;
        }
        o->source = l->cur;
        o->line = l->line;
        o->bad = false;
        return 1;
}

static void ini_setup(void)
{
#if HAVE_INI_RUNTIME_OPTIONS
        /* Debian builds inih with INI_RUNTIME_OPTIONS; these are process-wide, and
         * we are the only user of inih in the process. */
        static char comment_prefixes[] = "#;";

        ini_allow_multiline = false; /* an indented "key = value" is a key, not a continuation */
        ini_allow_bom = true;
        ini_start_comment_prefixes = comment_prefixes;
        ini_allow_inline_comments = false;
        ini_use_stack = true;
        ini_max_line = CONFIG_LINE_MAX + 3; /* line, "\r\n" or "\n", NUL */
        ini_stop_on_first_error = false;
        ini_allow_no_value = false;
#endif
}

/* Parses one text; problems land in l. */
static int parse_text(struct loader *l, size_t source, const char *text, size_t len)
{
        int r;

        l->cur = source;
        l->pos = text;
        l->end = text + len;
        l->line = 0;
        l->line_start = NULL;
        l->line_len = 0;
        l->line_done = true;
        l->have_section = false;
        l->skip_keys = false;
        l->section[0] = 0;

        ini_setup();
        r = ini_parse_stream(read_line, l, handle_key, l);
        if (r == -2)
                l->oom = true;
        /* r > 0 is the first line inih disliked; finish_line() reported every one of them. */
        return l->oom ? -LK_ERR_NOMEM : 0;
}

/* ---- files ---- */

static void wipe_free(char *buf, size_t len)
{
        if (!buf)
                return;
        explicit_bzero(buf, len);
        free(buf);
}

static int add_source(struct loader *l, const char *name, size_t *ret)
{
        struct source *grown;
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
        l->sources[l->n_sources] = (struct source){ .name = copy };
        *ret = l->n_sources++;
        return 0;
}

static int parse_file(struct loader *l, const char *path)
{
        struct lk_error e = {0};
        struct stat st;
        char *text = NULL;
        size_t len = 0, source;
        int r;

        r = add_source(l, path, &source);
        if (r < 0)
                return r;

        /* It decides the issuer, the keys and who may log in: no one else may write it. */
        r = lk_read_private_file(path, 0, CONFIG_FILE_MAX, &text, &len, &st, &e);
        if (r == -LK_ERR_NOMEM)
                return r;
        if (r < 0) {
                add_problem(l, source, 0, NULL, NULL, "%s", e.message);
                return 0;
        }
        l->sources[source].is_file = true;
        l->sources[source].mode = st.st_mode;
        l->sources[source].uid = st.st_uid;

        r = parse_text(l, source, text, len);
        wipe_free(text, len); /* it may hold client_secret */
        return r;
}

static int cmp_names(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The drop-in folder: not a symbolic link, and as private as the files in it. */
static DIR *open_dropin_dir(const char *dir, struct lk_error *e)
{
        struct stat st;
        DIR *d;
        int fd, r;

        fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
                if (errno == ENOENT)
                        lk_error_set(e, LK_ERR_NOT_FOUND, "%s does not exist", dir);
                else
                        lk_error_set(e, LK_ERR_IO, "cannot open the folder: %s",
                                     errno == ELOOP ? "it is a symbolic link" : strerror(errno));
                return NULL;
        }
        if (fstat(fd, &st) < 0)
                r = lk_error_set(e, LK_ERR_IO, "cannot stat the folder: %s", strerror(errno));
        else
                r = lk_check_private(dir, &st, LK_PRIVATE_DIR, e);
        if (r < 0) {
                close(fd);
                return NULL;
        }
        d = fdopendir(fd);
        if (!d) {
                lk_error_set(e, LK_ERR_IO, "cannot open the folder: %s", strerror(errno));
                close(fd);
        }
        return d;
}

/* <path>.d/ *.conf, in byte order of their names (not the locale's), later winning. */
static int parse_dropins(struct loader *l, const char *path)
{
        _cleanup_free_ char *dir = NULL;
        _cleanup_strv_ char **names = NULL;
        struct lk_error e = {0};
        size_t n = 0, source;
        struct dirent *de;
        DIR *d;
        int r = 0;

        if (asprintf(&dir, "%s.d", path) < 0) {
                dir = NULL;
                return -LK_ERR_NOMEM;
        }
        d = open_dropin_dir(dir, &e);
        if (!d) {
                if (e.code == LK_ERR_NOT_FOUND)
                        return 0;
                if (add_source(l, dir, &source) < 0)
                        return -LK_ERR_NOMEM;
                add_problem(l, source, 0, NULL, NULL, "%s", e.message);
                return 0;
        }
        names = calloc(1, sizeof(char *));
        if (!names) {
                closedir(d);
                return -LK_ERR_NOMEM;
        }
        while ((de = readdir(d))) {
                char **grown;

                if (de->d_name[0] == '.' || !lk_endswith(de->d_name, ".conf"))
                        continue;
                if (n == CONFIG_DROPINS_MAX) {
                        if (add_source(l, dir, &source) < 0) {
                                closedir(d);
                                return -LK_ERR_NOMEM;
                        }
                        add_problem(l, source, 0, NULL, NULL,
                                    "more than %d .conf files; ignoring the rest",
                                    CONFIG_DROPINS_MAX);
                        break;
                }
                grown = reallocarray(names, n + 2, sizeof(char *));
                if (!grown) {
                        closedir(d);
                        return -LK_ERR_NOMEM;
                }
                names = grown;
                if (asprintf(&names[n], "%s/%s", dir, de->d_name) < 0) {
                        names[n] = NULL;
                        closedir(d);
                        return -LK_ERR_NOMEM;
                }
                names[++n] = NULL;
        }
        closedir(d);

        qsort(names, n, sizeof(char *), cmp_names);
        for (size_t i = 0; i < n && r == 0; i++)
                r = parse_file(l, names[i]);
        return r;
}

/*
 * A file holding the secret: lk_read_private_file() with no access at all for
 * group and others.
 */
static int read_secret_file(const char *path, char **ret, char *why, size_t why_size)
{
        struct lk_error e = {0};
        char *buf = NULL;
        size_t len = 0;
        int r;

        r = lk_read_private_file(path, LK_PRIVATE_SECRET, SECRET_FILE_MAX, &buf, &len, NULL, &e);
        if (r == -LK_ERR_NOMEM)
                return r;
        if (r < 0) {
                snprintf(why, why_size, "%.*s", (int)why_size - 1, e.message);
                return -LK_ERR_CONFIG;
        }

        /* One trailing newline is what editors and `echo` leave; the secret is the rest. */
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
                buf[--len] = 0;
        if (len == 0 || memchr(buf, 0, len)) {
                snprintf(why, why_size, "%s %s", path, len == 0 ? "is empty" : "holds a NUL byte");
                wipe_free(buf, len);
                return -LK_ERR_CONFIG;
        }
        *ret = buf;
        return 0;
}

/* ---- whole config ---- */

static struct lk_config *config_new(void)
{
        struct lk_config *c;

        c = calloc(1, sizeof(*c));
        if (!c)
                return NULL;
        c->discovery = true;
        c->client_auth = LK_CLIENT_AUTH_POST;
        c->scopes = lk_strv_split("openid profile");
        c->pkce = true;
        c->nonce = LK_NONCE_REQUIRED;
        c->algorithms = LK_ALG_DEFAULT;
        c->timeout = 15;
        c->clock_skew = 60;
        c->username_claim = strdup("preferred_username");
        c->groups_claim = strdup("groups");
        c->refresh_margin = 120;
        c->login_timeout = 600;
        c->revoke_on_close = false;
        c->idle_exit = 300;
        if (!c->scopes || !c->username_claim || !c->groups_claim) {
                lk_config_free(c);
                return NULL;
        }
        return c;
}

void lk_config_free(struct lk_config *c)
{
        if (!c)
                return;
        free(c->issuer);
        free(c->authorization_endpoint);
        free(c->token_endpoint);
        free(c->jwks_uri);
        free(c->userinfo_endpoint);
        free(c->revocation_endpoint);
        free(c->client_id);
        lk_secret_free(c->client_secret);
        free(c->client_secret_source);
        free(c->redirect_uri);
        lk_strv_free(c->scopes);
        free(c->prompt);
        free(c->ca_file);
        free(c->username_claim);
        free(c->strip_suffix);
        lk_strv_free(c->allowed_users);
        lk_strv_free(c->allowed_groups);
        free(c->groups_claim);
        lk_strv_free(c->allow_system_users);
        free(c);
}

static const struct key_def *key_by_name(const char *name)
{
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                if (streq(keys[i].name, name))
                        return &keys[i];
        return NULL;
}

static struct origin *origin_of(struct loader *l, const char *name)
{
        return &l->origins[key_by_name(name) - keys];
}

/* A problem about a key as a whole: at the line that set it last, else the main file. */
static void key_problem(struct loader *l, const char *name, const char *fmt, ...) _printf_(3, 4);

static void key_problem(struct loader *l, const char *name, const char *fmt, ...)
{
        const struct origin *o = origin_of(l, name);
        char msg[LK_ERROR_MESSAGE_MAX];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        add_problem(l, o->source == SIZE_MAX ? 0 : o->source, o->line,
                    key_by_name(name)->section, name, "%s", msg);
}

static void load_secret(struct loader *l)
{
        struct lk_config *c = l->c;
        struct origin *of = origin_of(l, "client_secret_file"), *oi = origin_of(l, "client_secret");
        char why[LK_ERROR_MESSAGE_MAX - 64];
        char *secret = NULL, *path = NULL;
        int r;

        if (l->secret_file && c->client_secret) {
                /* Report it where the later of the two was set. */
                bool file_later = of->source > oi->source ||
                                  (of->source == oi->source && of->line > oi->line);

                key_problem(l, file_later ? "client_secret_file" : "client_secret",
                            "client_secret_file and client_secret are both set; keep one");
                return;
        }

        if (c->client_secret) {
                const struct source *s = &l->sources[oi->source];
                struct stat st = { .st_mode = s->mode, .st_uid = s->uid };
                struct lk_error e = {0};

                /* SPEC §3: a secret in a file others may read is refused. */
                if (s->is_file && lk_check_private(s->name, &st, LK_PRIVATE_SECRET, &e) < 0)
                        key_problem(l, "client_secret",
                                    "this file holds the client secret, but %s; or use "
                                    "client_secret_file",
                                    e.message);
                else if (!(c->client_secret_source = strdup("client_secret")))
                        l->oom = true;
                return;
        }

        if (l->secret_file) {
                r = read_secret_file(l->secret_file, &secret, why, sizeof(why));
                if (r == -LK_ERR_NOMEM) {
                        l->oom = true;
                        return;
                }
                if (r < 0) {
                        key_problem(l, "client_secret_file", "%s", why);
                        return;
                }
                path = strdup(l->secret_file);
        } else {
                /* systemd's LoadCredential=client_secret:... */
                const char *dir = secure_getenv("CREDENTIALS_DIRECTORY");
                struct stat st;
                size_t src;

                if (isempty(dir))
                        return;
                if (asprintf(&path, "%s/client_secret", dir) < 0) {
                        l->oom = true;
                        return;
                }
                if (lstat(path, &st) < 0 && errno == ENOENT) {
                        free(path);
                        return;
                }
                r = read_secret_file(path, &secret, why, sizeof(why));
                if (r < 0) {
                        if (r == -LK_ERR_NOMEM || add_source(l, path, &src) < 0)
                                l->oom = true;
                        else
                                add_problem(l, src, 0, NULL, NULL, "systemd credential: %s", why);
                        free(path);
                        return;
                }
        }
        if (!path) {
                lk_secret_free(secret);
                l->oom = true;
                return;
        }
        c->client_secret = secret;
        c->client_secret_source = path;
}

static void check_whole(struct loader *l)
{
        struct lk_config *c = l->c;
        static const char *const required[] = { "issuer", "client_id", "redirect_uri" };
        static const char *const manual[] = { "authorization_endpoint", "token_endpoint",
                                              "jwks_uri" };

        for (size_t i = 0; i < ELEMENTSOF(required); i++) {
                const struct key_def *k = key_by_name(required[i]);

                if (*(char **)field(c, k) || origin_of(l, required[i])->bad)
                        continue;
                key_problem(l, required[i], "required, but not set");
        }

        if (!c->discovery)
                for (size_t i = 0; i < ELEMENTSOF(manual); i++) {
                        const struct key_def *k = key_by_name(manual[i]);
                        const struct origin *d = origin_of(l, "discovery");

                        if (*(char **)field(c, k) || origin_of(l, manual[i])->bad)
                                continue;
                        add_problem(l, d->source, d->line, "provider", manual[i],
                                    "must be set when discovery = no");
                }

        load_secret(l);

        if ((c->algorithms & (LK_ALG_HS256 | LK_ALG_HS384 | LK_ALG_HS512)) && !c->client_secret &&
            !origin_of(l, "client_secret_file")->bad && !origin_of(l, "client_secret")->bad)
                key_problem(l, "id_token_algorithms",
                            "HS* algorithms need the client secret as key, and none is set");

        if (!c->username_claim && !origin_of(l, "username_claim")->bad)
                key_problem(l, "username_claim", "must not be empty");

        if (c->allowed_groups && c->allowed_groups[0] && !c->groups_claim)
                key_problem(l, "groups_claim", "must be set when allowed_groups is set");

        if (c->ca_file && access(c->ca_file, R_OK) < 0)
                key_problem(l, "ca_file", "cannot read %s: %s", c->ca_file, strerror(errno));
}

static void loader_done(struct loader *l)
{
        lk_config_free(l->c);
        lk_config_problems_clear(&l->problems);
        for (size_t i = 0; i < l->n_sources; i++)
                free(l->sources[i].name);
        free(l->sources);
        free(l->secret_file);
}

static int loader_init(struct loader *l)
{
        *l = (struct loader){0};
        for (size_t i = 0; i < ELEMENTSOF(l->origins); i++)
                l->origins[i].source = SIZE_MAX;
        l->c = config_new();
        return l->c ? 0 : -LK_ERR_NOMEM;
}

/* Hands the result over: the config on success, else every problem and the first in e. */
static int loader_finish(struct loader *l, int r, struct lk_config **ret,
                         struct lk_config_problems *problems, struct lk_error *e)
{
        if (r == 0 && !l->oom)
                check_whole(l);
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
        struct loader l;
        int r;

        lk_config_problems_clear(problems);
        if (!path)
                path = LK_CONFIG_PATH;
        r = loader_init(&l);
        if (r == 0)
                r = parse_file(&l, path);
        if (r == 0)
                r = parse_dropins(&l, path);
        return loader_finish(&l, r, ret, problems, e);
}

int lk_config_load_string(const char *text, const char *name, struct lk_config **ret,
                          struct lk_config_problems *problems, struct lk_error *e)
{
        struct loader l;
        size_t source;
        int r;

        lk_config_problems_clear(problems);
        r = loader_init(&l);
        if (r == 0)
                r = add_source(&l, name ?: "(config)", &source);
        if (r == 0)
                r = parse_text(&l, source, text, strlen(text));
        return loader_finish(&l, r, ret, problems, e);
}
