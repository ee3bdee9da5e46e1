/* SPDX-License-Identifier: MIT */
/*
 * HTTP exchanges on libcurl's multi interface. One CURLM per lk_http; the
 * broker's poll loop drives it through the socket and timer callbacks, the
 * command line and tests through lk_http_run(). Finished exchanges are taken
 * off the multi handle before their callback runs, so a callback may submit,
 * cancel or defer freely.
 */
#include "oidc/http.h"

#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <strings.h>
#include <time.h>

#ifndef LATCHKEY_VERSION
#define LATCHKEY_VERSION "unknown"
#endif

/* A Content-Type longer than this is not one we would accept anyway. */
#define CONTENT_TYPE_MAX 256
/* Connecting may take at most this long, within the whole exchange's timeout. */
#define CONNECT_TIMEOUT_MAX 10
/*
 * Exchanges under way at once, and connections open at once to one host
 * (CURLMOPT_MAX_HOST_CONNECTIONS): 1024 pending logins must never mean 1024 connections to a
 * provider. Exchanges beyond it wait in our own queue (start_waiting), oldest first; their
 * own timeout runs while they wait (expire_overdue). 128, not fewer: over HTTP/1.1 a slow
 * provider serves one exchange per connection at a time, and 200 logins at once must not
 * take more than two of its round trips. (The broker speaks to one provider, so one count
 * for all hosts is the per-host count.)
 */
#define HOST_CONNECTIONS_MAX 128
/* Past its deadline, an exchange gets this long for curl to report the timeout in its words. */
#define OVERDUE_GRACE_US (250 * 1000)
/*
 * New exchanges handed to curl per loop round. curl starts a new one (connection, TLS
 * context, CA file, ClientHello) in the timer round after it is added, ~1 ms each: 200
 * CompleteLogin calls at once held the loop for 135 ms, and every GetToken with it. Two per
 * round keeps a round short; 200 are under way within a few hundred ms.
 */
#define STARTS_PER_ROUND 2
/*
 * Finished exchanges whose callbacks run per call of process_done. A callback can be a
 * login's end (id_token check, session file written and synced, reply): a burst of
 * responses ran 50 of them in one socket callback and held the loop for 50 ms. The rest wait
 * in curl's message queue for the next round.
 */
#define DONE_PER_ROUND 4

struct xfer {
        struct lk_http *h;
        struct xfer *prev, *next;
        struct xfer *wnext; /* in h's waiting queue, not yet handed to curl */
        bool added;         /* on the multi handle */
        CURL *easy;
        struct curl_slist *headers;
        char *url;
        char *form;     /* secret: our own copy, handed to CURLOPT_POSTFIELDS */
        char *user;     /* secret */
        char *password; /* secret */
        unsigned timeout;
        int64_t deadline_us; /* monotonic: submitted + timeout, queued or not */
        lk_http_done_fn done;
        void *userdata;

        char *body;
        size_t body_len, body_cap;
        bool too_big;
        char *content_type;
        long max_age;
        bool no_store;
        bool challenge;
        char errbuf[CURL_ERROR_SIZE];
};

struct deferred {
        struct deferred *next;
        lk_http_defer_fn fn;
        void *userdata;
};

struct lk_http {
        CURLM *multi;
        struct xfer *xfers; /* under way, waiting ones included */
        unsigned n_xfers;
        struct xfer *waiting_head, *waiting_tail; /* submitted, not yet handed to curl */
        unsigned n_added;                         /* handed to curl, not finished */
        uint64_t started;

        struct deferred *deferred_head, *deferred_tail;

        lk_http_watch_fn watch_socket;
        lk_http_timer_fn set_timer;
        void *loop;
        int64_t curl_deadline_us; /* monotonic; -1 when curl wants no timer */
        bool more_done;           /* curl has finished exchanges whose callbacks wait */
        int64_t next_overdue_us;  /* no exchange's own deadline comes before this; -1: none */
        bool timer_set_by_curl;   /* timer_cb ran since the last lk_http_on_timeout */
        bool system_ca_dir;       /* without ca_file, libcurl's CA folder alone (lk_http_new) */
};

