/* SPDX-License-Identifier: MIT */
#include "oidc/log.h"

#include <errno.h>
#include <paths.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Set once at start by the main() of a program, before any other thread exists. */
static bool log_to_stderr = true;
static bool log_debug = false;

static bool socket_connects(const struct sockaddr_un *sa, int type)
{
        int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
        bool ok;

        if (fd < 0)
                return false;
        ok = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0;
        if (!ok && type == SOCK_DGRAM && errno == EPROTOTYPE) {
                close(fd);
                return socket_connects(sa, SOCK_STREAM); /* as glibc's syslog() tries */
        }
        close(fd);
        return ok;
}

bool lk_syslog_listening(const char *path)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};

        if (strlen(path) >= sizeof(sa.sun_path))
                return false;
        memcpy(sa.sun_path, path, strlen(path) + 1);
        return socket_connects(&sa, SOCK_DGRAM);
}

void lk_log_open(const char *ident, bool to_stderr, bool debug)
{
        log_debug = debug;
        /*
         * Without a syslog daemon (a container, a CI machine) glibc's syslog() drops every
         * message, after trying to connect again each time: stderr loses nothing.
         */
        if (!to_stderr && !lk_syslog_listening(_PATH_LOG)) {
                fprintf(stderr, "%s: nothing listens on %s; logging to stderr\n", ident,
                        _PATH_LOG);
                to_stderr = true;
        }
        log_to_stderr = to_stderr;
        if (!to_stderr)
                openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

bool lk_log_to_stderr(void)
{
        return log_to_stderr;
}

bool lk_log_debug_enabled(void)
{
        return log_debug;
}

static void _printf_(3, 0) log_v(int facility, int priority, const char *fmt, va_list ap)
{
        if (priority == LOG_DEBUG && !log_debug)
                return;
        if (log_to_stderr) {
                char *line = NULL;
                va_list copy;
                int n;

                /*
                 * The line and its newline in one fprintf: glibc writes an unbuffered
                 * stream's fprintf at once, so other writers never cut into a line.
                 */
                va_copy(copy, ap);
                n = vasprintf(&line, fmt, copy);
                va_end(copy);
                if (n >= 0) {
                        fprintf(stderr, "%s\n", line);
                        free(line);
                        return;
                }
                vfprintf(stderr, fmt, ap); /* out of memory: in two writes, but whole */
                fputc('\n', stderr);
                return;
        }
        vsyslog(facility | priority, fmt, ap);
}

void lk_log(int priority, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        log_v(0, priority, fmt, ap);
        va_end(ap);
}

void lk_log_auth(int priority, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        log_v(LOG_AUTHPRIV, priority, fmt, ap);
        va_end(ap);
}

int lk_log_error_return(int r, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        log_v(0, LOG_ERR, fmt, ap);
        va_end(ap);
        return r;
}
