// SPDX-License-Identifier: MIT
/*
 * Issue 7, item 2: no call may stall a consumer; the per-call time budget
 * (call_timeout_ms) is the safety net for what the checks cannot see. A
 * second process on the same consumer (the prober, raw.h) must be served
 * throughout, each call within 5 s.
 *
 * 1. The dup2 race with a blocking pipe whose buffer is full: a thread
 *    swaps it and a tmpfs file under one fd number while the ring writes
 *    to it. Every write went to tmpfs, was bounced (the module saw the
 *    blocking pipe), or was interrupted after the budget: -EINTR (or a
 *    short count). The ring stays alive; the consumer's stalls counter
 *    rises by at least the interrupted ones.
 * 2. The same with O_NONBLOCK toggled on the full pipe (fcntl race):
 *    -EAGAIN, bounced, or interrupted.
 * 3. A buffer the kernel cannot fault in without user space: write to
 *    tmpfs from a userfaultfd-registered region nobody serves. The call is
 *    interrupted after the budget (-EFAULT, or a short count), stalls
 *    rises, the file holds what the call reported, and the ring goes on.
 */
#include "raw.h"

#include <poll.h>
#include <pthread.h>
#include <linux/userfaultfd.h>
#include <sys/stat.h>

#define RACE_NS (8ull * 1000000000ull)
#define RACE_MAX 100000L
#define RACE_BATCH 8
#define X_FD 100

static volatile int race_stop;
static volatile long race_swaps;
static int race_mode; /* 0: dup2 pipe/tmpfs, 1: O_NONBLOCK toggle */
static int pipe_w, tmp_fd;

static void *racer(void *arg)
{
	(void)arg;
	while (!race_stop) {
		if (race_mode == 0) {
			dup2(pipe_w, X_FD);
			dup2(tmp_fd, X_FD);
		} else {
			fcntl(X_FD, F_SETFL, O_NONBLOCK);
			fcntl(X_FD, F_SETFL, 0);
		}
		race_swaps++;
	}
	return NULL;
}

/* Fill the pipe so that even a 1-byte write has to wait. */
static void fill_pipe(int w)
{
	static char big[65536];
	size_t sz = sizeof(big);

	fcntl(w, F_SETFL, O_NONBLOCK);
	while (sz) {
		if (write(w, big, sz) < 0)
			sz /= 2;
	}
	fcntl(w, F_SETFL, 0);
}

static void race(struct raw_ring *r, int mode)
{
	static char buf[8] = "0123456";
	const char *what = mode ? "O_NONBLOCK race" : "dup2 race";
	long n = 0, ok = 0, bounced = 0, eagain = 0, intr = 0, bad = 0;
	long stalls0, stalls1;
	long long bad_res = 0;
	uint32_t bad_flags = 0;
	uint64_t end, worst = 0;
	int p[2];
	pthread_t th;

	if (pipe2(p, O_CLOEXEC))
		DIE("pipe2: %s", strerror(errno));
	fill_pipe(p[1]);
	pipe_w = p[1];
	tmp_fd = open("/tmp/esca-stall.tmp",
		      O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NONBLOCK,
		      0600);
	unlink("/tmp/esca-stall.tmp");
	if (tmp_fd < 0 || dup2(mode ? p[1] : tmp_fd, X_FD) != X_FD)
		DIE("race setup: %s", strerror(errno));
	if (mode)
		fcntl(X_FD, F_SETFL, O_NONBLOCK);
	race_stop = 0;
	race_swaps = 0;
	race_mode = mode;
	stalls0 = t_stat("consumer ", "stalls");
	if (pthread_create(&th, NULL, racer, NULL))
		DIE("pthread_create");
	end = raw_now_ns() + RACE_NS;
	while (n < RACE_MAX && raw_now_ns() < end) {
		uint64_t t0 = raw_now_ns();
		uint32_t first, head;
		int w = raw_batch(r, RACE_BATCH, SYS_write, X_FD, (uint64_t)buf,
				  sizeof(buf), 5000, &first, &head);

		if (raw_now_ns() - t0 > worst)
			worst = raw_now_ns() - t0;
		if (w != 1) {
			CHECK(0,
			      "%s: a batch of %d writes not done after 5 s (%s, "
			      "reason %u): the budget did not end a stuck write",
			      what, RACE_BATCH, w ? "ring died" : "timeout",
			      r->cq->dead_reason);
			break;
		}
		for (uint32_t idx = first; idx != head; idx++) {
			const struct esca_cqe *c = raw_cqe(r, idx);

			n++;
			if (c->flags == ESCA_CQE_BOUNCED && c->res == 0)
				bounced++;
			else if (!mode && c->flags == 0 &&
				 c->res == sizeof(buf))
				ok++; /* tmpfs */
			else if (c->flags == 0 && c->res == -EAGAIN && mode)
				eagain++; /* the pipe, non-blocking */
			else if (c->flags == 0 &&
				 (c->res == -EINTR ||
				  (c->res >= 0 && c->res < (long)sizeof(buf))))
				intr++; /* landed on the full blocking pipe */
			else if (!bad++) {
				bad_res = (long long)c->res;
				bad_flags = c->flags;
			}
		}
	}
	race_stop = 1;
	pthread_join(th, NULL);
	stalls1 = t_stat("consumer ", "stalls");
	printf("# %s: %ld writes (%ld swaps): %ld done, %ld bounced, %ld "
	       "-EAGAIN, %ld interrupted, %ld other; worst batch %lu ms; "
	       "consumer stalls=%ld -> %ld\n",
	       what, n, (long)race_swaps, ok, bounced, eagain, intr, bad,
	       (unsigned long)(worst / 1000000), stalls0, stalls1);
	CHECK(bad == 0,
	      "%s: %ld writes ended otherwise (first res %lld flags "
	      "%#x)",
	      what, bad, bad_res, bad_flags);
	CHECK(n > 0, "%s: no write completed", what);
	CHECK(!raw_dead(r), "%s: the ring died (reason %u)", what,
	      r->cq->dead_reason);
	CHECK(stalls0 >= 0 && stalls1 - stalls0 >= intr,
	      "%s: consumer stalls %ld -> %ld, yet %ld writes were "
	      "interrupted",
	      what, stalls0, stalls1, intr);
	close(X_FD);
	close(p[0]);
	close(p[1]);
	close(tmp_fd);
}

