// SPDX-License-Identifier: MIT
/*
 * libesca-preload.so: unmodified programs offload their calls to esca.ko.
 *
 *   LD_PRELOAD=libesca-preload.so PROGRAM...
 *
 * The libc wrappers servers use are interposed here. Each call is one of:
 *  - offloaded: handed to this thread's ring (libesca), synchronously, or
 *    deferred where the result returned at once is provably the one Linux
 *    would give (policy(), below: the one place that decides);
 *  - a sync point (epoll_wait, poll, select...): the thread's deferred
 *    calls are waited for, then the call is made directly;
 *  - bookkeeping (calls that create, duplicate or retire descriptors,
 *    fork, exec...): deferred calls are waited for, the call is made
 *    directly, and the descriptor table (fdtab.h) learns from the result.
 *
 * Exactness first: any call the table cannot prove is made synchronously;
 * the module re-checks every call and bounces what it must not run (the
 * library then makes it directly); a call made from a signal handler that
 * interrupted the shim, or by a vfork child, is made directly. The
 * settings (ESCA_OFFLOAD, ESCA_LOG, ESCA_STATS) are in the README.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <threads.h>
#include <time.h>
#include <mqueue.h>
#include <unistd.h>

#include "esca/esca.h"
#include "fdtab.h"
#include "internal.h"

#define EXPORT __attribute__((visibility("default")))

extern char **environ;

/* ------------------------------------------------------------ settings */

/* The calls the shim can offload; ESCA_OFFLOAD names them. */
enum call {
	C_READ,
	C_READV,
	C_RECV,
	C_RECVFROM,
	C_RECVMSG,
	C_WRITE,
	C_WRITEV,
	C_SEND,
	C_SENDTO,
	C_SENDMSG,
	C_SENDFILE,
	C_PREAD,
	C_PWRITE,
	C_CLOSE,
	C_SHUTDOWN,
	C_EPOLL_CTL,
	C_FSYNC,
	C_FDATASYNC,
	C_FTRUNCATE,
	C_FCHMOD,
	C_FCHOWN,
	C_SETSOCKOPT,
	C_GETSOCKOPT,
	C_NCALLS
};

static const char *const call_name[C_NCALLS] = {
	"read",	     "readv",	   "recv",	 "recvfrom",  "recvmsg",
	"write",     "writev",	   "send",	 "sendto",    "sendmsg",
	"sendfile",  "pread64",	   "pwrite64",	 "close",     "shutdown",
	"epoll_ctl", "fsync",	   "fdatasync",	 "ftruncate", "fchmod",
	"fchown",    "setsockopt", "getsockopt",
};

enum {
	OFFLOAD_ALL = 1,
	OFFLOAD_DEFER_ONLY, /* only calls that can be deferred */
	OFFLOAD_NONE, /* bookkeeping only: the off switch */
	OFFLOAD_LIST,
};

static struct {
	int mode;
	uint32_t calls; /* bit per enum call, for OFFLOAD_LIST */
	int log; /* 0 silent, 1 one line per cause, 2 + start-up line */
	bool stats;
} cfg = { .mode = OFFLOAD_ALL, .calls = ~0u, .log = 1 };

/* ------------------------------------------------------------ counters */

/*
 * Per thread, written only by the owner (relaxed atomics so the exit
 * report may read them from another thread); a thread that ends adds its
 * own to the process totals.
 */
enum shim_stat {
	S_SYNC,
	S_DEFERRED,
	S_DIRECT_POLICY, /* ESCA_OFFLOAD said no */
	S_DIRECT_HINT, /* the table says the module would bounce it */
	S_DIRECT_NOMODULE, /* no ring: module absent, refused, ring retired */
	S_DIRECT_SIGNAL, /* from a handler that interrupted the shim */
	S_DIRECT_ENOSYS, /* the module did not know it */
	S_DRAINS, /* waits for deferred calls before another call */
	S_DEFER_FAILED, /* a deferred call failed: must stay 0 */
	S_NSTATS,
	/* then per call: S_NSTATS + 2 * call + (0 direct, 1 offloaded) */
	S_ALL = S_NSTATS + 2 * C_NCALLS
};

struct shim_thread {
	unsigned long stat[S_ALL];
	int depth; /* > 0 while inside the shim: a signal handler's call
		    * then goes direct */
	bool seen; /* counted and checked on the first call */
	struct shim_thread *next, *prev;
};

static __thread struct shim_thread t_shim;
static pthread_mutex_t g_threads_lock = PTHREAD_MUTEX_INITIALIZER;
static struct shim_thread *g_threads;
static unsigned long g_stat_done[S_ALL]; /* threads that ended */
static pthread_key_t g_key;
static bool g_key_ok;

/*
 * Set once a second thread may exist: from then on nothing is deferred,
 * since another thread could use or reuse a descriptor before this
 * thread's deferred call ran, which no per-thread order would see.
 */
static int g_multithreaded;
/* > 0 while a vfork child borrows our memory: its calls go direct. */
static int g_vfork __attribute__((used));
static bool g_ready; /* constructor done */

static inline void count(struct shim_thread *st, unsigned int s)
{
	__atomic_store_n(&st->stat[s], st->stat[s] + 1, __ATOMIC_RELAXED);
}

static inline void count_call(struct shim_thread *st, enum call c,
			      bool offloaded)
{
	count(st, S_NSTATS + 2 * c + offloaded);
}

static void thread_end(void *arg)
{
	struct shim_thread *st = arg;

	/* as if inside the shim: a signal handler's call meanwhile must not
	 * use the ring being taken down */
	st->depth++;
	esca_thread_exit();
	pthread_mutex_lock(&g_threads_lock);
	for (int i = 0; i < S_ALL; i++)
		g_stat_done[i] += st->stat[i];
	if (st->prev)
		st->prev->next = st->next;
	else if (g_threads == st)
		g_threads = st->next;
	if (st->next)
		st->next->prev = st->prev;
	pthread_mutex_unlock(&g_threads_lock);
	memset(st, 0, sizeof(*st));
	/*
	 * Never listed again: a call made after this (another key's
	 * destructor closing a descriptor) would link this TLS block, which
	 * goes with the thread, into the list for good.
	 */
	st->seen = true;
}

/* A thread's first call into the shim: list it for the exit report. */
static void thread_first(struct shim_thread *st)
{
	st->seen = true;
	if (esca_direct(SYS_gettid, 0, 0, 0, 0, 0, 0) !=
	    esca_direct(SYS_getpid, 0, 0, 0, 0, 0, 0))
		__atomic_store_n(&g_multithreaded, 1, __ATOMIC_RELAXED);
	pthread_mutex_lock(&g_threads_lock);
	st->prev = NULL;
	st->next = g_threads;
	if (g_threads)
		g_threads->prev = st;
	g_threads = st;
	pthread_mutex_unlock(&g_threads_lock);
	if (g_key_ok)
		pthread_setspecific(g_key, st);
}

/* ------------------------------------------------------------ real libc */

