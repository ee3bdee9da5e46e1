/* SPDX-License-Identifier: MIT */
/*
 * latchkeyctl login USER: the whole login flow at a terminal, without PAM,
 * for admins trying a configuration: BeginLogin, the address (and a QR code
 * of it), then the same ways to finish as pam_latchkey: the device flow waits
 * for the approval (WaitLogin, nothing typed), the code flow takes the person's
 * answer (CompleteLogin), or Enter where the broker receives the redirect
 * itself; then OpenSession under a random id.
 * The person-facing text goes to stderr; stdout gets only the session id.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/qr.h"
#include "cli/latchkeyctl.h"

static const char options_help[] =
        "Shows the address to open in a browser (and a QR code of it). With the device\n"
        "flow ([provider] flow in latchkey.conf(5)) it also shows the code to confirm\n"
        "there and waits for the sign-in; with the code flow it asks for the code, or\n"
        "the whole address the browser was sent back to, on stdin (Enter alone where\n"
        "the broker receives the redirect itself).\n"
        "Prints the new session's id on stdout; use it as LATCHKEY_SESSION.\n\n"
        "With --session, signs in again inside a session whose sign-in expired: the\n"
        "user is the session's, and the new tokens go to the same session id\n"
        "($LATCHKEY_SESSION, else your newest session), with no new PAM session. On a\n"
        "desktop ($DISPLAY or $WAYLAND_DISPLAY) the address is also opened in the\n"
        "browser (xdg-open, through a private file: the address never goes into argv).\n\n"
        "Options:\n"
        "  --session   renew the current session instead of opening a new one\n"
        "  --no-browser  with --session: do not open the browser\n"
        "  --no-qr     do not draw the QR code\n"
        "  --help      show this help\n";

int read_answer(int fd, char **ret)
{
        char *buf = calloc(1, LATCHKEY_ANSWER_MAX + 1);
        size_t len = 0;
        bool too_long = false;

        if (!buf)
                return -ENOMEM;
        for (;;) {
                char c;
                ssize_t n = read(fd, &c, 1);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        int r = -errno;

                        latchkey_free_secret(buf);
                        return r;
                }
                if (n == 0 || c == '\n')
                        break;
                if (len == LATCHKEY_ANSWER_MAX)
                        too_long = true;
                else
                        buf[len++] = c;
        }
        if (too_long) {
                latchkey_free_secret(buf);
                return -E2BIG;
        }
        /* Strip surrounding white space (a pasted line often has some). */
        while (len > 0 && strchr(" \t\r", buf[len - 1]))
                buf[--len] = '\0';
        {
                size_t skip = strspn(buf, " \t\r");

                memmove(buf, buf + skip, len - skip + 1);
                len -= skip;
        }
        if (len == 0) {
                latchkey_free_secret(buf);
                return -ENODATA;
        }
        *ret = buf;
        return 0;
}

/* "lk-" and 16 random hex digits: within OpenSession's [A-Za-z0-9._-]{1,64}. */
static int random_session_id(char ret[static 20])
{
        unsigned char b[8];
        size_t o = 0;

        if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
                return -errno;
        memcpy(ret, "lk-", 3);
        o = 3;
        for (size_t i = 0; i < sizeof(b); i++) {
                ret[o++] = "0123456789abcdef"[b[i] >> 4];
                ret[o++] = "0123456789abcdef"[b[i] & 15];
        }
        ret[o] = '\0';
        return 0;
}

/*
 * --session: the session to renew ($LATCHKEY_SESSION, else the caller's newest) and its user.
 * -1 to go on, else the exit code.
 */
static int renew_target(struct latchkey *lk, char **ret_id, char **ret_user)
{
        struct latchkey_session *list = NULL, *pick = NULL;
        const char *want = getenv("LATCHKEY_SESSION");
        size_t n = 0;
        int r;

        r = latchkey_list_sessions(lk, &list, &n);
        if (r < 0)
                return fail_lk("login", lk, r);
        for (size_t i = 0; i < n; i++) {
                if (list[i].uid != getuid())
                        continue;
                if (!isempty(want) ? streq(list[i].session_id, want)
                                   : (!pick || list[i].opened_at > pick->opened_at))
                        pick = &list[i];
        }
        if (!pick) {
                latchkey_free_sessions(list, n);
                return fail("login", EXIT_NO_SESSION, "no session of yours to renew%s",
                            isempty(want) ? "" : " ($LATCHKEY_SESSION names none)");
        }
        *ret_id = strdup(pick->session_id);
        *ret_user = strdup(pick->user);
        latchkey_free_sessions(list, n);
        if (!*ret_id || !*ret_user)
                return fail("login", EXIT_ERROR, "out of memory");
        return -1;
}

