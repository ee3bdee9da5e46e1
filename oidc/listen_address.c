/* SPDX-License-Identifier: MIT */
#include "oidc/listen_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "oidc/error.h"

#define REFUSE(...) (snprintf(why, why_size, __VA_ARGS__), -LK_ERR_CONFIG)

/* INET6_ADDRSTRLEN with room for an IPv4-mapped form. */
#define HOST_MAX 64

static int parse_port(const char *s, unsigned *ret)
{
        unsigned n = 0;

        if (!*s)
                return -1;
        for (; *s; s++) {
                if (*s < '0' || *s > '9')
                        return -1;
                n = n * 10 + (unsigned)(*s - '0');
                if (n > 65535)
                        return -1;
        }
        if (n == 0)
                return -1;
        *ret = n;
        return 0;
}

int lk_listen_address_parse(const char *text, struct sockaddr_storage *ret, socklen_t *ret_len,
                            char *why, size_t why_size)
{
        struct sockaddr_storage ss = {0};
        char host[HOST_MAX];
        const char *colon, *start = text;
        size_t hlen;
        unsigned port;
        bool v6 = text[0] == '[';

        if (v6) {
                const char *close = strchr(text, ']');

                if (!close || close[1] != ':')
                        return REFUSE("an IPv6 address is written [ADDRESS]:PORT");
                start = text + 1;
                hlen = (size_t)(close - start);
                colon = close + 1;
        } else {
                colon = strrchr(text, ':');
                if (!colon)
                        return REFUSE("is not ADDRESS:PORT (an IPv6 address: [ADDRESS]:PORT)");
                hlen = (size_t)(colon - text);
        }
        if (hlen == 0 || hlen >= sizeof(host))
                return REFUSE("has no numeric address before the port");
        memcpy(host, start, hlen);
        host[hlen] = '\0';
        if (parse_port(colon + 1, &port) < 0)
                return REFUSE("the port is not a number from 1 to 65535");

        if (v6) {
                struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

                if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
                        return REFUSE("is not a numeric IPv6 address in brackets");
                a->sin6_family = AF_INET6;
                a->sin6_port = htons((uint16_t)port);
                if (ret_len)
                        *ret_len = sizeof(*a);
        } else {
                struct sockaddr_in *a = (struct sockaddr_in *)&ss;

                if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
                        return REFUSE("is not a numeric IPv4 address (an IPv6 address: "
                                      "[ADDRESS]:PORT; no host names)");
                a->sin_family = AF_INET;
                a->sin_port = htons((uint16_t)port);
                if (ret_len)
                        *ret_len = sizeof(*a);
        }
        if (ret)
                *ret = ss;
        return 0;
}
