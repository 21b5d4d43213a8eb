// SPDX-License-Identifier: MIT
/*
 * libesca: process setup, lazy per-thread rings, synchronous and deferred
 * calls. Every system call made here goes through sys(), so errno is never
 * touched.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>

#include "esca/esca.h"
#include "internal.h"
#include "ring.h"

/*
 * sys(): every system call this file makes. esca_direct() in the library;
 * a unit test (tests/unit/test-lib.c) includes this file with
 * ESCA_SYSCALL_HOOK naming its simulated module instead, which takes the
 * same arguments and passes what it does not simulate to esca_direct().
 */
#ifdef ESCA_SYSCALL_HOOK
static long ESCA_SYSCALL_HOOK(long nr, long a0, long a1, long a2, long a3,
			      long a4, long a5);
#define sys ESCA_SYSCALL_HOOK
#else
#define sys esca_direct
#endif

/*
 * T_NONE: no ring yet (or one that died of an identity change: the next
 * call registers again); T_READY: ring mapped; T_DIRECT: calls go direct
 * for good (no module, registration failed, or the ring died otherwise).
 */
enum { T_NONE, T_READY, T_DIRECT };

/* Re-registrations per thread after ESCA_DEAD_IDENTITY, then direct. */
#define ESCA_MAX_REREGISTER 8

struct esca_thread {
	struct esca_pring ring;
	void *sq_map; /* the ring's two mapped sides */
	void *cq_map;
	size_t sq_size;
	size_t cq_size;
	uint32_t reaped; /* CQEs looked at: every index below it */
	long deferred_failed; /* since the last drain */
	int cpu;
	int state;
	int reregistered; /* after ESCA_DEAD_IDENTITY */
};

static __thread struct esca_thread t_self;

/*
 * g_state is decided once per process under g_lock, then only read, with
 * no lock: with the module absent, calls must not serialise on a mutex.
 * g_fd and g_init_err are written before g_state (release/acquire).
 */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_state; /* 0: not tried, 1: on, -1: off */
static int g_init_err; /* esca_init()'s result once g_state is -1 */
static int g_fd = -1;
static long g_spin_ns = 50000;
/*
 * A drain spins only for this many last entries (drain_self), and a full
 * ring sleeps until at most 1/ESCA_REFILL_DIV of it is still queued
 * (make_room). Compile-time settings, overridable (-D) for
 * bench/micro/sweep.sh, which measured them (README).
 */
#ifndef ESCA_DRAIN_SPIN_TAIL
#define ESCA_DRAIN_SPIN_TAIL 8
#endif
#ifndef ESCA_REFILL_DIV
#define ESCA_REFILL_DIV 2
#endif
static uint64_t g_spin_ticks; /* g_spin_ns in TSC ticks */
static uint32_t g_entries; /* ESCA_ENTRIES; 0 until the settings are read */
static pthread_key_t g_key;
static bool g_key_made;
static bool g_atfork_made;
static unsigned int g_said; /* SAY_* lines printed by this process */
/*
 * A MADV_WIPEONFORK page holding 1: it reads 0 in a child made by any
 * fork, pthread_atfork's or not (syscall(SYS_fork), clone without
 * CLONE_VM), whose inherited state would point at rings not mapped there.
 */
static int *g_alive;

long esca_direct(long nr, long a0, long a1, long a2, long a3, long a4, long a5)
{
	long ret;
	register long r10 __asm__("r10") = a3;
	register long r8 __asm__("r8") = a4;
	register long r9 __asm__("r9") = a5;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a0), "S"(a1), "d"(a2), "r"(r10),
			   "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

