/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

/* Set once at start by the main() of a program, before any other thread exists. */
static bool log_to_stderr = true;
static bool log_debug = false;

void lk_log_open(const char *ident, bool to_stderr, bool debug)
{
        log_to_stderr = to_stderr;
        log_debug = debug;
        if (!to_stderr)
                openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
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
                vfprintf(stderr, fmt, ap);
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
