/* SPDX-License-Identifier: MIT */
/* The module's arguments (SPEC §8), parsed once per call into a struct options. */
#pragma once

#include <stdbool.h>
#include <security/pam_modules.h>

#define LKP_TIMEOUT_DEFAULT 60  /* seconds to wait for the broker */
#define LKP_TIMEOUT_MAX 3600    /* libdbus takes milliseconds in an int */
#define LKP_TRIES_DEFAULT 3
#define LKP_TRIES_MAX 10

struct options {
        bool debug;
        bool qr;                  /* draw a QR code of the address too; default off */
        bool ignore_unknown_user; /* PAM_IGNORE, not PAM_USER_UNKNOWN */
        bool authtok;             /* the answer is PAM_AUTHTOK (a greeter collected it) */
        unsigned timeout;         /* seconds, 1..LKP_TIMEOUT_MAX */
        unsigned tries;           /* 1..LKP_TRIES_MAX */
};

/*
 * Fills o with the defaults, then applies argv in order (a later argument
 * wins). An unknown argument or a bad value is logged with pam_syslog (when
 * pamh is not NULL) and ignored, keeping the default. Returns how many
 * arguments were ignored.
 */
int lkp_options_parse(struct options *o, pam_handle_t *pamh, int argc, const char **argv);
