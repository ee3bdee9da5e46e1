/* SPDX-License-Identifier: MIT */
/*
 * libmicrohttpd in its external epoll mode: MHD keeps one epoll descriptor, which the
 * broker's loop watches, and MHD_run() does the work that is ready without blocking; a timer
 * follows MHD_get_timeout() (idle connections, work MHD left for the next round). No thread.
 *
 * One request, from MHD's calls:
 *   - uri_logger() (the request line is read): a struct request holds a copy of the raw target
 *     (it carries the code: wiped when freed), unless it is longer than LK_CALLBACK_REQUEST_MAX;
 *   - on_request() (the headers are read): the rate of its address, the size and number of its
 *     headers, GET, the path, the state: anything wrong is a bare 404 (429 when over the rate);
 *     a state that matches a pending login starts lk_login_complete() and suspends the
 *     connection;
 *   - on_login_done(): the page (signed in, or why not), and the connection resumed;
 *   - on_request() again: the page is sent;
 *   - on_completed(): the request is freed.
 * MHD logs nothing (no MHD_USE_ERROR_LOG): nothing of a request reaches a log line but the
 * login's fingerprint and the outcome.
 */
#include "broker/callback_listener.h"

#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/cleanup_curl.h"
#include "broker/budget.h"
#include "broker/callback_rate.h"
#include "broker/callback_request.h"
#include "broker/login.h"
#include "oidc/fileio.h"
#include "oidc/listen_address.h"
#include "oidc/log.h"
#include "oidc/secret.h"

/* MHD's pool per connection: the request (LK_CALLBACK_REQUEST_MAX of target and as much of
 * headers) and the answer's headers. A request beyond it is refused by MHD itself. */
#define CONNECTION_MEMORY (4 * LK_CALLBACK_REQUEST_MAX)
#define LISTEN_BACKLOG 64

struct lk_callback_listener {
        struct lk_callback_deps d;
        char *path; /* redirect_uri's path, as the browser sends it */
        struct MHD_Daemon *mhd;
        int fd;     /* the listening socket; MHD closes it */
        struct lk_io *io;
        struct lk_timer *timer;
        struct lk_callback_rate *rate;
        char *cert_pem;
        char *key_pem; /* secret */
        size_t key_len;
};

enum phase {
        PHASE_NEW,
        PHASE_WAITING, /* suspended until the code exchange ends */
        PHASE_ANSWER,  /* resumed with the page */
};

struct request {
        struct lk_callback_listener *c;
        struct MHD_Connection *conn;
        char *target; /* secret (code, state); NULL when too long */
        enum phase phase;
        unsigned status;
        char *page;
        uid_t budget_uid;
};

static void request_free(struct request *q)
{
        if (!q)
                return;
        lk_secret_free(q->target);
        free(q->page);
        free(q);
}

/* ---- the loop ---- */

static void schedule(struct lk_callback_listener *c)
{
        MHD_UNSIGNED_LONG_LONG ms;

        if (MHD_get_timeout(c->mhd, &ms) == MHD_YES)
                lk_timer_set_in(c->timer, ms > 60000 ? 60000 : (int64_t)ms);
        else
                lk_timer_set(c->timer, -1);
}

static unsigned connections(struct lk_callback_listener *c)
{
        const union MHD_DaemonInfo *i =
            MHD_get_daemon_info(c->mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);

        return i ? i->num_connections : 0;
}

/*
 * At LK_CALLBACK_CONNECTIONS_MAX, MHD takes the listening socket out of its epoll set, and
 * puts it back only at the start of a later MHD_run(): after a round that closed connections,
 * one more round, or a client waiting in the backlog would wait for some other event.
 */
static void run(struct lk_callback_listener *c)
{
        unsigned before = connections(c);

        MHD_run(c->mhd);
        if (connections(c) < before)
                MHD_run(c->mhd);
        schedule(c);
}

static void on_io(struct lk_io *io, int fd, short revents, void *userdata)
{
        run(userdata);
}

static void on_timer(struct lk_timer *t, void *userdata)
{
        run(userdata);
}

/* ---- the pages ---- */