/* Microseconds: curl keeps its timers in them, and rounding to ms fired ours too early. */
static int64_t now_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void xfer_free(struct xfer *x)
{
        if (!x)
                return;
        if (x->easy)
                curl_easy_cleanup(x->easy);
        curl_slist_free_all(x->headers);
        free(x->url);
        lk_secret_free(x->form);
        lk_secret_free(x->user);
        lk_secret_free(x->password);
        /* Token responses carry tokens: wipe every body, whatever it was. */
        if (x->body)
                explicit_bzero(x->body, x->body_cap);
        free(x->body);
        free(x->content_type);
        free(x);
}

static void xfer_unlink(struct lk_http *h, struct xfer *x)
{
        if (x->prev)
                x->prev->next = x->next;
        else
                h->xfers = x->next;
        if (x->next)
                x->next->prev = x->prev;
        x->prev = x->next = NULL;
        h->n_xfers--;
}

/* Takes x off the multi handle (or the waiting queue) and out of the list; it is then ours. */
static void xfer_detach(struct lk_http *h, struct xfer *x)
{
        if (x->added) {
                curl_multi_remove_handle(h->multi, x->easy);
                x->added = false;
                h->n_added--;
        } else {
                struct xfer *prev = NULL;

                for (struct xfer *w = h->waiting_head; w; prev = w, w = w->wnext)
                        if (w == x) {
                                if (prev)
                                        prev->wnext = x->wnext;
                                else
                                        h->waiting_head = x->wnext;
                                if (h->waiting_tail == x)
                                        h->waiting_tail = prev;
                                break;
                        }
                x->wnext = NULL;
        }
        xfer_unlink(h, x);
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
        struct xfer *x = userdata;
        size_t n = size * nmemb;

        if (n > LK_HTTP_MAX_BODY - x->body_len) {
                x->too_big = true;
                return 0; /* curl aborts with CURLE_WRITE_ERROR */
        }
        if (x->body_len + n + 1 > x->body_cap) {
                size_t cap = x->body_cap ? x->body_cap : 4096;
                char *p;

                while (cap < x->body_len + n + 1)
                        cap *= 2;
                if (cap > LK_HTTP_MAX_BODY + 1)
                        cap = LK_HTTP_MAX_BODY + 1;
                /* Not realloc: the old buffer is wiped before it goes (it may hold tokens). */
                p = malloc(cap);
                if (!p)
                        return 0;
                if (x->body) {
                        memcpy(p, x->body, x->body_len);
                        explicit_bzero(x->body, x->body_cap);
                        free(x->body);
                }
                x->body = p;
                x->body_cap = cap;
        }
        memcpy(x->body + x->body_len, ptr, n);
        x->body_len += n;
        x->body[x->body_len] = 0;
        return n;
}

static bool token_is(const char *p, size_t len, const char *word)
{
        return strlen(word) == len && strncasecmp(p, word, len) == 0;
}

void lk_http_parse_cache_control(const char *v, size_t len, long *max_age, bool *no_store)
{
        const char *end = v + len;

        while (v < end) {
                const char *item = v, *item_end;
                size_t n;

                item_end = memchr(v, ',', (size_t)(end - v));
                if (!item_end)
                        item_end = end;
                v = item_end < end ? item_end + 1 : end;

                while (item < item_end && (*item == ' ' || *item == '\t'))
                        item++;
                while (item_end > item && (item_end[-1] == ' ' || item_end[-1] == '\t'))
                        item_end--;
                n = (size_t)(item_end - item);

                if (token_is(item, n, "no-store") || token_is(item, n, "no-cache")) {
                        *no_store = true;
                } else if (n > 8 && strncasecmp(item, "max-age=", 8) == 0) {
                        char num[24], *numend;
                        const char *d = item + 8;
                        size_t dl = n - 8;
                        long val;

                        /* The quoted form max-age="60" is tolerated. */
                        if (dl >= 2 && d[0] == '"' && d[dl - 1] == '"') {
                                d++;
                                dl -= 2;
                        }
                        if (dl == 0 || dl >= sizeof(num) || d[0] < '0' || d[0] > '9')
                                continue;
                        memcpy(num, d, dl);
                        num[dl] = 0;
                        errno = 0;
                        val = strtol(num, &numend, 10);
                        if (errno == ERANGE)
                                val = LONG_MAX; /* "a very long time": the caller bounds it */
                        else if (errno != 0 || *numend != 0 || val < 0)
                                continue;
                        *max_age = val;
                }
        }
}

