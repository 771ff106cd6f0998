// Linux descriptors Glibc's Swift module leaves out: recurd polls an eventfd (workers wake the
// I/O thread) and a signalfd (SIGINT/SIGTERM) next to its ZeroMQ sockets.
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <signal.h>
