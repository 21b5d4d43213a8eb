// SPDX-License-Identifier: MIT
/*
 * Borrow once, serve many, without delaying exit (issue 6 item 2). A
 * consumer keeps the last process's address space between batches and
 * switches only for another process; it must still let go at once when
 * that process exits, not when it next sleeps.
 *
 * With idle_us raised to 200 ms (so a consumer that held on until its
 * idle sleep would show), each of R rounds forks two children pinned off
 * the consumer's CPU, the same program made directly and offloaded: 400
 * synchronous pwrite64 (the consumer holds the child's mm from batch to
 * batch), then 32 deferred ones left queued, then the time into shared
 * memory and _exit. The parent times from that stamp to waitpid()'s return.
 * Checks:
 *  - every offloaded child's exit is at most the slowest direct exit plus
 *    idle_us / 4 (running 32 queued pwrite64 included), and the medians
 *    are printed;
 *  - nothing lost: all 32 deferred writes are in the file at waitpid;
 *  - the mm was kept: the consumer's mm_switches grew by at most 4 per
 *    offloaded child while its batches grew by at least 400.
 * usage: t-exitdelay [ROUNDS]
 */
#include "t.h"

#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

#define NSYNC 400
#define NDEFER 32
#define WSZ 64
#define IDLE_US 200000L
#define IDLE_PATH "/sys/module/esca/parameters/idle_us"
#define PATH "/tmp/t-exitdelay.dat"