/* The file open_in_browser() made, gone once the login is over. */
static void unlink_and_free(char **path)
{
        if (*path) {
                unlink(*path);
                free(*path);
        }
}

/* The address, as an HTML attribute value. */
static void put_attribute(FILE *f, const char *s)
{
        for (; *s; s++)
                switch (*s) {
                case '&': fputs("&amp;", f); break;
                case '"': fputs("&quot;", f); break;
                case '<': fputs("&lt;", f); break;
                case '>': fputs("&gt;", f); break;
                default: fputc(*s, f);
                }
}

/*
 * On a desktop, the address in the browser: xdg-open of a private file (0600) that sends the
 * browser on, because the address (its state and nonce) must not be in any argv, which every
 * local user can read. Best effort: the address is printed anyway. Returns the file's path
 * (to remove when the login is over), or NULL.
 */
static char *open_in_browser(const char *url)
{
        const char *dir = getenv("XDG_RUNTIME_DIR");
        char *path = NULL;
        pid_t pid;
        FILE *f;
        int fd;

        if (isempty(getenv("DISPLAY")) && isempty(getenv("WAYLAND_DISPLAY")))
                return NULL;
        if (asprintf(&path, "%s/latchkey-login-XXXXXX.html", isempty(dir) ? "/tmp" : dir) < 0)
                return NULL;
        fd = mkstemps(path, 5);
        if (fd < 0 || !(f = fdopen(fd, "w"))) {
                if (fd >= 0) {
                        close(fd);
                        unlink(path);
                }
                free(path);
                return NULL;
        }
        fputs("<!DOCTYPE html><meta http-equiv=\"refresh\" content=\"0;url=", f);
        put_attribute(f, url);
        fputs("\"><a href=\"", f);
        put_attribute(f, url);
        fputs("\">Sign in</a>\n", f);
        if (fclose(f) != 0) {
                unlink(path);
                free(path);
                return NULL;
        }
        pid = fork();
        if (pid == 0) {
                int null = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (null >= 0) {
                        dup2(null, STDIN_FILENO);
                        dup2(null, STDOUT_FILENO);
                        dup2(null, STDERR_FILENO);
                }
                execlp("xdg-open", "xdg-open", path, (char *)NULL);
                _exit(127);
        }
        if (pid > 0)
                (void)waitpid(pid, NULL, 0);
        return path;
}

/* For login, "not found" is about a user or a login, not a session: a plain failure. */
static int login_fail(const struct latchkey *lk, int error)
{
        int code = fail_lk("login", lk, error);

        return code == EXIT_NO_SESSION ? EXIT_ERROR : code;
}

static void latchkey_login_info_freep(struct latchkey_login_info **i)
{
        latchkey_login_info_free(*i);
}

/* WaitLogin: the broker finishes the login (the device approval, the callback). */
static int wait_login(struct latchkey *lk, const char *login_id,
                      const struct latchkey_login_info *info, char **ret_user)
{
        int r = latchkey_wait_login(lk, login_id, info->seconds_left + 10, ret_user);

        if (r < 0) {
                r = login_fail(lk, r);
                (void)latchkey_cancel_login(lk, login_id);
                return r;
        }
        return EXIT_OK;
}

/*
 * OpenSession under a random id, printed on stdout; or, with renew_id (--session), the tokens
 * go to that session of the caller's.
 */
static int open_session(struct latchkey *lk, const char *login_id, const char *who,
                        const char *renew_id)
{
        char session_id[20];
        int r;

        if (renew_id) {
                r = latchkey_renew_session(lk, login_id, renew_id);
                if (r < 0)
                        return login_fail(lk, r);
                fprintf(stderr, "Signed in again as %s; session %s renewed.\n", who, renew_id);
                printf("%s\n", renew_id);
                return EXIT_OK;
        }
        if (random_session_id(session_id) < 0)
                return fail("login", EXIT_ERROR, "cannot make a session id: %m");
        r = latchkey_open_session(lk, login_id, session_id);
        if (r < 0)
                return login_fail(lk, r);
        fprintf(stderr, "Logged in as %s; session %s.\n", who, session_id);
        printf("%s\n", session_id);
        return EXIT_OK;
}

