/* SPDX-License-Identifier: MIT */
/*
 * latchkeyctl check-config [PATH]: loads the configuration with the broker's
 * own loader and prints every problem as FILE:LINE: [section] key: message;
 * then fetches discovery and keys the way latchkeyd does (lk_provider_prepare)
 * and, from the raw documents, says what does not match: issuer, endpoints
 * set by hand, id_token algorithms, keys, TLS trust.
 *
 * The secret itself is read (the loader checks who may read its file) but
 * never printed; only where it came from.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/latchkeyctl.h"
#include "oidc/accounts_check.h"
#include "oidc/usermap.h"
#include "oidc/config.h"
#include "oidc/discovery.h"
#include "oidc/http.h"
#include "oidc/jwks.h"
#include "oidc/log.h"
#include "oidc/provider.h"

enum level { LEVEL_OK, LEVEL_WARNING, LEVEL_ERROR };

struct report {
        bool json;
        bool failed;
        json_t *problems; /* config problems, for --json */
        json_t *checks;   /* {check, level, message}, for --json */
};

static void check(struct report *rep, const char *name, enum level level, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/* One finding: "ok|warning|error  name: message" for a person, or a JSON object. */
static void check(struct report *rep, const char *name, enum level level, const char *fmt, ...)
{
        static const char *const level_name[] = { "ok", "warning", "error" };
        char msg[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (level == LEVEL_ERROR)
                rep->failed = true;
        if (rep->json) {
                json_array_append_new(rep->checks, json_pack("{s:s, s:s, s:s}", "check", name,
                                                             "level", level_name[level],
                                                             "message", msg));
                return;
        }
        printf("%-8s %s: ", level_name[level], name);
        print_sanitized(stdout, msg);
        fputc('\n', stdout);
}

/* ---- one HTTP GET, run to completion ---- */

struct fetch {
        bool done;
        long status;
        char *body;
        size_t len;
        long max_age;
        struct lk_error err;
};

static void fetch_done(void *userdata, const struct lk_http_response *resp,
                       const struct lk_error *err)
{
        struct fetch *f = userdata;

        f->done = true;
        if (!resp) {
                f->err = *err;
                return;
        }
        f->status = resp->status;
        f->max_age = resp->max_age;
        f->body = malloc(resp->body_len + 1);
        if (!f->body) {
                lk_error_set(&f->err, LK_ERR_NOMEM, "Out of memory");
                return;
        }
        memcpy(f->body, resp->body, resp->body_len);
        f->body[resp->body_len] = '\0';
        f->len = resp->body_len;
}

/* 0 with f filled (any HTTP status), or -1 with f->err saying why. */
static int fetch(const struct lk_config *c, const char *url, struct fetch *f)
{
        _cleanup_(lk_http_freep) struct lk_http *h = NULL;
        struct lk_http_request req = {
                .url = url,
                .ca_file = c->ca_file,
                .timeout = c->timeout ? c->timeout : 15,
        };

        *f = (struct fetch){0};
        if (lk_http_new(&h) < 0) {
                lk_error_set(&f->err, LK_ERR_NOMEM, "Out of memory");
                return -1;
        }
        if (lk_http_submit(h, &req, fetch_done, f, &f->err) < 0)
                return -1;
        if (lk_http_run(h) < 0 && !f->done) {
                lk_error_set(&f->err, LK_ERR_IO, "the HTTP exchange with %s did not finish", url);
                return -1;
        }
        return f->body ? 0 : -1;
}

static void fetch_clear(struct fetch *f)
{
        free(f->body);
        f->body = NULL;
}

/* A transport failure: name TLS trust problems as such. */
static void report_transport(struct report *rep, const struct lk_config *c, const char *what,
                             const struct lk_error *err)
{
        const char *m = err->message;

        if (strstr(m, "SSL") || strstr(m, "certificate") || strstr(m, "TLS"))
                check(rep, "tls", LEVEL_ERROR,
                      "the provider's certificate is not trusted (%s); %s", m,
                      c->ca_file ? "ca_file does not vouch for it"
                                 : "set ca_file to the CA bundle that issued it");
        else
                check(rep, what, LEVEL_ERROR, "%s", m);
}

/* ---- the checks ---- */

static void check_secret(struct report *rep, const struct lk_config *c)
{
        struct stat st;

        if (!c->client_secret) {
                if (c->algorithms & (LK_ALG_HS256 | LK_ALG_HS384 | LK_ALG_HS512))
                        check(rep, "client_secret", LEVEL_ERROR,
                              "id_token_algorithms allows HS*, which needs a client secret");
                else
                        check(rep, "client_secret", LEVEL_WARNING,
                              "no client secret: the provider must accept a public client");
                return;
        }
        /* The loader already refused a secret open to others; say where it came from. */
        if (c->client_secret_source && c->client_secret_source[0] == '/' &&
            stat(c->client_secret_source, &st) == 0)
                check(rep, "client_secret", LEVEL_OK, "read from %s (mode %04o, uid %u)",
                      c->client_secret_source, (unsigned)(st.st_mode & 07777),
                      (unsigned)st.st_uid);
        else
                check(rep, "client_secret", LEVEL_OK, "read from %s",
                      c->client_secret_source ? c->client_secret_source : "the configuration");
}

static const char *const endpoint_names[] = {
        "authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint",
        "revocation_endpoint",
};

static const char *configured_endpoint(const struct lk_config *c, size_t i)
{
        const char *v[] = { c->authorization_endpoint, c->token_endpoint, c->jwks_uri,
                            c->userinfo_endpoint, c->revocation_endpoint };
        return v[i];
}

static void check_algorithms(struct report *rep, const struct lk_config *c, json_t *offered)
{
        char offered_text[512] = "", allowed_text[256] = "";
        unsigned usable = 0;
        size_t i, o = 0;
        json_t *v;

        for (unsigned bit = 1; bit <= LK_ALG_HS512; bit <<= 1)
                if ((c->algorithms & bit) && lk_alg_name(bit))
                        o += (size_t)snprintf(allowed_text + o,
                                              o < sizeof(allowed_text) ? sizeof(allowed_text) - o
                                                                       : 0,
                                              "%s%s", o ? " " : "", lk_alg_name(bit));
        if (!json_is_array(offered)) {
                check(rep, "algorithms", LEVEL_WARNING,
                      "the discovery document has no id_token_signing_alg_values_supported; "
                      "configured: %s", allowed_text);
                return;
        }
        o = 0;
        json_array_foreach(offered, i, v) {
                const char *name = json_string_value(v);

                if (!name)
                        continue;
                usable |= c->algorithms & lk_alg_from_name(name);
                if (o < sizeof(offered_text))
                        o += (size_t)snprintf(offered_text + o, sizeof(offered_text) - o, "%s%s",
                                              o ? " " : "", name);
        }
        if (!usable)
                check(rep, "algorithms", LEVEL_ERROR,
                      "the provider signs id_tokens with %s; id_token_algorithms allows none of "
                      "them (%s)", *offered_text ? offered_text : "nothing", allowed_text);
        else
                check(rep, "algorithms", LEVEL_OK, "provider offers %s; configured %s",
                      offered_text, allowed_text);
}

/*
 * Which grants this provider offers (doc: the discovery document, NULL with discovery = no):
 * the code flow where an authorization endpoint is known, the device flow (RFC 8628) where a
 * device authorization endpoint is; and which one [provider] flow picks.
 */
static void check_flows(struct report *rep, const struct lk_config *c, json_t *doc)
{
        const char *authz = !isempty(c->authorization_endpoint)
                                ? c->authorization_endpoint
                                : json_string_value(json_object_get(doc, "authorization_endpoint"));
        const char *device =
                !isempty(c->device_authorization_endpoint)
                        ? c->device_authorization_endpoint
                        : json_string_value(json_object_get(doc, "device_authorization_endpoint"));
        struct lk_endpoints ep = {.device_authorization_endpoint = (char *)device};
        enum lk_flow used = lk_endpoints_flow(c, &ep);
        const char *used_name = used == LK_FLOW_DEVICE ? "device" : "code";

        if (used == LK_FLOW_DEVICE && !device)
                check(rep, "flow", LEVEL_ERROR,
                      "flow = device, but the provider offers no device authorization endpoint "
                      "(set device_authorization_endpoint, or flow = code)");
        else if (used == LK_FLOW_CODE && !authz)
                check(rep, "flow", LEVEL_ERROR, "the code flow needs an authorization endpoint");
        else
                check(rep, "flow", LEVEL_OK, "the provider offers %s%s%s; logins use the %s flow%s",
                      authz ? "the code flow" : "", authz && device ? " and " : "",
                      device ? "the device flow (RFC 8628)" : "", used_name,
                      c->flow == LK_FLOW_AUTO ? " (flow = auto)" : "");
}

/* The raw discovery document against the configuration. */
static void check_discovery(struct report *rep, const struct lk_config *c)
{
        _cleanup_free_ char *url = NULL;
        _cleanup_(json_decrefp) json_t *doc = NULL;
        struct lk_error e = {0};
        struct fetch f;
        const char *iss;

        if (!c->discovery) {
                check(rep, "discovery", LEVEL_OK, "off: endpoints are set by hand");
                check_flows(rep, c, NULL);
                return;
        }
        if (lk_discovery_url(c->issuer, &url, &e) < 0) {
                check(rep, "discovery", LEVEL_ERROR, "%s", e.message);
                return;
        }
        if (fetch(c, url, &f) < 0) {
                report_transport(rep, c, "discovery", &f.err);
                fetch_clear(&f);
                return;
        }
        check(rep, "tls", LEVEL_OK, "the provider's certificate is trusted (%s)",
              c->ca_file ? c->ca_file : "the system's CA store");
        if (f.status != 200) {
                check(rep, "discovery", LEVEL_ERROR, "%s answered HTTP %ld", url, f.status);
                fetch_clear(&f);
                return;
        }
        doc = json_loadb(f.body, f.len, JSON_REJECT_DUPLICATES, NULL);
        fetch_clear(&f);
        if (!json_is_object(doc)) {
                check(rep, "discovery", LEVEL_ERROR, "%s is not a JSON object", url);
                return;
        }
        check(rep, "discovery", LEVEL_OK, "fetched %s", url);

        iss = json_string_value(json_object_get(doc, "issuer"));
        if (!iss)
                check(rep, "issuer", LEVEL_ERROR, "the discovery document names no issuer");
        else if (!streq_ptr(iss, c->issuer))
                check(rep, "issuer", LEVEL_ERROR,
                      "the discovery document names issuer %s, but the configuration says %s "
                      "(they must be equal, character for character)", iss, c->issuer);
        else
                check(rep, "issuer", LEVEL_OK, "%s", iss);

        for (size_t i = 0; i < ELEMENTSOF(endpoint_names); i++) {
                const char *mine = configured_endpoint(c, i);
                const char *theirs = json_string_value(json_object_get(doc, endpoint_names[i]));
                bool required = i < 3;

                if (!isempty(mine) && theirs && !streq(mine, theirs))
                        check(rep, endpoint_names[i], LEVEL_WARNING,
                              "set by hand to %s, but discovery says %s (the one set by hand "
                              "is used)", mine, theirs);
                else if (isempty(mine) && !theirs && required)
                        check(rep, endpoint_names[i], LEVEL_ERROR,
                              "neither set by hand nor in the discovery document");
                else if (isempty(mine) && !theirs && i == 4 && c->revoke_on_close)
                        check(rep, endpoint_names[i], LEVEL_WARNING,
                              "revoke_on_close is set, but no revocation endpoint is known");
        }
        check_algorithms(rep, c, json_object_get(doc, "id_token_signing_alg_values_supported"));
        check_flows(rep, c, doc);
}

struct prepare {
        bool done;
        struct lk_error err;
};

static void prepare_done(void *userdata, const struct lk_error *err)
{
        struct prepare *p = userdata;

        p->done = true;
        if (err)
                p->err = *err;
}

/* The keys behind jwks_uri: usable ones, and a family for each configured algorithm. */
static void check_keys(struct report *rep, const struct lk_config *c, const char *jwks_uri)
{
        _cleanup_(lk_jwks_freep) struct lk_jwks *keys = NULL;
        struct lk_error e = {0};
        struct fetch f;
        size_t rsa = 0, ec = 0;
        unsigned want_rsa = LK_ALG_RS256 | LK_ALG_RS384 | LK_ALG_RS512;
        unsigned want_ec = LK_ALG_ES256 | LK_ALG_ES384 | LK_ALG_ES512;

        if (fetch(c, jwks_uri, &f) < 0) {
                report_transport(rep, c, "keys", &f.err);
                fetch_clear(&f);
                return;
        }
        if (f.status != 200) {
                check(rep, "keys", LEVEL_ERROR, "%s answered HTTP %ld", jwks_uri, f.status);
                fetch_clear(&f);
                return;
        }
        if (lk_jwks_parse(f.body, f.len, &keys, &e) < 0) {
                check(rep, "keys", LEVEL_ERROR, "%s: %s", jwks_uri, e.message);
                fetch_clear(&f);
                return;
        }
        fetch_clear(&f);
        for (size_t i = 0; i < keys->n; i++) {
                if (keys->keys[i].kty == LK_KTY_RSA)
                        rsa++;
                else if (keys->keys[i].kty == LK_KTY_EC)
                        ec++;
        }
        if ((c->algorithms & (want_rsa | want_ec)) &&
            !((c->algorithms & want_rsa) && rsa) && !((c->algorithms & want_ec) && ec))
                check(rep, "keys", LEVEL_ERROR,
                      "%s has %zu RSA and %zu EC keys, none for the algorithms configured",
                      jwks_uri, rsa, ec);
        else
                check(rep, "keys", LEVEL_OK, "%zu usable keys at %s (%zu RSA, %zu EC)", keys->n,
                      jwks_uri, rsa, ec);
}

/* What latchkeyd will do: lk_provider_prepare, discovery and keys. */
static void check_provider(struct report *rep, const struct lk_config *c)
{
        _cleanup_(lk_http_freep) struct lk_http *h = NULL;
        struct lk_provider *p = NULL;
        struct prepare st = {0};
        struct lk_error e = {0};
        const struct lk_endpoints *ep;

        if (lk_http_new(&h) < 0 || lk_provider_new(c, h, NULL, &p, &e) < 0) {
                check(rep, "provider", LEVEL_ERROR, "%s", *e.message ? e.message : "out of memory");
                return;
        }
        if (lk_provider_prepare(p, prepare_done, &st) < 0 || lk_http_run(h) < 0 || !st.done) {
                check(rep, "provider", LEVEL_ERROR, "cannot fetch discovery and keys");
                lk_provider_free(p);
                return;
        }
        if (st.err.code) {
                check(rep, "provider", LEVEL_ERROR, "latchkeyd would fail: %s", st.err.message);
                lk_provider_free(p);
                return;
        }
        ep = lk_provider_endpoints(p);
        check(rep, "provider", LEVEL_OK, "discovery and keys fetched as latchkeyd does");
        if (ep && ep->jwks_uri)
                check_keys(rep, c, ep->jwks_uri);
        lk_provider_free(p);
}

static void accounts_problem(void *userdata, const char *message)
{
        check(userdata, "accounts", LEVEL_ERROR, "%s", message);
}

/* [accounts] against this host: login.defs' range, the local users and groups (issue 20). */
static void check_accounts(struct report *rep, const struct lk_config *c)
{
        if (!c->nss)
                return;
        if (lk_accounts_check_host(c, LK_LOGIN_DEFS_PATH, "/etc/passwd", "/etc/group",
                                   accounts_problem, rep) == 0)
                check(rep, "accounts", LEVEL_OK,
                      "uids %u..%u meet no local user, group or login.defs range", c->uid_min,
                      c->uid_max);
}

static int load(struct report *rep, const char *path, struct lk_config **ret)
{
        struct lk_config_problems problems = {0};
        struct lk_error e = {0};
        int r;

        r = lk_config_load(path, ret, &problems, &e);
        if (r >= 0) {
                lk_config_problems_clear(&problems);
                return 0;
        }
        rep->failed = true;
        for (size_t i = 0; i < problems.n; i++) {
                const struct lk_config_problem *p = &problems.items[i];

                if (rep->json) {
                        json_array_append_new(rep->problems,
                                              json_pack("{s:s?, s:I, s:s?, s:s?, s:s?}",
                                                        "file", p->file,
                                                        "line", (json_int_t)p->line,
                                                        "section", p->section,
                                                        "key", p->key,
                                                        "message", p->message));
                } else {
                        _cleanup_free_ char *s = lk_config_problem_string(p);

                        print_sanitized(stdout, s ? s : p->message);
                        fputc('\n', stdout);
                }
        }
        if (problems.n == 0) {
                if (rep->json)
                        json_array_append_new(rep->problems,
                                              json_pack("{s:s, s:I, s:s}", "file", path,
                                                        "line", (json_int_t)0,
                                                        "message", e.message));
                else {
                        print_sanitized(stdout, e.message);
                        fputc('\n', stdout);
                }
        }
        lk_config_problems_clear(&problems);
        return -1;
}

int cmd_check_config(int argc, char *argv[])
{
        static const struct option longopts[] = {
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        static const char help[] =
                "PATH defaults to " LK_CONFIG_PATH " (and its .d/ *.conf).\n"
                "Prints every problem of the file as FILE:LINE: [section] key: message; then\n"
                "fetches the provider's discovery document and keys and reports what does not\n"
                "match. Run it as root (or the broker's user): the client secret must be\n"
                "readable.\n\n"
                "Options:\n"
                "  --json   print {\"ok\":..., \"problems\":[...], \"checks\":[...]}\n"
                "  --help   show this help\n";
        _cleanup_(lk_config_freep) struct lk_config *c = NULL;
        _cleanup_(json_decrefp) json_t *problems = json_array(), *checks = json_array();
        struct report rep = { .problems = problems, .checks = checks };
        const char *path = LK_CONFIG_PATH;
        int opt;

        opterr = 0;
        while ((opt = getopt_long(argc, argv, "+", longopts, NULL)) >= 0) {
                switch (opt) {
                case 'h':
                        return command_help("check-config", help);
                case 'j':
                        rep.json = true;
                        break;
                default:
                        return usage_error("check-config", "unknown option '%s'",
                                           argv[optind - 1]);
                }
        }
        if (optind < argc - 1)
                return usage_error("check-config", "takes at most one PATH");
        if (optind == argc - 1)
                path = argv[optind];
        if (!problems || !checks)
                return fail("check-config", EXIT_ERROR, "out of memory");
        lk_log_open("latchkeyctl", true, false);

        if (load(&rep, path, &c) == 0) {
                check(&rep, "config", LEVEL_OK, "%s: issuer %s, client_id %s", path, c->issuer,
                      c->client_id);
                check_secret(&rep, c);
                check_accounts(&rep, c);
                check_discovery(&rep, c);
                check_provider(&rep, c);
        }

        if (rep.json) {
                _cleanup_(json_decrefp) json_t *j = json_pack("{s:s, s:b, s:O, s:O}",
                                                              "config", path, "ok", !rep.failed,
                                                              "problems", problems,
                                                              "checks", checks);
                char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;

                if (!s)
                        return fail("check-config", EXIT_ERROR, "out of memory");
                puts(s);
                free(s);
        } else if (rep.failed)
                fprintf(stderr, "%s check-config: %s has problems\n", program_name, path);
        return rep.failed ? EXIT_ERROR : EXIT_OK;
}
