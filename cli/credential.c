/* SPDX-License-Identifier: MIT */
/*
 * `latchkeyctl credential get|store|erase`: a git credential helper (gitcredentials(7)).
 * For a host the admin maps to a token (cli/git_map.h), get answers the session's token
 * as the password, with password_expiry_utc; for any other host it answers nothing, so git
 * asks its next helper. store and erase are no-ops: the broker keeps the tokens. The token
 * goes to git on standard output, never in argv.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/git_map.h"
#include "cli/latchkeyctl.h"
#include "cli/token_output.h"
#include "oidc/fileio.h"
#include "oidc/error.h"
#include "oidc/url_policy.h"

/* Reads standard input whole (at most GIT_REQUEST_MAX bytes); NULL when too long. */
static char *read_request(size_t *ret_len)
{
        size_t len = 0, cap = GIT_REQUEST_MAX + 1;
        char *buf = malloc(cap);

        if (!buf)
                return NULL;
        for (;;) {
                ssize_t n = read(STDIN_FILENO, buf + len, cap - len);

                if (n < 0) {
                        explicit_bzero(buf, cap);
                        free(buf);
                        return NULL;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
                if (len == cap) { /* over the cap */
                        explicit_bzero(buf, cap);
                        free(buf);
                        return NULL;
                }
        }
        *ret_len = len;
        return buf;
}

/* http only where nobody but this host can listen in: the URL policy of the endpoints. */
static bool protocol_allowed(const struct git_request *rq)
{
        if (streq(rq->protocol, "https"))
                return true;
        if (!streq(rq->protocol, "http"))
                return false;
        {
                char host[GIT_FIELD_MAX + 1];
                char *colon;

                snprintf(host, sizeof(host), "%s", rq->host);
                colon = strrchr(host, ':');
                if (colon && !strchr(colon, ']'))
                        *colon = 0;
                return lk_host_is_loopback(host);
        }
}

static int credential_get(const char *map_path)
{
        _cleanup_free_ char *map = NULL, *type = NULL;
        _cleanup_(latchkey_closep) struct latchkey *lk = NULL;
        struct lk_error e = {0};
        struct git_request rq;
        struct git_host h;
        char why[256], when[64], head[GIT_FIELD_MAX + 64];
        char *request, *token = NULL;
        int64_t expires_at = 0;
        size_t len = 0, map_len = 0;
        int r;

        request = read_request(&len);
        if (!request)
                return fail("credential", EXIT_ERROR, "cannot read git's request (at most %d "
                            "bytes on standard input)", GIT_REQUEST_MAX);
        /* A request may hold a password git knows: it is read, used for nothing, wiped. */
        r = git_request_parse(request, len, &rq, why, sizeof(why));
        explicit_bzero(request, len);
        free(request);
        if (!r)
                return fail("credential", EXIT_ERROR, "git's request: %s", why);

        r = lk_read_private_file(map_path, 0, GIT_MAP_MAX, &map, &map_len, NULL, &e);
        if (r == -LK_ERR_NOT_FOUND)
                return EXIT_OK; /* no host is mapped */
        if (r < 0)
                return fail("credential", EXIT_ERROR, "%s", e.message);
        r = git_map_find(map, map_len, rq.host, &h, why, sizeof(why));
        if (r < 0)
                return fail("credential", EXIT_ERROR, "%s: %s", map_path, why);
        if (r == 0)
                return EXIT_OK; /* not ours: git asks its next helper */
        if (!protocol_allowed(&rq))
                return fail("credential", EXIT_ERROR, "no token for %s over %s: only https "
                            "(or http to this machine)", rq.host, rq.protocol);

        if (latchkey_open(&lk) < 0)
                return fail("credential", EXIT_ERROR, "out of memory");
        r = latchkey_get_token_for(lk, NULL, h.scope, h.audience, h.min_valid, &token,
                                   &expires_at, &type);
        if (r < 0)
                return fail_lk("credential", lk, r);
        snprintf(head, sizeof(head), "username=%s\npassword=", h.username);
        r = write_secret(head) < 0 || write_secret(token) < 0 ? -1 : 0;
        latchkey_free_secret(token);
        if (r == 0 && expires_at > 0) {
                snprintf(when, sizeof(when), "\npassword_expiry_utc=%lld", (long long)expires_at);
                r = write_secret(when);
        }
        if (r == 0)
                r = write_secret("\n");
        if (r < 0)
                return fail("credential", EXIT_ERROR, "cannot write the answer: %m");
        return EXIT_OK;
}

int cmd_credential(int argc, char *argv[])
{
        static const struct option longopts[] = {
                { "map", required_argument, NULL, 'm' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *map_path = GIT_MAP_PATH;
        int c;

        opterr = 0;
        while ((c = getopt_long(argc, argv, "+", longopts, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        return command_help("credential",
                                            "Options:\n"
                                            "  --map FILE            the hosts and their tokens "
                                            "(default " GIT_MAP_PATH ")\n"
                                            "  --help                show this help\n"
                                            "\nIn ~/.gitconfig:\n"
                                            "  [credential \"https://git.example.com\"]\n"
                                            "          helper = /usr/bin/latchkeyctl "
                                            "credential\n");
                case 'm':
                        map_path = optarg;
                        break;
                default:
                        return usage_error("credential", "unknown or incomplete option '%s'",
                                           argv[optind - 1]);
                }
        }
        if (optind + 1 != argc)
                return usage_error("credential", "one action: get, store or erase");
        if (streq(argv[optind], "get"))
                return credential_get(map_path);
        if (streq(argv[optind], "store") || streq(argv[optind], "erase")) {
                /* The broker keeps the tokens; git's request is read and dropped. */
                char buf[4096];
                ssize_t n;

                while ((n = read(STDIN_FILENO, buf, sizeof(buf))) > 0)
                        explicit_bzero(buf, (size_t)n);
                return EXIT_OK;
        }
        return usage_error("credential", "unknown action '%s' (get, store or erase)",
                           argv[optind]);
}
