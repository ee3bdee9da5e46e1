/* SPDX-License-Identifier: MIT */
/*
 * A tiny HTTP(S) server for unit tests, on libmicrohttpd: 127.0.0.1, a port
 * the kernel picks, a thread per connection (so delayed replies run in
 * parallel). The test supplies one handler that fills in a reply; handlers
 * run one at a time (under the server's lock), the delay after them does not.
 * Also makes a self-signed certificate for 127.0.0.1 at run time.
 */
#pragma once

#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TS_UPLOAD_MAX (256 * 1024)

struct ts_request {
        const char *method;
        const char *url; /* the path, without the query */
        const char *body;
        size_t body_len;
        struct MHD_Connection *conn;
};

struct ts_reply {
        unsigned status;            /* 200 when left 0 */
        const char *content_type;   /* copied */
        char *body;                 /* malloc'ed, taken over; NULL = empty */
        size_t body_len;
        bool chunked;               /* no Content-Length */
        const char *cache_control;  /* copied */
        const char *location;       /* copied */
        const char *retry_after;    /* copied */
        const char *www_authenticate; /* copied */
        unsigned delay_ms;          /* wait before answering, outside the lock */
};

struct ts_server;
typedef void (*ts_handler_fn)(struct ts_server *s, const struct ts_request *rq,
                              struct ts_reply *rp);

struct ts_server {
        struct MHD_Daemon *daemon;
        uint16_t port;
        char base[64]; /* "http://127.0.0.1:PORT" */
        ts_handler_fn handler;
        void *userdata;
        pthread_mutex_t lock;
        atomic_int in_flight, peak, requests;
        atomic_bool stopping;
};

static inline const char *ts_header(const struct ts_request *rq, const char *name)
{
        return MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name);
}

static inline const char *ts_arg(const struct ts_request *rq, const char *name)
{
        return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, name);
}

static inline void ts_reply_text(struct ts_reply *rp, unsigned status, const char *ctype,
                                 const char *text)
{
        rp->status = status;
        rp->content_type = ctype;
        rp->body = strdup(text);
        rp->body_len = strlen(text);
}

struct ts_conn {
        char *body;
        size_t len;
        bool too_big;
};

struct ts_chunked {
        char *body;
        size_t len;
};

static inline ssize_t ts_chunk_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
        struct ts_chunked *c = cls;
        size_t n;

        if (pos >= c->len)
                return MHD_CONTENT_READER_END_OF_STREAM;
        n = c->len - pos;
        if (n > max)
                n = max;
        if (n > 4096)
                n = 4096;
        memcpy(buf, c->body + pos, n);
        return (ssize_t)n;
}

static inline void ts_chunk_free(void *cls)
{
        struct ts_chunked *c = cls;

        free(c->body);
        free(c);
}

static inline void ts_sleep_ms(struct ts_server *s, unsigned ms)
{
        for (unsigned i = 0; i < ms && !atomic_load(&s->stopping); i += 10) {
                struct timespec ts = {.tv_sec = 0, .tv_nsec = 10 * 1000000L};

                nanosleep(&ts, NULL);
        }
}

static inline enum MHD_Result ts_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
        struct ts_server *s = cls;
        struct ts_conn *c = *con_cls;
        struct ts_reply rp = {0};
        struct ts_request rq;
        struct MHD_Response *resp;
        enum MHD_Result ret;
        int now, peak;

        (void)version;
        if (!c) {
                c = calloc(1, sizeof(*c));
                if (!c)
                        return MHD_NO;
                *con_cls = c;
                return MHD_YES;
        }
        if (*upload_data_size > 0) {
                if (c->len + *upload_data_size > TS_UPLOAD_MAX) {
                        c->too_big = true;
                } else {
                        char *p = realloc(c->body, c->len + *upload_data_size + 1);

                        if (!p)
                                return MHD_NO;
                        c->body = p;
                        memcpy(c->body + c->len, upload_data, *upload_data_size);
                        c->len += *upload_data_size;
                        c->body[c->len] = 0;
                }
                *upload_data_size = 0;
                return MHD_YES;
        }

        now = atomic_fetch_add(&s->in_flight, 1) + 1;
        peak = atomic_load(&s->peak);
        while (now > peak && !atomic_compare_exchange_weak(&s->peak, &peak, now))
                ;
        atomic_fetch_add(&s->requests, 1);

        rq = (struct ts_request){
                .method = method, .url = url, .body = c->body ? c->body : "", .body_len = c->len,
                .conn = conn,
        };
        pthread_mutex_lock(&s->lock);
        s->handler(s, &rq, &rp);
        pthread_mutex_unlock(&s->lock);

        if (rp.delay_ms)
                ts_sleep_ms(s, rp.delay_ms);

        if (rp.chunked) {
                struct ts_chunked *ch = calloc(1, sizeof(*ch));

                ch->body = rp.body;
                ch->len = rp.body_len;
                resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, ts_chunk_reader,
                                                         ch, ts_chunk_free);
        } else {
                resp = MHD_create_response_from_buffer(rp.body_len, rp.body ? rp.body : (char *)"",
                                                       rp.body ? MHD_RESPMEM_MUST_FREE
                                                               : MHD_RESPMEM_PERSISTENT);
        }
        if (rp.content_type)
                MHD_add_response_header(resp, "Content-Type", rp.content_type);
        if (rp.cache_control)
                MHD_add_response_header(resp, "Cache-Control", rp.cache_control);
        if (rp.location)
                MHD_add_response_header(resp, "Location", rp.location);
        if (rp.retry_after)
                MHD_add_response_header(resp, "Retry-After", rp.retry_after);
        if (rp.www_authenticate)
                MHD_add_response_header(resp, "WWW-Authenticate", rp.www_authenticate);
        ret = MHD_queue_response(conn, rp.status ? rp.status : 200, resp);
        MHD_destroy_response(resp);
        atomic_fetch_sub(&s->in_flight, 1);
        return ret;
}