static bool header_name_is(const char *line, size_t len, const char *name, const char **ret_value,
                           size_t *ret_len)
{
        size_t nl = strlen(name);
        const char *v, *end = line + len;

        if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
                return false;
        v = line + nl + 1;
        while (v < end && (*v == ' ' || *v == '\t'))
                v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' ||
                           end[-1] == '\t'))
                end--;
        *ret_value = v;
        *ret_len = (size_t)(end - v);
        return true;
}

static size_t header_cb(char *buffer, size_t size, size_t nitems, void *userdata)
{
        struct xfer *x = userdata;
        size_t len = size * nitems;
        const char *v;
        size_t vl;

        /* A new status line (after a 100 Continue, say): forget the previous headers. */
        if (len >= 5 && strncmp(buffer, "HTTP/", 5) == 0) {
                free(x->content_type);
                x->content_type = NULL;
                x->max_age = -1;
                x->no_store = false;
                x->challenge = false;
                return len;
        }
        if (header_name_is(buffer, len, "Content-Type", &v, &vl)) {
                free(x->content_type);
                x->content_type = NULL;
                if (vl > 0 && vl <= CONTENT_TYPE_MAX) {
                        x->content_type = strndup(v, vl);
                        if (!x->content_type)
                                return 0;
                }
        } else if (header_name_is(buffer, len, "Cache-Control", &v, &vl)) {
                lk_http_parse_cache_control(v, vl, &x->max_age, &x->no_store);
        } else if (header_name_is(buffer, len, "WWW-Authenticate", &v, &vl)) {
                x->challenge = true;
        }
        return len;
}

/* curl reads both forms (delta-seconds and an HTTP date, RFC 9110 §10.2.3). */
static long retry_after(CURL *easy)
{
        curl_off_t s = 0;

        if (curl_easy_getinfo(easy, CURLINFO_RETRY_AFTER, &s) != CURLE_OK || s <= 0)
                return -1;
        return s > LONG_MAX ? LONG_MAX : (long)s;
}

static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
        struct lk_http *h = userp;
        int w = 0;

        if (!h->watch_socket)
                return 0;
        switch (what) {
        case CURL_POLL_IN:
                w = LK_HTTP_WATCH_IN;
                break;
        case CURL_POLL_OUT:
                w = LK_HTTP_WATCH_OUT;
                break;
        case CURL_POLL_INOUT:
                w = LK_HTTP_WATCH_IN | LK_HTTP_WATCH_OUT;
                break;
        default: /* CURL_POLL_REMOVE */
                w = 0;
        }
        h->watch_socket(h->loop, s, w);
        return 0;
}

/*
 * Tells the loop when to call lk_http_on_timeout: now for deferred calls, else when curl's
 * timer or an exchange's own deadline comes. The wait is rounded up to whole milliseconds:
 * rounded down, the loop woke before curl's timer had expired, curl did nothing and did not
 * set its timer again, and the loop spun on poll(..., 0) until it had. A deadline already
 * past is served at once, but only once: if curl then leaves its timer as it was (the loop's
 * millisecond clock can still wake us a fraction early), the next try is 1 ms later, never
 * a busy loop.
 */
static void arm_timer(struct lk_http *h)
{
        int64_t at = -1, left;
        long t;

        if (!h->set_timer)
                return;
        if (h->deferred_head || h->more_done ||
            (h->waiting_head && h->n_added < HOST_CONNECTIONS_MAX)) {
                h->set_timer(h->loop, 0);
                return;
        }
        if (h->curl_deadline_us >= 0)
                at = h->curl_deadline_us;
        if (h->next_overdue_us >= 0 && (at < 0 || h->next_overdue_us < at))
                at = h->next_overdue_us;
        if (at < 0) {
                h->set_timer(h->loop, -1);
                return;
        }
        left = at - now_us();
        if (left <= 0)
                t = h->timer_set_by_curl ? 0 : 1;
        else
                t = (left + 999) / 1000 > LONG_MAX ? LONG_MAX : (long)((left + 999) / 1000);
        h->set_timer(h->loop, t);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
        struct lk_http *h = userp;

        h->curl_deadline_us = timeout_ms < 0 ? -1 : now_us() + (int64_t)timeout_ms * 1000;
        h->timer_set_by_curl = true;
        arm_timer(h);
        return 0;
}

