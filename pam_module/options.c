/* SPDX-License-Identifier: MIT */
#include "options.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <security/pam_ext.h>

#include "util.h"

/* A whole decimal number in min..max, or -EINVAL / -ERANGE. */
static int parse_unsigned(const char *s, unsigned min, unsigned max, unsigned *ret)
{
        char *end = NULL;
        long v;

        if (!s || *s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtol(s, &end, 10);
        if (errno == ERANGE)
                return -ERANGE;
        if (errno != 0 || end == s || *end != 0)
                return -EINVAL;
        if (v < (long)min || v > (long)max)
                return -ERANGE;
        *ret = (unsigned)v;
        return 0;
}

static int parse_number_arg(pam_handle_t *pamh, const char *arg, const char *value, unsigned min,
                            unsigned max, unsigned *ret)
{
        int r = parse_unsigned(value, min, max, ret);

        if (r < 0 && pamh)
                pam_syslog(pamh, LOG_ERR, "bad value in argument \"%s\": want a number from %u to %u, ignoring",
                           arg, min, max);
        return r;
}

int lkp_options_parse(struct options *o, pam_handle_t *pamh, int argc, const char **argv)
{
        int ignored = 0;

        *o = (struct options) {
                .timeout = LKP_TIMEOUT_DEFAULT,
                .tries = LKP_TRIES_DEFAULT,
        };

        for (int i = 0; i < argc && argv; i++) {
                const char *a = argv[i];

                if (!a)
                        continue;
                if (streq(a, "debug"))
                        o->debug = true;
                else if (streq(a, "qr"))
                        o->qr = true;
                else if (streq(a, "noqr"))
                        o->qr = false;
                else if (streq(a, "ignore_unknown_user"))
                        o->ignore_unknown_user = true;
                else if (streq(a, "authtok"))
                        o->authtok = true;
                else if (streq(a, "use_first_pass") || streq(a, "try_first_pass"))
                        ; /* read by pam_get_authtok() itself, for authtok */
                else if (strncmp(a, "timeout=", 8) == 0) {
                        if (parse_number_arg(pamh, a, a + 8, 1, LKP_TIMEOUT_MAX, &o->timeout) < 0)
                                ignored++;
                } else if (strncmp(a, "tries=", 6) == 0) {
                        if (parse_number_arg(pamh, a, a + 6, 1, LKP_TRIES_MAX, &o->tries) < 0)
                                ignored++;
                } else {
                        if (pamh)
                                pam_syslog(pamh, LOG_ERR, "unknown argument \"%s\", ignoring", a);
                        ignored++;
                }
        }
        return ignored;
}
