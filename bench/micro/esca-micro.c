// SPDX-License-Identifier: MIT
/*
 * esca-micro: cost per call on the application core, direct vs offloaded
 * through ESCA vs io_uring, side by side in one run.
 *
 * Calls (each cheap in the kernel, so the way the call reaches the kernel
 * dominates the direct cost):
 *   pwrite64  64 B at offset 0 of a file on tmpfs (/dev/shm, else /tmp)
 *   write     64 B to a connected TCP loopback socket (O_NONBLOCK,
 *             TCP_NODELAY; ESCA bounces writes to blocking and AF_UNIX
 *             sockets back to the caller, so TCP it is)
 *   writev    3 iovecs (16 + 32 + 16 B) to the same socket
 *   close     of a fresh, unconnected TCP socket
 *   fsync     of the tmpfs file: a call that does next to nothing
 *             (noop_fsync), so what it costs is the way it reaches the
 *             kernel: for ESCA, the hand-off and the consumer's checks
 * The socket's peer end is not read during timed work: nothing competes
 * with the timed thread or the consumer. Between chunks of CHUNK calls the
 * peer end is drained untimed (which also checks every byte arrived), and
 * the sockets that close closes are made untimed, a chunk ahead.
 *
 * Modes:
 *   direct           the system call itself
 *   sync             esca_call: submit, spin on the completion
 *   deferred         esca_defer, ring kept full (bounded by the consumer's
 *                    throughput; a full ring sleeps until half of it is
 *                    free); esca_drain at the end of each chunk, timed (it
 *                    sleeps through all but the last 8 entries, then spins)
 *   defer-enq        what a deferred call costs the application core
 *                    itself: bursts that fit in the ring are timed, the
 *                    drain after each burst is not
 *   uring-sqpoll-1   io_uring with SQPOLL: one SQE submitted, its CQE
 *                    awaited (spinning on the CQ for up to ESCA_SPIN_US, as
 *                    sync does, then io_uring_wait_cqe)
 *   uring-sqpoll-32  io_uring with SQPOLL: 32 SQEs submitted, 32 reaped
 *                    (io_uring_wait_cqe_nr sleeps through all but the last
 *                    8, then it spins, as esca_drain does)
 *   uring-32         io_uring without SQPOLL: 32 SQEs, submit_and_wait(32)
 * The SQPOLL thread is pinned to the ESCA consumer's CPU, with an idle
 * time matching the module's idle_us (rounded up to whole milliseconds).
 *
 * The application thread is pinned to a core that does not host the
 * consumer. For each call x mode: median over --runs of thread CPU time /
 * calls, wall time / calls and traps / calls (raw_syscalls:sys_enter on the
 * application CPU), ratios against direct of the same call. Runs are
 * interleaved so drift hits all modes alike. Every result is checked: one
 * wrong result fails the whole run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <liburing.h>
#include <linux/magic.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "esca/esca.h"
#include "perfcount.h"

enum { C_PWRITE64, C_WRITE, C_WRITEV, C_CLOSE, C_FSYNC, C_COUNT };
static const char *const call_name[C_COUNT] = { "pwrite64", "write", "writev",
						"close", "fsync" };

enum {
	M_DIRECT,
	M_SYNC,
	M_DEFERRED,
	M_DEFER_ENQ,
	M_URING_SQPOLL_1,
	M_URING_SQPOLL_32,
	M_URING_32,
	M_COUNT
};
static const char *const mode_name[M_COUNT] = {
	"direct",	   "sync",    "deferred", "defer-enq", "uring-sqpoll-1",
	"uring-sqpoll-32", "uring-32"
};

#define BURST 128 /* defer-enq: fits in the default 256-entry ring */
#define UBATCH 32 /* io_uring batch */
#define DRAIN_SPIN_TAIL 8 /* as libesca's drain: spin for the last 8 */
#define CHUNK 512 /* socket calls between drains; sockets made ahead */
#define MIN_CALLS 64
#define WARMUP_CALLS 64
#define MAX_RUNS 100

struct sample {
	double app_ns, wall_ns, traps;
	double elapsed_ns; /* per call, untimed work included */
};

/* What the runs work on. */
static struct {
	int file_fd;
	int sock_w, sock_r; /* TCP loopback: the end written, the end drained */
	int close_fds[CHUNK];
	struct io_uring ring_sq, ring_plain;
	const char *no_ring[2]; /* why the plain, the SQPOLL ring is missing */
	long spin_ns; /* how long uring-sqpoll waits spin on the CQ */
	double ticks_per_ns;
	bool uring_up; /* io_uring modes selected, rings set up */
	int pc; /* trap counter fd, or < 0 */
	char why[160]; /* the first wrong result */
} B = { .pc = -1 };

