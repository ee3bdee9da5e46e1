/* SPDX-License-Identifier: MIT */
/* The commands about a session: token, status, claims, sessions, logout. */
#include <getopt.h>
#include <jansson.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/latchkeyctl.h"
#include "cli/token_output.h"

#define MIN_VALID_MAX (7 * 24 * 3600)

struct options {
        const char *session_id;
        unsigned min_valid;
        bool json;
        const char *scope, *audience;
        enum token_format format;
};

enum { OPT_SESSION = 0x100, OPT_MIN_VALID, OPT_JSON, OPT_SCOPE, OPT_AUDIENCE, OPT_FORMAT,
       OPT_HELP };

/* The help lines of the options a command takes. */
static int print_help(const char *cmd, const char *allowed)
{
        char text[1024];
        size_t o = 0;

        o += (size_t)snprintf(text + o, sizeof(text) - o, "Options:\n");
        if (strchr(allowed, 's'))
                o += (size_t)snprintf(text + o, sizeof(text) - o,
                                      "  --session ID          the session (default: "
                                      "$LATCHKEY_SESSION, else your newest)\n");
        if (strchr(allowed, 'm'))
                o += (size_t)snprintf(text + o, sizeof(text) - o,
                                      "  --min-valid SECONDS   have the broker refresh first "
                                      "unless the token is valid this long\n");
        if (strchr(allowed, 'j'))
                o += (size_t)snprintf(text + o, sizeof(text) - o,
                                      "  --json                print JSON, for scripts\n");
        if (strchr(allowed, 'c'))
                o += (size_t)snprintf(text + o, sizeof(text) - o,
                                      "  --scope \"S1 S2\"       a token for fewer scopes than the "
                                      "session's\n"
                                      "  --audience AUD        a token for this API (RFC 8707 "
                                      "resource)\n"
                                      "  --format FORMAT       token (default), header, json or "
                                      "kubernetes\n");
        snprintf(text + o, sizeof(text) - o, "  --help                show this help\n");
        return command_help(cmd, text);
}

/*
 * Parses the options a command takes (allowed: "s" --session, "m" --min-valid, "j" --json).
 * Returns -1 to go on, else the exit code.
 */
static int parse_options(const char *cmd, const char *allowed, int argc, char *argv[],
                         struct options *o)
{
        static const struct option longopts[] = {
                { "session", required_argument, NULL, OPT_SESSION },
                { "min-valid", required_argument, NULL, OPT_MIN_VALID },
                { "json", no_argument, NULL, OPT_JSON },
                { "scope", required_argument, NULL, OPT_SCOPE },
                { "audience", required_argument, NULL, OPT_AUDIENCE },
                { "format", required_argument, NULL, OPT_FORMAT },
                { "help", no_argument, NULL, OPT_HELP },
                {},
        };
        int c;

        *o = (struct options){0};
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+", longopts, NULL)) >= 0) {
                switch (c) {
                case OPT_HELP:
                        return print_help(cmd, allowed);
                case OPT_SESSION:
                        if (!strchr(allowed, 's'))
                                return usage_error(cmd, "no --session here");
                        if (isempty(optarg) || strlen(optarg) > LATCHKEY_ID_MAX)
                                return usage_error(cmd, "--session needs an id of 1 to %d bytes",
                                                   LATCHKEY_ID_MAX);
                        o->session_id = optarg;
                        break;
                case OPT_MIN_VALID:
                        if (!strchr(allowed, 'm'))
                                return usage_error(cmd, "no --min-valid here");
                        if (!parse_seconds(optarg, MIN_VALID_MAX, &o->min_valid))
                                return usage_error(cmd, "--min-valid needs seconds, 0 to %d",
                                                   MIN_VALID_MAX);
                        break;
                case OPT_JSON:
                        if (!strchr(allowed, 'j'))
                                return usage_error(cmd, "no --json here");
                        o->json = true;
                        break;
                case OPT_SCOPE:
                case OPT_AUDIENCE:
                        if (!strchr(allowed, 'c'))
                                return usage_error(cmd, "no --%s here", argv[optind - 1] + 2);
                        if (isempty(optarg) || strlen(optarg) > LATCHKEY_ID_MAX)
                                return usage_error(cmd, "--%s needs 1 to %d bytes",
                                                   c == OPT_SCOPE ? "scope" : "audience",
                                                   LATCHKEY_ID_MAX);
                        *(c == OPT_SCOPE ? &o->scope : &o->audience) = optarg;
                        break;
                case OPT_FORMAT:
                        if (!strchr(allowed, 'c'))
                                return usage_error(cmd, "no --format here");
                        if (!token_format_parse(optarg, &o->format))
                                return usage_error(cmd, "--format is token, header, json or "
                                                   "kubernetes, not '%s'", optarg);
                        break;
                default:
                        return usage_error(cmd, "unknown or incomplete option '%s'",
                                           argv[optind - 1]);
                }
        }
        if (optind < argc)
                return usage_error(cmd, "unexpected argument '%s'", argv[optind]);
        return -1;
}

