/* SPDX-License-Identifier: MIT */
#include "oidc/device.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/text.h"
#include "oidc/http.h"
#include "oidc/secret.h"
#include "oidc/token.h"
#include "oidc/url_policy.h"

void lk_device_auth_clear(struct lk_device_auth *d)
{
        if (!d)
                return;
        lk_secret_free(d->device_code);
        free(d->user_code);
        free(d->verification_uri);
        free(d->verification_uri_complete);
        *d = (struct lk_device_auth){0};
}

static void device_auth_clearp(struct lk_device_auth *d)
{
        lk_device_auth_clear(d);
}

/* A string of 1..max printable ASCII bytes (codes are typed and shown; RFC 6749 VSCHAR). */
static int get_text(json_t *doc, const char *name, size_t max, bool required, char **ret,
                    struct lk_error *e)
{
        json_t *v = json_object_get(doc, name);
        const char *s;
        size_t len;

        *ret = NULL;
        if (!v || json_is_null(v)) {
                if (required)
                        return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                            "the device authorization answer has no %s", name);
                return 0;
        }
        if (!json_is_string(v))
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "the device authorization answer's %s is not a string", name);
        s = json_string_value(v);
        len = json_string_length(v);
        if (len == 0 || len > max)
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "the device authorization answer's %s is empty or longer "
                                    "than %zu bytes",
                                    name, max);
        for (size_t i = 0; i < len; i++)
                if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
                        return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                            "the device authorization answer's %s holds "
                                            "characters other than printable ASCII",
                                            name);
        *ret = strdup(s);
        return *ret ? 0 : lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
}

/* An address the person opens: the endpoint rules (https, or http on loopback). */
static int get_uri(json_t *doc, const char *name, bool required, char **ret, struct lk_error *e)
{
        struct lk_error check = {0};
        int r;

        r = get_text(doc, name, LK_DEVICE_URI_MAX, required, ret, e);
        if (r < 0 || !*ret)
                return r;
        r = lk_check_endpoint_url(*ret, name, &check);
        if (r < 0) {
                free(*ret);
                *ret = NULL;
                return lk_error_set(e, r == -LK_ERR_NOMEM ? LK_ERR_NOMEM : LK_ERR_PROVIDER_RESPONSE,
                                    "the device authorization answer: %s", check.message);
        }
        return 0;
}

/* A whole number of seconds in [min, max] (a JSON integer, or a real that is whole). */
static int get_seconds(json_t *doc, const char *name, unsigned min, unsigned max, unsigned def,
                       unsigned *ret, struct lk_error *e)
{
        json_t *v = json_object_get(doc, name);
        double d;

        if (!v || json_is_null(v)) {
                if (!def)
                        return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                            "the device authorization answer has no %s", name);
                *ret = def;
                return 0;
        }
        if (json_is_integer(v))
                d = (double)json_integer_value(v);
        else if (json_is_real(v))
                d = json_real_value(v);
        else
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "the device authorization answer's %s is not a number", name);
        if (!(d >= min && d <= max) || (double)(unsigned)d != d)
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "the device authorization answer's %s is not a whole number "
                                    "of seconds between %u and %u",
                                    name, min, max);
        *ret = (unsigned)d;
        return 0;
}

int lk_device_auth_parse(long status, const char *content_type, const char *body, size_t len,
                         struct lk_device_auth *ret, struct lk_error *e)
{
        _cleanup_(json_decrefp) json_t *doc = NULL;
        _cleanup_(device_auth_clearp) struct lk_device_auth d = {0};
        json_error_t jerr;
        const char *uri_name = "verification_uri";
        int r;

        if (len > LK_HTTP_MAX_BODY)
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "the device authorization answer is larger than %d bytes",
                                    LK_HTTP_MAX_BODY);
        if (!body)
                len = 0;
        if (status != 200)
                return lk_token_error_parse(status, body, len, e);
        if (isempty(content_type) || !lk_is_json_content_type(content_type))
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "the device authorization answer is not application/json");
        doc = json_loadb(body ?: "", len, JSON_REJECT_DUPLICATES, &jerr);
        if (!doc)
                /* jerr.text may quote the body, which holds the device code. */
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "the device authorization answer is not valid JSON (line %d, "
                                    "column %d)",
                                    jerr.line, jerr.column);
        if (!json_is_object(doc))
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "the device authorization answer is not a JSON object");

        r = get_text(doc, "device_code", LK_DEVICE_CODE_MAX, true, &d.device_code, e);
        if (r >= 0)
                r = get_text(doc, "user_code", LK_DEVICE_USER_CODE_MAX, true, &d.user_code, e);
        /* Google's device endpoint says verification_url. */
        if (r >= 0 && !json_object_get(doc, uri_name) && json_object_get(doc, "verification_url"))
                uri_name = "verification_url";
        if (r >= 0)
                r = get_uri(doc, uri_name, true, &d.verification_uri, e);
        if (r >= 0)
                r = get_uri(doc, "verification_uri_complete", false, &d.verification_uri_complete,
                            e);
        if (r >= 0)
                r = get_seconds(doc, "expires_in", 1, LK_DEVICE_EXPIRES_MAX, 0, &d.expires_in, e);
        if (r >= 0)
                r = get_seconds(doc, "interval", LK_DEVICE_INTERVAL_MIN, LK_DEVICE_INTERVAL_MAX,
                                LK_DEVICE_INTERVAL_DEFAULT, &d.interval, e);
        if (r < 0)
                return r;
        *ret = d;
        d = (struct lk_device_auth){0};
        return 0;
}

enum lk_device_outcome lk_device_outcome(const struct lk_error *e)
{
        const char *err = e->provider_error;

        switch (e->code) {
        case LK_ERR_TOO_MANY_REQUESTS:
                return LK_DEVICE_SLOW_DOWN;
        case LK_ERR_PROVIDER_UNAVAILABLE:
        case LK_ERR_PROVIDER_RESPONSE:
        case LK_ERR_NOMEM:
        case LK_ERR_IO:
                return LK_DEVICE_RETRY;
        case LK_ERR_INVALID_GRANT:
                if (streq(err, "authorization_pending"))
                        return LK_DEVICE_PENDING;
                if (streq(err, "slow_down"))
                        return LK_DEVICE_SLOW_DOWN;
                if (streq(err, "access_denied"))
                        return LK_DEVICE_DENIED;
                if (streq(err, "expired_token"))
                        return LK_DEVICE_EXPIRED;
                return LK_DEVICE_FAILED;
        default:
                return LK_DEVICE_FAILED;
        }
}