/* s with & < > " ' as entities, appended to the page being built; false when out of memory. */
static bool append_html(FILE *f, const char *s)
{
        for (; *s; s++) {
                int r;

                switch (*s) {
                case '&': r = fputs("&amp;", f); break;
                case '<': r = fputs("&lt;", f); break;
                case '>': r = fputs("&gt;", f); break;
                case '"': r = fputs("&quot;", f); break;
                case '\'': r = fputs("&#39;", f); break;
                default: r = fputc(*s, f); break;
                }
                if (r == EOF)
                        return false;
        }
        return true;
}

/* The page for the browser: signed in, or the reason (escaped for a person, then for HTML). */
static char *make_page(const char *title, const char *text)
{
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        bool ok;

        if (!f)
                return NULL;
        ok = fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>", f) != EOF &&
             append_html(f, title) && fputs("</title></head>\n<body><h1>", f) != EOF &&
             append_html(f, title) && fputs("</h1>\n<p>", f) != EOF && append_html(f, text) &&
             fputs("</p>\n</body></html>\n", f) != EOF;
        if (fclose(f) != 0 || !ok) {
                free(buf);
                return NULL;
        }
        return buf;
}

static enum MHD_Result send_page(struct MHD_Connection *conn, unsigned status, char *page)
{
        struct MHD_Response *resp;
        enum MHD_Result r;

        if (page)
                resp = MHD_create_response_from_buffer(strlen(page), page, MHD_RESPMEM_MUST_COPY);
        else
                resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        if (!resp)
                return MHD_NO;
        if (page)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                        "text/html; charset=utf-8");
        /* The address carried a code: nothing of it is kept, framed or sent on. */
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
        MHD_add_response_header(resp, "Content-Security-Policy",
                                "default-src 'none'; frame-ancestors 'none'");
        MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
        r = MHD_queue_response(conn, status, resp);
        MHD_destroy_response(resp);
        return r;
}

/* Anything that is not a callback of a pending login: no detail. */
static enum MHD_Result not_found(struct MHD_Connection *conn)
{
        return send_page(conn, MHD_HTTP_NOT_FOUND, NULL);
}

/* ---- one request ---- */

static void on_login_done(void *userdata, const char *user, int r, const struct lk_error *e)
{
        struct request *q = userdata;
        struct lk_callback_listener *c = q->c;

        /* A granted code was a real sign-in: only refused and failed requests spend. */
        if (r >= 0) {
                lk_budget_refund(c->d.budget, q->budget_uid);
                q->status = MHD_HTTP_OK;
                q->page = make_page("Signed in", "You are signed in; go back to your terminal.");
        } else {
                q->status = MHD_HTTP_FORBIDDEN;
                q->page = make_page("Sign-in failed",
                                    e && e->code ? e->message : "The sign-in failed.");
        }
        q->phase = PHASE_ANSWER;
        MHD_resume_connection(q->conn);
        lk_timer_set_in(c->timer, 0);
}

static void *uri_logger(void *cls, const char *uri, struct MHD_Connection *conn)
{
        struct lk_callback_listener *c = cls;
        struct request *q = calloc(1, sizeof(*q));

        if (!q)
                return NULL;
        q->c = c;
        q->conn = conn;
        if (strnlen(uri, LK_CALLBACK_REQUEST_MAX + 1) <= LK_CALLBACK_REQUEST_MAX)
                q->target = strdup(uri); /* NULL: refused as too long */
        return q;
}

struct header_count {
        unsigned n;
        size_t bytes;
};

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
        struct header_count *h = cls;

        h->n++;
        h->bytes += strlen(key) + (value ? strlen(value) : 0) + 4; /* ": " and CRLF */
        return MHD_YES;
}

static const struct sockaddr *client_address(struct MHD_Connection *conn)
{
        const union MHD_ConnectionInfo *i =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

        return i ? i->client_addr : NULL;
}

/* The code and state of a pending login: the exchange starts, the connection waits for it. */
static enum MHD_Result take_callback(struct request *q, struct MHD_Connection *conn)
{
        struct lk_callback_listener *c = q->c;
        _cleanup_secret_ char *state = NULL, *answer = NULL;
        struct lk_error e = {0};
        struct lk_login *l;
        const char *query;
        size_t len;
        char fp[LK_FINGERPRINT_SIZE];
        int r;

        r = lk_callback_request_state(q->target, c->path, &query, &len, &state, &e);
        if (r < 0)
                return not_found(conn);
        l = lk_login_find_by_state(c->d.logins, state);
        /* Unknown, or already done or ended (a replay): refused, and nothing changes. */
        if (!l || lk_login_check_pending(c->d.logins, l, &e) < 0)
                return not_found(conn);