struct report {
	long long stamp_ns; /* CLOCK_MONOTONIC just before _exit */
	int offloaded; /* the sync calls went through the ring */
	int queued; /* deferred calls esca_defer() queued */
};

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long read_idle(void)
{
	FILE *f = fopen(IDLE_PATH, "r");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static void write_idle(long v)
{
	FILE *f = fopen(IDLE_PATH, "w");

	if (!f || fprintf(f, "%ld\n", v) < 0 || fclose(f) != 0)
		DIE("cannot set %s to %ld: %s", IDLE_PATH, v, strerror(errno));
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return x < y ? -1 : x > y;
}

/* one buffer per deferred entry: each is read when its entry runs */
static char dbuf[NDEFER][WSZ];

static void child(struct report *r, int offload, int cpu)
{
	char buf[WSZ];
	cpu_set_t set;
	int fd, i;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
	fd = open(PATH, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		_exit(2);
	memset(buf, 'x', sizeof(buf));
	if (offload && (esca_init() < 0 || !esca_active()))
		_exit(3);
	for (i = 0; i < NSYNC; i++) {
		long n = offload ? O6(SYS_pwrite64, fd, buf, WSZ, 0, 0, 0) :
				   D6(SYS_pwrite64, fd, buf, WSZ, 0, 0, 0);
		if (n != WSZ)
			_exit(4);
	}
	r->offloaded = offload;
	for (i = 0; i < NDEFER; i++) {
		long off = (long)(i + 1) * WSZ;

		memset(dbuf[i], 'A' + i % 26, WSZ);
		if (offload) {
			if (esca_defer(SYS_pwrite64, fd, (long)dbuf[i], WSZ,
				       off, 0, 0) == 0)
				r->queued++;
		} else if (D6(SYS_pwrite64, fd, dbuf[i], WSZ, off, 0, 0) !=
			   WSZ) {
			_exit(5);
		}
	}
	r->stamp_ns = now_ns();
	_exit(0);
}

/* Fork one child; its exit delay in ns, or -1. */
static long long one(struct report *r, int offload, int cpu)
{
	long long done;
	pid_t pid;
	int st;

	memset(r, 0, sizeof(*r));
	pid = fork();
	if (pid < 0)
		DIE("fork: %s", strerror(errno));
	if (pid == 0)
		child(r, offload, cpu);
	if (waitpid(pid, &st, 0) != pid)
		DIE("waitpid: %s", strerror(errno));
	done = now_ns();
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		CHECK(0, "%s child failed (status %#x)",
		      offload ? "offloaded" : "direct", st);
		return -1;
	}
	return done - r->stamp_ns;
}

/* Every deferred write in place (the queued ones ran at exit). */
static void check_file(int round)
{
	char buf[WSZ * (NDEFER + 1)];
	int fd = open(PATH, O_RDONLY), i, bad = 0;
	ssize_t n;

	if (fd < 0)
		DIE("open %s: %s", PATH, strerror(errno));
	n = read(fd, buf, sizeof(buf));
	close(fd);
	CHECK(n == (ssize_t)sizeof(buf),
	      "round %d: file has %zd bytes, want %zu", round, n, sizeof(buf));
	for (i = 0; n == (ssize_t)sizeof(buf) && i < NDEFER; i++)
		bad += buf[(i + 1) * WSZ] != (char)('A' + i % 26);
	CHECK(!bad, "round %d: %d deferred writes missing", round, bad);
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 30, i, ccpu, cpu;
	long long *dd, *od, dmax = 0, omax = 0;
	long idle_old, sw0, sw1, b0, b1;
	int queued_min = NDEFER;
	struct report *r;

	if (rounds < 1)
		DIE("usage: t-exitdelay [ROUNDS >= 1]");
	t_need_offload();
	ccpu = esca_thread_cpu();
	cpu = ccpu == 0 ? 1 : 0;
	esca_thread_exit();
	r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	dd = calloc(rounds, sizeof(*dd));
	od = calloc(rounds, sizeof(*od));
	if (r == MAP_FAILED || !dd || !od)
		DIE("out of memory");
	idle_old = read_idle();
	if (idle_old < 0)
		DIE("cannot read %s", IDLE_PATH);
	write_idle(IDLE_US);

	sw0 = t_stat("consumer ", "mm_switches");
	b0 = t_stat("consumer ", "batches");
	for (i = 0; i < rounds; i++) {
		dd[i] = one(r, 0, cpu);
		od[i] = one(r, 1, cpu);
		CHECK(r->offloaded, "round %d: offloaded child did not run", i);
		if (r->queued < queued_min)
			queued_min = r->queued;
		check_file(i);
		if (dd[i] > dmax)
			dmax = dd[i];
		if (od[i] > omax)
			omax = od[i];
	}
	sw1 = t_stat("consumer ", "mm_switches");
	b1 = t_stat("consumer ", "batches");
	write_idle(idle_old);

	qsort(dd, rounds, sizeof(*dd), cmp_ll);
	qsort(od, rounds, sizeof(*od), cmp_ll);
	printf("exit delay over %d rounds, ms: direct median %.2f max %.2f; offloaded median %.2f max %.2f (idle_us=%ld)\n",
	       rounds, dd[rounds / 2] / 1e6, dmax / 1e6, od[rounds / 2] / 1e6,
	       omax / 1e6, IDLE_US);
	printf("consumer: %ld batches, %ld mm switches for %d offloaded children; fewest deferred entries queued at exit %d of %d\n",
	       b1 - b0, sw1 - sw0, rounds, queued_min, NDEFER);
	CHECK(omax <= dmax + IDLE_US * 1000 / 4,
	      "an offloaded exit took %.2f ms, direct at most %.2f ms",
	      omax / 1e6, dmax / 1e6);
	CHECK(sw0 >= 0 && sw1 - sw0 <= 4L * rounds,
	      "mm_switches grew by %ld for %d children: not kept between batches",
	      sw1 - sw0, rounds);
	CHECK(b1 - b0 >= (long)NSYNC * rounds,
	      "batches grew by %ld, want >= %ld", b1 - b0,
	      (long)NSYNC * rounds);
	CHECK(queued_min > 0, "no child had a deferred entry queued");
	unlink(PATH);
	return t_done("exitdelay");
}