/*
 * The system's CA store without ca_file: libcurl is built with a bundle file and a CA folder
 * (Debian: /etc/ssl/certs/ca-certificates.crt and /etc/ssl/certs) and, given both, parses the
 * whole bundle (144 certificates, ~20 ms of CPU) for every new TLS connection, on the broker's
 * one thread. Where the bundle is a file of that folder, both are written from the same
 * certificates (update-ca-certificates), so the folder alone trusts the same: OpenSSL then
 * reads only the issuer's file of a chain, by its subject hash (~1 ms a connection).
 */
static bool ca_dir_holds_bundle(const curl_version_info_data *vi)
{
        size_t n;

        if (!vi || isempty(vi->capath) || isempty(vi->cainfo))
                return false;
        n = strlen(vi->capath);
        return strncmp(vi->cainfo, vi->capath, n) == 0 && vi->cainfo[n] == '/' &&
               !strchr(vi->cainfo + n + 1, '/');
}

int lk_http_new(struct lk_http **ret)
{
        static bool curl_ready = false;
        struct lk_http *h;

        /* The broker is single-threaded; curl_global_init runs before anything else uses curl. */
        if (!curl_ready) {
                if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                        return -LK_ERR_IO;
                curl_ready = true;
        }

        h = calloc(1, sizeof(*h));
        if (!h)
                return -LK_ERR_NOMEM;
        h->curl_deadline_us = -1;
        h->next_overdue_us = -1;
        h->system_ca_dir = ca_dir_holds_bundle(curl_version_info(CURLVERSION_NOW));
        h->multi = curl_multi_init();
        if (!h->multi) {
                free(h);
                return -LK_ERR_NOMEM;
        }
        curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
        curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
        curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
        curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
        curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)HOST_CONNECTIONS_MAX);
        *ret = h;
        return 0;
}

void lk_http_free(struct lk_http *h)
{
        if (!h)
                return;
        while (h->xfers) {
                struct xfer *x = h->xfers;

                xfer_detach(h, x);
                xfer_free(x);
        }
        while (h->deferred_head) {
                struct deferred *d = h->deferred_head;

                h->deferred_head = d->next;
                free(d);
        }
        curl_multi_cleanup(h->multi);
        free(h);
}

static int dup_secret(const char *s, char **ret)
{
        if (!s) {
                *ret = NULL;
                return 0;
        }
        *ret = strdup(s);
        return *ret ? 0 : -LK_ERR_NOMEM;
}

#define SETOPT(opt, val)                                                  \
        do {                                                              \
                if (curl_easy_setopt(x->easy, opt, val) != CURLE_OK)      \
                        goto setopt_failed;                               \
        } while (0)

