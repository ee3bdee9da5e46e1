/* SPDX-License-Identifier: MIT */
/* A QR code of the authorization address, drawn for a terminal. */
#pragma once

#define LK_QR_QUIET_ZONE 2   /* modules of light border on each side */
#define LK_QR_MAX_COLUMNS 120 /* wider than this, no terminal shows it whole */

/*
 * Draws text as a QR code in UTF-8 half blocks (▀ ▄ █ and space, two rows of
 * modules per line), light modules as blocks, so that the light-on-dark
 * text of a terminal shows dark modules on a light field, with a quiet zone
 * around it. Lines are separated by '\n', without one at the end.
 * Returns 0, -ENOMEM, -E2BIG (too much text to draw at a usable size) or
 * -EINVAL (libqrencode refused the text).
 */
int lk_qr_render(const char *text, char **ret);