        lk_fingerprint(l->id, fp);
        q->budget_uid = lk_login_account(l);
        r = lk_budget_take(c->d.budget, q->budget_uid, c->d.clock->mono_ms(), &e);
        if (r < 0) {
                free(q->page);
                q->page = make_page("Sign-in failed", e.message);
                return send_page(conn, MHD_HTTP_TOO_MANY_REQUESTS, q->page);
        }
        /* The same answer as a pasted address: lk_answer_parse() checks iss, error and code. */
        if (asprintf(&answer, "?%.*s", (int)len, query) < 0) {
                answer = NULL;
                lk_budget_refund(c->d.budget, q->budget_uid);
                return MHD_NO;
        }
        r = lk_login_complete(c->d.logins, l, answer, on_login_done, q, &e);
        if (r < 0) {
                /* Nothing was sent to the provider. */
                lk_budget_refund(c->d.budget, q->budget_uid);
                lk_log_auth(LOG_INFO, "Login %s: the callback was refused: %s", fp, e.message);
                free(q->page);
                q->page = make_page("Sign-in failed", e.message);
                return send_page(conn, MHD_HTTP_FORBIDDEN, q->page);
        }
        lk_log_auth(LOG_INFO, "Login %s: callback received, exchanging its code", fp);
        q->phase = PHASE_WAITING;
        MHD_suspend_connection(conn);
        return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
        struct lk_callback_listener *c = cls;
        struct request *q = *con_cls;
        struct header_count h = {0};

        if (!q)
                return MHD_NO; /* out of memory in uri_logger() */
        if (q->phase == PHASE_ANSWER)
                return send_page(conn, q->status, q->page);
        if (q->phase == PHASE_WAITING) {
                *upload_data_size = 0;
                return MHD_YES;
        }
        if (!lk_callback_rate_take(c->rate, client_address(conn), c->d.clock->mono_ms()))
                return send_page(conn, MHD_HTTP_TOO_MANY_REQUESTS, NULL);
        MHD_get_connection_values(conn, MHD_HEADER_KIND, count_header, &h);
        if (!q->target || h.n > LK_CALLBACK_HEADERS_MAX || h.bytes > LK_CALLBACK_REQUEST_MAX ||
            strcmp(method, MHD_HTTP_METHOD_GET) != 0 ||
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                        MHD_HTTP_HEADER_CONTENT_LENGTH) ||
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                        MHD_HTTP_HEADER_TRANSFER_ENCODING))
                return not_found(conn);
        return take_callback(q, conn);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
        request_free(*con_cls);
        *con_cls = NULL;
}

/* Before the TLS handshake: a client over its rate costs one accept() and one close(). */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
        struct lk_callback_listener *c = cls;

        return lk_callback_rate_take(c->rate, addr, c->d.clock->mono_ms()) ? MHD_YES : MHD_NO;
}

/* ---- life ---- */

/* redirect_uri's path, as a browser sends it in the request line ("/" when it has none). */
static int redirect_path(const char *redirect_uri, char **ret, struct lk_error *e)
{
        _cleanup_(curl_url_cleanupp) CURLU *u = curl_url();
        _cleanup_(curl_freep) char *path = NULL;
        char *s;

        if (!u)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        if (curl_url_set(u, CURLUPART_URL, redirect_uri, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK)
                return lk_error_set(e, LK_ERR_CONFIG, "[provider] redirect_uri: cannot read its "
                                    "path");
        s = strdup(isempty(path) ? "/" : path);
        if (!s)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        *ret = s;
        return 0;
}

static int listen_socket(const char *address, int *ret, struct lk_error *e)
{
        struct sockaddr_storage ss;
        socklen_t len;
        char why[160];
        int fd, one = 1;

        if (lk_listen_address_parse(address, &ss, &len, why, sizeof(why)) < 0)
                return lk_error_set(e, LK_ERR_CONFIG, "[callback] listen: '%s' %s", address, why);
        fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return lk_error_set(e, LK_ERR_IO, "Cannot make a socket for %s: %s", address,
                                    strerror(errno));
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
                int err = errno;

                close(fd);
                return lk_error_set(e, LK_ERR_IO, "Cannot listen on %s: %s%s", address,
                                    strerror(err),
                                    err == EACCES ? " (a port below 1024 needs "
                                                    "CAP_NET_BIND_SERVICE; take one above)"
                                                  : "");
        }
        *ret = fd;
        return 0;
}

