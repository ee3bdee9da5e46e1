/* SPDX-License-Identifier: MIT */
/* logind (org.freedesktop.login1 on the same bus), asked by the module whose a session id is. */
#pragma once

#include <sys/types.h>

#include "client/broker_client.h"

/*
 * The uid logind gives as the owner of session_id: GetSession, then the session's User
 * property, each on a private connection of its own, waiting at most timeout_ms. Returns 0,
 * or a negative errno with e filled in (client/broker_client.h's conventions).
 */
int lkp_logind_session_uid(int timeout_ms, const char *session_id, uid_t *ret_uid,
                           struct lk_client_error *e);