int lk_http_submit(struct lk_http *h, const struct lk_http_request *req, lk_http_done_fn done,
                   void *userdata, struct lk_error *e)
{
        struct xfer *x;

        if (!req || isempty(req->url) || !done)
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT, "HTTP request without a URL");
        if (req->timeout == 0)
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT,
                                    "HTTP request to %s without a timeout", req->url);

        x = calloc(1, sizeof(*x));
        if (!x)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        x->h = h;
        x->done = done;
        x->userdata = userdata;
        x->max_age = -1;
        x->timeout = req->timeout;
        x->deadline_us = now_us() + (int64_t)req->timeout * 1000000;
        x->url = strdup(req->url);
        if (!x->url || dup_secret(req->form, &x->form) < 0 ||
            dup_secret(req->basic_user, &x->user) < 0 ||
            dup_secret(req->basic_password, &x->password) < 0)
                goto nomem;
        x->easy = curl_easy_init();
        if (!x->easy)
                goto nomem;

        x->headers = curl_slist_append(NULL, "Accept: application/json");
        if (!x->headers)
                goto nomem;
        if (x->form) {
                struct curl_slist *l;

                l = curl_slist_append(x->headers,
                                      "Content-Type: application/x-www-form-urlencoded");
                if (!l)
                        goto nomem;
                x->headers = l;
                /* No "Expect: 100-continue" round trip for our small forms. */
                l = curl_slist_append(x->headers, "Expect:");
                if (!l)
                        goto nomem;
                x->headers = l;
        }

        SETOPT(CURLOPT_PRIVATE, x);
        SETOPT(CURLOPT_URL, x->url);
        SETOPT(CURLOPT_PROTOCOLS_STR, "https,http");
        SETOPT(CURLOPT_REDIR_PROTOCOLS_STR, "https,http");
        SETOPT(CURLOPT_FOLLOWLOCATION, 0L); /* a 3xx is a response; callers treat it as an error */
        SETOPT(CURLOPT_NOSIGNAL, 1L);
        SETOPT(CURLOPT_TIMEOUT, (long)req->timeout);
        SETOPT(CURLOPT_CONNECTTIMEOUT,
               (long)(req->timeout < CONNECT_TIMEOUT_MAX ? req->timeout : CONNECT_TIMEOUT_MAX));
        SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
        SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
        if (!isempty(req->ca_file)) {
                /*
                 * That file alone: without the CA folder libcurl is built with (Debian's
                 * /etc/ssl/certs), which it would search too. So libcurl also keeps the file's
                 * certificates in memory for its multi handle instead of reading them again for
                 * every new TLS connection (its CA cache, which a CA folder rules out).
                 */
                SETOPT(CURLOPT_CAINFO, req->ca_file);
                SETOPT(CURLOPT_CAPATH, NULL);
        } else if (h->system_ca_dir) {
                SETOPT(CURLOPT_CAINFO, NULL); /* the folder alone (ca_dir_holds_bundle) */
        }
        SETOPT(CURLOPT_USERAGENT, "latchkey/" LATCHKEY_VERSION);
        SETOPT(CURLOPT_HTTPHEADER, x->headers);
        SETOPT(CURLOPT_ERRORBUFFER, x->errbuf);
        SETOPT(CURLOPT_WRITEFUNCTION, write_cb);
        SETOPT(CURLOPT_WRITEDATA, x);
        SETOPT(CURLOPT_HEADERFUNCTION, header_cb);
        SETOPT(CURLOPT_HEADERDATA, x);
        SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)LK_HTTP_MAX_BODY);
        if (x->form) {
                SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(x->form));
                /* Not COPYPOSTFIELDS: curl uses our copy, which we wipe at the end. */
                SETOPT(CURLOPT_POSTFIELDS, x->form);
        }
        if (x->user) {
                SETOPT(CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
                SETOPT(CURLOPT_USERNAME, x->user);
                SETOPT(CURLOPT_PASSWORD, x->password ? x->password : "");
        }

        /* Handed to curl from the next round on, STARTS_PER_ROUND at a time (start_waiting). */
        x->next = h->xfers;
        if (h->xfers)
                h->xfers->prev = x;
        h->xfers = x;
        h->n_xfers++;
        h->started++;
        if (h->waiting_tail)
                h->waiting_tail->wnext = x;
        else
                h->waiting_head = x;
        h->waiting_tail = x;
        if (h->next_overdue_us < 0 || x->deadline_us + OVERDUE_GRACE_US < h->next_overdue_us)
                h->next_overdue_us = x->deadline_us + OVERDUE_GRACE_US;
        arm_timer(h);
        return 0;

setopt_failed:
        {
                int r = lk_error_set(e, LK_ERR_IO,
                                     "Cannot set up the request to %s (libcurl too old?)",
                                     req->url);
                xfer_free(x);
                return r;
        }
nomem:
        xfer_free(x);
        return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
}

unsigned lk_http_pending(const struct lk_http *h)
{
        return h->n_xfers;
}

uint64_t lk_http_requests_started(const struct lk_http *h)
{
        return h->started;
}

static void describe_failure(const struct xfer *x, CURLcode code, struct lk_error *e)
{
        const char *why = x->errbuf[0] ? x->errbuf : curl_easy_strerror(code);

        if (x->too_big || code == CURLE_FILESIZE_EXCEEDED)
                lk_error_set(e, LK_ERR_PROVIDER_UNAVAILABLE, "%s: response larger than 1 MiB",
                             x->url);
        else if (code == CURLE_OPERATION_TIMEDOUT)
                lk_error_set(e, LK_ERR_PROVIDER_UNAVAILABLE, "%s: timeout after %u s (%s)", x->url,
                             x->timeout, why);
        else
                lk_error_set(e, LK_ERR_PROVIDER_UNAVAILABLE, "%s: %s", x->url, why);
}

