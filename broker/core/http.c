/* SPDX-License-Identifier: MIT */
/*
 * HTTP exchanges on libcurl's multi interface. One CURLM per lk_http; the
 * broker's poll loop drives it through the socket and timer callbacks, the
 * command line and tests through lk_http_run(). Finished exchanges are taken
 * off the multi handle before their callback runs, so a callback may submit,
 * cancel or defer freely.
 */
#include "http.h"

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

struct xfer {
        struct lk_http *h;
        struct xfer *prev, *next;
        CURL *easy;
        struct curl_slist *headers;
        char *url;
        char *form;     /* secret: our own copy, handed to CURLOPT_POSTFIELDS */
        char *user;     /* secret */
        char *password; /* secret */
        unsigned timeout;
        lk_http_done_fn done;
        void *userdata;

        char *body;
        size_t body_len, body_cap;
        bool too_big;
        char *content_type;
        long max_age;
        bool no_store;
        char errbuf[CURL_ERROR_SIZE];
};

struct deferred {
        struct deferred *next;
        lk_http_defer_fn fn;
        void *userdata;
};

struct lk_http {
        CURLM *multi;
        struct xfer *xfers; /* under way */
        unsigned n_xfers;
        uint64_t started;

        struct deferred *deferred_head, *deferred_tail;

        lk_http_watch_fn watch_socket;
        lk_http_timer_fn set_timer;
        void *loop;
        int64_t curl_deadline_ms; /* monotonic; -1 when curl wants no timer */
};

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

/* Takes x off the multi handle and out of the list; it is then ours alone. */
static void xfer_detach(struct lk_http *h, struct xfer *x)
{
        curl_multi_remove_handle(h->multi, x->easy);
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
        }
        return len;
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

/* Tells the loop when to call lk_http_on_timeout: now for deferred calls, else when curl wants. */
static void arm_timer(struct lk_http *h)
{
        long t;

        if (!h->set_timer)
                return;
        if (h->deferred_head)
                t = 0;
        else if (h->curl_deadline_ms < 0)
                t = -1;
        else {
                int64_t left = h->curl_deadline_ms - now_ms();

                t = left <= 0 ? 0 : left > LONG_MAX ? LONG_MAX : (long)left;
        }
        h->set_timer(h->loop, t);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
        struct lk_http *h = userp;

        h->curl_deadline_ms = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
        arm_timer(h);
        return 0;
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
        h->curl_deadline_ms = -1;
        h->multi = curl_multi_init();
        if (!h->multi) {
                free(h);
                return -LK_ERR_NOMEM;
        }
        curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
        curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
        curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
        curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
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
        CURLMcode mc;

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
        if (!isempty(req->ca_file))
                SETOPT(CURLOPT_CAINFO, req->ca_file);
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

        mc = curl_multi_add_handle(h->multi, x->easy);
        if (mc != CURLM_OK) {
                int r = lk_error_set(e, mc == CURLM_OUT_OF_MEMORY ? LK_ERR_NOMEM : LK_ERR_IO,
                                     "Cannot start the request to %s: %s", req->url,
                                     curl_multi_strerror(mc));
                xfer_free(x);
                return r;
        }
        x->next = h->xfers;
        if (h->xfers)
                h->xfers->prev = x;
        h->xfers = x;
        h->n_xfers++;
        h->started++;
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

/* Runs the callbacks of every finished exchange. */
static void process_done(struct lk_http *h)
{
        CURLMsg *m;
        int left;

        while ((m = curl_multi_info_read(h->multi, &left))) {
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
                        x->done(x->userdata, &resp, NULL);
                        xfer_free(x);
                        continue;
                }
                describe_failure(x, code, &err);
        fail:
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
        process_done(h);
        arm_timer(h);
}

void lk_http_on_timeout(struct lk_http *h)
{
        int running;

        run_deferred(h);
        /* Early is harmless: curl only acts on timers that expired. */
        curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        process_done(h);
        /* The loop's timer was one-shot: set it again, whether or not curl changed its mind. */
        arm_timer(h);
}

int lk_http_run(struct lk_http *h)
{
        if (h->set_timer || h->watch_socket)
                return -LK_ERR_INVALID_ARGUMENT; /* an event loop drives this one */

        for (;;) {
                CURLMcode mc;
                int running;

                run_deferred(h);
                if (h->n_xfers == 0 && !h->deferred_head)
                        return 0;
                mc = curl_multi_perform(h->multi, &running);
                if (mc != CURLM_OK)
                        return -LK_ERR_IO;
                process_done(h);
                if (h->deferred_head || h->n_xfers == 0)
                        continue;
                mc = curl_multi_poll(h->multi, NULL, 0, 1000, NULL);
                if (mc != CURLM_OK)
                        return -LK_ERR_IO;
        }
}
