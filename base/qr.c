/* SPDX-License-Identifier: MIT */
#include "base/qr.h"

#include <errno.h>
#include <qrencode.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(QRcode *, QRcode_free);

/* true when the module at (x, y) of the drawing (quiet zone included) is dark. */
static bool dark(const QRcode *q, int x, int y)
{
        x -= LK_QR_QUIET_ZONE;
        y -= LK_QR_QUIET_ZONE;
        if (x < 0 || y < 0 || x >= q->width || y >= q->width)
                return false;
        return q->data[(size_t)y * (size_t)q->width + (size_t)x] & 1;
}

int lk_qr_render(const char *text, char **ret)
{
        /* Indexed by (top dark) << 1 | (bottom dark): light modules are drawn. */
        static const char *const glyph[4] = { "\u2588", "\u2580", "\u2584", " " };
        _cleanup_(QRcode_freep) QRcode *q = NULL;
        _cleanup_free_ char *out = NULL;
        size_t size, o = 0;
        int side;

        if (!text || !*text)
                return -EINVAL;

        errno = 0;
        q = QRcode_encodeString(text, 0, QR_ECLEVEL_L, QR_MODE_8, 1);
        if (!q) {
                if (errno == ENOMEM)
                        return -ENOMEM;
                if (errno == ERANGE)
                        return -E2BIG;
                return -EINVAL;
        }

        side = q->width + 2 * LK_QR_QUIET_ZONE;
        if (side > LK_QR_MAX_COLUMNS)
                return -E2BIG;

        /* Each cell is at most 3 bytes; each line ends in '\n' (the last in NUL). */
        size = (size_t)((side + 1) / 2) * ((size_t)side * 3 + 1);
        out = malloc(size);
        if (!out)
                return -ENOMEM;

        for (int y = 0; y < side; y += 2) {
                if (y > 0)
                        out[o++] = '\n';
                for (int x = 0; x < side; x++) {
                        const char *g = glyph[(dark(q, x, y) << 1) | dark(q, x, y + 1)];
                        size_t n = strlen(g);

                        memcpy(out + o, g, n);
                        o += n;
                }
        }
        out[o] = 0;
        *ret = TAKE_PTR(out);
        return 0;
}
