/* SPDX-License-Identifier: MIT */
#include "oidc/url_policy.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <strings.h>

#include "base/text.h"
#include "base/util.h"

#define QUOTE_MAX 80 /* how much of a bad URL a message quotes */

bool lk_host_is_loopback(const char *host)
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

int lk_url_check(const char *url, char *why, size_t why_size)
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

                lk_text_escape(url, q, sizeof(q));
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
        if (streq(scheme, "http") && !lk_host_is_loopback(host)) {
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
        r = lk_url_check(url, why, sizeof(why));
        if (r < 0)
                return lk_error_set(e, -r, "%s: %s", what, why);
        return 0;
}
