/* SPDX-License-Identifier: MIT */
/*
 * What the person pasted. The rule, in order (after leading and trailing
 * white space is dropped):
 *
 *  1. It starts with "http://" or "https://" (any case): the address the
 *     browser was sent back to. curl's URL API parses it and its query is read.
 *  2. It holds a '?' and the text after the first '?' (up to any '#') has a
 *     code, state or error parameter: an address copied without its scheme
 *     ("login.example.com/cb?code=...&state=...") or just "?code=...". That
 *     text is read as the query.
 *  3. It starts with "code=", "state=" or "error=": a bare query, read as one.
 *  4. Anything else is a bare code: printable ASCII, no spaces, at most
 *     CODE_MAX bytes. It cannot be matched to the login (there is no state);
 *     PKCE binds it instead.
 *
 * A query is split on '&'; each value is form-decoded ('+' is a space, then
 * curl_easy_unescape). A parameter given twice is refused. Where the address
 * holds error=, the login failed at the provider: that is reported (with the
 * provider's words) even when the provider sent no state, since nothing is
 * accepted from it; a state that is present must still match. Otherwise the
 * state must be present and equal expected_state, and the code must be there.
 * With expected_state NULL (a caller that made no state) the state is not
 * checked; the broker always passes one.
 *
 * RFC 9207 (mix-up defence): where the address carries iss, it must equal the
 * issuer exactly, on an error as on a code, so that an answer meant for another
 * provider never reaches ours. Where the provider says it always sends iss
 * (iss_required: discovery's authorization_response_iss_parameter_supported), an
 * address without it is refused. A bare code (rule 4) carries no iss and is taken
 * all the same: there is no address to mix up, PKCE binds the code to this login,
 * and it only ever goes to the configured token endpoint.
 */
#include "oidc/answer.h"

#include <curl/curl.h>
#include <string.h>

#include "base/cleanup_curl.h"
#include "base/text.h"
#include "base/utf8.h"
#include "oidc/secret.h"

/* A bare code or the code= value: authorization codes are short; OneAccess's are 32 to 64. */
#define CODE_MAX 2048

struct params {
        char *code;  /* secret */
        char *state; /* secret */
        char *error;
        char *error_description;
        char *iss;
};

static void params_clear(struct params *p)
{
        lk_secret_free(p->code);
        lk_secret_free(p->state);
        free(p->error);
        free(p->error_description);
        free(p->iss);
        *p = (struct params){0};
}

static bool is_space(char c)
{
        return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* C0 controls, DEL, and the C1 controls U+0080..U+009F (UTF-8 0xc2 0x80..0x9f). */
static bool has_control(const char *s, size_t len)
{
        const unsigned char *p = (const unsigned char *)s;

        for (size_t i = 0; i < len; i++) {
                if (p[i] < 0x20 || p[i] == 0x7f)
                        return true;
                if (p[i] == 0xc2 && i + 1 < len && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f)
                        return true;
        }
        return false;
}

static bool has_prefix_ci(const char *s, size_t len, const char *prefix)
{
        size_t l = strlen(prefix);

        return len >= l && strncasecmp(s, prefix, l) == 0;
}

static bool has_prefix(const char *s, size_t len, const char *prefix)
{
        size_t l = strlen(prefix);

        return len >= l && memcmp(s, prefix, l) == 0;
}

/* The length of p up to its first '#' (a fragment is not part of the query). */
static size_t until_hash(const char *p, size_t len)
{
        const char *h = memchr(p, '#', len);

        return h ? (size_t)(h - p) : len;
}

static int check_code(const char *code, size_t len, struct lk_error *e)
{
        if (len == 0)
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT, "the code is empty");
        if (len > CODE_MAX)
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT, "the code is longer than %d bytes",
                                    CODE_MAX);
        for (size_t i = 0; i < len; i++)
                if ((unsigned char)code[i] <= 0x20 || (unsigned char)code[i] >= 0x7f)
                        return lk_error_set(e, LK_ERR_INVALID_ARGUMENT,
                                            "the code holds a character other than printable "
                                            "ASCII (or a space)");
        return 0;
}

/* The length of the parameter name at the start of piece (up to '=', '&' or the end). */
static size_t name_length(const char *piece, size_t len)
{
        size_t n = 0;

        while (n < len && piece[n] != '=' && piece[n] != '&')
                n++;
        return n;
}

