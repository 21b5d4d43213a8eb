// SPDX-License-Identifier: MIT
/*
 * libesca: process setup, lazy per-thread rings, synchronous and deferred
 * calls. Every system call made here goes through esca_direct(), so errno
 * is never touched.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>

#include "esca/esca.h"
#include "ring.h"

enum { T_NONE, T_READY, T_DIRECT };

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
};

static __thread struct esca_thread t_self;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_state; /* 0: not tried, 1: on, -1: off */
static int g_fd = -1;
static long g_spin_ns = 50000;
static uint64_t g_spin_ticks; /* g_spin_ns in TSC ticks */
static pthread_key_t g_key;
static bool g_key_made;

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
	return esca_direct(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	const char *quiet = getenv("ESCA_QUIET");
	char buf[256];
	va_list ap;
	int n;

	if (quiet && *quiet == '1')
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0)
		esca_direct(SYS_write, 2, (long)buf,
			    n < (int)sizeof(buf) ? n : (int)sizeof(buf) - 1, 0,
			    0, 0);
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

/* fork: the child has no ring mapping (VM_DONTCOPY) and no context. */
static void atfork_child(void)
{
	if (g_fd >= 0)
		esca_direct(SYS_close, g_fd, 0, 0, 0, 0, 0);
	g_fd = -1;
	g_state = 0;
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
		return "permission denied";
	default:
		return strerror((int)-err);
	}
}

int esca_init(void)
{
	struct esca_setup s = { .abi_version = ESCA_ABI_VERSION };
	const char *spin, *entries;
	long fd, ret;

	pthread_mutex_lock(&g_lock);
	if (g_state) {
		ret = g_state > 0 ? 0 : -ENODEV;
		goto out;
	}
	g_state = -1;
	if (!g_key_made) {
		if (pthread_key_create(&g_key, thread_destructor) == 0)
			g_key_made = true;
		pthread_atfork(NULL, NULL, atfork_child);
	}
	spin = getenv("ESCA_SPIN_US");
	if (spin && *spin)
		g_spin_ns = strtol(spin, NULL, 10) * 1000;
	calibrate_spin();
	entries = getenv("ESCA_ENTRIES");
	if (entries && *entries)
		s.entries = (uint32_t)strtoul(entries, NULL, 10);

	fd = esca_direct(SYS_openat, AT_FDCWD, (long)ESCA_DEVICE_PATH,
			 O_RDWR | O_CLOEXEC, 0, 0, 0);
	if (fd < 0) {
		say("esca: cannot open %s: %s; calls go direct\n",
		    ESCA_DEVICE_PATH, open_reason(fd));
		ret = fd;
		goto out;
	}
	ret = esca_direct(SYS_ioctl, fd, ESCA_IOC_SETUP, (long)&s, 0, 0, 0);
	if (ret < 0) {
		if (ret == -EPERM)
			say("esca: module refused this process (seccomp filter); calls go direct\n");
		else if (ret == -EPROTO)
			say("esca: module speaks another ABI than %u; calls go direct\n",
			    ESCA_ABI_VERSION);
		else
			say("esca: setup failed: %s; calls go direct\n",
			    strerror((int)-ret));
		esca_direct(SYS_close, fd, 0, 0, 0, 0, 0);
		goto out;
	}
	g_fd = (int)fd;
	g_state = 1;
	ret = 0;
out:
	pthread_mutex_unlock(&g_lock);
	return (int)ret;
}

static void *map_side(uint64_t offset, size_t size, int prot)
{
	void *p = (void *)esca_direct(SYS_mmap, 0, (long)size, prot, MAP_SHARED,
				      g_fd, (long)offset);

	return (unsigned long)p >= (unsigned long)-4095 ? NULL : p;
}

static void unmap_ring(struct esca_thread *t)
{
	if (t->sq_map)
		esca_direct(SYS_munmap, (long)t->sq_map, (long)t->sq_size, 0, 0,
			    0, 0);
	if (t->cq_map)
		esca_direct(SYS_munmap, (long)t->cq_map, (long)t->cq_size, 0, 0,
			    0, 0);
	t->sq_map = t->cq_map = NULL;
}

static struct esca_thread *thread_ring(void)
{
	struct esca_thread *t = &t_self;
	struct esca_register r;
	long ret;

