/* The host side of the plugin ABI that Swift cannot write directly: opening a shared library and
   finding its entry point as a typed function pointer. Not part of the public API. */
#ifndef RECUR_PLUGIN_LIBRARY_H
#define RECUR_PLUGIN_LIBRARY_H

#include "recur_plugin.h"

/** The type of recur_plugin_init. */
typedef const recur_plugin_info *(*recur_plugin_entry)(uint32_t host_abi_version, char *error, size_t error_capacity);

/** Outcome of rp_library_open. */
typedef enum rp_open_status {
    RP_OPENED = 0,
    RP_CANNOT_OPEN = 1, /* dlopen failed: missing, unreadable, not a shared library, unresolved symbol */
    RP_NO_ENTRY_POINT = 2
} rp_open_status;

/** dlopen(path, RTLD_NOW | RTLD_LOCAL), then dlsym(RECUR_PLUGIN_ENTRY_POINT). On RP_OPENED, *handle
    and *entry are set; otherwise the library is closed again and `error` holds dlerror()'s text. */
rp_open_status rp_library_open(const char *path, void **handle, recur_plugin_entry *entry, char *error,
                               size_t error_capacity);

/** dlclose; for libraries whose plugin was refused. */
void rp_library_close(void *handle);

#endif