static char buf[64] = "esca-micro";
static struct iovec iov[3] = { { buf, 16 },
			       { buf + 16, 32 },
			       { buf + 48, 16 } };

static double ns_of(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/*
 * A clock for spin budgets that never enters the kernel: clock_gettime is
 * a system call where the vDSO cannot read the clocksource (TCG guests),
 * and would show as traps. Ticks, B.ticks_per_ns of them a nanosecond.
 */
static uint64_t ticks(void)
{
#if defined(__x86_64__) || defined(__i386__)
	return __builtin_ia32_rdtsc();
#else
	return (uint64_t)ns_of(CLOCK_MONOTONIC);
#endif
}

static void calibrate_ticks(void)
{
	double t0 = ns_of(CLOCK_MONOTONIC), t1;
	uint64_t c0 = ticks();

	usleep(10000);
	t1 = ns_of(CLOCK_MONOTONIC);
	B.ticks_per_ns = (double)(ticks() - c0) / (t1 - t0);
	if (!(B.ticks_per_ns > 0))
		B.ticks_per_ns = 1;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* 0 when @got is @want; else 1, and the first such result is kept. */
static long check(const char *what, long got, long want)
{
	if (got == want)
		return 0;
	if (!B.why[0])
		snprintf(B.why, sizeof(B.why), "%s gave %ld, expected %ld",
			 what, got, want);
	return 1;
}

static long expected(int call)
{
	return call == C_CLOSE || call == C_FSYNC ? 0 : 64;
}

/* The system call number and arguments of call @i of a chunk. */
static long call_args(int call, int i, long a[6])
{
	memset(a, 0, 6 * sizeof(*a));
	switch (call) {
	case C_PWRITE64:
		a[0] = B.file_fd, a[1] = (long)buf, a[2] = 64, a[3] = 0;
		return SYS_pwrite64;
	case C_WRITE:
		a[0] = B.sock_w, a[1] = (long)buf, a[2] = 64;
		return SYS_write;
	case C_WRITEV:
		a[0] = B.sock_w, a[1] = (long)iov, a[2] = 3;
		return SYS_writev;
	case C_FSYNC:
		a[0] = B.file_fd;
		return SYS_fsync;
	default:
		a[0] = B.close_fds[i];
		return SYS_close;
	}
}

static void uring_prep(struct io_uring_sqe *sqe, int call, int i)
{
	switch (call) {
	case C_PWRITE64:
		io_uring_prep_write(sqe, B.file_fd, buf, 64, 0);
		break;
	case C_WRITE: /* a socket ignores the offset */
		io_uring_prep_write(sqe, B.sock_w, buf, 64, 0);
		break;
	case C_WRITEV:
		io_uring_prep_writev(sqe, B.sock_w, iov, 3, 0);
		break;
	case C_FSYNC:
		io_uring_prep_fsync(sqe, B.file_fd, 0);
		break;
	default:
		io_uring_prep_close(sqe, B.close_fds[i]);
	}
}

/*
 * Reap @n completions of @ring, each must be @want. With SQPOLL, spin on
 * the CQ up to B.spin_ns first, as esca_call spins on its completion.
 * -1: io_uring itself failed (the ring is unusable).
 */
static long uring_reap(struct io_uring *ring, unsigned int n, long want,
		       bool spin)
{
	struct io_uring_cqe *cqes[UBATCH];
	unsigned int got = 0, empty = 0;
	uint64_t deadline = 0;
	long bad = 0;

	/* As esca_drain: sleep through the bulk, spin for the last few. */
	if (spin && n > DRAIN_SPIN_TAIL) {
		struct io_uring_cqe *cqe;
		int r = io_uring_wait_cqe_nr(ring, &cqe, n - DRAIN_SPIN_TAIL);

		if (r < 0) {
			check("io_uring_wait_cqe", r, 0);
			return -1;
		}
	}
	while (got < n) {
		unsigned int k = io_uring_peek_batch_cqe(ring, cqes, n - got);

		if (!k) {
			struct io_uring_cqe *cqe;
			int r;

			if (spin && empty++ % 64) {
				cpu_relax();
				continue;
			}
			if (spin && !deadline)
				deadline = ticks() + (uint64_t)(B.spin_ns *
								B.ticks_per_ns);
			if (spin && ticks() < deadline)
				continue;
			r = io_uring_wait_cqe_nr(ring, &cqe, n - got);
			if (r < 0) {
				check("io_uring_wait_cqe", r, 0);
				return -1;
			}
			continue;
		}
		for (unsigned int i = 0; i < k; i++)
			bad += check("a completion", cqes[i]->res, want);
		io_uring_cq_advance(ring, k);
		got += k;
	}
	return bad;
}

/* @n calls of a chunk through io_uring; < 0: the ring failed. */
static long run_uring(int call, int mode, int n)
{
	struct io_uring *ring = mode == M_URING_32 ? &B.ring_plain : &B.ring_sq;
	int batch = mode == M_URING_SQPOLL_1 ? 1 : UBATCH;
	long bad = 0;

	for (int done = 0; done < n; done += batch) {
		int k = n - done < batch ? n - done : batch, r;
		long b;

		for (int i = 0; i < k; i++) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

			if (!sqe) {
				check("io_uring_get_sqe", 0, 1);
				return -1;
			}
			uring_prep(sqe, call, done + i);
		}
		r = mode == M_URING_32 ? io_uring_submit_and_wait(ring, k) :
					 io_uring_submit(ring);
		/* With SQPOLL, submit counts the SQEs the kernel has not
		 * consumed yet, read from its head: more than k when the head
		 * moves after the previous batch's completions, fewer (even 0)
		 * when the thread took ours before the read. Any count from 0
		 * is a submission; the k completions reaped below prove it.
		 */
		if (mode != M_URING_32 && r >= 0)
			r = k;
		if (check("io_uring_submit", r, k))
			return -1;
		b = uring_reap(ring, k, expected(call), mode != M_URING_32);
		if (b < 0)
			return -1;
		bad += b;
	}
	return bad;
}

/* @n calls of a chunk, direct or through ESCA (not defer-enq). */
static long run_calls(int call, int mode, int n)
{
	long a[6], nr, want = expected(call), bad = 0;

	for (int i = 0; i < n; i++) {
		nr = call_args(call, i, a);
		switch (mode) {
		case M_DIRECT:
			bad += check("a direct call",
				     esca_direct(nr, a[0], a[1], a[2], a[3],
						 a[4], a[5]),
				     want);
			break;
		case M_SYNC:
			bad += check("esca_call",
				     esca_call(nr, a[0], a[1], a[2], a[3], a[4],
					       a[5]),
				     want);
			break;
		default:
			bad += check("esca_defer",
				     esca_defer(nr, a[0], a[1], a[2], a[3],
						a[4], a[5]),
				     0);
		}
	}
	if (mode == M_DEFERRED)
		bad += check("esca_drain (deferred calls that failed)",
			     esca_drain(), 0);
	return bad;
}

/* Untimed: make @n fresh sockets for close to close. */
static long make_sockets(int n)
{
	for (int i = 0; i < n; i++) {
		B.close_fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (B.close_fds[i] < 0)
			return check("socket()", -errno, 0);
	}
	return 0;
}

/* Untimed: read the @want bytes a chunk wrote (they must all be there). */
static long drain_socket(long want)
{
	static char sink[65536];
	long got = 0;

	while (got < want) {
		ssize_t r = recv(B.sock_r, sink,
				 want - got < (long)sizeof(sink) ?
					 (size_t)(want - got) :
					 sizeof(sink),
				 0);

		if (r <= 0)
			return check("reading the bytes written back",
				     r < 0 ? -errno : got, want);
		got += r;
	}
	return 0;
}

/* One run of @calls calls; -1 when a result was wrong (B.why says which). */
static int run(int call, int mode, int calls, struct sample *s)
{
	double app = 0, wall = 0, start = ns_of(CLOCK_MONOTONIC);
	long traps = 0, timed = 0, counted = 0, bad = 0;
	int chunk = call == C_PWRITE64 || call == C_FSYNC ? calls : CHUNK, n;

	for (int done = 0; done < calls && !bad; done += n) {
		n = calls - done < chunk ? calls - done : chunk;
		if (call == C_CLOSE && make_sockets(n))
			return -1;
		if (mode == M_DEFER_ENQ) {
			/* Bursts alternately timed and trap-counted: reading
			 * the clocks (a system call for the thread's CPU time)
			 * in so short a window would show as traps. */
			int burst = n < 2 * BURST ? (n + 1) / 2 : BURST, k;

			for (int b = 0, i = 0; b < n; b += k, i++) {
				bool count = B.pc >= 0 && i % 2;
				double app0 = 0, wall0 = 0;
				long a[6], nr;

				k = n - b < burst ? n - b : burst;
				if (count) {
					trapcount_start(B.pc);
				} else {
					app0 = ns_of(CLOCK_THREAD_CPUTIME_ID);
					wall0 = ns_of(CLOCK_MONOTONIC);
				}
				for (int j = b; j < b + k; j++) {
					nr = call_args(call, j, a);
					bad += check("esca_defer",
						     esca_defer(nr, a[0], a[1],
								a[2], a[3],
								a[4], a[5]),
						     0);
				}
				if (count) {
					traps += trapcount_stop(B.pc);
					counted += k;
				} else {
					wall += ns_of(CLOCK_MONOTONIC) - wall0;
					app += ns_of(CLOCK_THREAD_CPUTIME_ID) -
					       app0;
					timed += k;
				}
				bad += check(
					"esca_drain (deferred calls that failed)",
					esca_drain(), 0);
			}
		} else {
			double app0 = ns_of(CLOCK_THREAD_CPUTIME_ID);
			double wall0 = ns_of(CLOCK_MONOTONIC);
			long b;

			if (B.pc >= 0)
				trapcount_start(B.pc);
			b = mode >= M_URING_SQPOLL_1 ?
				    run_uring(call, mode, n) :
				    run_calls(call, mode, n);
			if (B.pc >= 0)
				traps += trapcount_stop(B.pc);
			wall += ns_of(CLOCK_MONOTONIC) - wall0;
			app += ns_of(CLOCK_THREAD_CPUTIME_ID) - app0;
			if (b < 0)
				return -1;
			bad += b;
			timed += n;
			counted += n;
		}
		if (call == C_WRITE || call == C_WRITEV)
			bad += drain_socket(64L * n);
	}
	if (bad)
		return -1;
	s->app_ns = app / timed;
	s->wall_ns = wall / timed;
	s->traps = B.pc >= 0 && counted ? (double)traps / counted : -1;
	s->elapsed_ns = (ns_of(CLOCK_MONOTONIC) - start) / calls;
	return 0;
}

/* A tmpfs file for pwrite64; its directory in @where. */
static int open_tmpfs_file(const char **where)
{
	static const char *const dirs[] = { "/dev/shm", "/tmp" };

	for (unsigned int i = 0; i < 2; i++) {
		char path[64];
		struct statfs st;
		int fd;

		if (statfs(dirs[i], &st) || st.f_type != TMPFS_MAGIC)
			continue;
		snprintf(path, sizeof(path), "%s/esca-micro.dat", dirs[i]);
		fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0) {
			fprintf(stderr, "esca-micro: %s: %s\n", path,
				strerror(errno));
			return -1;
		}
		unlink(path);
		*where = dirs[i];
		return fd;
	}
	fprintf(stderr,
		"esca-micro: neither /dev/shm nor /tmp is a tmpfs mount\n");
	return -1;
}

