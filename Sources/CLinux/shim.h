// Linux calls Glibc's Swift module leaves out: recurd polls an eventfd (workers wake the I/O thread)
// and a signalfd (SIGINT/SIGTERM) next to its ZeroMQ sockets; the engine hands freed memory back to
// the system with malloc_trim when asked to release its kept buffers.
#include <malloc.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <signal.h>