#define REAL(ret, name, ...)                   \
	typedef ret (*name##_fn)(__VA_ARGS__); \
	static name##_fn real_##name

REAL(ssize_t, read, int, void *, size_t);
REAL(ssize_t, readv, int, const struct iovec *, int);
REAL(ssize_t, recv, int, void *, size_t, int);
REAL(ssize_t, recvfrom, int, void *, size_t, int, struct sockaddr *,
     socklen_t *);
REAL(ssize_t, recvmsg, int, struct msghdr *, int);
REAL(ssize_t, write, int, const void *, size_t);
REAL(ssize_t, writev, int, const struct iovec *, int);
REAL(ssize_t, send, int, const void *, size_t, int);
REAL(ssize_t, sendto, int, const void *, size_t, int, const struct sockaddr *,
     socklen_t);
REAL(ssize_t, sendmsg, int, const struct msghdr *, int);
REAL(ssize_t, sendfile, int, int, off_t *, size_t);
REAL(ssize_t, pread, int, void *, size_t, off_t);
REAL(ssize_t, pwrite, int, const void *, size_t, off_t);
REAL(int, close, int);
REAL(int, shutdown, int, int);
REAL(int, epoll_ctl, int, int, int, struct epoll_event *);
REAL(int, fsync, int);
REAL(int, fdatasync, int);
REAL(int, ftruncate, int, off_t);
REAL(int, fchmod, int, mode_t);
REAL(int, fchown, int, uid_t, gid_t);
REAL(int, setsockopt, int, int, int, const void *, socklen_t);
REAL(int, getsockopt, int, int, int, void *, socklen_t *);
REAL(int, epoll_wait, int, struct epoll_event *, int, int);
REAL(int, epoll_pwait, int, struct epoll_event *, int, int, const sigset_t *);
REAL(int, epoll_pwait2, int, struct epoll_event *, int, const struct timespec *,
     const sigset_t *);
REAL(int, poll, struct pollfd *, nfds_t, int);
REAL(int, ppoll, struct pollfd *, nfds_t, const struct timespec *,
     const sigset_t *);
REAL(int, select, int, fd_set *, fd_set *, fd_set *, struct timeval *);
REAL(int, pselect, int, fd_set *, fd_set *, fd_set *, const struct timespec *,
     const sigset_t *);
REAL(int, socket, int, int, int);
REAL(int, socketpair, int, int, int, int *);
REAL(int, accept, int, struct sockaddr *, socklen_t *);
REAL(int, accept4, int, struct sockaddr *, socklen_t *, int);
REAL(int, openat, int, const char *, int, ...);
REAL(int, __open_2, const char *, int);
REAL(int, __open64_2, const char *, int);
REAL(int, __openat_2, int, const char *, int);
REAL(int, __openat64_2, int, const char *, int);
REAL(int, creat, const char *, mode_t);
REAL(int, creat64, const char *, mode_t);
REAL(int, pipe, int *);
REAL(int, pipe2, int *, int);
REAL(int, eventfd, unsigned int, int);
REAL(int, timerfd_create, int, int);
REAL(int, signalfd, int, const sigset_t *, int);
REAL(int, epoll_create, int);
REAL(int, epoll_create1, int);
REAL(int, dup, int);
REAL(int, dup2, int, int);
REAL(int, dup3, int, int, int);
REAL(int, fcntl, int, int, ...);
REAL(int, fcntl64, int, int, ...);
REAL(int, ioctl, int, unsigned long, ...);
REAL(int, close_range, unsigned int, unsigned int, int);
REAL(void, closefrom, int);
REAL(pid_t, fork, void);
REAL(int, posix_spawn, pid_t *, const char *,
     const posix_spawn_file_actions_t *, const posix_spawnattr_t *,
     char *const[], char *const[]);
REAL(int, posix_spawnp, pid_t *, const char *,
     const posix_spawn_file_actions_t *, const posix_spawnattr_t *,
     char *const[], char *const[]);
REAL(int, execve, const char *, char *const[], char *const[]);
REAL(int, execv, const char *, char *const[]);
REAL(int, execvp, const char *, char *const[]);
REAL(int, execvpe, const char *, char *const[], char *const[]);
REAL(int, fexecve, int, char *const[], char *const[]);
REAL(int, execveat, int, const char *, char *const[], char *const[], int);
REAL(int, system, const char *);
REAL(FILE *, popen, const char *, const char *);
REAL(int, pthread_create, pthread_t *, const pthread_attr_t *,
     void *(*)(void *), void *);
REAL(int, thrd_create, thrd_t *, thrd_start_t, void *);
REAL(int, timer_create, clockid_t, struct sigevent *, timer_t *);
REAL(int, mq_notify, mqd_t, const struct sigevent *);
REAL(int, unshare, int);
REAL(int, prctl, int, ...);
REAL(int, sendmmsg, int, struct mmsghdr *, unsigned int, int);
REAL(pid_t, _Fork, void);
REAL(int, clone, int (*)(void *), void *, int, void *, ...);
REAL(FILE *, fdopen, int, const char *);
REAL(int, fclose, FILE *);
REAL(FILE *, freopen, const char *, const char *, FILE *);
REAL(DIR *, fdopendir, int);
REAL(int, closedir, DIR *);
REAL(long, syscall, long, ...);
REAL(void, __chk_fail, void);
REAL(void, _exit, int);

/*
 * Calls the shim neither offloads nor learns from, which name a
 * descriptor or hand one out. Like every call that is not offloaded they
 * wait for this thread's deferred calls first (DESIGN section 4.3): fstat
 * or getsockname of a descriptor just closed must find it closed, fopen
 * and opendir must get the lowest free number. (What libc does inside,
 * stdio's writes among it, still cannot wait: see the README.) Resolved
 * with the others at start, so a handler's first fstat calls no dlsym;
 * all exist since glibc 2.28.
 */
/* The names old binaries (built before glibc 2.33) call fstat by. */
int __fxstat(int ver, int fd, struct stat *sb);
int __fxstat64(int ver, int fd, struct stat64 *sb);

#define PASS_THROUGH_CALLS(X)                                                  \
	X(int, fstat, (int fd, struct stat *sb), (fd, sb))                     \
	X(int, fstat64, (int fd, struct stat64 *sb), (fd, sb))                 \
	X(int, __fxstat, (int ver, int fd, struct stat *sb), (ver, fd, sb))    \
	X(int, __fxstat64, (int ver, int fd, struct stat64 *sb),               \
	  (ver, fd, sb))                                                       \
	X(int, fstatat,                                                        \
	  (int dfd, const char *path, struct stat *sb, int flags),             \
	  (dfd, path, sb, flags))                                              \
	X(int, fstatat64,                                                      \
	  (int dfd, const char *path, struct stat64 *sb, int flags),           \
	  (dfd, path, sb, flags))                                              \
	X(int, statx,                                                          \
	  (int dfd, const char *path, int flags, unsigned int mask,            \
	   struct statx *sb),                                                  \
	  (dfd, path, flags, mask, sb))                                        \
	X(int, fstatfs, (int fd, struct statfs *sb), (fd, sb))                 \
	X(off_t, lseek, (int fd, off_t off, int whence), (fd, off, whence))    \
	X(off64_t, lseek64, (int fd, off64_t off, int whence),                 \
	  (fd, off, whence))                                                   \
	X(int, flock, (int fd, int op), (fd, op))                              \
	X(int, fchdir, (int fd), (fd))                                         \
	X(ssize_t, preadv,                                                     \
	  (int fd, const struct iovec *iov, int n, off_t off),                 \
	  (fd, iov, n, off))                                                   \
	X(ssize_t, pwritev,                                                    \
	  (int fd, const struct iovec *iov, int n, off_t off),                 \
	  (fd, iov, n, off))                                                   \
	X(ssize_t, splice,                                                     \
	  (int in, loff_t *in_off, int out, loff_t *out_off, size_t n,         \
	   unsigned int flags),                                                \
	  (in, in_off, out, out_off, n, flags))                                \
	X(int, getsockname, (int fd, struct sockaddr *sa, socklen_t *len),     \
	  (fd, sa, len))                                                       \
	X(int, getpeername, (int fd, struct sockaddr *sa, socklen_t *len),     \
	  (fd, sa, len))                                                       \
	X(int, bind, (int fd, const struct sockaddr *sa, socklen_t len),       \
	  (fd, sa, len))                                                       \
	X(int, connect, (int fd, const struct sockaddr *sa, socklen_t len),    \
	  (fd, sa, len))                                                       \
	X(int, listen, (int fd, int backlog), (fd, backlog))                   \
	X(int, recvmmsg,                                                       \
	  (int fd, struct mmsghdr *v, unsigned int n, int flags,               \
	   struct timespec *ts),                                               \
	  (fd, v, n, flags, ts))                                               \
	X(FILE *, fopen, (const char *path, const char *mode), (path, mode))   \
	X(FILE *, fopen64, (const char *path, const char *mode), (path, mode)) \
	X(FILE *, tmpfile, (void), ())                                         \
	X(DIR *, opendir, (const char *path), (path))                          \
	X(int, mkstemp, (char *tmpl), (tmpl))                                  \
	X(int, mkostemp, (char *tmpl, int flags), (tmpl, flags))               \
	X(int, memfd_create, (const char *name, unsigned int flags),           \
	  (name, flags))

#define PT_REAL(ret, name, params, args) static ret(*real_##name) params;
PASS_THROUGH_CALLS(PT_REAL)
#undef PT_REAL

/*
 * Resolve the next definition of every wrapped function. Until this ran
 * (allocators and dlsym itself may make calls first), wrappers make raw
 * system calls.
 */
static int g_resolved; /* 0 no, 1 in progress, 2 done */

static void resolve_all(void)
{
	if (__atomic_exchange_n(&g_resolved, 1, __ATOMIC_ACQ_REL))
		return; /* done, or dlsym itself called us */
#define R(name) real_##name = (name##_fn)dlsym(RTLD_NEXT, #name)
	R(read);
	R(readv);
	R(recv);
	R(recvfrom);
	R(recvmsg);
	R(write);
	R(writev);
	R(send);
	R(sendto);
	R(sendmsg);
	R(sendfile);
	R(pread);
	R(pwrite);
	R(close);
	R(shutdown);
	R(epoll_ctl);
	R(fsync);
	R(fdatasync);
	R(ftruncate);
	R(fchmod);
	R(fchown);
	R(setsockopt);
	R(getsockopt);
	R(epoll_wait);
	R(epoll_pwait);
	R(epoll_pwait2);
	R(poll);
	R(ppoll);
	R(select);
	R(pselect);
	R(socket);
	R(socketpair);
	R(accept);
	R(accept4);
	R(openat);
	R(__open_2);
	R(__open64_2);
	R(__openat_2);
	R(__openat64_2);
	R(creat);
	R(creat64);
	R(pipe);
	R(pipe2);
	R(eventfd);
	R(timerfd_create);
	R(signalfd);
	R(epoll_create);
	R(epoll_create1);
	R(dup);
	R(dup2);
	R(dup3);
	R(fcntl);
	R(fcntl64);
	R(ioctl);
	R(close_range);
	R(closefrom);
	R(fork);
	R(posix_spawn);
	R(posix_spawnp);
	R(execve);
	R(execv);
	R(execvp);
	R(execvpe);
	R(fexecve);
	R(execveat);
	R(system);
	R(popen);
	R(pthread_create);
	R(thrd_create);
	R(timer_create);
	R(mq_notify);
	R(unshare);
	R(prctl);
	R(sendmmsg);
	R(_Fork);
	R(clone);
	R(fdopen);
	R(fclose);
	R(freopen);
	R(fdopendir);
	R(closedir);
	R(syscall);
	R(__chk_fail);
	R(_exit);
#undef R
#define PT_RESOLVE(ret, name, params, args) \
	real_##name = (ret(*) params)dlsym(RTLD_NEXT, #name);
	PASS_THROUGH_CALLS(PT_RESOLVE)
#undef PT_RESOLVE
	__atomic_store_n(&g_resolved, 2, __ATOMIC_RELEASE);
}

/*
 * Other libraries' constructors may run before ours and call us: resolve
 * on first use.
 */
static inline void resolve(void)
{
	if (__builtin_expect(
		    __atomic_load_n(&g_resolved, __ATOMIC_ACQUIRE) != 2, 0))
		resolve_all();
}

/* A raw result (-errno on failure) as libc returns it. */
static inline long set_errno(long r)
{
	if (r < 0 && r > -4096) {
		errno = (int)-r;
		return -1;
	}
	return r;
}

#define RAW(nr, a0, a1, a2, a3, a4, a5)                               \
	set_errno(esca_direct(nr, (long)(a0), (long)(a1), (long)(a2), \
			      (long)(a3), (long)(a4), (long)(a5)))

/* ------------------------------------------------------------ entry */

/*
 * Every wrapper brackets its work with enter()/leave(). A call that finds
 * the thread already inside the shim comes from a signal handler that
 * interrupted it (or from a vfork child, which shares our memory): it is
 * made directly, after this thread's queued calls ran, so it still sees
 * them in program order.
 */
enum path {
	P_SHIM,
	P_DIRECT, /* from a handler, or before set-up: depth was raised */
	P_VFORK, /* while a vfork child runs: depth untouched */
};

static inline enum path enter(struct shim_thread **out)
{
	struct shim_thread *st = &t_shim;

	*out = st;
	resolve();
	if (__atomic_load_n(&g_vfork, __ATOMIC_RELAXED)) {
		/* TLS is the parent thread's: count nothing, touch nothing */
		return P_VFORK;
	}
	if (st->depth++ > 0 || !g_ready) {
		if (g_ready)
			count(st, S_DIRECT_SIGNAL);
		esca__settle();
		return P_DIRECT;
	}
	if (!st->seen)
		thread_first(st);
	return P_SHIM;
}

/*
 * Undo what enter() did, by what it did: g_vfork may have changed since
 * (the vfork child exec'd while this thread's call ran), and a depth
 * lowered that was never raised would let a later handler re-enter the
 * thread's ring.
 */
static inline void leave(struct shim_thread *st, enum path p)
{
	if (p != P_VFORK)
		st->depth--;
}

/* Before a call that is not offloaded: this thread's queue first. */
static void drain(struct shim_thread *st)
{
	if (!esca__pending())
		return;
	count(st, S_DRAINS);
	if (esca_drain() > 0)
		count(st, S_DEFER_FAILED);
}

/* ------------------------------------------------------------ policy */

enum how { H_DIRECT, H_SYNC, H_DEFER };

static bool call_enabled(enum call c)
{
	switch (cfg.mode) {
	case OFFLOAD_ALL:
		return true;
	case OFFLOAD_LIST:
		return cfg.calls & (1u << c);
	default:
		return false;
	}
}

/*
 * Would the module bounce a data call on this descriptor? Then making it
 * directly at once saves the round trip (the result is the same either
 * way: the module re-checks every call).
 */
static bool bounce_hint(uint32_t w, bool dontwait)
{
	unsigned int kind = fd_kind(w);

	if (kind == FK_SIGNALFD)
		return true;
	if (kind == FK_SOCK && fd_family(w) == FF_UNIX)
		return true;
	if ((kind == FK_SOCK || kind == FK_PIPE || kind == FK_EVENTFD ||
	     kind == FK_TIMERFD) &&
	    (w & FD_NB_KNOWN) && !(w & FD_NB) && !dontwait)
		return true;
	return false;
}

/*
 * Can close(fd) return 0 now? Only if the table knows fd is open and of a
 * kind whose close has no error to report: sockets, pipes, eventfd,
 * timerfd, epoll (no ->flush). Regular files stay synchronous: a
 * filesystem's flush may fail (FUSE asks its daemon, NFS reports
 * write-back errors), and the shim cannot see the filesystem without a
 * system call.
 */
static bool close_provable(uint32_t w)
{
	switch (fd_kind(w)) {
	case FK_SOCK:
	case FK_PIPE:
	case FK_EVENTFD:
	case FK_TIMERFD:
	case FK_EPOLL:
		/* SO_LINGER: the module bounces the close (it would wait) */
		return !(w & (FD_LIBC | FD_LINGER));
	default:
		return false;
	}
}

/*
 * The one place that decides how a call goes. @fd is the descriptor it
 * acts on; @dontwait, for data calls, that MSG_DONTWAIT was given;
 * @provable, for close and epoll_ctl, that the table proved the result.
 */
static enum how policy(enum call c, uint32_t w, bool dontwait, bool provable,
		       struct shim_thread *st)
{
	bool may_defer = provable &&
			 !__atomic_load_n(&g_multithreaded, __ATOMIC_RELAXED);

	if (cfg.mode == OFFLOAD_NONE ||
	    (cfg.mode == OFFLOAD_DEFER_ONLY && !may_defer) ||
	    (cfg.mode != OFFLOAD_DEFER_ONLY && !call_enabled(c))) {
		count(st, S_DIRECT_POLICY);
		count_call(st, c, false);
		return H_DIRECT;
	}
	if (c <= C_PWRITE && bounce_hint(w, dontwait)) {
		count(st, S_DIRECT_HINT);
		count_call(st, c, false);
		return H_DIRECT;
	}
	if (!esca_active()) {
		count(st, S_DIRECT_NOMODULE);
		count_call(st, c, false);
		return H_DIRECT;
	}
	return may_defer ? H_DEFER : H_SYNC;
}

/* Offload (sync or deferred); the raw result, or -ENOSYS to go direct. */
static long offload(enum call c, enum how how, struct shim_thread *st, long nr,
		    long a0, long a1, long a2, long a3, long a4, long a5)
{
	long r;

	if (how == H_DEFER) {
		/* its result is proven 0; if the ring was gone and the call
		 * made directly, esca_defer says how it went (never failed) */
		r = esca_defer(nr, a0, a1, a2, a3, a4, a5);
		if (r < 0)
			count(st, S_DEFER_FAILED);
		count(st, S_DEFERRED);
		count_call(st, c, true);
		return 0;
	}
	r = esca_call(nr, a0, a1, a2, a3, a4, a5);
	if (r == -ENOSYS) {
		/* an older module without this call: a direct call is exact */
		count(st, S_DIRECT_ENOSYS);
		count_call(st, c, false);
		return -ENOSYS;
	}
	count(st, S_SYNC);
	count_call(st, c, true);
	return r;
}

/*
 * An offloadable call on @fd. DIRECT_CALL is the libc call made when the
 * call goes direct.
 */
#define OFFLOADED(c, fd, dontwait, nr, a0, a1, a2, a3, a4, a5, DIRECT_CALL)   \
	do {                                                                  \
		struct shim_thread *st_;                                      \
		enum path p_ = enter(&st_);                                   \
		long r_;                                                      \
		if (p_ == P_SHIM) {                                           \
			enum how h_ =                                         \
				policy(c, fd_word(fd), dontwait, false, st_); \
			if (h_ != H_DIRECT) {                                 \
				r_ = offload(c, h_, st_, nr, (long)(a0),      \
					     (long)(a1), (long)(a2),          \
					     (long)(a3), (long)(a4),          \
					     (long)(a5));                     \
				if (r_ != -ENOSYS) {                          \
					leave(st_, p_);                       \
					return set_errno(r_);                 \
				}                                             \
			} else {                                              \
				drain(st_);                                   \
			}                                                     \
		}                                                             \
		r_ = (long)(DIRECT_CALL);                                     \
		leave(st_, p_);                                               \
		return r_;                                                    \
	} while (0)

#define DIRECT_OR_RAW(name, nr, ...) \
	(real_##name ? real_##name(__VA_ARGS__) : RAW(nr, __VA_ARGS__, 0, 0, 0))

static void chk_fail(void)
{
	resolve();
	if (real___chk_fail)
		real___chk_fail();
	abort();
}

/*
 * libesca's /dev/esca descriptor. The program never opened it, so to the
 * program that number is not open: closing it by number (a daemon closing
 * every descriptor, close_range, closefrom) is EBADF or skips it, and a
 * dup2 onto it moves it away first. Losing it would leave the consumer
 * asleep with no way to wake it, and a later open would hand its number
 * to the program while the library still used it.
 */
static inline bool is_esca_fd(long fd)
{
	return fd >= 0 && fd == esca__fd();
}

static inline void esca_fd_spare(long nfd)
{
	/* not from a vfork child: its table is its own, our memory is not */
	if (is_esca_fd(nfd) && !__atomic_load_n(&g_vfork, __ATOMIC_RELAXED))
		esca__fd_move();
}

/* close_range(2) around the library's descriptor: the raw result. */
static long close_range_sparing(unsigned int first, unsigned int last,
				int flags)
{
	long g = esca__fd(), r = 0;

	if (g < 0 || (unsigned int)g < first || (unsigned int)g > last ||
	    first > last || (flags & CLOSE_RANGE_CLOEXEC) ||
	    (flags & ~(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC)))
		return esca_direct(SYS_close_range, first, last, flags, 0, 0,
				   0);
	if ((unsigned int)g > first)
		r = esca_direct(SYS_close_range, first, (unsigned int)g - 1,
				flags, 0, 0, 0);
	if (r == 0 && (unsigned int)g < last)
		r = esca_direct(SYS_close_range, (unsigned int)g + 1, last,
				flags, 0, 0, 0);
	else if (r == 0 && first == last && (flags & CLOSE_RANGE_UNSHARE))
		r = esca_direct(SYS_unshare, CLONE_FILES, 0, 0, 0, 0, 0);
	return r;
}

/* ------------------------------------------------------------ offloaded */

EXPORT ssize_t read(int fd, void *buf, size_t n)
{
	OFFLOADED(C_READ, fd, false, SYS_read, fd, buf, n, 0, 0, 0,
		  real_read ? real_read(fd, buf, n) :
			      RAW(SYS_read, fd, buf, n, 0, 0, 0));
}

EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	if (n > buflen)
		chk_fail();
	return read(fd, buf, n);
}

EXPORT ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
	OFFLOADED(C_READV, fd, false, SYS_readv, fd, iov, cnt, 0, 0, 0,
		  real_readv ? real_readv(fd, iov, cnt) :
			       RAW(SYS_readv, fd, iov, cnt, 0, 0, 0));
}

EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags,
			struct sockaddr *sa, socklen_t *salen)
{
	OFFLOADED(C_RECVFROM, fd, flags & MSG_DONTWAIT, SYS_recvfrom, fd, buf,
		  n, flags, sa, salen,
		  real_recvfrom ?
			  real_recvfrom(fd, buf, n, flags, sa, salen) :
			  RAW(SYS_recvfrom, fd, buf, n, flags, sa, salen));
}

EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags)
{
	OFFLOADED(C_RECV, fd, flags & MSG_DONTWAIT, SYS_recvfrom, fd, buf, n,
		  flags, 0, 0,
		  real_recv ? real_recv(fd, buf, n, flags) :
			      RAW(SYS_recvfrom, fd, buf, n, flags, 0, 0));
}

EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
	if (n > buflen)
		chk_fail();
	return recv(fd, buf, n, flags);
}

EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen,
			      int flags, struct sockaddr *sa, socklen_t *salen)
{
	if (n > buflen)
		chk_fail();
	return recvfrom(fd, buf, n, flags, sa, salen);
}

EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	OFFLOADED(C_RECVMSG, fd, flags & MSG_DONTWAIT, SYS_recvmsg, fd, msg,
		  flags, 0, 0, 0,
		  real_recvmsg ? real_recvmsg(fd, msg, flags) :
				 RAW(SYS_recvmsg, fd, msg, flags, 0, 0, 0));
}

EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
	OFFLOADED(C_WRITE, fd, false, SYS_write, fd, buf, n, 0, 0, 0,
		  real_write ? real_write(fd, buf, n) :
			       RAW(SYS_write, fd, buf, n, 0, 0, 0));
}

EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	OFFLOADED(C_WRITEV, fd, false, SYS_writev, fd, iov, cnt, 0, 0, 0,
		  real_writev ? real_writev(fd, iov, cnt) :
				RAW(SYS_writev, fd, iov, cnt, 0, 0, 0));
}

EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags,
		      const struct sockaddr *sa, socklen_t salen)
{
	OFFLOADED(C_SENDTO, fd, flags & MSG_DONTWAIT, SYS_sendto, fd, buf, n,
		  flags, sa, salen,
		  real_sendto ? real_sendto(fd, buf, n, flags, sa, salen) :
				RAW(SYS_sendto, fd, buf, n, flags, sa, salen));
}

EXPORT ssize_t send(int fd, const void *buf, size_t n, int flags)
{
	OFFLOADED(C_SEND, fd, flags & MSG_DONTWAIT, SYS_sendto, fd, buf, n,
		  flags, 0, 0,
		  real_send ? real_send(fd, buf, n, flags) :
			      RAW(SYS_sendto, fd, buf, n, flags, 0, 0));
}

/*
 * SCM_RIGHTS may hand one of our epolls to another process. Only a unix
 * socket carries descriptors; the message itself is not read here (a bad
 * pointer is the kernel's EFAULT to give, not a crash in the shim).
 */
static void may_pass_fds(int fd)
{
	uint32_t w = fd_word(fd);

	if (fd_kind(w) != FK_SOCK || fd_family(w) == FF_UNIX ||
	    fd_family(w) == FF_UNKNOWN)
		fd_fork();
}

EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	may_pass_fds(fd);
	OFFLOADED(C_SENDMSG, fd, flags & MSG_DONTWAIT, SYS_sendmsg, fd, msg,
		  flags, 0, 0, 0,
		  real_sendmsg ? real_sendmsg(fd, msg, flags) :
				 RAW(SYS_sendmsg, fd, msg, flags, 0, 0, 0));
}

EXPORT ssize_t sendfile(int out, int in, off_t *off, size_t n)
{
	OFFLOADED(C_SENDFILE, out, false, SYS_sendfile, out, in, off, n, 0, 0,
		  real_sendfile ? real_sendfile(out, in, off, n) :
				  RAW(SYS_sendfile, out, in, off, n, 0, 0));
}

EXPORT ssize_t sendfile64(int out, int in, off_t *off, size_t n)
{
	return sendfile(out, in, off, n);
}

EXPORT ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
	OFFLOADED(C_PREAD, fd, false, SYS_pread64, fd, buf, n, off, 0, 0,
		  real_pread ? real_pread(fd, buf, n, off) :
			       RAW(SYS_pread64, fd, buf, n, off, 0, 0));
}

EXPORT ssize_t pread64(int fd, void *buf, size_t n, off_t off)
{
	return pread(fd, buf, n, off);
}

EXPORT ssize_t __pread_chk(int fd, void *buf, size_t n, off_t off,
			   size_t buflen)
{
	if (n > buflen)
		chk_fail();
	return pread(fd, buf, n, off);
}

EXPORT ssize_t __pread64_chk(int fd, void *buf, size_t n, off_t off,
			     size_t buflen)
{
	if (n > buflen)
		chk_fail();
	return pread(fd, buf, n, off);
}

EXPORT ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	OFFLOADED(C_PWRITE, fd, false, SYS_pwrite64, fd, buf, n, off, 0, 0,
		  real_pwrite ? real_pwrite(fd, buf, n, off) :
				RAW(SYS_pwrite64, fd, buf, n, off, 0, 0));
}

EXPORT ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	return pwrite(fd, buf, n, off);
}

EXPORT int shutdown(int fd, int how)
{
	OFFLOADED(C_SHUTDOWN, fd, false, SYS_shutdown, fd, how, 0, 0, 0, 0,
		  real_shutdown ? real_shutdown(fd, how) :
				  RAW(SYS_shutdown, fd, how, 0, 0, 0, 0));
}

EXPORT int fsync(int fd)
{
	OFFLOADED(C_FSYNC, fd, false, SYS_fsync, fd, 0, 0, 0, 0, 0,
		  real_fsync ? real_fsync(fd) :
			       RAW(SYS_fsync, fd, 0, 0, 0, 0, 0));
}

EXPORT int fdatasync(int fd)
{
	OFFLOADED(C_FDATASYNC, fd, false, SYS_fdatasync, fd, 0, 0, 0, 0, 0,
		  real_fdatasync ? real_fdatasync(fd) :
				   RAW(SYS_fdatasync, fd, 0, 0, 0, 0, 0));
}

EXPORT int ftruncate(int fd, off_t len)
{
	OFFLOADED(C_FTRUNCATE, fd, false, SYS_ftruncate, fd, len, 0, 0, 0, 0,
		  real_ftruncate ? real_ftruncate(fd, len) :
				   RAW(SYS_ftruncate, fd, len, 0, 0, 0, 0));
}

EXPORT int ftruncate64(int fd, off_t len)
{
	return ftruncate(fd, len);
}

EXPORT int fchmod(int fd, mode_t mode)
{
	OFFLOADED(C_FCHMOD, fd, false, SYS_fchmod, fd, mode, 0, 0, 0, 0,
		  real_fchmod ? real_fchmod(fd, mode) :
				RAW(SYS_fchmod, fd, mode, 0, 0, 0, 0));
}

EXPORT int fchown(int fd, uid_t uid, gid_t gid)
{
	OFFLOADED(C_FCHOWN, fd, false, SYS_fchown, fd, uid, gid, 0, 0, 0,
		  real_fchown ? real_fchown(fd, uid, gid) :
				RAW(SYS_fchown, fd, uid, gid, 0, 0, 0));
}

EXPORT int setsockopt(int fd, int level, int name, const void *val,
		      socklen_t len)
{
	/* before the call: a close deferred meanwhile must know */
	if (level == SOL_SOCKET && name == SO_LINGER)
		fd_set_flag(fd, FD_LINGER);
	OFFLOADED(C_SETSOCKOPT, fd, false, SYS_setsockopt, fd, level, name, val,
		  len, 0,
		  real_setsockopt ?
			  real_setsockopt(fd, level, name, val, len) :
			  RAW(SYS_setsockopt, fd, level, name, val, len, 0));
}

EXPORT int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	OFFLOADED(C_GETSOCKOPT, fd, false, SYS_getsockopt, fd, level, name, val,
		  len, 0,
		  real_getsockopt ?
			  real_getsockopt(fd, level, name, val, len) :
			  RAW(SYS_getsockopt, fd, level, name, val, len, 0));
}

/*
 * close: the descriptor's table entry is retired before the call (from
 * then on nothing may be deferred on its number) and the result is the
 * kernel's, or provably 0 when deferred.
 */
EXPORT int close(int fd)
{
	struct shim_thread *st;
	enum path p;
	uint32_t w = fd_word(fd);
	long r;

	if (is_esca_fd(fd)) {
		errno = EBADF;
		return -1;
	}
	p = enter(&st);

	if (p == P_SHIM) {
		enum how h = policy(C_CLOSE, w, false, close_provable(w), st);

		fd_forget(fd);
		if (h != H_DIRECT) {
			r = offload(C_CLOSE, h, st, SYS_close, fd, 0, 0, 0, 0,
				    0);
			if (r != -ENOSYS) {
				/*
				 * Again: a signal handler that ran since the
				 * first forget may have closed fd and made a
				 * new descriptor there, which the table
				 * learnt and this close just ended.
				 */
				fd_forget(fd);
				leave(st, p);
				return (int)set_errno(r);
			}
		} else {
			drain(st);
		}
	} else if (p == P_DIRECT) {
		fd_forget(fd);
	}
	r = real_close ? real_close(fd) : RAW(SYS_close, fd, 0, 0, 0, 0, 0);
	if (p == P_SHIM)
		fd_forget(fd); /* as above */
	leave(st, p);
	return (int)r;
}