static inline void ts_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
        struct ts_conn *c = *con_cls;

        (void)cls;
        (void)conn;
        (void)toe;
        if (c) {
                free(c->body);
                free(c);
                *con_cls = NULL;
        }
}

/* cert_pem/key_pem NULL: plain HTTP. Returns 0 on success. */
static inline int ts_start(struct ts_server *s, ts_handler_fn handler, void *userdata,
                           const char *cert_pem, const char *key_pem)
{
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
        const union MHD_DaemonInfo *info;
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION;

        memset(s, 0, sizeof(*s));
        s->handler = handler;
        s->userdata = userdata;
        pthread_mutex_init(&s->lock, NULL);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (cert_pem) {
                flags |= MHD_USE_TLS;
                s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, ts_access, s,
                                             MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                                             MHD_OPTION_NOTIFY_COMPLETED, ts_completed, s,
                                             MHD_OPTION_HTTPS_MEM_CERT, cert_pem,
                                             MHD_OPTION_HTTPS_MEM_KEY, key_pem, MHD_OPTION_END);
        } else {
                s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, ts_access, s,
                                             MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                                             MHD_OPTION_NOTIFY_COMPLETED, ts_completed, s,
                                             MHD_OPTION_END);
        }
        if (!s->daemon)
                return -1;
        info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
        if (!info || info->port == 0)
                return -1;
        s->port = info->port;
        snprintf(s->base, sizeof(s->base), "%s://127.0.0.1:%u", cert_pem ? "https" : "http",
                 (unsigned)s->port);
        return 0;
}

static inline void ts_stop(struct ts_server *s)
{
        if (!s->daemon)
                return;
        atomic_store(&s->stopping, true);
        MHD_stop_daemon(s->daemon);
        s->daemon = NULL;
        pthread_mutex_destroy(&s->lock);
}

static inline char *ts_bio_string(BIO *b)
{
        char *data, *out;
        long n = BIO_get_mem_data(b, &data);

        out = malloc((size_t)n + 1);
        if (!out)
                return NULL;
        memcpy(out, data, (size_t)n);
        out[n] = 0;
        return out;
}

/* A fresh P-256 key and a self-signed certificate for IP 127.0.0.1 named cn, as PEM. */
static inline int ts_make_cert_named(const char *cn, char **ret_cert_pem, char **ret_key_pem)
{
        EVP_PKEY *key = EVP_EC_gen("P-256");
        X509 *x = X509_new();
        X509_NAME *name;
        X509_EXTENSION *ext;
        X509V3_CTX ctx;
        BIO *bc = BIO_new(BIO_s_mem()), *bk = BIO_new(BIO_s_mem());
        int r = -1;

        if (!key || !x || !bc || !bk)
                goto out;
        ASN1_INTEGER_set(X509_get_serialNumber(x), (long)time(NULL));
        X509_gmtime_adj(X509_getm_notBefore(x), -3600);
        X509_gmtime_adj(X509_getm_notAfter(x), 3600);
        X509_set_version(x, 2);
        X509_set_pubkey(x, key);
        name = X509_get_subject_name(x);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                   0);
        X509_set_issuer_name(x, name);
        X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
        ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, "IP:127.0.0.1");
        if (!ext)
                goto out;
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
        if (X509_sign(x, key, EVP_sha256()) <= 0)
                goto out;
        if (PEM_write_bio_X509(bc, x) != 1 ||
            PEM_write_bio_PrivateKey_traditional(bk, key, NULL, NULL, 0, NULL, NULL) != 1)
                goto out;
        *ret_cert_pem = ts_bio_string(bc);
        *ret_key_pem = ts_bio_string(bk);
        r = (*ret_cert_pem && *ret_key_pem) ? 0 : -1;
out:
        BIO_free(bc);
        BIO_free(bk);
        X509_free(x);
        EVP_PKEY_free(key);
        return r;
}

static inline int ts_make_cert(char **ret_cert_pem, char **ret_key_pem)
{
        return ts_make_cert_named("127.0.0.1", ret_cert_pem, ret_key_pem);
}