static bool name_is(const char *name, size_t len, const char *want)
{
        return strlen(want) == len && memcmp(name, want, len) == 0;
}

static bool is_oauth_name(const char *name, size_t len)
{
        return name_is(name, len, "code") || name_is(name, len, "state") ||
               name_is(name, len, "error");
}

/* Does the query q hold a code, state or error parameter? */
static bool query_has_oauth_param(const char *q, size_t len)
{
        size_t i = 0;

        while (i < len) {
                size_t piece = 0, n;

                while (i + piece < len && q[i + piece] != '&')
                        piece++;
                n = name_length(q + i, piece);
                if (n < piece && is_oauth_name(q + i, n))
                        return true;
                i += piece + 1;
        }
        return false;
}

/* Form-decodes one value: '+' is a space, then %XX by curl_easy_unescape(). */
static int decode_value(const char *name, const char *v, size_t len, char **ret, struct lk_error *e)
{
        _cleanup_secret_ char *plus = NULL;
        _cleanup_(curl_secret_freep) char *dec = NULL;
        char *s;
        int outlen = 0;

        plus = strndup(v, len);
        if (!plus)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        for (char *p = plus; *p; p++)
                if (*p == '+')
                        *p = ' ';

        dec = curl_easy_unescape(NULL, plus, (int)len, &outlen);
        if (!dec)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        if (outlen < 0 || strlen(dec) != (size_t)outlen)
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT, "the address's %s holds a NUL byte",
                                    name);
        s = strdup(dec);
        if (!s)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        *ret = s;
        return 0;
}

static int parse_query(const char *q, size_t len, struct params *p, struct lk_error *e)
{
        static const char *const names[] = { "code", "state", "error", "error_description",
                                             "iss" };
        char **const slots[] = { &p->code, &p->state, &p->error, &p->error_description,
                                 &p->iss };
        size_t i = 0;

        while (i < len) {
                const char *piece = q + i;
                size_t plen = 0, n, k;
                int r;

                while (i + plen < len && q[i + plen] != '&')
                        plen++;
                i += plen + 1;

                n = name_length(piece, plen);
                for (k = 0; k < ELEMENTSOF(names); k++)
                        if (name_is(piece, n, names[k]))
                                break;
                if (k == ELEMENTSOF(names))
                        continue; /* session_state, and whatever else providers add */

                if (*slots[k])
                        return lk_error_set(e, LK_ERR_INVALID_ARGUMENT,
                                            "the address holds %s more than once", names[k]);
                if (n == plen)
                        r = decode_value(names[k], "", 0, slots[k], e);
                else
                        r = decode_value(names[k], piece + n + 1, plen - n - 1, slots[k], e);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Rule 1: an address with a scheme, through curl's URL API. */
static int parse_url(const char *s, size_t len, struct params *p, struct lk_error *e)
{
        _cleanup_secret_ char *copy = NULL;
        _cleanup_(curl_url_cleanupp) CURLU *u = NULL;
        _cleanup_(curl_secret_freep) char *query = NULL;
        CURLUcode rc;

        copy = strndup(s, len);
        if (!copy)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        u = curl_url();
        if (!u)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        rc = curl_url_set(u, CURLUPART_URL, copy, 0);
        if (rc == CURLUE_OUT_OF_MEMORY)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        if (rc != CURLUE_OK)
                return lk_error_set(
                    e, LK_ERR_INVALID_ARGUMENT,
                    "the answer looks like an address but cannot be read as one: %s",
                    curl_url_strerror(rc));
        rc = curl_url_get(u, CURLUPART_QUERY, &query, 0);
        if (rc == CURLUE_NO_QUERY)
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT,
                                    "the address carries no code (it has no query)");
        if (rc != CURLUE_OK)
                return lk_error_set(
                    e, rc == CURLUE_OUT_OF_MEMORY ? LK_ERR_NOMEM : LK_ERR_INVALID_ARGUMENT,
                    "the address's query cannot be read: %s", curl_url_strerror(rc));
        return parse_query(query, strlen(query), p, e);
}

static int refused(const struct params *p, struct lk_error *e)
{
        char err[sizeof(e->provider_error)], desc[sizeof(e->provider_description)];

        lk_text_escape(p->error, err, sizeof(err));
        lk_text_escape(p->error_description, desc, sizeof(desc));
        if (e && e->code == 0) {
                memcpy(e->provider_error, err, sizeof(err));
                memcpy(e->provider_description, desc, sizeof(desc));
        }
        if (isempty(desc))
                return lk_error_set(e, LK_ERR_ACCESS_DENIED_BY_USER,
                                    "The provider refused the login: %s", err);
        return lk_error_set(e, LK_ERR_ACCESS_DENIED_BY_USER,
                            "The provider refused the login: %s (%s)", err, desc);
}

/* RFC 9207 §2.4: a simple string comparison; no normalisation. */
static int check_iss(const struct params *p, const char *issuer, bool iss_required,
                     struct lk_error *e)
{
        char shown[128];

        if (!issuer)
                return 0;
        if (!p->iss && iss_required)
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT,
                                    "the address carries no iss, though the provider says it "
                                    "always sends one (RFC 9207); paste the whole address");
        if (p->iss && !streq(p->iss, issuer)) {
                lk_text_escape(p->iss, shown, sizeof(shown));
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT,
                                    "the address's iss '%s' is not this provider's issuer: it "
                                    "answers a login at another provider (RFC 9207)",
                                    shown);
        }
        return 0;
}