/*
 * epoll_ctl: DEL of a descriptor the table knows is in this epoll set
 * (added through the shim, on an epoll instance created in this process
 * since its last fork, so no other process shares it) returns 0 for sure:
 * deferred. ADD can fail for want of memory or watches (ENOMEM, ENOSPC)
 * and MOD reads the program's event structure, which must not be read
 * after we return: both synchronous. Every result updates the table.
 */
EXPORT int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	struct shim_thread *st;
	enum path p = enter(&st);
	long r;

	if (p == P_SHIM) {
		bool provable = op == EPOLL_CTL_DEL &&
				fd_ep_member(fd, epfd) == FD_EP_IN;
		enum how h =
			policy(C_EPOLL_CTL, fd_word(fd), false, provable, st);

		if (h != H_DIRECT) {
			if (provable)
				fd_ep_set(fd, epfd, FD_EP_OUT);
			r = offload(C_EPOLL_CTL, h, st, SYS_epoll_ctl, epfd, op,
				    fd, (long)ev, 0, 0);
			if (r != -ENOSYS) {
				if (h == H_SYNC)
					fd_ep_learn(fd, epfd, op, r);
				leave(st, p);
				return (int)set_errno(r);
			}
		} else {
			drain(st);
		}
	}
	r = real_epoll_ctl ? real_epoll_ctl(epfd, op, fd, ev) :
			     RAW(SYS_epoll_ctl, epfd, op, fd, ev, 0, 0);
	if (p == P_SHIM)
		fd_ep_learn(fd, epfd, op, r < 0 ? -errno : r);
	else if (p == P_DIRECT)
		fd_ep_set(fd, epfd, FD_EP_UNSURE);
	leave(st, p);
	return (int)r;
}

/* ------------------------------------------------------------ sync points */

#define SYNC_POINT(DIRECT_CALL)             \
	do {                                \
		struct shim_thread *st_;    \
		enum path p_ = enter(&st_); \
		long r_;                    \
		if (p_ == P_SHIM)           \
			drain(st_);         \
		r_ = (long)(DIRECT_CALL);   \
		leave(st_, p_);             \
		return r_;                  \
	} while (0)

EXPORT int epoll_wait(int epfd, struct epoll_event *ev, int max, int ms)
{
	SYNC_POINT(real_epoll_wait ?
			   real_epoll_wait(epfd, ev, max, ms) :
			   RAW(SYS_epoll_wait, epfd, ev, max, ms, 0, 0));
}

EXPORT int epoll_pwait(int epfd, struct epoll_event *ev, int max, int ms,
		       const sigset_t *ss)
{
	SYNC_POINT(real_epoll_pwait ?
			   real_epoll_pwait(epfd, ev, max, ms, ss) :
			   RAW(SYS_epoll_pwait, epfd, ev, max, ms, ss, 8));
}

EXPORT int epoll_pwait2(int epfd, struct epoll_event *ev, int max,
			const struct timespec *ts, const sigset_t *ss)
{
	SYNC_POINT(real_epoll_pwait2 ?
			   real_epoll_pwait2(epfd, ev, max, ts, ss) :
			   RAW(SYS_epoll_pwait2, epfd, ev, max, ts, ss, 8));
}

EXPORT int poll(struct pollfd *fds, nfds_t n, int ms)
{
	SYNC_POINT(real_poll ? real_poll(fds, n, ms) :
			       RAW(SYS_poll, fds, n, ms, 0, 0, 0));
}

EXPORT int __poll_chk(struct pollfd *fds, nfds_t n, int ms, size_t fdslen)
{
	if (fdslen / sizeof(*fds) < n)
		chk_fail();
	return poll(fds, n, ms);
}

EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts,
		 const sigset_t *ss)
{
	SYNC_POINT(real_ppoll ? real_ppoll(fds, n, ts, ss) :
				RAW(SYS_ppoll, fds, n, ts, ss, 8, 0));
}

EXPORT int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *ts,
		       const sigset_t *ss, size_t fdslen)
{
	if (fdslen / sizeof(*fds) < n)
		chk_fail();
	return ppoll(fds, n, ts, ss);
}

EXPORT int select(int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv)
{
	SYNC_POINT(real_select ? real_select(n, r, w, e, tv) :
				 RAW(SYS_select, n, r, w, e, tv, 0));
}

EXPORT int pselect(int n, fd_set *r, fd_set *w, fd_set *e,
		   const struct timespec *ts, const sigset_t *ss)
{
	SYNC_POINT(real_pselect(n, r, w, e, ts, ss));
}

/* ------------------------------------------------------------ bookkeeping */

/*
 * A call that is not offloaded: drain, make it, then let the table learn
 * from the result (LEARN runs with r holding the result, only on the
 * shim's own path: a vfork child must not write the parent's table).
 */
#define BOOKKEEPING(type, DIRECT_CALL, LEARN) \
	do {                                  \
		struct shim_thread *st_;      \
		enum path p_ = enter(&st_);   \
		type r;                       \
		if (p_ == P_SHIM)             \
			drain(st_);           \
		r = (DIRECT_CALL);            \
		if (p_ != P_VFORK) {          \
			int saved_ = errno;   \
			LEARN;                \
			errno = saved_;       \
		}                             \
		leave(st_, p_);               \
		return r;                     \
	} while (0)

static unsigned int sock_family(int domain)
{
	switch (domain) {
	case AF_INET:
	case AF_INET6:
		return FF_INET;
	case AF_UNIX:
		return FF_UNIX;
	default:
		return FF_OTHER;
	}
}

EXPORT int socket(int domain, int type, int proto)
{
	BOOKKEEPING(int,
		    real_socket ?
			    real_socket(domain, type, proto) :
			    (int)RAW(SYS_socket, domain, type, proto, 0, 0, 0),
		    if (r >= 0) fd_new(r, FK_SOCK, sock_family(domain),
				       type & SOCK_NONBLOCK));
}

EXPORT int socketpair(int domain, int type, int proto, int sv[2])
{
	BOOKKEEPING(
		int,
		real_socketpair ?
			real_socketpair(domain, type, proto, sv) :
			(int)RAW(SYS_socketpair, domain, type, proto, sv, 0, 0),
		if (r == 0) {
			fd_new(sv[0], FK_SOCK, sock_family(domain),
			       type & SOCK_NONBLOCK);
			fd_new(sv[1], FK_SOCK, sock_family(domain),
			       type & SOCK_NONBLOCK);
		});
}

/* An accepted socket is of its listener's family; never O_NONBLOCK
 * unless accept4 says so. */
static void learn_accept(int lfd, int r, int flags)
{
	uint32_t lw = fd_word(lfd);

	if (r < 0)
		return;
	fd_new(r, FK_SOCK, fd_kind(lw) == FK_SOCK ? fd_family(lw) : FF_UNKNOWN,
	       flags & SOCK_NONBLOCK);
	/* the accepted socket inherits its listener's SO_LINGER */
	if (fd_kind(lw) != FK_SOCK || (lw & FD_LINGER))
		fd_set_flag(r, FD_LINGER);
}

EXPORT int accept(int fd, struct sockaddr *sa, socklen_t *len)
{
	BOOKKEEPING(int,
		    real_accept ? real_accept(fd, sa, len) :
				  (int)RAW(SYS_accept, fd, sa, len, 0, 0, 0),
		    learn_accept(fd, r, 0));
}

EXPORT int accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags)
{
	BOOKKEEPING(int,
		    real_accept4 ?
			    real_accept4(fd, sa, len, flags) :
			    (int)RAW(SYS_accept4, fd, sa, len, flags, 0, 0),
		    learn_accept(fd, r, flags));
}

/* open and friends: a file of unknown type (it may be a FIFO, a device). */
static void learn_open(int r, int flags)
{
	if (r >= 0)
		fd_new(r, FK_FILE, FF_UNKNOWN, flags & O_NONBLOCK);
}

static mode_t open_mode(int flags, va_list ap)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ?
		       (mode_t)va_arg(ap, int) :
		       0;
}

/*
 * open, open64, openat and openat64 are one call on x86-64 (glibc makes
 * the first three openat(AT_FDCWD, ...)): one path for all four.
 */
static int open_at(int dfd, const char *path, int flags, mode_t mode)
{
	BOOKKEEPING(int,
		    real_openat ?
			    real_openat(dfd, path, flags, mode) :
			    (int)RAW(SYS_openat, dfd, path, flags, mode, 0, 0),
		    learn_open(r, flags));
}

#define OPEN_MODE(flags, mode)                \
	do {                                  \
		va_list ap_;                  \
		va_start(ap_, flags);         \
		mode = open_mode(flags, ap_); \
		va_end(ap_);                  \
	} while (0)

EXPORT int open(const char *path, int flags, ...)
{
	mode_t mode;

	OPEN_MODE(flags, mode);
	return open_at(AT_FDCWD, path, flags, mode);
}

EXPORT int open64(const char *path, int flags, ...)
{
	mode_t mode;

	OPEN_MODE(flags, mode);
	return open_at(AT_FDCWD, path, flags, mode);
}

EXPORT int openat(int dfd, const char *path, int flags, ...)
{
	mode_t mode;

	OPEN_MODE(flags, mode);
	return open_at(dfd, path, flags, mode);
}

EXPORT int openat64(int dfd, const char *path, int flags, ...)
{
	mode_t mode;

	OPEN_MODE(flags, mode);
	return open_at(dfd, path, flags, mode);
}

