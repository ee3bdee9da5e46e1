/* SPDX-License-Identifier: MIT */
/*
 * get_token: call an HTTPS API as the person logged in, with the access token
 * of their single sign-on session.
 *
 *     get_token [--cacert FILE] URL
 *
 * Asks latchkeyd (through liblatchkey) for the session's access token, GETs
 * URL with "Authorization: Bearer <token>" and prints the answer's body on
 * stdout. The session is $LATCHKEY_SESSION (pam_latchkey sets it at login),
 * else your most recently opened one. TLS is verified against FILE, else
 * $CURL_CA_BUNDLE, else the system's CA store.
 *
 * Build outside the latchkey tree:
 *
 *     cc -o get_token get_token.c $(pkg-config --cflags --libs latchkey libcurl)
 *
 * Exit status: 0 success (HTTP 2xx), 1 no token (the reason is on stderr),
 * 2 bad command line, 3 the request failed or was answered with another status.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <latchkey.h>

#define BODY_MAX (16L * 1024 * 1024) /* what we copy to stdout, at most */

struct body {
        CURL *curl;
        long written;
        int too_big;
};

/*
 * Streams a 2xx answer to stdout, up to BODY_MAX (returning less than given stops curl);
 * the body of any other answer is dropped.
 */
static size_t on_data(char *data, size_t size, size_t n, void *userdata)
{
        struct body *b = userdata;
        size_t len = size * n;
        long status = 0;

        curl_easy_getinfo(b->curl, CURLINFO_RESPONSE_CODE, &status);
        if (status < 200 || status > 299)
                return len;
        if ((long)len > BODY_MAX - b->written) {
                b->too_big = 1;
                return 0;
        }
        b->written += (long)len;
        return fwrite(data, 1, len, stdout);
}

/* GETs url with the token; 0 on HTTP 2xx, else 3 with one line on stderr. */
static int call_api(const char *url, const char *token, const char *cacert)
{
        struct body body = {0};
        char error[CURL_ERROR_SIZE] = "";
        long status = 0;
        CURLcode rc;
        CURL *curl;

        curl = curl_easy_init();
        if (!curl) {
                fprintf(stderr, "get_token: cannot set up libcurl\n");
                return 3;
        }
        curl_easy_setopt(curl, CURLOPT_URL, url);
        /* The token goes to this URL only: https, no redirects, verified TLS. */
        curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
        curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
        if (cacert)
                curl_easy_setopt(curl, CURLOPT_CAINFO, cacert);
        /* curl writes "Authorization: Bearer <token>" itself. */
        curl_easy_setopt(curl, CURLOPT_HTTPAUTH, CURLAUTH_BEARER);
        curl_easy_setopt(curl, CURLOPT_XOAUTH2_BEARER, token);
        curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
        body.curl = curl;
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
        curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);

        rc = curl_easy_perform(curl);
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(curl);

        if (body.too_big) {
                fprintf(stderr, "get_token: %s: the answer is larger than %ld bytes\n", url,
                        BODY_MAX);
                return 3;
        }
        if (rc != CURLE_OK) {
                fprintf(stderr, "get_token: %s: %s\n", url, *error ? error : curl_easy_strerror(rc));
                return 3;
        }
        if (status < 200 || status > 299) {
                fprintf(stderr, "get_token: %s answered HTTP %ld\n", url, status);
                return 3;
        }
        return 0;
}

int main(int argc, char *argv[])
{
        const char *url, *cacert = getenv("CURL_CA_BUNDLE");
        struct latchkey *lk = NULL;
        char *token = NULL;
        int r;

        if (argc == 4 && strcmp(argv[1], "--cacert") == 0) {
                cacert = argv[2];
                url = argv[3];
        } else if (argc == 2 && argv[1][0] != '-') {
                url = argv[1];
        } else {
                fprintf(stderr, "Usage: get_token [--cacert FILE] URL\n");
                return 2;
        }
        if (strncmp(url, "https://", 8) != 0) {
                fprintf(stderr, "get_token: the URL must start with https:// (the token goes "
                                "with it)\n");
                return 2;
        }
        if (cacert && !*cacert)
                cacert = NULL;

        /* The five lines that matter: a handle, a token valid for at least a minute. */
        r = latchkey_open(&lk);
        if (r == 0)
                r = latchkey_get_token(lk, NULL, 60, &token, NULL, NULL);
        if (r < 0) {
                fprintf(stderr, "get_token: no token: %s (%s)\n",
                        lk && *latchkey_last_error_message(lk) ? latchkey_last_error_message(lk)
                                                               : "failed",
                        latchkey_error_name(r));
                latchkey_close(lk);
                return 1;
        }
        latchkey_close(lk);

        curl_global_init(CURL_GLOBAL_DEFAULT);
        r = call_api(url, token, cacert);
        latchkey_free_secret(token);
        curl_global_cleanup();
        if (r == 0 && fflush(stdout) != 0) {
                fprintf(stderr, "get_token: cannot write the answer\n");
                r = 3;
        }
        return r;
}