	if (t->state == T_READY)
		return t;
	if (t->state == T_DIRECT || esca_init() < 0)
		return NULL;
	t->state = T_DIRECT;
	memset(&r, 0, sizeof(r));
	ret = esca_direct(SYS_ioctl, g_fd, ESCA_IOC_REGISTER, (long)&r, 0, 0,
			  0);
	if (ret < 0)
		return NULL;
	t->sq_size = r.sq_size;
	t->cq_size = r.cq_size;
	t->sq_map = map_side(r.sq_offset, r.sq_size, PROT_READ | PROT_WRITE);
	t->cq_map = map_side(r.cq_offset, r.cq_size, PROT_READ);
	if (!t->sq_map || !t->cq_map) {
		unmap_ring(t);
		esca_direct(SYS_ioctl, g_fd, ESCA_IOC_UNREGISTER, r.ring_id, 0,
			    0, 0);
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

static void kick(struct esca_thread *t)
{
	if (esca_pring_needs_wakeup(&t->ring))
		esca_direct(SYS_ioctl, g_fd, ESCA_IOC_WAKE, t->ring.id, 0, 0,
			    0);
}

static void reap(struct esca_thread *t, uint32_t upto);

/*
 * The consumer paused after bouncing a deferred entry below @idx: make it
 * (reap does, in order) and let the consumer go on.
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
 * Wait for entry @idx: spin for the budget, then sleep in the module.
 * Returns false if the ring died before the entry ran (it had no effect).
 */
static bool wait_done(struct esca_thread *t, uint32_t idx)
{
	struct esca_wait w = { .ring_id = t->ring.id, .index = idx };
	uint64_t deadline = 0;
	long ret;

	/*
	 * Sharing a core with our own consumer, spinning only keeps it from
	 * running: sleep at once. (sched_getcpu reads the rseq area: no trap.)
	 */
	if (sched_getcpu() == t->cpu)
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
		ret = esca_direct(SYS_ioctl, g_fd, ESCA_IOC_WAIT, (long)&w, 0,
				  0, 0);
		if (ret == 0 || ret == -EINTR)
			continue;
		if (ret == -ENXIO || esca_pring_dead(&t->ring))
			return esca_pring_done(&t->ring, idx); /* head final */
		/*
		 * Our fd is gone (the program closed it?) but the ring still
		 * runs: only DEAD may say an entry never ran, so poll. A
		 * sleeping consumer looks at its rings at least once a second.
		 */
		while (!esca_pring_done(&t->ring, idx) &&
		       !esca_pring_dead(&t->ring)) {
			struct timespec ts = { 0, 100000 };

			esca_direct(SYS_nanosleep, (long)&ts, 0, 0, 0, 0, 0);
		}
	}
}

/*
 * Look at completed CQEs below @upto: a deferred call that failed is
 * counted; one the module bounced is made now, directly, and the ring
 * (paused behind it, so nothing later has run) is resumed.
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
			res = direct_args(sqe->nr, sqe->args);
			/* G, matches H: the consumer may run on past it */
			__atomic_store_n(&t->ring.sq->resume, t->reaped + 1,
					 __ATOMIC_RELEASE);
			kick(t);
		}
		if (res < 0)
			t->deferred_failed++;
	}
}

/*
 * The ring was retired (DEAD is only shown once sq_head is final): look at
 * what completed, make the queued entries below @stop that never ran here,
 * in order, and from now on this thread goes direct.
 */
static void thread_go_direct(struct esca_thread *t, uint32_t stop)
{
	uint32_t head = esca_pring_load_head(&t->ring);

	reap(t, head);
	for (; (int32_t)(stop - t->reaped) > 0; t->reaped++) {
		const struct esca_sqe *sqe =
			esca_pring_sqe(&t->ring, t->reaped);

		if (direct_args(sqe->nr, sqe->args) < 0)
			t->deferred_failed++;
	}
	unmap_ring(t);
	t->state = T_DIRECT;
}

/* Make room for one entry; false if the ring died meanwhile. */
static bool make_room(struct esca_thread *t)
{
	uint32_t oldest;

	/* reaped never passes the consumer's head, so this also means the
	 * slot is free in the ring */
	if (t->ring.tail - t->reaped < t->ring.entries)
		return true;
	oldest = t->ring.tail - t->ring.entries;
	if (!wait_done(t, oldest))
		return false;
	reap(t, oldest + 1);
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
	kick(t);
	if (!sync)
		return 0;
	if (!wait_done(t, idx)) {
		/* Never ran: make it here, in program order. */
		thread_go_direct(t, idx);
		return direct_args(nr, args);
	}
	reap(t, idx);
	cqe = esca_pring_cqe(&t->ring, idx);
	res = cqe->res;
	if (cqe->flags & ESCA_CQE_BOUNCED)
		res = direct_args(nr, args);
	else if (res == -EPIPE)
		/* The module raised SIGPIPE on us; a direct call would have
		 * delivered it before returning, so enter the kernel once. */
		esca_direct(SYS_getppid, 0, 0, 0, 0, 0, 0);
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

long esca_drain(void)
{
	struct esca_thread *t = &t_self;
	long failed;

	if (t->state == T_READY && t->reaped != t->ring.tail) {
		if (wait_done(t, t->ring.tail - 1))
			reap(t, t->ring.tail);
		else
			thread_go_direct(t, t->ring.tail);
	}
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
	esca_direct(SYS_ioctl, g_fd, ESCA_IOC_UNREGISTER, t->ring.id, 0, 0, 0);
	unmap_ring(t);
	memset(t, 0, sizeof(*t));
	t->state = T_DIRECT;
}