/* A connected TCP loopback pair: B.sock_w (non-blocking) and B.sock_r. */
static int open_tcp_pair(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval timeout = { .tv_sec = 10 };
	socklen_t len = sizeof(sa);
	int one = 1, big = 4 << 20, lfd;

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	B.sock_w = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || B.sock_w < 0 ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 1) ||
	    getsockname(lfd, (struct sockaddr *)&sa, &len) ||
	    connect(B.sock_w, (struct sockaddr *)&sa, sizeof(sa))) {
		fprintf(stderr, "esca-micro: TCP loopback connection: %s\n",
			strerror(errno));
		return -1;
	}
	B.sock_r = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	close(lfd);
	if (B.sock_r < 0) {
		fprintf(stderr, "esca-micro: accept: %s\n", strerror(errno));
		return -1;
	}
	/* Room for a chunk whatever the segment overhead (root may exceed
	 * the sysctl caps; others get autotuning); a drain that never sees
	 * its bytes fails after 10 s rather than hanging. */
	setsockopt(B.sock_w, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big));
	setsockopt(B.sock_r, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	if (setsockopt(B.sock_w, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) ||
	    setsockopt(B.sock_r, SOL_SOCKET, SO_RCVTIMEO, &timeout,
		       sizeof(timeout)) ||
	    fcntl(B.sock_w, F_SETFL, O_NONBLOCK)) {
		fprintf(stderr, "esca-micro: socket options: %s\n",
			strerror(errno));
		return -1;
	}
	return 0;
}

