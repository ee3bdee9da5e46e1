/* SPDX-License-Identifier: MIT */
/*
 * The PAM conversation of a person a test plays: every message the module shows is kept, an
 * address is handed to the test's on_info (to play the browser), each prompt gets the test's
 * answer. A conversation ends (PAM_CONV_ERR, as when a person walks away) when on_info fails,
 * an answer is NULL, or a message style is not one a terminal has.
 */
#pragma once

#include <security/pam_appl.h>

#define LKH_SAID_MAX 32

/* What the module said: its PAM_TEXT_INFO and PAM_ERROR_MSG texts, and its hidden prompts. */
struct lkh_said {
        char *info[LKH_SAID_MAX];
        unsigned n_info;
        char *error[LKH_SAID_MAX];
        unsigned n_error;
        unsigned n_echo_off;
};

struct lkh_person_conv {
        struct lkh_said *said;
        /* A PAM_TEXT_INFO text (after it is kept); < 0 ends the conversation. May be NULL. */
        int (*on_info)(void *person, const char *text);
        /* The answer to a prompt, malloc'd; NULL ends the conversation. */
        char *(*answer)(void *person, const struct pam_message *m);
        void *person;
};

/* The pam_conv function; its appdata_ptr is a struct lkh_person_conv. */
int lkh_pam_conv(int n, const struct pam_message **msg, struct pam_response **resp,
                 void *userdata);

/* Frees the kept texts and zeroes the counts. */
void lkh_said_clear(struct lkh_said *s);
