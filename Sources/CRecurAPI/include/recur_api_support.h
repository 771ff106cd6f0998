/* What the Swift side of the C API needs from C: the types of recur.h, and the thread-local
   last-error buffer (C11 _Thread_local, which Swift cannot declare). Not part of the public API. */
#ifndef RECUR_API_SUPPORT_H
#define RECUR_API_SUPPORT_H

#include "recur.h"

/** Copies `message` (NUL-terminated UTF-8) into this thread's last-error buffer, cut at a UTF-8
    character boundary when longer than the buffer. */
__attribute__((visibility("hidden"))) void recur_api_set_last_error(const char *message);

#endif
