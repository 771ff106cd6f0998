#include "recur_api_support.h"

#include <string.h>

/* One buffer per thread: recur_last_error() returns it, so the message stays valid until this
   thread's next failing call, and nothing is allocated that could leak at thread exit. */
#define LAST_ERROR_CAPACITY 4096
static _Thread_local char last_error[LAST_ERROR_CAPACITY];

void recur_api_set_last_error(const char *message) {
    size_t length = strlen(message);
    if (length >= LAST_ERROR_CAPACITY) {
        length = LAST_ERROR_CAPACITY - 1;
        /* Back off over UTF-8 continuation bytes (10xxxxxx) so no character is cut in half. */
        while (length > 0 && ((unsigned char)message[length] & 0xC0) == 0x80) length--;
    }
    memmove(last_error, message, length);
    last_error[length] = '\0';
}

const char *recur_last_error(void) { return last_error; }

int32_t recur_abi_version(void) { return RECUR_ABI_VERSION; }
