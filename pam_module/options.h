/* SPDX-License-Identifier: MIT */
/*
 * The module's settings (SPEC §8): the [pam] section of latchkey.conf (and its
 * latchkey.conf.d drop-ins), then the module's arguments, parsed once per call
 * into a struct options on the caller's stack: the module keeps no state.
 */
#pragma once

#include <stdbool.h>
#include <security/pam_modules.h>

#define LKP_TIMEOUT_DEFAULT 60  /* seconds to wait for the broker */
#define LKP_TIMEOUT_MAX 3600    /* libdbus takes milliseconds in an int */
#define LKP_TRIES_DEFAULT 3
#define LKP_TRIES_MAX 10

#define LKP_CONFIG_PATH "/etc/latchkey/latchkey.conf" /* the broker's too (LK_CONFIG_PATH) */
#define LKP_LIST_MAX 4096 /* bytes of one list value: LK_INI_LINE_MAX, a config line's cap */
#define LKP_PATH_MAX 1024 /* bytes of config=PATH */

/* Where SSO is offered when the admin says nothing: remote and console logins, greeters. */
#define LKP_SERVICES_DEFAULT "sshd login gdm-password lightdm sddm"

/*
 * Which ways of signing in each service may use ([pam] methods, pam_latchkey(8)): words
 * "service:method+method", method one of web (the provider's sign-in), offline (the PIN
 * instead of web while the provider cannot be reached), pin (the PIN alone, a local unlock:
 * sudo, lock screens; never a provider request), none. web and offline only where services
 * lists the service; a service of services without an entry gets web+offline.
 */
#define LKP_METHODS_DEFAULT                                                                        \
        "sshd:web sudo:pin sudo-i:pin su:pin su-l:pin polkit-1:pin xscreensaver:pin "               \
        "gnome-screensaver:pin kde:pin kscreensaver:pin swaylock:pin i3lock:pin "                   \
        "xfce4-screensaver:pin mate-screensaver:pin cinnamon-screensaver:pin cron:none"
#define LKP_METHOD_WEB (1u << 0)
#define LKP_METHOD_OFFLINE (1u << 1)
#define LKP_METHOD_PIN (1u << 2)

struct options {
        bool debug;
        bool qr;                  /* draw a QR code of the address too; default off */
        bool ignore_unknown_user; /* PAM_IGNORE, not PAM_USER_UNKNOWN */
        bool authtok;             /* the answer is PAM_AUTHTOK (a greeter collected it) */
        unsigned timeout;         /* seconds, 1..LKP_TIMEOUT_MAX */
        unsigned tries;           /* 1..LKP_TRIES_MAX */

        /* Who meets SSO: words separated by spaces, tabs or commas. */
        char services[LKP_LIST_MAX + 1]; /* PAM service names */
        char users[LKP_LIST_MAX + 1];    /* local user names, or "*" for every local user */
        char groups[LKP_LIST_MAX + 1];   /* local groups whose members are SSO users */
        char methods[LKP_LIST_MAX + 1];  /* service:method+method words (LKP_METHODS_DEFAULT) */
        char config[LKP_PATH_MAX + 1];   /* the file read, for log lines */
};

/*
 * Fills o with the defaults, reads the [pam] section of the config (config=PATH
 * among the arguments, else LKP_CONFIG_PATH, then PATH.d/ *.conf in byte order
 * of their names, a later line winning), then applies argv in order (a later
 * argument wins; services=, users= and groups= replace the config's value).
 * A file that cannot be read or is writable by group or others is skipped with
 * a log line (pamh not NULL), keeping the defaults: no service, no user is lost
 * to SSO without a trace, and none is added by a file others could write.
 * An unknown argument or a bad value is logged and ignored. Returns how many
 * arguments were ignored.
 */
int lkp_options_parse(struct options *o, pam_handle_t *pamh, int argc, const char **argv);

/* true when word is one of the words of list (separated by spaces, tabs or commas). */
bool lkp_list_has(const char *list, const char *word);

/* true when the admin offers SSO for this PAM service. */
bool lkp_sso_service(const struct options *o, const char *service);

/* The LKP_METHOD_* bits this PAM service may use; 0: none (PAM_IGNORE at once). */
unsigned lkp_service_methods(const struct options *o, const char *service);

/*
 * true when user is an SSO user: listed in users (or users is "*"), or a member
 * (primary or supplementary, pam_modutil) of one of groups. pamh may be NULL
 * only when groups is empty.
 */
bool lkp_sso_user(const struct options *o, pam_handle_t *pamh, const char *user);
