/* SPDX-License-Identifier: MIT */
/* [callback] listen: the address and port the broker's callback listener binds. */
#pragma once

#include <stddef.h>
#include <sys/socket.h>

/*
 * "ADDRESS:PORT" with a numeric IPv4 address, or "[ADDRESS]:PORT" with a
 * numeric IPv6 address (no host names: the broker resolves nothing to bind);
 * PORT is 1..65535 in decimal. 0 with *ret (when not NULL) filled, else
 * -LK_ERR_CONFIG with why written (quoting nothing: the caller quotes the value).
 */
int lk_listen_address_parse(const char *text, struct sockaddr_storage *ret, socklen_t *ret_len,
                            char *why, size_t why_size);