static int open_handle(const char *cmd, struct latchkey **ret)
{
        if (latchkey_open(ret) < 0)
                return fail(cmd, EXIT_ERROR, "out of memory");
        return -1;
}

int cmd_token(int argc, char *argv[])
{
        _cleanup_(latchkey_closep) struct latchkey *lk = NULL;
        _cleanup_free_ char *type = NULL;
        struct options o;
        char *token = NULL, *text;
        int64_t expires_at = 0;
        int r;

        r = parse_options("token", "smc", argc, argv, &o);
        if (r >= 0)
                return r;
        r = open_handle("token", &lk);
        if (r >= 0)
                return r;
        r = latchkey_get_token_for(lk, o.session_id, o.scope, o.audience, o.min_valid, &token,
                                   &expires_at, &type);
        if (r < 0)
                return fail_lk("token", lk, r);
        text = token_format_render(o.format, token, type, expires_at);
        latchkey_free_secret(token);
        if (!text)
                return fail("token", EXIT_ERROR, "out of memory");
        r = write_secret(text);
        lk_secret_free(text);
        if (r < 0)
                return fail("token", EXIT_ERROR, "cannot write the token: %m");
        return EXIT_OK;
}

/* The session the broker means without an id: the caller's most recently opened one. */
static const struct latchkey_session *find_session(const struct latchkey_session *list, size_t n,
                                                   const char *session_id)
{
        const struct latchkey_session *best = NULL;
        uid_t uid = getuid();

        for (size_t i = 0; i < n; i++) {
                if (session_id) {
                        if (streq(list[i].session_id, session_id))
                                return &list[i];
                } else if (list[i].uid == uid && (!best || list[i].opened_at > best->opened_at))
                        best = &list[i];
        }
        return best;
}

static const char *session_from_env(const char *session_id)
{
        const char *e;

        if (session_id)
                return session_id;
        e = getenv("LATCHKEY_SESSION");
        return isempty(e) ? NULL : e;
}

static int strcmp_p(const void *a, const void *b)
{
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void print_json(json_t *j)
{
        /* Non-ASCII as \uXXXX: a bidi override in a claim cannot reorder the terminal. */
        char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);

        if (s) {
                puts(s);
                free(s);
        }
}

/* The user status asks the PIN state of: the session's, else the caller's own. */
static const char *status_user(const struct latchkey_session *s)
{
        const struct passwd *pw;

        if (s)
                return s->user;
        pw = getpwuid(getuid());
        return pw ? pw->pw_name : NULL;
}

/* The PIN line of status, where the broker keeps PINs. */
static void print_pin_line(struct latchkey *lk, const char *user)
{
        struct latchkey_pin_state st;

        if (!user || latchkey_get_pin_state(lk, user, 0, &st) < 0 || !st.enabled)
                return;
        printf("PIN:      ");
        if (streq(st.state, "ready"))
                printf("set; signs you in while the provider cannot be reached, until %s\n",
                       format_time(st.until));
        else if (streq(st.state, "none"))
                printf("none (latchkeyctl pin sets one)\n");
        else if (streq(st.state, "expired"))
                printf("your sign-in has expired: sign in again (the PIN worked until %s)\n",
                       format_time(st.until));
        else if (streq(st.state, "disabled"))
                printf("account disabled at the provider: no PIN until you sign in online\n");
        else if (streq(st.state, "locked"))
                printf("too many wrong PINs: locked until %s\n", format_time(st.locked_until));
        else if (streq(st.state, "spent"))
                printf("too many wrong PINs: sign in online\n");
        else
                printf("%s\n", st.state);
}

/*
 * GetToken failed: the one error line says which failure it is in its own words (issue 21
 * item 3), with the broker's name of it and the exit code of fail_lk().
 */