EXPORT int __open_2(const char *path, int flags)
{
	BOOKKEEPING(int, real___open_2(path, flags), learn_open(r, flags));
}

EXPORT int __open64_2(const char *path, int flags)
{
	BOOKKEEPING(int, real___open64_2(path, flags), learn_open(r, flags));
}

EXPORT int __openat_2(int dfd, const char *path, int flags)
{
	BOOKKEEPING(int, real___openat_2(dfd, path, flags),
		    learn_open(r, flags));
}

EXPORT int __openat64_2(int dfd, const char *path, int flags)
{
	BOOKKEEPING(int, real___openat64_2(dfd, path, flags),
		    learn_open(r, flags));
}

EXPORT int creat(const char *path, mode_t mode)
{
	BOOKKEEPING(int, real_creat(path, mode), learn_open(r, 0));
}

EXPORT int creat64(const char *path, mode_t mode)
{
	BOOKKEEPING(int, real_creat64(path, mode), learn_open(r, 0));
}

EXPORT int pipe2(int fds[2], int flags)
{
	BOOKKEEPING(
		int,
		real_pipe2 ? real_pipe2(fds, flags) :
			     (int)RAW(SYS_pipe2, fds, flags, 0, 0, 0, 0),
		if (r == 0) {
			fd_new(fds[0], FK_PIPE, FF_UNKNOWN, flags & O_NONBLOCK);
			fd_new(fds[1], FK_PIPE, FF_UNKNOWN, flags & O_NONBLOCK);
		});
}

EXPORT int pipe(int fds[2])
{
	return pipe2(fds, 0);
}

EXPORT int eventfd(unsigned int init, int flags)
{
	BOOKKEEPING(int, real_eventfd(init, flags),
		    if (r >= 0) fd_new(r, FK_EVENTFD, FF_UNKNOWN,
				       flags & EFD_NONBLOCK));
}

EXPORT int timerfd_create(int clock, int flags)
{
	BOOKKEEPING(int, real_timerfd_create(clock, flags),
		    if (r >= 0) fd_new(r, FK_TIMERFD, FF_UNKNOWN,
				       flags & TFD_NONBLOCK));
}

EXPORT int signalfd(int fd, const sigset_t *mask, int flags)
{
	BOOKKEEPING(int, real_signalfd(fd, mask, flags),
		    if (r >= 0 && fd == -1) fd_new(r, FK_SIGNALFD, FF_UNKNOWN,
						   flags & SFD_NONBLOCK));
}

EXPORT int epoll_create1(int flags)
{
	BOOKKEEPING(int,
		    real_epoll_create1 ?
			    real_epoll_create1(flags) :
			    (int)RAW(SYS_epoll_create1, flags, 0, 0, 0, 0, 0),
		    if (r >= 0) fd_new_epoll(r));
}

EXPORT int epoll_create(int size)
{
	BOOKKEEPING(int, real_epoll_create(size), if (r >= 0) fd_new_epoll(r));
}

EXPORT int dup(int fd)
{
	BOOKKEEPING(int,
		    real_dup ? real_dup(fd) :
			       (int)RAW(SYS_dup, fd, 0, 0, 0, 0, 0),
		    if (r >= 0) fd_copy(fd, r));
}

/*
 * dup2/dup3 change what @nfd means: its entry is retired first, and this
 * thread's queued calls (which may name @nfd) run before.
 */
EXPORT int dup2(int fd, int nfd)
{
	BOOKKEEPING(int,
		    (fd != nfd ? fd_forget(nfd) : (void)0, esca_fd_spare(nfd),
		     real_dup2 ? real_dup2(fd, nfd) :
				 (int)RAW(SYS_dup2, fd, nfd, 0, 0, 0, 0)),
		    if (r >= 0 && fd != nfd) fd_copy(fd, nfd));
}

EXPORT int dup3(int fd, int nfd, int flags)
{
	BOOKKEEPING(int,
		    (fd != nfd ? fd_forget(nfd) : (void)0, esca_fd_spare(nfd),
		     real_dup3 ? real_dup3(fd, nfd, flags) :
				 (int)RAW(SYS_dup3, fd, nfd, flags, 0, 0, 0)),
		    if (r >= 0) fd_copy(fd, nfd));
}

static void learn_fcntl(int fd, int cmd, long arg, int r)
{
	if (r < 0)
		return;
	switch (cmd) {
	case F_DUPFD:
	case F_DUPFD_CLOEXEC:
		fd_copy(fd, r);
		break;
	case F_SETFL:
		fd_set_nonblock(fd, arg & O_NONBLOCK);
		break;
	case F_GETFL:
		fd_set_nonblock(fd, r & O_NONBLOCK);
		break;
	}
}

/* Every fcntl command takes at most one argument, an int or a pointer. */
static int fcntl_common(fcntl_fn real, int fd, int cmd, long arg)
{
	BOOKKEEPING(int,
		    real ? real(fd, cmd, arg) :
			   (int)RAW(SYS_fcntl, fd, cmd, arg, 0, 0, 0),
		    learn_fcntl(fd, cmd, arg, r));
}

EXPORT int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	long arg;

	va_start(ap, cmd);
	arg = va_arg(ap, long);
	va_end(ap);
	return fcntl_common(real_fcntl, fd, cmd, arg);
}

EXPORT int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	long arg;

	va_start(ap, cmd);
	arg = va_arg(ap, long);
	va_end(ap);
	return fcntl_common((fcntl_fn)real_fcntl64, fd, cmd, arg);
}

EXPORT int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	BOOKKEEPING(int,
		    real_ioctl ? real_ioctl(fd, req, arg) :
				 (int)RAW(SYS_ioctl, fd, req, arg, 0, 0, 0),
		    if (r == 0 && req == FIONBIO && arg)
			    fd_set_nonblock(fd, *(int *)arg != 0));
}

EXPORT int close_range(unsigned int first, unsigned int last, int flags)
{
	BOOKKEEPING(int,
		    (!(flags & CLOSE_RANGE_CLOEXEC) ?
			     fd_forget_range(first, last) :
			     (void)0,
		     (int)set_errno(close_range_sparing(first, last, flags))),
		    (void)r);
}

/*
 * closefrom (glibc 2.34) closes through close_range inside libc, unseen:
 * done here instead. Without close_range (kernels before 5.9) libc's own
 * fallback runs, which does not spare the library's descriptor.
 */
EXPORT void closefrom(int lowfd)
{
	unsigned int first = lowfd < 0 ? 0 : (unsigned int)lowfd;
	struct shim_thread *st;
	enum path p = enter(&st);

	if (p == P_SHIM)
		drain(st);
	fd_forget_range(first, ~0u); /* forgetting is always safe */
	if (close_range_sparing(first, ~0u, 0) != 0 && real_closefrom)
		real_closefrom(lowfd);
	leave(st, p);
}

/* FILE and DIR streams close their descriptor inside libc, unseen. */
EXPORT FILE *fdopen(int fd, const char *mode)
{
	BOOKKEEPING(FILE *, real_fdopen(fd, mode),
		    if (r) fd_set_flag(fd, FD_LIBC));
}

EXPORT DIR *fdopendir(int fd)
{
	BOOKKEEPING(DIR *, real_fdopendir(fd), if (r) fd_set_flag(fd, FD_LIBC));
}

/* libc declares these arguments nonnull; programs still pass NULL. */
static int stream_fd(const void *p, bool dir)
{
	if (!p)
		return -1;
	return dir ? dirfd((DIR *)p) : fileno((FILE *)p);
}

EXPORT int fclose(FILE *f)
{
	int fd = stream_fd(f, false);

	BOOKKEEPING(int, (fd >= 0 ? fd_forget(fd) : (void)0, real_fclose(f)),
		    (void)r);
}

/* freopen closes the stream's descriptor and opens another, unseen. */
EXPORT FILE *freopen(const char *path, const char *mode, FILE *f)
{
	int fd = stream_fd(f, false);

	BOOKKEEPING(FILE *,
		    (fd >= 0 ? fd_forget(fd) : (void)0,
		     real_freopen(path, mode, f)),
		    (void)r);
}

EXPORT FILE *freopen64(const char *path, const char *mode, FILE *f)
{
	return freopen(path, mode, f);
}

EXPORT int closedir(DIR *d)
{
	int fd = stream_fd(d, true);

	BOOKKEEPING(int, (fd >= 0 ? fd_forget(fd) : (void)0, real_closedir(d)),
		    (void)r);
}

static void atfork_child(void);

/*
 * syscall(2) itself: a call the shim does not offload, so this thread's
 * deferred calls run first (DESIGN section 4.3: syscall(SYS_write) to the
 * peer of a socket whose close was deferred must see it closed); the
 * calls that end descriptors, change epoll sets or make processes and
 * threads are seen here too.
 */
