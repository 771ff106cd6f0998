#include "recur_plugin_library.h"

#include <dlfcn.h>
#include <stdio.h>

/* dlerror()'s message (thread-local in glibc) into `error`. */
static void copy_dlerror(const char *fallback, char *error, size_t error_capacity) {
    const char *message = dlerror();
    snprintf(error, error_capacity, "%s", message ? message : fallback);
}

rp_open_status rp_library_open(const char *path, void **handle, recur_plugin_entry *entry, char *error,
                               size_t error_capacity) {
    dlerror(); /* clear a stale message */
    void *library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        copy_dlerror("dlopen failed", error, error_capacity);
        return RP_CANNOT_OPEN;
    }
    void *symbol = dlsym(library, RECUR_PLUGIN_ENTRY_POINT);
    if (!symbol) {
        copy_dlerror("no " RECUR_PLUGIN_ENTRY_POINT, error, error_capacity);
        dlclose(library);
        return RP_NO_ENTRY_POINT;
    }
    *handle = library;
    /* POSIX guarantees that a dlsym result converts to a function pointer. */
    *(void **)entry = symbol;
    return RP_OPENED;
}

void rp_library_close(void *handle) { dlclose(handle); }