static int status_failed(struct latchkey *lk, int error, const char *session_id)
{
        _cleanup_free_ char *msg = strdup(latchkey_last_error_message(lk) ?: "");
        struct latchkey_session *list = NULL;
        struct latchkey_pin_state st = {0};
        const struct latchkey_session *s;
        const char *user, *words = NULL;
        char until[96];
        size_t n = 0;
        bool pin_known;

        if (latchkey_list_sessions(lk, &list, &n) < 0) {
                list = NULL;
                n = 0;
        }
        s = find_session(list, n, session_from_env(session_id));
        user = status_user(s);
        pin_known = user && latchkey_get_pin_state(lk, user, 0, &st) == 0 && st.enabled;
        switch (error) {
        case LATCHKEY_ERROR_PROVIDER_UNAVAILABLE:
                if (pin_known && streq(st.state, "ready")) {
                        snprintf(until, sizeof(until), "the provider cannot be reached (offline "
                                 "PIN possible until %s)", format_time(st.until));
                        words = until;
                } else
                        words = "the provider cannot be reached";
                break;
        case LATCHKEY_ERROR_TOKEN_EXPIRED:
                words = pin_known && streq(st.state, "disabled")
                                ? "account disabled at the provider (it refused the last "
                                  "refresh): sign in again online"
                                : "your sign-in has expired: sign in again (latchkeyctl login "
                                  "--session)";
                break;
        case LATCHKEY_ERROR_ACCOUNT_DISABLED:
                words = "account disabled at the provider";
                break;
        default:
                break;
        }
        latchkey_free_sessions(list, n);
        if (!words)
                words = isempty(msg) ? "failed" : msg;
        return fail("status", exit_code_of(error), "%s (%s)", words, latchkey_error_name(error));
}

int cmd_status(int argc, char *argv[])
{
        _cleanup_(latchkey_closep) struct latchkey *lk = NULL;
        _cleanup_free_ char *type = NULL, *version = NULL;
        struct latchkey_session *list = NULL;
        const struct latchkey_session *s;
        const char *sid;
        struct options o;
        int64_t expires_at = 0, now = time(NULL);
        size_t n = 0;
        int r;

        r = parse_options("status", "sj", argc, argv, &o);
        if (r >= 0)
                return r;
        r = open_handle("status", &lk);
        if (r >= 0)
                return r;
        /* GetToken first: it refreshes when needed, and fails for an expired session. */
        r = latchkey_get_token(lk, o.session_id, 0, NULL, &expires_at, &type);
        if (r < 0)
                return o.json ? fail_lk("status", lk, r) : status_failed(lk, r, o.session_id);
        r = latchkey_list_sessions(lk, &list, &n);
        if (r < 0)
                return fail_lk("status", lk, r);
        sid = session_from_env(o.session_id);
        s = find_session(list, n, sid);
        if (latchkey_broker_version(lk, &version) < 0)
                version = NULL; /* an old broker; nothing to worry about */

        if (o.json) {
                _cleanup_(json_decrefp) json_t *j = json_pack(
                        "{s:s?, s:s?, s:o?, s:I, s:I, s:s, s:s?}",
                        "session_id", s ? s->session_id : sid,
                        "user", s ? s->user : NULL,
                        "uid", s ? json_integer(s->uid) : NULL,
                        "opened_at", (json_int_t)(s ? s->opened_at : 0),
                        "expires_at", (json_int_t)expires_at,
                        "token_type", type,
                        "broker_version", version);
                if (!j) {
                        latchkey_free_sessions(list, n);
                        return fail("status", EXIT_ERROR, "out of memory");
                }
                print_json(j);
        } else {
                printf("Session:  ");
                print_sanitized(stdout, s ? s->session_id : sid ? sid : "(the newest)");
                if (s) {
                        printf("\nUser:     ");
                        print_sanitized(stdout, s->user);
                        printf(" (uid %u)\nOpened:   %s", s->uid, format_time(s->opened_at));
                }
                printf("\nToken:    %s, ", type);
                if (expires_at == 0)
                        printf("no stated expiry\n");
                else
                        printf("valid until %s (%lld s from now)\n", format_time(expires_at),
                               (long long)(expires_at - now));
                print_pin_line(lk, status_user(s));
                if (version)
                        printf("Broker:   latchkeyd %s\n", version);
        }
        latchkey_free_sessions(list, n);
        return EXIT_OK;
}