static long read_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

/* Calls the module bounced back to their callers so far (all consumers). */
static long module_bounced(void)
{
	char line[512];
	long total = 0;
	FILE *f = fopen("/proc/esca/stats", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *p = strstr(line, " bounced=");

		if (p)
			total += atol(p + 9);
	}
	fclose(f);
	return total;
}

/*
 * The io_uring rings: one without SQPOLL, one with, its thread on
 * @consumer_cpu idling @idle_ms. A ring that cannot be set up gets its
 * reason in B.no_ring[] and its modes are n/a.
 */
static void setup_uring(int consumer_cpu, unsigned int idle_ms)
{
	static char why[2][160];
	const char *hint = read_long("/proc/sys/kernel/io_uring_disabled") > 0 ?
				   " (sysctl kernel.io_uring_disabled is set)" :
				   "";
	struct io_uring_params p;
	int r;

	r = io_uring_queue_init(2 * UBATCH, &B.ring_plain, 0);
	if (r < 0) {
		snprintf(why[0], sizeof(why[0]), "io_uring: %s%s", strerror(-r),
			 hint);
		B.no_ring[0] = why[0];
	}
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_SQPOLL | IORING_SETUP_SQ_AFF;
	p.sq_thread_cpu = consumer_cpu;
	p.sq_thread_idle = idle_ms;
	r = io_uring_queue_init_params(2 * UBATCH, &B.ring_sq, &p);
	if (r < 0) {
		snprintf(why[1], sizeof(why[1]),
			 "io_uring with SQPOLL on CPU %d: %s%s", consumer_cpu,
			 strerror(-r), hint);
		B.no_ring[1] = why[1];
	}
}