static long direct_args(uint32_t nr, const __u64 a[6])
{
	return sys(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

/* Calls the module bounced that were then made here, all threads. */
static unsigned long g_bounced;

/* A call the module bounced (it had no effect there): make it here. */
static long make_bounced(uint32_t nr, const __u64 a[6])
{
	__atomic_fetch_add(&g_bounced, 1, __ATOMIC_RELAXED);
	return direct_args(nr, a);
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Set by the preload shim from ESCA_LOG (0: silent); -1: ESCA_QUIET decides. */
int esca__log_level = -1;

static void say(const char *fmt, ...)
{
	const char *quiet = getenv("ESCA_QUIET");
	char buf[256];
	va_list ap;
	int n;

	if (esca__log_level == 0 ||
	    (esca__log_level < 0 && quiet && *quiet == '1'))
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0)
		sys(SYS_write, 2, (long)buf,
		    n < (int)sizeof(buf) ? n : (int)sizeof(buf) - 1, 0, 0, 0);
}

/* Lines printed at most once per process, whichever thread hits them. */
enum {
	SAY_DQUOT = 1 << 0,
	SAY_REG_PERM = 1 << 1,
	SAY_REG_OTHER = 1 << 2,
	SAY_MAP_PERM = 1 << 3,
	SAY_MAP_NOMEM = 1 << 4,
	SAY_MAP_OTHER = 1 << 5,
	SAY_DEAD = 1 << 6, /* shifted left by the ESCA_DEAD_* reason */
};

static bool first_time(unsigned int what)
{
	return !(__atomic_fetch_or(&g_said, what, __ATOMIC_RELAXED) & what);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

/*
 * The spin budget is kept in TSC ticks: clock_gettime() is only a vDSO
 * read with a TSC clocksource, and elsewhere (VMs, TCG) each look at the
 * clock would be a system call -- the very trap the spin exists to avoid.
 * Calibrated once, over 200 us, at setup.
 */
static void calibrate_spin(void)
{
	uint64_t t0 = now_ns(), c0 = rdtsc(), t1;

	do
		t1 = now_ns();
	while (t1 - t0 < 200000);
	g_spin_ticks = (uint64_t)((double)(rdtsc() - c0) / (double)(t1 - t0) *
				  (double)g_spin_ns);
}

static void thread_destructor(void *arg)
{
	(void)arg;
	esca_thread_exit();
}

static void drain_self(void);

/*
 * fork, in the parent: this thread's deferred calls take effect before the
 * child starts, as they would have had they been made directly. (Other
 * threads' queues are theirs to drain.) Failures stay counted for the
 * thread's next esca_drain().
 */
static void atfork_prepare(void)
{
	drain_self();
}

/*
 * fork, in the child: no ring mapping (VM_DONTCOPY) and no context; the
 * parent's ring is never touched, its pointers are forgotten here. The
 * child sets itself up again on its first call.
 */
static void atfork_child(void)
{
	int *alive = g_alive;

	g_alive = NULL; /* before the page goes: a handler may look */
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	if (alive)
		sys(SYS_munmap, (long)alive, 4096, 0, 0, 0, 0);
	if (g_fd >= 0)
		sys(SYS_close, g_fd, 0, 0, 0, 0, 0);
	g_fd = -1;
	g_init_err = 0;
	g_said = 0;
	__atomic_store_n(&g_state, 0, __ATOMIC_RELAXED);
	memset(&t_self, 0, sizeof(t_self));
	pthread_mutex_init(&g_lock, NULL);
}

static const char *open_reason(long err)
{
	switch (err) {
	case -ENOENT:
	case -ENXIO:
	case -ENODEV:
		return "module not loaded";
	case -EACCES:
	case -EPERM:
		return "permission denied (see /dev/esca's owner/mode: esca.ko dev_uid/dev_gid/dev_mode)";
	default:
		return strerror((int)-err);
	}
}

/*
 * An environment setting: a whole decimal number in [lo, hi] (and a power
 * of two if @pow2), else one line naming it and @def. Unset or empty: @def.
 */
static long env_number(const char *name, long lo, long hi, bool pow2, long def)
{
	const char *v = getenv(name);
	char *end;
	long n;

	if (!v || !*v)
		return def;
	errno = 0;
	n = strtol(v, &end, 10);
	if (!errno && *end == '\0' && n >= lo && n <= hi &&
	    (!pow2 || !(n & (n - 1))))
		return n;
	if (pow2)
		say("esca: ignoring %s=%.32s (want a power of two, %ld-%ld); using %ld\n",
		    name, v, lo, hi, def);
	else
		say("esca: ignoring %s=%.32s (want a whole number, %ld-%ld); using %ld\n",
		    name, v, lo, hi, def);
	return def;
}

/*
 * The library's descriptor must not take a number the program counts on:
 * a program gets the lowest free number from every open, and daemons
 * close stdio and everything else, then open again expecting 0, 1, 2 or
 * 3. So it moves near the top of the first 1024 (or of a lower
 * RLIMIT_NOFILE), where no program looks for the next open to land. If
 * that fails it stays where it is: correct, only visible.
 */
static long fd_out_of_the_way(long fd)
{
	struct rlimit rl;
	long top = 1024, nfd;

	if (sys(SYS_prlimit64, 0, RLIMIT_NOFILE, 0, (long)&rl, 0, 0) == 0 &&
	    rl.rlim_cur < (rlim_t)top)
		top = (long)rl.rlim_cur;
	top -= top / 16; /* room below the limit if that number is taken */
	if (top <= fd)
		return fd;
	nfd = sys(SYS_fcntl, fd, F_DUPFD_CLOEXEC, top, 0, 0, 0);
	if (nfd < 0)
		return fd;
	sys(SYS_close, fd, 0, 0, 0, 0, 0);
	return nfd;
}

/*
 * The program named the library's descriptor in a call that replaces it
 * (dup2 onto it): move it away first. Other threads may still use the
 * old number for an ioctl meanwhile; that only fails.
 */
void esca__fd_move(void)
{
	long fd = __atomic_load_n(&g_fd, __ATOMIC_RELAXED), nfd;

	if (fd < 0)
		return;
	nfd = sys(SYS_fcntl, fd, F_DUPFD_CLOEXEC, fd + 1, 0, 0, 0);
	if (nfd < 0)
		return;
	__atomic_store_n(&g_fd, (int)nfd, __ATOMIC_RELAXED);
	sys(SYS_close, fd, 0, 0, 0, 0, 0);
}

int esca__fd(void)
{
	return __atomic_load_n(&g_fd, __ATOMIC_RELAXED);
}

/* Decide, once: store the result, then publish g_state (release). */
static int init_locked(void)
{
	struct esca_setup s = { .abi_version = ESCA_ABI_VERSION };
	int saved_errno = errno;
	long fd, ret;

	if (!g_key_made && pthread_key_create(&g_key, thread_destructor) == 0)
		g_key_made = true;
	if (!g_atfork_made &&
	    pthread_atfork(atfork_prepare, NULL, atfork_child) == 0)
		g_atfork_made = true;
	/*
	 * Read once per program image: a fork child keeps them, even if the
	 * program emptied its environment meanwhile (nginx does, for its
	 * workers).
	 */
	if (!g_entries) {
		g_spin_ns = env_number("ESCA_SPIN_US", 0, 1000000, false, 50) *
			    1000;
		calibrate_spin();
		g_entries = (uint32_t)env_number("ESCA_ENTRIES",
						 ESCA_ENTRIES_MIN,
						 ESCA_ENTRIES_MAX, true,
						 ESCA_ENTRIES_DEFAULT);
	}
	s.entries = g_entries;
	errno = saved_errno; /* strtol's, not the program's */

	fd = sys(SYS_openat, AT_FDCWD, (long)ESCA_DEVICE_PATH,
		 O_RDWR | O_CLOEXEC, 0, 0, 0);
	if (fd < 0) {
		say("esca: cannot open %s: %s; calls go direct\n",
		    ESCA_DEVICE_PATH, open_reason(fd));
		return (int)fd;
	}
	fd = fd_out_of_the_way(fd);
	ret = sys(SYS_ioctl, fd, ESCA_IOC_SETUP, (long)&s, 0, 0, 0);
	if (ret < 0) {
		if (ret == -EPERM)
			say("esca: module refused this process (under seccomp or audit); calls go direct\n");
		else if (ret == -EPROTO)
			say("esca: module speaks another ABI than %u; calls go direct\n",
			    ESCA_ABI_VERSION);
		else
			say("esca: setup failed: %s; calls go direct\n",
			    strerror((int)-ret));
		sys(SYS_close, fd, 0, 0, 0, 0, 0);
		return (int)ret;
	}
	g_fd = (int)fd;
	ret = sys(SYS_mmap, 0, 4096, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if ((unsigned long)ret < (unsigned long)-4095) {
		if (sys(SYS_madvise, ret, 4096, MADV_WIPEONFORK, 0, 0, 0) ==
		    0) {
			/*
			 * The 1 first, then the page: other threads read
			 * g_alive with no lock (fork_check), and a page that
			 * still read 0 would make one of them take this
			 * process for a fork child -- close g_fd and
			 * re-initialise g_lock while we hold it (a second
			 * SETUP failing EBUSY, maps failing EBADF, SIGSEGV).
			 */
			*(int *)ret = 1;
			__atomic_store_n(&g_alive, (int *)ret,
					 __ATOMIC_RELEASE);
		} else {
			sys(SYS_munmap, ret, 4096, 0, 0, 0, 0);
		}
	}
	return 0;
}

/* In a fork child that pthread_atfork never told: start afresh. */
static inline void fork_check(void)
{
	int *alive = __atomic_load_n(&g_alive, __ATOMIC_ACQUIRE);

	if (alive && !__atomic_load_n(alive, __ATOMIC_RELAXED))
		atfork_child();
}

int esca_init(void)
{
	int state = __atomic_load_n(&g_state, __ATOMIC_ACQUIRE);
	int ret;

	if (state) /* decided: no lock */
		return state > 0 ? 0 : g_init_err;
	pthread_mutex_lock(&g_lock);
	state = __atomic_load_n(&g_state, __ATOMIC_RELAXED);
	if (!state) {
		ret = init_locked();
		g_init_err = ret;
		state = ret ? -1 : 1;
		__atomic_store_n(&g_state, state, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&g_lock);
	return state > 0 ? 0 : g_init_err;
}

/* Returns the mapping, or NULL with -errno in *err. */
static void *map_side(uint64_t offset, size_t size, int prot, long *err)
{
	long p = sys(SYS_mmap, 0, (long)size, prot, MAP_SHARED, g_fd,
		     (long)offset);

	if ((unsigned long)p >= (unsigned long)-4095) {
		if (!*err)
			*err = p;
		return NULL;
	}
	return (void *)p;
}

/*
 * The ring's memory goes: t->state leaves T_READY first (callers may set
 * it again afterwards), so a signal handler that interrupts us never
 * finds a ready ring whose memory is going (esca__settle reads it; the
 * shim sends a handler's calls through esca_call when it did not
 * interrupt the shim itself, as in a thread's exit).
 */
static void unmap_ring(struct esca_thread *t)
{
	t->state = T_DIRECT; /* before the memory goes: a handler may look */
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	if (t->sq_map)
		sys(SYS_munmap, (long)t->sq_map, (long)t->sq_size, 0, 0, 0, 0);
	if (t->cq_map)
		sys(SYS_munmap, (long)t->cq_map, (long)t->cq_size, 0, 0, 0, 0);
	t->sq_map = t->cq_map = NULL;
}

/* One line per kind of failure per process, not per thread. */
static void register_failed(long err)
{
	if (err == -EDQUOT) {
		if (first_time(SAY_DQUOT))
			say("esca: ring memory cap for this user reached (esca.ko user_ring_kb); this thread's calls go direct\n");
	} else if (err == -EPERM) {
		if (first_time(SAY_REG_PERM))
			say("esca: module refused this thread (process under seccomp or audit); its calls go direct\n");
	} else if (first_time(SAY_REG_OTHER)) {
		say("esca: cannot register this thread: %s; its calls go direct\n",
		    strerror((int)-err));
	}
}

static void map_failed(long err)
{
	if (err == -EPERM) {
		if (first_time(SAY_MAP_PERM))
			say("esca: module refused to map this thread's ring (EPERM); this thread's calls go direct\n");
	} else if (err == -ENOMEM) {
		if (first_time(SAY_MAP_NOMEM))
			say("esca: no memory to map this thread's ring (memory cgroup limit?); this thread's calls go direct\n");
	} else if (first_time(SAY_MAP_OTHER)) {
		say("esca: cannot map this thread's ring: %s; its calls go direct\n",
		    strerror((int)-err));
	}
}

static struct esca_thread *thread_ring(void)
{
	struct esca_thread *t = &t_self;
	struct esca_register r;
	long ret, err = 0;

	fork_check();
	if (t->state == T_READY)
		return t;
	if (t->state == T_DIRECT)
		return NULL;
	/* Any failure below is final for this thread: never tried again. */
	t->state = T_DIRECT;
	if (esca_init() < 0)
		return NULL;
	memset(&r, 0, sizeof(r));
	ret = sys(SYS_ioctl, g_fd, ESCA_IOC_REGISTER, (long)&r, 0, 0, 0);
	if (ret < 0) {
		register_failed(ret);
		return NULL;
	}
	t->sq_size = r.sq_size;
	t->cq_size = r.cq_size;
	t->sq_map =
		map_side(r.sq_offset, r.sq_size, PROT_READ | PROT_WRITE, &err);
	t->cq_map = map_side(r.cq_offset, r.cq_size, PROT_READ, &err);
	if (!t->sq_map || !t->cq_map) {
		unmap_ring(t);
		sys(SYS_ioctl, g_fd, ESCA_IOC_UNREGISTER, r.ring_id, 0, 0, 0);
		map_failed(err);
		return NULL;
	}
	t->cpu = (int)r.consumer_cpu;
	esca_pring_init(&t->ring, t->sq_map, t->cq_map);
	t->reaped = t->ring.tail;
	t->state = T_READY;
	if (g_key_made)
		pthread_setspecific(g_key, t);
	return t;
}

bool esca_active(void)
{
	return thread_ring() != NULL;
}

int esca_thread_cpu(void)
{
	struct esca_thread *t = thread_ring();

	return t ? t->cpu : -1;
}

/*
 * After storing the tail or resume: wake the consumer if it sleeps. A
 * failed WAKE (the program closed our fd) is ignored: a sleeping consumer
 * looks at its rings at least once a second. Returns the flags seen.
 */
static uint32_t kick(struct esca_thread *t)
{
	uint32_t flags = esca_pring_flags_fenced(&t->ring);

	if ((flags & (ESCA_RING_NEED_WAKEUP | ESCA_RING_DEAD)) ==
	    ESCA_RING_NEED_WAKEUP)
		sys(SYS_ioctl, g_fd, ESCA_IOC_WAKE, t->ring.id, 0, 0, 0);
	return flags;
}

static void reap(struct esca_thread *t, uint32_t upto);

/*
 * The consumer paused after bouncing a deferred entry below @idx: make it
 * (reap does, in order) and let the consumer go on. The module may show
 * PAUSED before its head passes the entry: then this does nothing yet and
 * the caller comes back.
 */
static void unpause(struct esca_thread *t, uint32_t idx)
{
	uint32_t head;

	if (!esca_pring_paused(&t->ring))
		return;
	head = esca_pring_load_head(&t->ring);
	reap(t, (int32_t)(head - idx) > 0 ? idx : head);
}

/*
 * Wait for entry @idx: spin for the budget (if @spin), then sleep in the
 * module. Returns false if the ring died before the entry ran (it had no
 * effect).
 */
static bool wait_done(struct esca_thread *t, uint32_t idx, bool spin)
{
	struct esca_wait w = { .ring_id = t->ring.id, .index = idx };
	uint64_t deadline = 0;
	long ret;

	/*
	 * Sharing a core with our own consumer, spinning only keeps it from
	 * running: sleep at once. (sched_getcpu reads the rseq area: no trap.)
	 */
	if (!spin || sched_getcpu() == t->cpu)
		goto sleep;
	for (;;) {
		for (int k = 0; k < 64; k++) {
			if (esca_pring_done(&t->ring, idx))
				return true;
			__builtin_ia32_pause();
		}
		if (esca_pring_dead(&t->ring))
			return esca_pring_done(&t->ring, idx);
		unpause(t, idx);
		if (!deadline)
			deadline = rdtsc() + g_spin_ticks;
		else if (rdtsc() > deadline)
			break;
	}
sleep:
	for (;;) {
		if (esca_pring_done(&t->ring, idx))
			return true;
		unpause(t, idx); /* WAIT returns when the ring pauses */
		ret = sys(SYS_ioctl, g_fd, ESCA_IOC_WAIT, (long)&w, 0, 0, 0);
		if (ret == 0 || ret == -EINTR)
			continue;
		if (ret == -ENXIO || esca_pring_dead(&t->ring))
			return esca_pring_done(&t->ring, idx); /* head final */
		/*
		 * Our fd is gone (the program closed it?) but the ring still
		 * runs: only DEAD may say an entry never ran, so poll, making
		 * any bounced deferred entry ourselves (resume needs no fd).
		 * A sleeping consumer looks at its rings at least once a
		 * second.
		 */
		while (!esca_pring_done(&t->ring, idx) &&
		       !esca_pring_dead(&t->ring)) {
			struct timespec ts = { 0, 100000 };

			unpause(t, idx);
			sys(SYS_nanosleep, (long)&ts, 0, 0, 0, 0, 0);
		}
	}
}

/*
 * Look at completed CQEs below @upto: a deferred call that failed is
 * counted; one the module bounced is made now, directly, and the ring
 * (paused behind it, so nothing later has run) is resumed through
 * sq_hdr.resume: no system call, so a closed fd cannot hang us.
 */
static void reap(struct esca_thread *t, uint32_t upto)
{
	for (; (int32_t)(upto - t->reaped) > 0; t->reaped++) {
		const struct esca_sqe *sqe =
			esca_pring_sqe(&t->ring, t->reaped);
		const struct esca_cqe *cqe =
			esca_pring_cqe(&t->ring, t->reaped);
		long res;

		if (!(sqe->flags & ESCA_SQE_DEFERRED))
			continue;
		res = cqe->res;
		if (cqe->flags & ESCA_CQE_BOUNCED) {
			res = make_bounced(sqe->nr, sqe->args);
			esca_pring_resume(&t->ring, t->reaped);
			kick(t);
		}
		if (res < 0)
			t->deferred_failed++;
	}
}

static void say_dead(uint32_t reason)
{
	static const char *const why[] = {
		[ESCA_DEAD_PROTOCOL] = "the module stopped it (protocol error)",
		[ESCA_DEAD_IDENTITY] =
			"its identity changed more than 8 times (setuid, unshare)",
		[ESCA_DEAD_SECCOMP] =
			"a thread of this process is under seccomp",
		[ESCA_DEAD_STALLED] = "a call overran esca.ko call_timeout_ms",
		[ESCA_DEAD_OFFLINE] = "its consumer core went offline",
	};

	/* Exits and closes are the program's doing: nothing to say. */
	if (reason >= sizeof(why) / sizeof(why[0]) || !why[reason])
		return;
	if (first_time(SAY_DEAD << reason))
		say("esca: a thread's ring was retired: %s; its calls go direct\n",
		    why[reason]);
}

/*
 * The ring was retired (DEAD is only shown once sq_head is final): look at
 * what completed, make the queued entries below @stop that never ran here,
 * in order, and let go of the ring. After an identity change (setuid,
 * unshare(CLONE_FILES)) the next call registers a new ring, which runs
 * with the new identity; otherwise this thread goes direct for good.
 */
static void thread_go_direct(struct esca_thread *t, uint32_t stop)
{
	uint32_t head = esca_pring_load_head(&t->ring);
	uint32_t reason = esca_pring_dead(&t->ring) ?
				  esca_pring_dead_reason(&t->ring) :
				  0;

	reap(t, head);
	for (; (int32_t)(stop - t->reaped) > 0; t->reaped++) {
		const struct esca_sqe *sqe =
			esca_pring_sqe(&t->ring, t->reaped);

		if (direct_args(sqe->nr, sqe->args) < 0)
			t->deferred_failed++;
	}
	unmap_ring(t);
	if (reason == ESCA_DEAD_IDENTITY &&
	    t->reregistered < ESCA_MAX_REREGISTER) {
		t->reregistered++;
		t->state = T_NONE;
		return;
	}
	say_dead(reason);
	t->state = T_DIRECT;
}

/*
 * Make room for one entry; false if the ring died meanwhile. A full ring
 * means the consumer is a whole ring behind, so the wait is long: sleep
 * at once, until half the ring is free, as a socket's writer is woken
 * only when half its send buffer is free (sock_def_write_space). Waiting
 * for one slot at a time would keep this core spinning at the consumer's
 * pace; half a ring of work keeps the consumer busy while we wake.
 */
static bool make_room(struct esca_thread *t)
{
	uint32_t upto;

	/* reaped never passes the consumer's head, so this also means the
	 * slot is free in the ring */
	if (t->ring.tail - t->reaped < t->ring.entries)
		return true;
	upto = t->ring.tail - t->ring.entries / ESCA_REFILL_DIV;
	if (!wait_done(t, upto - 1, false))
		return false;
	reap(t, upto);
	return true;
}

static long submit(uint32_t nr, const __u64 args[6], uint32_t flags, bool sync)
{
	struct esca_thread *t = thread_ring();
	const struct esca_cqe *cqe;
	uint32_t idx;
	long res;

	if (!t || !make_room(t)) {
		if (t)
			thread_go_direct(t, t->ring.tail);
		return direct_args(nr, args);
	}
	idx = esca_pring_submit(&t->ring, nr, args, flags, 0);
	if ((kick(t) & ESCA_RING_DEAD) && !sync) {
		/*
		 * Queued on a ring that had already died: nothing would run
		 * it, not even the module's drain at exit. DEAD shows once
		 * the head is final, so "done" tells whether it ran.
		 */
		bool ran = esca_pring_done(&t->ring, idx);

		thread_go_direct(t, idx);
		return ran ? 0 : direct_args(nr, args);
	}
	if (!sync)
		return 0;
	if (!wait_done(t, idx, true)) {
		/* Never ran: make it here, in program order. */
		thread_go_direct(t, idx);
		return direct_args(nr, args);
	}
	reap(t, idx);
	cqe = esca_pring_cqe(&t->ring, idx);
	res = cqe->res;
	if (cqe->flags & ESCA_CQE_BOUNCED)
		res = make_bounced(nr, args);
	else if (res == -EPIPE)
		/* The module raised SIGPIPE on us; a direct call would have
		 * delivered it before returning, so enter the kernel once. */
		sys(SYS_getppid, 0, 0, 0, 0, 0, 0);
	t->reaped = idx + 1;
	return res;
}

long esca_call(long nr, long a0, long a1, long a2, long a3, long a4, long a5)
{
	const __u64 args[6] = { (__u64)a0, (__u64)a1, (__u64)a2,
				(__u64)a3, (__u64)a4, (__u64)a5 };

	return submit((uint32_t)nr, args, 0, true);
}

long esca_defer(long nr, long a0, long a1, long a2, long a3, long a4, long a5)
{
	const __u64 args[6] = { (__u64)a0, (__u64)a1, (__u64)a2,
				(__u64)a3, (__u64)a4, (__u64)a5 };

	return submit((uint32_t)nr, args, ESCA_SQE_DEFERRED, false);
}

/* Wait until every call this thread queued has taken effect. */
static void drain_self(void)
{
	struct esca_thread *t = &t_self;
	uint32_t stop;

	fork_check();
	stop = t->ring.tail;
	if (t->state != T_READY || t->reaped == stop)
		return;
	/*
	 * A long queue is a long wait: sleep through its bulk and spin only
	 * for the last few entries, which the consumer runs while we wake
	 * (blk-mq's hybrid polling does the same with completion times).
	 */
	if ((stop - t->reaped > ESCA_DRAIN_SPIN_TAIL &&
	     !wait_done(t, stop - ESCA_DRAIN_SPIN_TAIL - 1, false)) ||
	    !wait_done(t, stop - 1, true)) {
		thread_go_direct(t, stop);
		return;
	}
	reap(t, stop);
}

long esca_drain(void)
{
	struct esca_thread *t = &t_self;
	long failed;

	drain_self();
	failed = t->deferred_failed;
	t->deferred_failed = 0;
	return failed;
}

void esca_thread_exit(void)
{
	struct esca_thread *t = &t_self;

	if (t->state != T_READY)
		return;
	esca_drain();
	if (t->state != T_READY)
		return;
	t->state = T_DIRECT; /* not ready from the UNREGISTER on */
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	sys(SYS_ioctl, g_fd, ESCA_IOC_UNREGISTER, t->ring.id, 0, 0, 0);
	unmap_ring(t);
}

unsigned long esca__bounced(void)
{
	return __atomic_load_n(&g_bounced, __ATOMIC_RELAXED);
}

bool esca__pending(void)
{
	const struct esca_thread *t = &t_self;

	fork_check();
	return t->state == T_READY && t->reaped != t->ring.tail;
}

/*
 * Async-signal-safe: wait until the consumer has run every entry this
 * thread has queued, touching no library state (the code the signal
 * interrupted may be in the middle of using it). A ring paused on a
 * bounced deferred entry waits for the interrupted code to make that
 * entry: not here, so then this returns false at once.
 */
bool esca__settle(void)
{
	struct esca_thread *t = &t_self;
	int *alive = __atomic_load_n(&g_alive, __ATOMIC_ACQUIRE);
	struct esca_pring r;
	uint32_t tail;

	if (t->state != T_READY ||
	    (alive && !__atomic_load_n(alive, __ATOMIC_RELAXED)))
		return true;
	r = t->ring; /* a private copy: the interrupted code owns t->ring */
	tail = __atomic_load_n(&r.sq->sq_tail, __ATOMIC_ACQUIRE);
	/* a sleeping consumer is woken once; it clears the flag itself */
	if (!esca_pring_done(&r, tail - 1) && esca_pring_needs_wakeup(&r))
		sys(SYS_ioctl, g_fd, ESCA_IOC_WAKE, r.id, 0, 0, 0);
	while (!esca_pring_done(&r, tail - 1)) {
		if (esca_pring_dead(&r) || esca_pring_paused(&r))
			return esca_pring_done(&r, tail - 1);
		__builtin_ia32_pause();
	}
	return true;
}