static int read_pems(struct lk_callback_listener *c, struct lk_error *e)
{
        const struct lk_config *cf = c->d.config;
        size_t len;
        int r;

        r = lk_read_file(cf->callback_certificate, LK_CALLBACK_PEM_MAX, &c->cert_pem, &len, e);
        if (r < 0)
                return r;
        /* Read as the client secret is: not a link, ours or root's, no one else may read it. */
        return lk_read_private_file(cf->callback_key, LK_PRIVATE_SECRET, LK_CALLBACK_PEM_MAX,
                                    &c->key_pem, &c->key_len, NULL, e);
}

void lk_callback_listener_free(struct lk_callback_listener *c)
{
        if (!c)
                return;
        if (c->mhd) {
                /* Requests resumed by lk_logins_free_all() are answered before the end. */
                MHD_run(c->mhd);
                MHD_stop_daemon(c->mhd);
        } else if (c->fd >= 0)
                close(c->fd);
        lk_io_free(c->io);
        lk_timer_free(c->timer);
        lk_callback_rate_free(c->rate);
        free(c->path);
        free(c->cert_pem);
        if (c->key_pem) {
                explicit_bzero(c->key_pem, c->key_len);
                free(c->key_pem);
        }
        free(c);
}

int lk_callback_listener_new(const struct lk_callback_deps *d, struct lk_callback_listener **ret,
                             struct lk_error *e)
{
        struct lk_callback_listener *c;
        const union MHD_DaemonInfo *info;
        unsigned flags = MHD_USE_TLS | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
        int r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        c->d = *d;
        c->fd = -1;
        r = redirect_path(d->config->redirect_uri, &c->path, e);
        if (r < 0)
                goto fail;
        r = read_pems(c, e);
        if (r < 0)
                goto fail;
        if (lk_callback_rate_new(&c->rate) < 0) {
                r = lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
                goto fail;
        }
        r = listen_socket(d->config->callback_listen, &c->fd, e);
        if (r < 0)
                goto fail;
        if (d->config->callback_listen[0] == '[')
                flags |= MHD_USE_IPv6;

        c->mhd = MHD_start_daemon(
            flags, 0, on_accept, c, on_request, c,
            MHD_OPTION_LISTEN_SOCKET, c->fd,
            MHD_OPTION_HTTPS_MEM_CERT, c->cert_pem,
            MHD_OPTION_HTTPS_MEM_KEY, c->key_pem,
            MHD_OPTION_CONNECTION_LIMIT, (unsigned)LK_CALLBACK_CONNECTIONS_MAX,
            MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)LK_CALLBACK_CONNECTIONS_PER_ADDRESS,
            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)LK_CALLBACK_TIMEOUT_S,
            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
            MHD_OPTION_URI_LOG_CALLBACK, uri_logger, c,
            MHD_OPTION_NOTIFY_COMPLETED, on_completed, c,
            MHD_OPTION_END);
        if (!c->mhd) {
                /* MHD says nothing of why; the usual cause is the certificate or key. */
                r = lk_error_set(e, LK_ERR_CONFIG,
                                 "Cannot start the callback listener on %s: is %s a PEM "
                                 "certificate and %s its PEM private key?",
                                 d->config->callback_listen, d->config->callback_certificate,
                                 d->config->callback_key);
                goto fail;
        }
        info = MHD_get_daemon_info(c->mhd, MHD_DAEMON_INFO_EPOLL_FD);
        c->timer = lk_timer_new(d->loop, on_timer, c);
        c->io = info ? lk_io_new(d->loop, info->epoll_fd, POLLIN, on_io, c) : NULL;
        if (!c->timer || !c->io) {
                r = lk_error_set(e, info ? LK_ERR_NOMEM : LK_ERR_IO,
                                 "Cannot watch the callback listener");
                goto fail;
        }
        schedule(c);
        log_info("Receiving the provider's callback for %s on https://%s", c->path,
                 d->config->callback_listen);
        *ret = c;
        return 0;

fail:
        lk_callback_listener_free(c);
        return r;
}
