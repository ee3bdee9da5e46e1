#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Print the access token of this login session, or call an HTTPS API with it.

    get_token.py          prints the token
    get_token.py URL      GETs URL with "Authorization: Bearer <token>", prints the body

Asks latchkeyd over D-Bus (python3-dbus) for the token of $LATCHKEY_SESSION,
which pam_latchkey sets at login, else of your most recently opened session.
TLS trust is Python's default: the system's CA store, or $SSL_CERT_FILE.
Exit status: 0 success, 1 no token, 2 bad command line, 3 the request failed.
"""
import os
import sys
import urllib.request

import dbus


def get_token():
    broker = dbus.SystemBus().get_object("org.latchkey.Broker1", "/org/latchkey/Broker1")
    options = {"min_valid": dbus.UInt32(60)}  # refresh first unless valid for another minute
    if os.environ.get("LATCHKEY_SESSION"):
        options["session_id"] = os.environ["LATCHKEY_SESSION"]
    token, expires_at, token_type = broker.GetToken(
        dbus.Dictionary(options, signature="sv"), dbus_interface="org.latchkey.Broker1")
    return str(token)


def main():
    if len(sys.argv) > 2 or (len(sys.argv) == 2 and not sys.argv[1].startswith("https://")):
        print("Usage: get_token.py [https://URL]", file=sys.stderr)
        return 2
    try:
        token = get_token()
    except dbus.DBusException as e:
        # e.g. org.latchkey.Broker1.Error.NotFound: no session; .TokenExpired: log in again
        print(f"get_token.py: no token: {e.get_dbus_message()} ({e.get_dbus_name()})",
              file=sys.stderr)
        return 1
    if len(sys.argv) == 1:
        print(token)
        return 0
    request = urllib.request.Request(sys.argv[1])
    # Unredirected: a redirect to another host must not carry the token along.
    request.add_unredirected_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            sys.stdout.write(answer.read(16 * 1024 * 1024).decode())
    except OSError as e:  # URLError, HTTPError (not 2xx), timeouts
        print(f"get_token.py: {sys.argv[1]}: {e}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