/* Runs the callbacks of up to max finished exchanges; more_done tells whether some wait. */
static void process_done(struct lk_http *h, unsigned max)
{
        CURLMsg *m;
        int left = 0;

        h->more_done = false;
        while (max > 0 && (m = curl_multi_info_read(h->multi, &left))) {
                struct lk_http_response resp = {0};
                struct lk_error err = {0};
                struct xfer *x = NULL;
                CURLcode code;

                if (m->msg != CURLMSG_DONE)
                        continue;
                code = m->data.result;
                curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
                if (!x)
                        continue;
                /* From here on x belongs to nobody else: the callback may do anything. */
                xfer_detach(h, x);
                max--;

                if (code == CURLE_OK && !x->too_big) {
                        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &resp.status);
                        resp.content_type = x->content_type;
                        if (!x->body) {
                                x->body = strdup("");
                                if (!x->body) {
                                        lk_error_set(&err, LK_ERR_NOMEM, "Out of memory");
                                        goto fail;
                                }
                        }
                        resp.body = x->body;
                        resp.body_len = x->body_len;
                        resp.max_age = x->no_store ? -1 : x->max_age;
                        resp.retry_after = retry_after(x->easy);
                        resp.challenge = x->challenge;
                        x->done(x->userdata, &resp, NULL);
                        xfer_free(x);
                        continue;
                }
                describe_failure(x, code, &err);
        fail:
                x->done(x->userdata, NULL, &err);
                xfer_free(x);
        }
        if (max == 0 && left > 0)
                h->more_done = true;
}

/*
 * Ends the exchanges past their own deadline. curl times out the exchanges it runs, from
 * when they were added; one still in our waiting queue (or in curl's pending list) is not
 * run, and the caller's timeout, counted from lk_http_submit, must hold anyway.
 */
static void expire_overdue(struct lk_http *h)
{
        int64_t now = now_us(), next = -1;
        struct xfer *overdue = NULL;

        if (h->next_overdue_us < 0 || h->next_overdue_us > now)
                return;
        for (struct xfer *x = h->xfers, *nx; x; x = nx) {
                nx = x->next;
                if (x->deadline_us + OVERDUE_GRACE_US <= now) {
                        xfer_detach(h, x);
                        x->next = overdue; /* callbacks only once the list is consistent */
                        overdue = x;
                } else if (next < 0 || x->deadline_us + OVERDUE_GRACE_US < next) {
                        next = x->deadline_us + OVERDUE_GRACE_US;
                }
        }
        h->next_overdue_us = next;
        while (overdue) {
                struct xfer *x = overdue;
                struct lk_error err = {0};

                overdue = x->next;
                x->next = NULL;
                lk_error_set(&err, LK_ERR_PROVIDER_UNAVAILABLE,
                             "%s: timeout after %u s (waiting for a connection)", x->url,
                             x->timeout);
                x->done(x->userdata, NULL, &err);
                xfer_free(x);
        }
}

/*
 * Hands up to max waiting exchanges to curl, oldest first, while fewer than
 * HOST_CONNECTIONS_MAX are under way. Not curl's own queue for them: a connection coming free
 * there woke every queued exchange in the same round (72 TLS set-ups, 150 ms in one call).
 */
static void start_waiting(struct lk_http *h, unsigned max)
{
        while (max-- > 0 && h->waiting_head && h->n_added < HOST_CONNECTIONS_MAX) {
                struct xfer *x = h->waiting_head;
                struct lk_error err = {0};
                CURLMcode mc;

                h->waiting_head = x->wnext;
                if (!h->waiting_head)
                        h->waiting_tail = NULL;
                x->wnext = NULL;
                mc = curl_multi_add_handle(h->multi, x->easy);
                if (mc == CURLM_OK) {
                        x->added = true;
                        h->n_added++;
                        continue;
                }
                xfer_unlink(h, x);
                lk_error_set(&err, mc == CURLM_OUT_OF_MEMORY ? LK_ERR_NOMEM : LK_ERR_IO,
                             "Cannot start the request to %s: %s", x->url,
                             curl_multi_strerror(mc));
                x->done(x->userdata, NULL, &err);
                xfer_free(x);
        }
}