int cmd_login(int argc, char *argv[])
{
        static const struct option longopts[] = {
                { "no-qr", no_argument, NULL, 'n' },
                { "session", no_argument, NULL, 's' },
                { "no-browser", no_argument, NULL, 'b' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        _cleanup_free_ char *renew_user = NULL, *renew_id = NULL;
        _cleanup_(unlink_and_free) char *page = NULL;
        _cleanup_(latchkey_closep) struct latchkey *lk = NULL;
        _cleanup_free_ char *login_id = NULL, *url = NULL, *who = NULL;
        _cleanup_(latchkey_login_info_freep) struct latchkey_login_info *info = NULL;
        _cleanup_secret_ char *answer = NULL;
        const char *user;
        bool qr = true, renew = false, browser = true;
        int c, r;

        opterr = 0;
        while ((c = getopt_long(argc, argv, "+", longopts, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        return command_help("login", options_help);
                case 'n':
                        qr = false;
                        break;
                case 's':
                        renew = true;
                        break;
                case 'b':
                        browser = false;
                        break;
                default:
                        return usage_error("login", "unknown option '%s'", argv[optind - 1]);
                }
        }
        if (latchkey_open(&lk) < 0)
                return fail("login", EXIT_ERROR, "out of memory");
        if (renew) {
                if (optind != argc)
                        return usage_error("login", "--session takes no USER: it is the session's");
                r = renew_target(lk, &renew_id, &renew_user);
                if (r >= 0)
                        return r;
                user = renew_user;
        } else {
                if (optind != argc - 1)
                        return usage_error("login", "needs one USER");
                user = argv[optind];
                if (isempty(user) || strlen(user) > LATCHKEY_ID_MAX)
                        return usage_error("login", "USER must be 1 to %d bytes",
                                           LATCHKEY_ID_MAX);
        }

        r = latchkey_begin_login(lk, user, &login_id, &url);
        if (r < 0)
                return login_fail(lk, r);
        if (renew && browser)
                page = open_in_browser(url);

        /* A broker without GetLoginInfo knows only the code flow: paste, as before. */
        if (latchkey_login_info(lk, login_id, &info) < 0)
                info = NULL;

        /* The address carries the login's state and nonce: for this person's eyes only. */
        fprintf(stderr, "Open this address in a browser and sign in:\n\n%s\n\n", url);
        if (qr) {
                _cleanup_free_ char *drawing = NULL;

                if (lk_qr_render(url, &drawing) == 0)
                        fprintf(stderr, "%s\n\n", drawing);
                else
                        fprintf(stderr, "(the address is too long for a QR code)\n\n");
        }
        if (info && info->device) {
                fprintf(stderr, "Confirm the code %s there. Waiting for the sign-in (%u s "
                                "left)...\n",
                        info->user_code, info->seconds_left);
                r = wait_login(lk, login_id, info, &who);
                return r != EXIT_OK ? r
                                    : open_session(lk, login_id, who, renew ? renew_id : NULL);
        }
        if (info && info->callback)
                fprintf(stderr, "Press Enter when you have signed in (or paste the code): ");
        else
                fprintf(stderr,
                        "Then paste the code, or the whole address the browser was sent to: ");
        fflush(stderr);

        r = read_answer(STDIN_FILENO, &answer);
        if (r == -ENODATA && info && info->callback) {
                r = wait_login(lk, login_id, info, &who);
                return r != EXIT_OK ? r
                                    : open_session(lk, login_id, who, renew ? renew_id : NULL);
        }
        if (r < 0) {
                (void)latchkey_cancel_login(lk, login_id);
                if (r == -E2BIG)
                        return fail("login", EXIT_ERROR, "the answer is longer than %d bytes",
                                    LATCHKEY_ANSWER_MAX);
                if (r == -ENODATA)
                        return fail("login", EXIT_ERROR, "no answer given");
                errno = -r;
                return fail("login", EXIT_ERROR, "cannot read the answer: %m");
        }
        r = latchkey_complete_login(lk, login_id, answer, &who);
        if (r < 0) {
                r = login_fail(lk, r);
                (void)latchkey_cancel_login(lk, login_id);
                return r;
        }
        return open_session(lk, login_id, who, renew ? renew_id : NULL);
}