/*
 * The hand-off floor: one cache line there and back between the
 * application's CPU and the consumer's, two user threads spinning on it
 * as libesca and the consumer do: a PAUSE between looks on the
 * application's side; on the consumer's only if its core has an SMT
 * sibling (esca.ko's idle spin). No synchronous offload can answer faster
 * than this on this machine; under emulation it is most of what a
 * synchronous call adds to a direct one.
 */
enum { PP_WARM = 200, PP_TIMED = 5000 }; /* round trips per run */
static struct {
	_Alignas(64) uint64_t ping;
	_Alignas(64) uint64_t pong;
	int cpu;
	bool pause; /* the consumer's CPU has an SMT sibling */
} PP;

/* Does @cpu share its core with another online CPU? */
static bool smt_sibling(int cpu)
{
	char path[96], list[64] = "";
	FILE *f;

	snprintf(path, sizeof(path),
		 "/sys/devices/system/cpu/cpu%d/topology/thread_siblings_list",
		 cpu);
	f = fopen(path, "r");
	if (!f)
		return true; /* unknown: pause, the cautious spin */
	if (!fgets(list, sizeof(list), f))
		list[0] = 0;
	fclose(f);
	return strpbrk(list, ",-") != NULL;
}

static void *pong_thread(void *arg)
{
	cpu_set_t set;

	(void)arg;
	CPU_ZERO(&set);
	CPU_SET(PP.cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
	for (uint64_t i = 1; i <= PP_WARM + PP_TIMED; i++) {
		while (__atomic_load_n(&PP.ping, __ATOMIC_ACQUIRE) != i)
			if (PP.pause)
				cpu_relax();
		__atomic_store_n(&PP.pong, i, __ATOMIC_RELEASE);
	}
	return NULL;
}

/* Median ns per round trip over @runs runs, or -1. */
static double handoff_floor(int other_cpu, int runs)
{
	double v[MAX_RUNS], t0 = 0;

	for (int r = 0; r < runs; r++) {
		pthread_t t;

		PP.ping = PP.pong = 0;
		PP.cpu = other_cpu;
		PP.pause = smt_sibling(other_cpu);
		if (pthread_create(&t, NULL, pong_thread, NULL))
			return -1;
		for (uint64_t i = 1; i <= PP_WARM + PP_TIMED; i++) {
			if (i == PP_WARM + 1)
				t0 = ns_of(CLOCK_MONOTONIC);
			__atomic_store_n(&PP.ping, i, __ATOMIC_RELEASE);
			while (__atomic_load_n(&PP.pong, __ATOMIC_ACQUIRE) != i)
				cpu_relax();
		}
		v[r] = (ns_of(CLOCK_MONOTONIC) - t0) / PP_TIMED;
		pthread_join(t, NULL);
	}
	return median(v, runs);
}

/* Where the figures come from: native, KVM guest or TCG guest. */
static void print_environment(FILE *out)
{
	char line[512], model[256] = "unknown CPU", where[160] = "native";
	bool hypervisor = false;
	struct utsname u;
	FILE *f = fopen("/proc/cpuinfo", "r");

	while (f && fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "model name", 10) && strchr(line, ':'))
			snprintf(model, sizeof(model), "%s",
				 strchr(line, ':') + 2);
		if (!strncmp(line, "flags", 5) && strstr(line, " hypervisor"))
			hypervisor = true;
	}
	if (f)
		fclose(f);
	model[strcspn(model, "\n")] = 0;
	f = fopen("/proc/cmdline", "r");
	if (f && fgets(line, sizeof(line), f)) {
		if (strstr(line, "esca_accel=tcg"))
			snprintf(
				where, sizeof(where),
				"QEMU TCG guest: timings are emulated, read the ratios as indicative only");
		else if (strstr(line, "esca_accel=kvm"))
			snprintf(where, sizeof(where), "QEMU KVM guest");
		else if (hypervisor)
			snprintf(where, sizeof(where), "virtual machine");
	}
	if (f)
		fclose(f);
	uname(&u);
	fprintf(out, "where: %s\nkernel %s, %s, %ld CPUs\n", where, u.release,
		model, sysconf(_SC_NPROCESSORS_ONLN));
}

