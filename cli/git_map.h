/* SPDX-License-Identifier: MIT */
/*
 * The two texts `latchkeyctl credential` reads (no network, no bus, so a fuzzer drives
 * them directly: tests/fuzz/fuzz_git_credential.c):
 *  - git's credential request on standard input (gitcredentials(7), "key=value" lines up
 *    to a blank line or the end): protocol, host and path are used, the rest ignored;
 *  - the admin's map of git hosts to a token (/etc/latchkey/git-credentials.conf, the
 *    grammar of latchkey.conf, one [host] section each, host as git names it, with
 *    ":port" where one is given):
 *        [git.example.com]
 *        scope = openid read_repository   # optional: a narrower token
 *        audience = https://git.example.com # optional: RFC 8707 resource / audience
 *        username = oauth2                # optional; the default is oauth2
 *        min_valid = 60                   # optional: seconds the token must stay valid
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define GIT_REQUEST_MAX (64 * 1024) /* the credential request on stdin, in bytes */
#define GIT_MAP_MAX (256 * 1024)    /* the map file, in bytes */
#define GIT_FIELD_MAX 255           /* protocol, host, and each value of the map */
#define GIT_MAP_PATH "/etc/latchkey/git-credentials.conf"
#define GIT_DEFAULT_USERNAME "oauth2"
#define GIT_DEFAULT_MIN_VALID 60
#define GIT_MIN_VALID_MAX 86400

struct git_request {
        char protocol[GIT_FIELD_MAX + 1];
        char host[GIT_FIELD_MAX + 1];
};

/* Parses the request; false with why (for a person) on a line that is not key=value, a
 * protocol or host too long or holding control characters, or no protocol or host. */
bool git_request_parse(const char *text, size_t len, struct git_request *ret, char *why,
                       size_t why_size);

struct git_host {
        char scope[GIT_FIELD_MAX + 1];    /* "" for the session's own scopes */
        char audience[GIT_FIELD_MAX + 1]; /* "" for none */
        char username[GIT_FIELD_MAX + 1];
        unsigned min_valid;
};

/*
 * Reads the whole map (every line is checked, whichever host is asked) and fills ret with
 * host's section (hosts compared without case). 1 when found, 0 when the map does not
 * name host, -1 with why (naming the line) when the map is wrong.
 */
int git_map_find(const char *text, size_t len, const char *host, struct git_host *ret,
                 char *why, size_t why_size);