/* Runs the deferred calls queued so far; those they queue wait for the next round. */
static void run_deferred(struct lk_http *h)
{
        size_t n = 0;

        for (struct deferred *d = h->deferred_head; d; d = d->next)
                n++;
        while (n-- > 0 && h->deferred_head) {
                struct deferred *d = h->deferred_head;
                lk_http_defer_fn fn = d->fn;
                void *ud = d->userdata;

                h->deferred_head = d->next;
                if (!h->deferred_head)
                        h->deferred_tail = NULL;
                free(d);
                fn(ud);
        }
}

int lk_http_defer(struct lk_http *h, lk_http_defer_fn fn, void *userdata)
{
        struct deferred *d;

        d = calloc(1, sizeof(*d));
        if (!d)
                return -LK_ERR_NOMEM;
        d->fn = fn;
        d->userdata = userdata;
        if (h->deferred_tail)
                h->deferred_tail->next = d;
        else
                h->deferred_head = d;
        h->deferred_tail = d;
        arm_timer(h);
        return 0;
}

unsigned lk_http_cancel(struct lk_http *h, void *userdata)
{
        unsigned n = 0;

        for (struct xfer *x = h->xfers, *next; x; x = next) {
                next = x->next;
                if (x->userdata != userdata)
                        continue;
                xfer_detach(h, x);
                xfer_free(x);
                n++;
        }
        for (struct deferred **i = &h->deferred_head; *i;) {
                struct deferred *d = *i;

                if (d->userdata != userdata) {
                        i = &d->next;
                        continue;
                }
                *i = d->next;
                free(d);
                n++;
        }
        h->deferred_tail = NULL;
        for (struct deferred *d = h->deferred_head; d; d = d->next)
                h->deferred_tail = d;
        return n;
}

void lk_http_set_loop(struct lk_http *h, lk_http_watch_fn watch_socket, lk_http_timer_fn set_timer,
                      void *loop)
{
        h->watch_socket = watch_socket;
        h->set_timer = set_timer;
        h->loop = loop;
        arm_timer(h);
}

void lk_http_on_socket(struct lk_http *h, int fd, int what)
{
        int mask = 0, running;

        if (what & LK_HTTP_WATCH_IN)
                mask |= CURL_CSELECT_IN;
        if (what & LK_HTTP_WATCH_OUT)
                mask |= CURL_CSELECT_OUT;
        curl_multi_socket_action(h->multi, fd, mask, &running);
        process_done(h, DONE_PER_ROUND);
        arm_timer(h);
}

void lk_http_on_timeout(struct lk_http *h)
{
        int running;

        run_deferred(h);
        start_waiting(h, STARTS_PER_ROUND);
        /* Early is harmless: curl only acts on timers that expired. */
        h->timer_set_by_curl = false;
        curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        process_done(h, DONE_PER_ROUND);
        expire_overdue(h);
        /* The loop's timer was one-shot: set it again, whether or not curl changed its mind. */
        arm_timer(h);
}

int lk_http_run(struct lk_http *h)
{
        if (h->set_timer || h->watch_socket)
                return -LK_ERR_INVALID_ARGUMENT; /* an event loop drives this one */

        for (;;) {
                CURLMcode mc;
                int running, wait_ms;

                run_deferred(h);
                if (h->n_xfers == 0 && !h->deferred_head)
                        return 0;
                start_waiting(h, UINT_MAX);
                mc = curl_multi_perform(h->multi, &running);
                if (mc != CURLM_OK)
                        return -LK_ERR_IO;
                process_done(h, UINT_MAX);
                /* Queued ones keep their own timeout here too, and start as slots come free. */
                expire_overdue(h);
                if (h->deferred_head || h->n_xfers == 0 ||
                    (h->waiting_head && h->n_added < HOST_CONNECTIONS_MAX))
                        continue;
                wait_ms = 1000;
                if (h->next_overdue_us >= 0) {
                        int64_t left = (h->next_overdue_us - now_us() + 999) / 1000;

                        wait_ms = left <= 0 ? 0 : left < 1000 ? (int)left : 1000;
                }
                mc = curl_multi_poll(h->multi, NULL, 0, wait_ms, NULL);
                if (mc != CURLM_OK)
                        return -LK_ERR_IO;
        }
}