EXPORT long syscall(long nr, ...)
{
	struct shim_thread *st;
	enum path p;
	va_list ap;
	long a[6], r;

	va_start(ap, nr);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (nr == SYS_close && is_esca_fd(a[0]))
		return set_errno(-EBADF);
	p = enter(&st);
	if (p == P_SHIM)
		drain(st);
	switch (nr) {
	case SYS_close:
		fd_forget((int)a[0]);
		break;
	case SYS_dup2:
	case SYS_dup3:
		if (a[0] != a[1])
			fd_forget((int)a[1]);
		esca_fd_spare(a[1]);
		break;
	case SYS_close_range:
		if (!(a[2] & CLOSE_RANGE_CLOEXEC))
			fd_forget_range((unsigned int)a[0], (unsigned int)a[1]);
		r = set_errno(close_range_sparing(
			(unsigned int)a[0], (unsigned int)a[1], (int)a[2]));
		leave(st, p);
		return r;
	case SYS_epoll_ctl:
		/* the set changed unseen: nothing proven about the member */
		if (p != P_VFORK)
			fd_ep_set((int)a[2], (int)a[0], FD_EP_UNSURE);
		break;
	case SYS_fork:
		/* a child that shares our epoll sets; no atfork handler runs */
		fd_fork();
		break;
	case SYS_clone:
	case SYS_clone3:
		fd_fork();
		__atomic_store_n(&g_multithreaded, 1, __ATOMIC_RELAXED);
		break;
	}
	r = RAW(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
	if (nr == SYS_fork && r == 0)
		atfork_child();
	leave(st, p);
	return r;
}

/* sendmmsg is not offloaded; it may pass descriptors like sendmsg. */
EXPORT int sendmmsg(int fd, struct mmsghdr *v, unsigned int n, int flags)
{
	may_pass_fds(fd);
	BOOKKEEPING(int,
		    real_sendmmsg ?
			    real_sendmmsg(fd, v, n, flags) :
			    (int)RAW(SYS_sendmmsg, fd, v, n, flags, 0, 0),
		    (void)r);
}

/* (Called while resolve_all runs, e.g. by an allocator's set-up: look
 * the one up now.) */
#define PT_WRAPPER(ret, name, params, args)                                   \
	EXPORT ret name params                                                \
	{                                                                     \
		struct shim_thread *st_;                                      \
		enum path p_ = enter(&st_);                                   \
		ret r_;                                                       \
		if (!real_##name)                                             \
			real_##name = (ret(*) params)dlsym(RTLD_NEXT, #name); \
		if (p_ == P_SHIM)                                             \
			drain(st_);                                           \
		r_ = real_##name args;                                        \
		leave(st_, p_);                                               \
		return r_;                                                    \
	}
PASS_THROUGH_CALLS(PT_WRAPPER)
#undef PT_WRAPPER

/* ------------------------------------------------------------ processes */

/*
 * Threads libc makes without calling pthread_create through the PLT,
 * unseen by the shim: C11 thrd_create, and the notification threads of
 * SIGEV_THREAD timers and message queues. As for pthread_create, no
 * deferring from before the thread can exist.
 */
EXPORT int thrd_create(thrd_t *t, thrd_start_t fn, void *arg)
{
	__atomic_store_n(&g_multithreaded, 1, __ATOMIC_RELAXED);
	BOOKKEEPING(int, real_thrd_create(t, fn, arg), (void)r);
}

EXPORT int timer_create(clockid_t clk, struct sigevent *sev, timer_t *tm)
{
	/* libc reads *sev the same way: a bad pointer crashes either way */
	if (sev && sev->sigev_notify == SIGEV_THREAD)
		__atomic_store_n(&g_multithreaded, 1, __ATOMIC_RELAXED);
	BOOKKEEPING(int, real_timer_create(clk, sev, tm), (void)r);
}

EXPORT int mq_notify(mqd_t mq, const struct sigevent *sev)
{
	if (sev && sev->sigev_notify == SIGEV_THREAD)
		__atomic_store_n(&g_multithreaded, 1, __ATOMIC_RELAXED);
	BOOKKEEPING(int, real_mq_notify(mq, sev), (void)r);
}

/*
 * unshare(CLONE_FILES) copies the descriptor table: a close deferred
 * before it must have happened in the table that gets copied.
 */
EXPORT int unshare(int flags)
{
	BOOKKEEPING(int, real_unshare(flags), (void)r);
}

/*
 * prctl(PR_SET_SECCOMP) installs a filter, after which esca.ko refuses
 * the process and what is still queued would be made directly, through
 * the filter: calls the program made before it (a sandbox closing what
 * it will not need) must happen before it. Every option takes at most
 * four more arguments.
 */
EXPORT int prctl(int option, ...)
{
	unsigned long a[4];
	va_list ap;

	va_start(ap, option);
	for (int i = 0; i < 4; i++)
		a[i] = va_arg(ap, unsigned long);
	va_end(ap);
	BOOKKEEPING(int,
		    real_prctl ? real_prctl(option, a[0], a[1], a[2], a[3]) :
				 (int)RAW(SYS_prctl, option, a[0], a[1], a[2],
					  a[3], 0),
		    (void)r);
}

EXPORT int pthread_create(pthread_t *t, const pthread_attr_t *attr,
			  void *(*fn)(void *), void *arg)
{
	/* from now on another thread may use our descriptors: no deferral,
	 * and nothing of ours left queued */
	__atomic_store_n(&g_multithreaded, 1, __ATOMIC_RELAXED);
	BOOKKEEPING(int, real_pthread_create(t, attr, fn, arg), (void)r);
}

/* libesca's fork handler drains the forking thread; the table is the
 * child's too (same descriptors). Epoll sets now shared with the child
 * lose their certainty (fd_fork). */
EXPORT pid_t fork(void)
{
	BOOKKEEPING(pid_t, (fd_fork(), real_fork()), (void)r);
}

/*
 * _Fork (glibc 2.34) runs no atfork handler: the same as fork, by hand
 * (libesca finds itself in a child through its MADV_WIPEONFORK page).
 */
EXPORT pid_t _Fork(void)
{
	BOOKKEEPING(pid_t, (fd_fork(), real__Fork()),
		    if (r == 0) atfork_child());
}

/*
 * clone(2) through libc's wrapper, which runs no atfork handler either.
 * Without CLONE_VM the child is a process: as fork (and one sharing our
 * descriptor table, CLONE_FILES, sees every close at once: no
 * deferring). With CLONE_VM and a TLS of its own (CLONE_SETTLS) it is a
 * thread: no deferring. With CLONE_VM and our TLS (posix_spawn's way,
 * done by hand) the child runs on this thread's shim state and ring, in
 * its own descriptor table: like a vfork child, every call in the process
 * goes direct while it may run -- until it execs or exits with
 * CLONE_VFORK, for good without.
 */
EXPORT int clone(int (*fn)(void *), void *stack, int flags, void *arg, ...)
{
	bool our_tls = (flags & CLONE_VM) && !(flags & CLONE_SETTLS);
	struct shim_thread *st;
	enum path p;
	void *ptid, *tls, *ctid;
	va_list ap;
	int r;

	va_start(ap, arg); /* read whether passed or not, as libc does */
	ptid = va_arg(ap, void *);
	tls = va_arg(ap, void *);
	ctid = va_arg(ap, void *);
	va_end(ap);
	p = enter(&st);
	if (p == P_SHIM)
		drain(st);
	if (flags & (CLONE_VM | CLONE_FILES))
		__atomic_store_n(&g_multithreaded, 1, __ATOMIC_RELAXED);
	if (!(flags & CLONE_VM))
		fd_fork();
	if (our_tls)
		__atomic_fetch_add(&g_vfork, 1, __ATOMIC_SEQ_CST);
	r = real_clone(fn, stack, flags, arg, ptid, tls, ctid);
	if (our_tls && ((flags & CLONE_VFORK) || r < 0))
		__atomic_fetch_sub(&g_vfork, 1, __ATOMIC_SEQ_CST);
	leave(st, p);
	return r;
}

EXPORT int posix_spawn(pid_t *pid, const char *path,
		       const posix_spawn_file_actions_t *fa,
		       const posix_spawnattr_t *at, char *const argv[],
		       char *const envp[])
{
	BOOKKEEPING(int, real_posix_spawn(pid, path, fa, at, argv, envp),
		    (void)r);
}

EXPORT int posix_spawnp(pid_t *pid, const char *file,
			const posix_spawn_file_actions_t *fa,
			const posix_spawnattr_t *at, char *const argv[],
			char *const envp[])
{
	BOOKKEEPING(int, real_posix_spawnp(pid, file, fa, at, argv, envp),
		    (void)r);
}

EXPORT int system(const char *cmd)
{
	BOOKKEEPING(int, real_system(cmd), (void)r);
}

EXPORT FILE *popen(const char *cmd, const char *mode)
{
	BOOKKEEPING(FILE *, real_popen(cmd, mode), (void)r);
}

EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	BOOKKEEPING(int, real_execve(path, argv, envp), (void)r);
}

EXPORT int execv(const char *path, char *const argv[])
{
	BOOKKEEPING(int, real_execv(path, argv), (void)r);
}

EXPORT int execvp(const char *file, char *const argv[])
{
	BOOKKEEPING(int, real_execvp(file, argv), (void)r);
}

EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	BOOKKEEPING(int, real_execvpe(file, argv, envp), (void)r);
}

EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	BOOKKEEPING(int, real_fexecve(fd, argv, envp), (void)r);
}

EXPORT int execveat(int dfd, const char *path, char *const argv[],
		    char *const envp[], int flags)
{
	BOOKKEEPING(int, real_execveat(dfd, path, argv, envp, flags), (void)r);
}

/*
 * execl, execle and execlp build argv and exec inside libc, unseen: built
 * here as libc does, then exec'd through the wrappers above, which wait
 * for deferred calls first. Waiting matters: esca.ko's rings hold a
 * reference on the descriptor table, so exec copies the table before the
 * module's exit drain runs what was queued, and the new image would
 * inherit a descriptor the program closed before it exec'd.
 */
static ptrdiff_t execl_argc(va_list ap)
{
	ptrdiff_t argc = 1;

	while (va_arg(ap, const char *))
		if (++argc == INT_MAX)
			return -1;
	return argc;
}

