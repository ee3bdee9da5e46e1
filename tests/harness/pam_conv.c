/* SPDX-License-Identifier: MIT */
#include "tests/harness/pam_conv.h"

#include <stdlib.h>
#include <string.h>

static void keep(char **list, unsigned *n, const char *text)
{
        if (*n < LKH_SAID_MAX)
                list[(*n)++] = strdup(text);
}

int lkh_pam_conv(int n, const struct pam_message **msg, struct pam_response **resp,
                 void *userdata)
{
        struct lkh_person_conv *c = userdata;
        struct pam_response *r = calloc((size_t)n, sizeof(*r));

        if (!r)
                return PAM_BUF_ERR;
        for (int i = 0; i < n; i++) {
                const char *text = msg[i]->msg;

                switch (msg[i]->msg_style) {
                case PAM_TEXT_INFO:
                        keep(c->said->info, &c->said->n_info, text);
                        if (c->on_info && c->on_info(c->person, text) < 0)
                                goto fail;
                        break;
                case PAM_ERROR_MSG:
                        keep(c->said->error, &c->said->n_error, text);
                        break;
                case PAM_PROMPT_ECHO_OFF:
                        c->said->n_echo_off++;
                        /* fall through */
                case PAM_PROMPT_ECHO_ON:
                        r[i].resp = c->answer(c->person, msg[i]);
                        if (!r[i].resp)
                                goto fail;
                        break;
                default:
                        goto fail;
                }
        }
        *resp = r;
        return PAM_SUCCESS;
fail:
        for (int i = 0; i < n; i++)
                free(r[i].resp);
        free(r);
        return PAM_CONV_ERR;
}

void lkh_said_clear(struct lkh_said *s)
{
        for (unsigned i = 0; i < s->n_info; i++)
                free(s->info[i]);
        for (unsigned i = 0; i < s->n_error; i++)
                free(s->error[i]);
        *s = (struct lkh_said){0};
}