/* Parse a comma list of @names into @on; false on an unknown name. */
static bool parse_list(const char *arg, const char *const *names, int count,
		       bool *on)
{
	char copy[256], *save = NULL;

	snprintf(copy, sizeof(copy), "%s", arg);
	memset(on, 0, count * sizeof(*on));
	for (char *t = strtok_r(copy, ",", &save); t;
	     t = strtok_r(NULL, ",", &save)) {
		int i = 0;

		while (i < count && strcmp(t, names[i]))
			i++;
		if (i == count) {
			fprintf(stderr, "esca-micro: unknown name '%s'\n", t);
			return false;
		}
		on[i] = true;
	}
	return true;
}

/* *@v = @arg if it is a whole number in [@lo, @hi]; else say why. */
static bool parse_int(const char *opt, const char *arg, int lo, int hi, int *v)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(arg, &end, 10);
	if (errno || end == arg || *end || n < lo || n > hi) {
		fprintf(stderr,
			"esca-micro: --%s: '%s' is not a whole number in %d..%d\n",
			opt, arg, lo, hi);
		return false;
	}
	*v = (int)n;
	return true;
}

static void usage(FILE *f, const char *name)
{
	fprintf(f,
		"usage: %s [--calls N] [--runs R] [--run-ms MS] [--cpu C]\n"
		"          [--call LIST] [--mode LIST] [--csv]\n"
		"  --calls N    calls per run of each call x mode, at most (default 20000)\n"
		"  --run-ms MS  fewer calls where a run would take longer than MS, judged\n"
		"               from the warm-up (default 300; 0: always N; at least %d)\n"
		"  --runs R     runs per call x mode; medians are reported (default 5)\n"
		"  --cpu C      application core, OS index (default: a core without a consumer)\n"
		"  --call LIST  of pwrite64,write,writev,close,fsync (default: all)\n"
		"  --mode LIST  of direct,sync,deferred,defer-enq,uring-sqpoll-1,\n"
		"               uring-sqpoll-32,uring-32 (default: all; direct always runs:\n"
		"               the ratios need it)\n"
		"  --csv        print CSV rows (call,mode,app_ns,...) instead of the table\n",
		name, MIN_CALLS);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "calls", required_argument, NULL, 'n' },
		{ "runs", required_argument, NULL, 'r' },
		{ "run-ms", required_argument, NULL, 't' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "call", required_argument, NULL, 'C' },
		{ "mode", required_argument, NULL, 'M' },
		{ "csv", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	static double v[C_COUNT][M_COUNT][3][MAX_RUNS];
	double med[C_COUNT][M_COUNT][3];
	int ncalls[C_COUNT][M_COUNT];
	bool call_on[C_COUNT], mode_on[M_COUNT], csv = false;
	int calls = 20000, runs = 5, run_ms = 300, cpu = -1, consumer, o;
	long idle_us, bounced0, bounced1;
	double floor_ns;
	unsigned int idle_ms;
	const char *file_dir = NULL;
	struct rlimit rl;
	cpu_set_t set;
	FILE *out;

	for (int i = 0; i < C_COUNT; i++)
		call_on[i] = true;
	for (int i = 0; i < M_COUNT; i++)
		mode_on[i] = true;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'n':
			if (!parse_int("calls", optarg, MIN_CALLS, INT_MAX,
				       &calls))
				return 2;
			break;
		case 'r':
			if (!parse_int("runs", optarg, 1, MAX_RUNS, &runs))
				return 2;
			break;
		case 't':
			if (!parse_int("run-ms", optarg, 0, INT_MAX, &run_ms))
				return 2;
			break;
		case 'c':
			if (!parse_int("cpu", optarg, 0, CPU_SETSIZE - 1, &cpu))
				return 2;
			break;
		case 'C':
			if (!parse_list(optarg, call_name, C_COUNT, call_on))
				return 2;
			break;
		case 'M':
			if (!parse_list(optarg, mode_name, M_COUNT, mode_on))
				return 2;
			break;
		case 'v':
			csv = true;
			break;
		case 'h':
			usage(stdout, argv[0]);
			return 0;
		default:
			usage(stderr, argv[0]);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "esca-micro: unexpected argument '%s'\n",
			argv[optind]);
		usage(stderr, argv[0]);
		return 2;
	}
	mode_on[M_DIRECT] = true;
	out = csv ? stderr : stdout; /* the CSV alone goes to stdout */
	if (!getenv("ESCA_SPIN_US"))
		setenv("ESCA_SPIN_US", "100000",
		       1); /* measure the ring, not sleeps */
	B.spin_ns = atol(getenv("ESCA_SPIN_US")) * 1000L;
	calibrate_ticks();
	consumer = esca_thread_cpu();
	if (consumer < 0) {
		fprintf(stderr,
			"esca-micro: offload is not active; nothing to compare\n");
		return 1;
	}
	if (cpu < 0)
		cpu = consumer == 0 ? 1 : 0;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		fprintf(stderr, "esca-micro: cannot pin to CPU %d: %s\n", cpu,
			strerror(errno));
		return 1;
	}
	/* close keeps a chunk of sockets open */
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < 4 * CHUNK &&
	    rl.rlim_max >= 4 * CHUNK) {
		rl.rlim_cur = 4 * CHUNK;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	B.file_fd = open_tmpfs_file(&file_dir);
	if (B.file_fd < 0 || open_tcp_pair())
		return 1;
	idle_us = read_long("/sys/module/esca/parameters/idle_us");
	idle_ms = idle_us > 0 ? (unsigned int)((idle_us + 999) / 1000) : 1;
	if (mode_on[M_URING_SQPOLL_1] || mode_on[M_URING_SQPOLL_32] ||
	    mode_on[M_URING_32]) {
		setup_uring(consumer, idle_ms);
		B.uring_up = true;
		if (B.no_ring[0])
			fprintf(stderr, "esca-micro: %s: uring-32 is n/a\n",
				B.no_ring[0]);
		if (B.no_ring[1])
			fprintf(stderr,
				"esca-micro: %s: uring-sqpoll-1 and -32 are n/a\n",
				B.no_ring[1]);
	}
	B.pc = trapcount_open(cpu);
	if (B.pc < 0)
		fprintf(stderr, "esca-micro: trap counting unavailable: %s\n",
			strerror(-B.pc));
	bounced0 = module_bounced();
	/* with the consumer asleep: nothing queued for twice its idle time */
	usleep(2 * idle_ms * 1000 + 10000);
	floor_ns = handoff_floor(consumer, runs);

	/*
	 * Warm up each call x mode and size its runs from the warm-up's
	 * elapsed time (untimed work included); then interleave the modes run
	 * by run so drift hits all of them alike. Between modes, sleep past
	 * the pollers' idle time (capped) so each mode starts alike: the
	 * previous mode's poller asleep, not spinning on the shared CPU.
	 */
	{
		useconds_t settle =
			2 * idle_ms * 1000 < 50000 ? 2 * idle_ms * 1000 : 50000;
		struct sample s;

		for (int c = 0; c < C_COUNT; c++)
			for (int m = 0; m < M_COUNT; m++) {
				int want;

				ncalls[c][m] = 0;
				if (!call_on[c] || !mode_on[m] ||
				    (m == M_URING_32 && B.no_ring[0]) ||
				    ((m == M_URING_SQPOLL_1 ||
				      m == M_URING_SQPOLL_32) &&
				     B.no_ring[1]))
					continue;
				if (run(c, m, WARMUP_CALLS, &s)) {
					fprintf(stderr,
						"esca-micro: %s/%s: %s\n",
						call_name[c], mode_name[m],
						B.why);
					return 1;
				}
				want = run_ms ? (int)(run_ms * 1e6 /
						      s.elapsed_ns) :
						calls;
				want = want < calls ? want : calls;
				ncalls[c][m] = want > MIN_CALLS ?
						       want / UBATCH * UBATCH :
						       MIN_CALLS;
				usleep(settle);
			}
		for (int r = 0; r < runs; r++)
			for (int c = 0; c < C_COUNT; c++)
				for (int m = 0; m < M_COUNT; m++) {
					if (!ncalls[c][m])
						continue;
					if (run(c, m, ncalls[c][m], &s)) {
						fprintf(stderr,
							"esca-micro: %s/%s: a call returned a wrong result: %s\n",
							call_name[c],
							mode_name[m], B.why);
						return 1;
					}
					v[c][m][0][r] = s.app_ns;
					v[c][m][1][r] = s.wall_ns;
					v[c][m][2][r] = s.traps;
					usleep(settle);
				}
		for (int c = 0; c < C_COUNT; c++)
			for (int m = 0; m < M_COUNT; m++)
				for (int k = 0; k < 3; k++)
					med[c][m][k] =
						ncalls[c][m] ?
							median(v[c][m][k],
							       runs) :
							0;
	}
	bounced1 = module_bounced();

	fprintf(out,
		"esca-micro: per call x mode, medians of %d runs of up to %d calls\n"
		"calls: pwrite64 64 B on %s (tmpfs); write 64 B and writev 3 iovecs to a\n"
		"TCP loopback socket; close of a fresh TCP socket; fsync of the tmpfs file\n",
		runs, calls, file_dir);
	print_environment(out);
	fprintf(out, "app thread on CPU %d, consumer on CPU %d (idle_us=%ld)",
		cpu, consumer, idle_us);
	if (B.no_ring[1])
		fprintf(out, "\nn/a: %s\n", B.no_ring[1]);
	else if (!B.uring_up)
		fprintf(out, "\n");
	else
		fprintf(out,
			", SQPOLL thread on CPU %d (sq_thread_idle=%u ms)\n",
			consumer, idle_ms);
	if (B.no_ring[0])
		fprintf(out, "n/a: %s\n", B.no_ring[0]);
	if (floor_ns > 0)
		fprintf(out,
			"hand-off floor: a cache line from CPU %d to CPU %d and back, two threads\n"
			"spinning on it: %.0f ns a round trip (median of %d runs)\n",
			cpu, consumer, floor_ns, runs);
	if (bounced0 >= 0 && bounced1 > bounced0)
		fprintf(out,
			"note: the module bounced %ld calls back to be made directly\n",
			bounced1 - bounced0);
	if (csv)
		printf("call,mode,app_ns,wall_ns,traps,app_ratio,wall_ratio,runs,calls\n");
	else
		printf("\n%-8s %-15s %7s %12s %12s %10s %10s %10s\n", "call",
		       "mode", "calls", "app ns/call", "wall ns/call",
		       "app/direct", "wall/direct", "traps/call");
	for (int c = 0; c < C_COUNT; c++) {
		double *d = med[c][M_DIRECT];

		if (!call_on[c])
			continue;
		for (int m = 0; m < M_COUNT; m++) {
			double *x = med[c][m];

			if (!mode_on[m])
				continue;
			if (!ncalls[c][m] && csv)
				printf("%s,%s,n/a,n/a,n/a,n/a,n/a,%d,0\n",
				       call_name[c], mode_name[m], runs);
			else if (!ncalls[c][m])
				printf("%-8s %-15s %7s %12s %12s %10s %10s %10s\n",
				       call_name[c], mode_name[m], "n/a", "n/a",
				       "n/a", "n/a", "n/a", "n/a");
			else if (csv)
				printf("%s,%s,%.1f,%.1f,%.4f,%.3f,%.3f,%d,%d\n",
				       call_name[c], mode_name[m], x[0], x[1],
				       x[2], x[0] / d[0], x[1] / d[1], runs,
				       ncalls[c][m]);
			else
				printf("%-8s %-15s %7d %12.1f %12.1f %10.2f %10.2f %10.3f\n",
				       call_name[c], mode_name[m], ncalls[c][m],
				       x[0], x[1], x[0] / d[0], x[1] / d[1],
				       x[2]);
		}
	}
	if (csv)
		return 0;
	/* The SUMMARY lines of old, call= added at the end. */
	printf("\n");
	for (int c = 0; c < C_COUNT; c++)
		for (int m = 0; m < M_COUNT; m++) {
			double *x = med[c][m], *d = med[c][M_DIRECT];

			if (!call_on[c] || !mode_on[m])
				continue;
			if (!ncalls[c][m])
				printf("SUMMARY esca-micro mode=%s calls=0 runs=%d app_cpu=%d consumer_cpu=%d "
				       "app_ns=n/a wall_ns=n/a traps_per_call=n/a ratio_vs_direct=n/a call=%s\n",
				       mode_name[m], runs, cpu, consumer,
				       call_name[c]);
			else
				printf("SUMMARY esca-micro mode=%s calls=%d runs=%d app_cpu=%d consumer_cpu=%d "
				       "app_ns=%.1f wall_ns=%.1f traps_per_call=%.3f ratio_vs_direct=%.3f call=%s\n",
				       mode_name[m], ncalls[c][m], runs, cpu,
				       consumer, x[0], x[1], x[2], x[0] / d[0],
				       call_name[c]);
		}
	return 0;
}