int cmd_claims(int argc, char *argv[])
{
        _cleanup_(latchkey_closep) struct latchkey *lk = NULL;
        _cleanup_(json_decrefp) json_t *claims = NULL;
        _cleanup_free_ char *text = NULL;
        json_error_t jerr;
        struct options o;
        const char *key;
        json_t *value;
        int r;

        r = parse_options("claims", "sj", argc, argv, &o);
        if (r >= 0)
                return r;
        r = open_handle("claims", &lk);
        if (r >= 0)
                return r;
        r = latchkey_get_claims(lk, o.session_id, &text);
        if (r < 0)
                return fail_lk("claims", lk, r);
        claims = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_object(claims))
                return fail("claims", EXIT_ERROR, "the broker's claims are not a JSON object");

        if (o.json) {
                print_json(claims);
                return EXIT_OK;
        }
        /* One claim a line, strings as they are (cleaned for the terminal), the rest as JSON. */
        {
                const char **keys = calloc(json_object_size(claims) + 1, sizeof(*keys));
                size_t n = 0;

                if (!keys)
                        return fail("claims", EXIT_ERROR, "out of memory");
                json_object_foreach(claims, key, value)
                        keys[n++] = key;
                qsort(keys, n, sizeof(*keys), strcmp_p);
                for (size_t i = 0; i < n; i++) {
                        json_t *v = json_object_get(claims, keys[i]);
                        char *dumped = NULL;

                        print_sanitized(stdout, keys[i]);
                        fputs(": ", stdout);
                        if (json_is_string(v))
                                print_sanitized(stdout, json_string_value(v));
                        else {
                                dumped = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY |
                                                           JSON_ENSURE_ASCII);
                                print_sanitized(stdout, dumped ? dumped : "?");
                                free(dumped);
                        }
                        fputc('\n', stdout);
                }
                free(keys);
        }
        return EXIT_OK;
}

int cmd_sessions(int argc, char *argv[])
{
        _cleanup_(latchkey_closep) struct latchkey *lk = NULL;
        struct latchkey_session *list = NULL;
        struct options o;
        size_t n = 0;
        int r;

        r = parse_options("sessions", "j", argc, argv, &o);
        if (r >= 0)
                return r;
        r = open_handle("sessions", &lk);
        if (r >= 0)
                return r;
        r = latchkey_list_sessions(lk, &list, &n);
        if (r < 0)
                return fail_lk("sessions", lk, r);

        if (o.json) {
                _cleanup_(json_decrefp) json_t *a = json_array();

                for (size_t i = 0; a && i < n; i++)
                        if (json_array_append_new(a, json_pack("{s:s, s:s, s:I, s:I, s:I}",
                                        "session_id", list[i].session_id,
                                        "user", list[i].user,
                                        "uid", (json_int_t)list[i].uid,
                                        "opened_at", (json_int_t)list[i].opened_at,
                                        "expires_at", (json_int_t)list[i].expires_at)) < 0) {
                                json_decref(a);
                                a = NULL;
                        }
                latchkey_free_sessions(list, n);
                if (!a)
                        return fail("sessions", EXIT_ERROR, "out of memory");
                print_json(a);
                return EXIT_OK;
        }

        if (n == 0)
                printf("No sessions.\n");
        else
                printf("%-24s %-16s %10s  %-23s  %s\n", "SESSION", "USER", "UID", "OPENED",
                       "TOKEN EXPIRES");
        for (size_t i = 0; i < n; i++) {
                print_sanitized(stdout, list[i].session_id);
                printf("%*s ", (int)(strlen(list[i].session_id) < 24
                                     ? 24 - strlen(list[i].session_id) : 0), "");
                print_sanitized(stdout, list[i].user);
                printf("%*s ", (int)(strlen(list[i].user) < 16 ? 16 - strlen(list[i].user) : 0),
                       "");
                printf("%10u  %-23s  ", list[i].uid, format_time(list[i].opened_at));
                printf("%s\n", format_time(list[i].expires_at));
        }
        latchkey_free_sessions(list, n);
        return EXIT_OK;
}

int cmd_logout(int argc, char *argv[])
{
        _cleanup_(latchkey_closep) struct latchkey *lk = NULL;
        _cleanup_free_ char *picked = NULL;
        const char *sid;
        struct options o;
        int r;

        r = parse_options("logout", "s", argc, argv, &o);
        if (r >= 0)
                return r;
        r = open_handle("logout", &lk);
        if (r >= 0)
                return r;
        sid = session_from_env(o.session_id);
        if (!sid) {
                /* CloseSession has no default: take the one GetToken would. */
                struct latchkey_session *list = NULL;
                const struct latchkey_session *s;
                size_t n = 0;

                r = latchkey_list_sessions(lk, &list, &n);
                if (r < 0)
                        return fail_lk("logout", lk, r);
                s = find_session(list, n, NULL);
                if (s)
                        picked = strdup(s->session_id);
                latchkey_free_sessions(list, n);
                if (!s)
                        return fail("logout", EXIT_NO_SESSION, "you have no session (NotFound)");
                if (!picked)
                        return fail("logout", EXIT_ERROR, "out of memory");
                sid = picked;
        }
        r = latchkey_close_session(lk, sid);
        if (r < 0)
                return fail_lk("logout", lk, r);
        printf("Closed session ");
        print_sanitized(stdout, sid);
        printf(".\n");
        return EXIT_OK;
}