int lk_answer_parse(const char *answer, const char *expected_state, const char *expected_iss,
                    bool iss_required, char **ret_code, struct lk_error *e)
{
        _cleanup_(params_clear) struct params p = {0};
        const char *s, *q;
        size_t len, qlen;
        char *code;
        int r;

        if (!answer)
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT, "the answer is empty");
        len = strnlen(answer, LK_ANSWER_MAX + 1);
        if (len > LK_ANSWER_MAX)
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT,
                                    "the answer is longer than %d bytes", LK_ANSWER_MAX);
        s = answer;
        while (len > 0 && is_space(*s))
                s++, len--;
        while (len > 0 && is_space(s[len - 1]))
                len--;
        if (len == 0)
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT, "the answer is empty");
        if (!lk_utf8_valid(s, len))
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT, "the answer is not valid UTF-8");
        if (has_control(s, len))
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT,
                                    "the answer holds control characters");

        q = memchr(s, '?', len);
        qlen = q ? until_hash(q + 1, (size_t)(s + len - q - 1)) : 0;

        if (has_prefix_ci(s, len, "http://") || has_prefix_ci(s, len, "https://")) {
                r = parse_url(s, len, &p, e);
        } else if (q && query_has_oauth_param(q + 1, qlen)) {
                r = parse_query(q + 1, qlen, &p, e);
        } else if (has_prefix(s, len, "code=") || has_prefix(s, len, "state=") ||
                   has_prefix(s, len, "error=")) {
                r = parse_query(s, until_hash(s, len), &p, e);
        } else {
                r = check_code(s, len, e);
                if (r < 0)
                        return r;
                code = strndup(s, len);
                if (!code)
                        return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
                *ret_code = code;
                return 0;
        }
        if (r < 0)
                return r;

        r = check_iss(&p, expected_iss, iss_required, e);
        if (r < 0)
                return r;
        if (p.error) {
                if (expected_state && p.state && !lk_secret_equal(p.state, expected_state))
                        return lk_error_set(e, LK_ERR_INVALID_ARGUMENT,
                                            "the address's state does not match this login");
                return refused(&p, e);
        }
        if (expected_state) {
                if (!p.state)
                        return lk_error_set(e, LK_ERR_INVALID_ARGUMENT,
                                            "the address carries no state, so it cannot be "
                                            "matched to this login");
                if (!lk_secret_equal(p.state, expected_state))
                        return lk_error_set(e, LK_ERR_INVALID_ARGUMENT,
                                            "the address's state does not match this login");
        }
        if (!p.code)
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT, "the address carries no code");
        r = check_code(p.code, strlen(p.code), e);
        if (r < 0)
                return r;
        *ret_code = TAKE_PTR(p.code);
        return 0;
}

int lk_answer_query_state(const char *query, size_t len, char **ret_state, struct lk_error *e)
{
        _cleanup_(params_clear) struct params p = {0};
        int r;

        if (len > LK_ANSWER_MAX)
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT,
                                    "the address is longer than %d bytes", LK_ANSWER_MAX);
        r = parse_query(query, until_hash(query, len), &p, e);
        if (r < 0)
                return r;
        if (isempty(p.state))
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT, "the address carries no state");
        *ret_state = TAKE_PTR(p.state);
        return 0;
}
