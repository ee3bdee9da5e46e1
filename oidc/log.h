/* SPDX-License-Identifier: MIT */
/*
 * Logging for the daemon and the tools: syslog, or stderr for the command
 * line and tests, and when no syslog daemon listens. Never pass a secret;
 * log lk_fingerprint() of it instead. Security events (logins, sessions,
 * refusals) go to LOG_AUTHPRIV. Text from outside (a provider's claims or
 * words) enters a line only through lk_text_escape() / LK_ESCAPED() of
 * base/text.h, once, where it enters (an lk_error's message already has).
 */
#pragma once

#include <stdbool.h>
#include <syslog.h>

#include "base/text.h"
#include "base/util.h"

/* to_stderr false: syslog, unless nothing listens on /dev/log (then stderr, said once). */
void lk_log_open(const char *ident, bool to_stderr, bool debug);
bool lk_log_to_stderr(void);
/* Whether a syslog daemon takes messages on the socket at path. */
bool lk_syslog_listening(const char *path);
bool lk_log_debug_enabled(void);

void lk_log(int priority, const char *fmt, ...) _printf_(2, 3);
/* To LOG_AUTHPRIV, for security events. */
void lk_log_auth(int priority, const char *fmt, ...) _printf_(2, 3);

#define log_error(...) lk_log(LOG_ERR, __VA_ARGS__)
#define log_warning(...) lk_log(LOG_WARNING, __VA_ARGS__)
#define log_info(...) lk_log(LOG_INFO, __VA_ARGS__)
#define log_debug(...) lk_log(LOG_DEBUG, __VA_ARGS__)

/* Logs at error level and returns r, for "return log_error_errno(r, ...)". */
int lk_log_error_return(int r, const char *fmt, ...) _printf_(2, 3);
