/* SPDX-License-Identifier: MIT */
#include "base/user_name.h"

#include <string.h>

#include "base/utf8.h"
#include "base/util.h"

const char *lk_user_name_problem(const char *name, size_t len)
{
        if (len == 0)
                return "is empty";
        if (len > LK_USER_NAME_MAX)
                return "is longer than 256 bytes";
        if (strnlen(name, len) != len)
                return "holds a NUL byte";
        if (!lk_utf8_valid(name, len))
                return "is not valid UTF-8";
        if (name[0] == '-')
                return "starts with '-'";
        if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
                return "is '.' or '..'";
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)name[i];

                if (c < 0x20 || c == 0x7f)
                        return "holds a control character";
                if (c == '/')
                        return "holds '/'";
                if (c == ':')
                        return "holds ':'";
                if (c == ',')
                        return "holds ','";
                if (c == ' ')
                        return "holds a space";
        }
        return NULL;
}