#define EXECL_ARGV(argv, arg, last)              \
	va_list ap;                              \
	ptrdiff_t argc;                          \
	va_start(ap, arg);                       \
	argc = execl_argc(ap);                   \
	va_end(ap);                              \
	if (argc < 0) {                          \
		errno = E2BIG;                   \
		return -1;                       \
	}                                        \
	char *argv[argc + 1];                    \
	va_start(ap, arg);                       \
	argv[0] = (char *)arg;                   \
	for (ptrdiff_t i_ = 1; i_ <= argc; i_++) \
		argv[i_] = va_arg(ap, char *);   \
	last;                                    \
	va_end(ap)

EXPORT int execl(const char *path, const char *arg, ...)
{
	EXECL_ARGV(argv, arg, (void)0);
	return execve(path, argv, environ);
}

EXPORT int execle(const char *path, const char *arg, ...)
{
	char **envp;

	EXECL_ARGV(argv, arg, envp = va_arg(ap, char **));
	return execve(path, argv, envp);
}

EXPORT int execlp(const char *file, const char *arg, ...)
{
	EXECL_ARGV(argv, arg, (void)0);
	return execvp(file, argv);
}

/*
 * vfork: the child borrows this thread's memory and stack until it execs
 * or exits, so it must not touch the shim's state or rings: g_vfork sends
 * every call direct meanwhile (other threads' too, briefly: still exact).
 * Written in assembly because the child returns through this frame; the
 * queue is drained first, as before any call that is not offloaded.
 */
void esca_shim_vfork_prepare(void);
void esca_shim_vfork_prepare(void)
{
	struct shim_thread *st;
	enum path p = enter(&st);

	if (p == P_SHIM)
		drain(st);
	leave(st, p);
	fd_fork();
	__atomic_fetch_add(&g_vfork, 1, __ATOMIC_SEQ_CST);
}

int esca_shim_vfork_errno(long r);
int esca_shim_vfork_errno(long r)
{
	errno = (int)-r;
	return -1;
}

__asm__(".text\n"
	".globl vfork\n"
	".type vfork,@function\n"
	"vfork:\n"
	"	sub $8, %rsp\n" /* align the stack for the C call */
	"	call esca_shim_vfork_prepare\n"
	"	add $8, %rsp\n"
	"	pop %rdi\n" /* the return address: the child may clobber
			     * our stack slot */
	"	mov $58, %eax\n" /* __NR_vfork */
	"	syscall\n"
	"	push %rdi\n"
	"	test %rax, %rax\n"
	"	jz 1f\n" /* the child leaves g_vfork set */
	"	lock decl g_vfork(%rip)\n"
	"	cmp $-4095, %rax\n"
	"	jae 2f\n"
	"1:	ret\n"
	"2:	mov %rax, %rdi\n"
	"	jmp esca_shim_vfork_errno\n"
	".size vfork, .-vfork\n");

/* ------------------------------------------------------------ set-up */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0)
		esca_direct(SYS_write, 2, (long)buf,
			    n < (int)sizeof(buf) ? n : (int)sizeof(buf) - 1, 0,
			    0, 0);
}

static int call_by_name(const char *s, size_t len)
{
	for (int c = 0; c < C_NCALLS; c++)
		if (strlen(call_name[c]) == len &&
		    !strncmp(call_name[c], s, len))
			return c;
	/* the libc names of the same calls */
	if (len == 5 && !strncmp(s, "pread", 5))
		return C_PREAD;
	if (len == 6 && !strncmp(s, "pwrite", 6))
		return C_PWRITE;
	if (len == 10 && !strncmp(s, "sendfile64", 10))
		return C_SENDFILE;
	return -1;
}

static void read_settings(void)
{
	const char *v = getenv("ESCA_LOG");

	if (v && *v) {
		if (!strcmp(v, "0") || !strcmp(v, "1") || !strcmp(v, "2"))
			cfg.log = *v - '0';
		else
			say("esca: ignoring ESCA_LOG=%.32s (want 0, 1 or 2); using 1\n",
			    v);
	}
	esca__log_level = cfg.log;
	v = getenv("ESCA_STATS");
	if (v && *v) {
		if (!strcmp(v, "0") || !strcmp(v, "1"))
			cfg.stats = *v == '1';
		else if (cfg.log)
			say("esca: ignoring ESCA_STATS=%.32s (want 0 or 1); using 0\n",
			    v);
	}
	v = getenv("ESCA_OFFLOAD");
	if (!v || !*v || !strcmp(v, "all"))
		return;
	if (!strcmp(v, "none")) {
		cfg.mode = OFFLOAD_NONE;
		return;
	}
	if (!strcmp(v, "defer-only")) {
		cfg.mode = OFFLOAD_DEFER_ONLY;
		return;
	}
	cfg.calls = 0;
	for (const char *s = v; *s;) {
		size_t len = strcspn(s, ",");
		int c = call_by_name(s, len);

		if (c < 0) {
			if (cfg.log)
				say("esca: ignoring ESCA_OFFLOAD=%.64s (unknown call '%.*s'; want all, defer-only, none or a comma-separated list of: read readv recv recvfrom recvmsg write writev send sendto sendmsg sendfile pread64 pwrite64 close shutdown epoll_ctl fsync fdatasync ftruncate fchmod fchown setsockopt getsockopt); offloading all\n",
				    v, (int)(len > 24 ? 24 : len), s);
			cfg.calls = ~0u;
			return;
		}
		cfg.calls |= 1u << c;
		s += len;
		if (*s == ',')
			s++;
	}
	cfg.mode = OFFLOAD_LIST;
}

static void stats_report(void)
{
	unsigned long sum[S_ALL];
	char line[1024];
	int len = 0;
	const struct shim_thread *st;

	/* try only: _exit may come from a child whose lock was held by a
	 * thread that did not follow it through a raw fork */
	bool locked = pthread_mutex_trylock(&g_threads_lock) == 0;

	memcpy(sum, g_stat_done, sizeof(sum));
	/* bounded: a report must never hang an exit */
	int walked = 0;

	for (st = locked ? g_threads : &t_shim; st && walked++ < 1000000;
	     st = locked ? st->next : NULL)
		for (int i = 0; i < S_ALL; i++)
			sum[i] +=
				__atomic_load_n(&st->stat[i], __ATOMIC_RELAXED);
	if (locked)
		pthread_mutex_unlock(&g_threads_lock);
	say("esca-stats pid=%ld sync=%lu deferred=%lu direct=%lu (policy=%lu hint=%lu nomodule=%lu signal=%lu enosys=%lu) drains=%lu bounced=%lu deferred_failed=%lu\n",
	    esca_direct(SYS_getpid, 0, 0, 0, 0, 0, 0), sum[S_SYNC],
	    sum[S_DEFERRED],
	    sum[S_DIRECT_POLICY] + sum[S_DIRECT_HINT] + sum[S_DIRECT_NOMODULE] +
		    sum[S_DIRECT_SIGNAL] + sum[S_DIRECT_ENOSYS],
	    sum[S_DIRECT_POLICY], sum[S_DIRECT_HINT], sum[S_DIRECT_NOMODULE],
	    sum[S_DIRECT_SIGNAL], sum[S_DIRECT_ENOSYS], sum[S_DRAINS],
	    esca__bounced(), sum[S_DEFER_FAILED]);
	/* per call: offloaded/all, for the calls the process made */
	for (int c = 0; c < C_NCALLS && len < (int)sizeof(line) - 64; c++) {
		unsigned long off = sum[S_NSTATS + 2 * c + 1],
			      all = off + sum[S_NSTATS + 2 * c];

		if (all)
			len += snprintf(line + len, sizeof(line) - (size_t)len,
					" %s=%lu/%lu", call_name[c], off, all);
	}
	if (len)
		say("esca-stats-calls pid=%ld offloaded/all:%s\n",
		    esca_direct(SYS_getpid, 0, 0, 0, 0, 0, 0), line);
}

/* fork child: only the forking thread exists, with fresh counters. */
static void atfork_child(void)
{
	struct shim_thread *self = &t_shim;

	pthread_mutex_init(&g_threads_lock, NULL);
	memset(g_stat_done, 0, sizeof(g_stat_done));
	memset(self->stat, 0, sizeof(self->stat));
	self->next = self->prev = NULL;
	g_threads = self->seen ? self : NULL;
	/*
	 * g_multithreaded stays as it was: the table of a process that had
	 * threads may hold what a race between them left, so the child
	 * proves nothing from it either.
	 */
}

__attribute__((constructor(101))) static void shim_init(void)
{
	resolve();
	read_settings();
	if (pthread_key_create(&g_key, thread_end) == 0)
		g_key_ok = true;
	/* forks inside libc (forkpty, daemon...) share epoll sets too */
	pthread_atfork(fd_fork, NULL, atfork_child);
	g_ready = true;
	if (cfg.log >= 2) {
		static const char *const mode[] = { "", "all", "defer-only",
						    "none", "list" };

		say("esca: preload in pid %ld: offload=%s stats=%d\n",
		    esca_direct(SYS_getpid, 0, 0, 0, 0, 0, 0), mode[cfg.mode],
		    cfg.stats);
	}
	if (cfg.mode != OFFLOAD_NONE)
		esca_init(); /* says once if the module is absent */
}

__attribute__((destructor)) static void shim_fini(void)
{
	if (cfg.stats)
		stats_report();
}

/*
 * _exit skips destructors; servers use it too (h2o on SIGTERM, redis's
 * BGSAVE child): the report is printed here then. Not in a vfork child,
 * which borrows our memory and has counted nothing.
 */
EXPORT void _exit(int status)
{
	resolve();
	if (cfg.stats && g_ready &&
	    !__atomic_load_n(&g_vfork, __ATOMIC_RELAXED))
		stats_report();
	if (real__exit)
		real__exit(status);
	for (;;)
		esca_direct(SYS_exit_group, status, 0, 0, 0, 0, 0);
}
