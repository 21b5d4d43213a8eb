/* SPDX-License-Identifier: MIT */
/*
 * libesca: offload system calls to esca.ko's consumer cores.
 *
 * Every function returns the kernel's raw result (-errno on failure) and
 * never touches errno. Threads register lazily on their first call. When
 * the module is absent or refuses the process (or a thread: per-user ring
 * memory cap, mmap refused), one line per cause and process says so on
 * stderr (unless ESCA_QUIET=1) and those calls are made directly: results
 * are the same either way. Once the library knows the module is absent,
 * calls take no lock.
 *
 * A thread whose ring the module retires goes direct; the calls it had
 * queued that never ran are made directly, once, in order. If the ring
 * died because the thread's identity changed (setuid, unshare of its file
 * table), the next call registers a new ring, which runs with the new
 * identity (at most 8 times per thread). A call the module bounces is made
 * directly; a bounced deferred call is made before anything queued after
 * it, and the ring resumed through shared memory, so closing the
 * library's fd never hangs it. fork() first waits for the forking
 * thread's deferred calls; the child starts with no ring and sets up its
 * own on its first call.
 *
 * Not async-signal-safe: a signal handler must not offload on the thread
 * it interrupted (the preload shim makes such calls directly).
 *
 * Environment: ESCA_SPIN_US (0-1000000, default 50) is how long a
 * synchronous call spins on its completion before it sleeps in the module;
 * ESCA_ENTRIES (power of two, 8-4096, default 256) sizes each thread's
 * ring. A bad value is named on stderr and the default used.
 */
#ifndef ESCA_ESCA_H
#define ESCA_ESCA_H

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Open /dev/esca and set up this process; idempotent. 0 or -errno. */
int esca_init(void);

/*
 * Is this thread's offload on? Registers the thread if needed. False when
 * the module is absent, refused the process or the thread, or the thread's
 * ring died for good.
 */
bool esca_active(void);

/* OS index of the core serving this thread's ring, or -1. */
int esca_thread_cpu(void);

/*
 * Synchronous offload: the exact result of system call @nr, as if made
 * directly. Spins ESCA_SPIN_US, then sleeps in the module until done.
 */
long esca_call(long nr, long a0, long a1, long a2, long a3, long a4, long a5);

/*
 * Deferred offload: queue the call and return at once. Only for calls
 * whose result the caller does not use. 0 when queued; if the call had to
 * be made directly, its result.
 */
long esca_defer(long nr, long a0, long a1, long a2, long a3, long a4, long a5);

/*
 * Wait until every call this thread queued has taken effect. Returns how
 * many deferred calls failed since the last drain (>= 0), fork's own
 * drain included.
 */
long esca_drain(void);

/* The system call itself, with no offload: -errno on failure. */
long esca_direct(long nr, long a0, long a1, long a2, long a3, long a4, long a5);

/* Drain and give up this thread's ring (also run at thread exit). */
void esca_thread_exit(void);

#ifdef __cplusplus
}
#endif

#endif /* ESCA_ESCA_H */