/* 3: a write whose buffer faults into a userfaultfd nobody serves. */
static void uffd_write(struct raw_ring *r)
{
	const size_t len = 4 * 4096;
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
	struct esca_cqe c;
	struct stat st;
	long stalls0, stalls1;
	uint64_t t0, ms;
	char *buf;
	int uffd, fd, w;

	/* No UFFD_USER_MODE_ONLY: the kernel's own faults wait too. */
	uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api)) {
		CHECK(0, "userfaultfd: %s", strerror(errno));
		return;
	}
	buf = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	reg.range.start = (uint64_t)buf;
	reg.range.len = len;
	if (buf == MAP_FAILED || ioctl(uffd, UFFDIO_REGISTER, &reg))
		DIE("uffd register: %s", strerror(errno));
	fd = open("/tmp/esca-stall.uffd",
		  O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	unlink("/tmp/esca-stall.uffd");
	stalls0 = t_stat("consumer ", "stalls");
	t0 = raw_now_ns();
	w = raw_call_ms(r, SYS_write, (uint64_t)fd, (uint64_t)buf, len, 0,
			20000, &c);
	ms = (raw_now_ns() - t0) / 1000000;
	stalls1 = t_stat("consumer ", "stalls");
	printf("# uffd write: %s after %lu ms, res %lld flags %#x; consumer "
	       "stalls=%ld -> %ld\n",
	       w == 1 ? "completed" : "not completed", (unsigned long)ms,
	       w == 1 ? (long long)c.res : 0LL, w == 1 ? c.flags : 0, stalls0,
	       stalls1);
	if (w != 1) {
		CHECK(0,
		      "write from an unserved userfaultfd buffer: %s after 20 "
		      "s: the budget did not interrupt it",
		      w ? "ring died" : "no completion");
		/* let it end: wake the fault by unregistering the range */
		ioctl(uffd, UFFDIO_UNREGISTER, &reg.range);
		close(uffd);
		raw_wait_ms(r, r->tail - 1, 20000);
		return;
	}
	CHECK(c.flags == 0 && (c.res == -EFAULT ||
			       (c.res >= 0 && c.res < (long long)len)),
	      "write from an unserved userfaultfd buffer: res %lld flags %#x, "
	      "want -EFAULT or a short count",
	      (long long)c.res, c.flags);
	CHECK(stalls0 >= 0 && stalls1 > stalls0,
	      "consumer stalls %ld -> %ld: the call was not interrupted by the "
	      "budget",
	      stalls0, stalls1);
	CHECK(fstat(fd, &st) == 0 && st.st_size == (c.res > 0 ? c.res : 0),
	      "file holds %lld bytes, the call said %lld",
	      (long long)st.st_size, (long long)c.res);
	/* The ring lives on: the interrupted call returned. */
	w = raw_call_ms(r, SYS_write, (uint64_t)fd, (uint64_t) "ok", 2, 0, 5000,
			&c);
	CHECK(w == 1 && c.flags == 0 && c.res == 2,
	      "ring after the interrupted call: wait %d res %lld flags %#x "
	      "dead %d reason %u",
	      w, (long long)c.res, c.flags, raw_dead(r), r->cq->dead_reason);
	close(uffd);
	close(fd);
	munmap(buf, len);
}

static pid_t g_prober;

static void on_alarm(int sig)
{
	static const char m[] = "FATAL: t-stall hang guard fired\n";

	(void)sig;
	if (write(2, m, sizeof(m) - 1) < 0) {
	}
	if (g_prober)
		kill(g_prober, SIGKILL);
	_exit(1);
}

int main(void)
{
	struct raw_prober *probe;
	struct raw_ring r;
	char tmo[32] = "";
	pid_t ppid;
	FILE *f;

	setvbuf(stdout, NULL, _IONBF, 0);
	signal(SIGALRM, on_alarm);
	/* a write left stuck on the pipe ends with EPIPE when it is closed */
	signal(SIGPIPE, SIG_IGN);
	alarm(150);
	f = fopen("/sys/module/esca/parameters/call_timeout_ms", "r");
	CHECK(f && fgets(tmo, sizeof(tmo), f) && atoi(tmo) > 0,
	      "module parameter call_timeout_ms: %s",
	      f ? tmo : strerror(errno));
	if (f)
		fclose(f);
	printf("# call_timeout_ms=%d\n", atoi(tmo));
	ppid = raw_prober_start(&probe);
	g_prober = ppid;
	raw_open_ring_near(&r, 64, probe);
	race(&r, 0);
	race(&r, 1);
	uffd_write(&r);
	raw_prober_check(ppid, probe, "pipe races and userfaultfd");
	alarm(0);
	return t_done("t-stall");
}
