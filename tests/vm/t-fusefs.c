// SPDX-License-Identifier: MIT
/*
 * Issue 7, item 2 on FUSE: no call may stall a consumer. A FUSE server that
 * never answers I/O (tfuse.h) and a second process on the same consumer
 * (the prober, raw.h) that must keep being served throughout.
 *
 * 1. read, write, pread64, pwrite64, fsync, fdatasync, ftruncate, fchmod,
 *    fchown, epoll_ctl(ADD) and close of a FUSE file fd, through the raw
 *    ring: each comes back BOUNCED (res 0), the server never sees the
 *    request, and the context's bounced counter rises by as many.
 * 2. The dup2 race: a thread swaps a FUSE file and a tmpfs file under one
 *    fd number while the ring writes to that number. Whatever lands where,
 *    the prober's calls complete (each within 5 s); every write either
 *    went to tmpfs, was bounced, or was interrupted (-EINTR); a write the
 *    server read (uninterruptible from then on) leaves its ring stuck and
 *    the ring dies ESCA_DEAD_STALLED once the connection is aborted.
 * 3. Exit with a FUSE file open (between 1 and 2): whoever puts the
 *    exiting child's file table last closes the FUSE file with a FLUSH the
 *    server never answers: the child itself (exit_files, as without the
 *    module) or, when its ring's reference outlives that, the module. The
 *    FLUSH must reach the server and the prober must keep being served
 *    while it waits: the close runs on no consumer. The child is reaped
 *    once the connection is aborted.
 */
#include "raw.h"
#include "tfuse.h"

#include <pthread.h>
#include <sys/epoll.h>

#define RACE_NS (10ull * 1000000000ull)
#define RACE_MAX 100000L
#define RACE_BATCH 8
#define X_FD 100

static struct tfuse g_fuse;
static pid_t g_prober;
static volatile int race_stop;
static int race_fuse_fd, race_tmp_fd;
static volatile long race_swaps;

/* Hang guard: end the stuck requests so the guest is left clean. */
static void on_alarm(int sig)
{
	static const char m[] = "FATAL: t-fusefs hang guard fired\n";

	(void)sig;
	if (write(2, m, sizeof(m) - 1) < 0) {
	}
	tfuse_abort(&g_fuse);
	if (g_prober)
		kill(g_prober, SIGKILL);
	_exit(1);
}

static void *swapper(void *arg)
{
	(void)arg;
	while (!race_stop) {
		dup2(race_fuse_fd, X_FD);
		dup2(race_tmp_fd, X_FD);
		race_swaps++;
	}
	return NULL;
}

static long server_ops(int op)
{
	return g_fuse.sh->ops[op];
}

/* Requests the server must never see from bounced calls. */
static long server_io(void)
{
	static const int io[] = { FUSE_READ,	FUSE_WRITE, FUSE_FSYNC,
				  FUSE_SETATTR, FUSE_FLUSH, FUSE_POLL,
				  FUSE_RELEASE };
	long n = 0;

	for (unsigned i = 0; i < sizeof(io) / sizeof(io[0]); i++)
		n += server_ops(io[i]);
	return n;
}

/* 1: returns false if the consumer got stuck (the rest cannot run). */
static bool fuse_calls_bounced(struct raw_ring *r)
{
	static char buf[64];
	struct epoll_event ev = { .events = EPOLLIN };
	int ffd = open(g_fuse.file, O_RDWR | O_CLOEXEC);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	const struct {
		const char *name;
		uint32_t nr;
		uint64_t a[4];
	} calls[] = {
		{ "read", SYS_read, { ffd, (uint64_t)buf, 8 } },
		{ "write", SYS_write, { ffd, (uint64_t)buf, 8 } },
		{ "pread64", SYS_pread64, { ffd, (uint64_t)buf, 8, 0 } },
		{ "pwrite64", SYS_pwrite64, { ffd, (uint64_t)buf, 8, 0 } },
		{ "fsync", SYS_fsync, { ffd } },
		{ "fdatasync", SYS_fdatasync, { ffd } },
		{ "ftruncate", SYS_ftruncate, { ffd, 100 } },
		{ "fchmod", SYS_fchmod, { ffd, 0600 } },
		{ "fchown", SYS_fchown, { ffd, 0, 0 } },
		{ "epoll_ctl(ADD)",
		  SYS_epoll_ctl,
		  { ep, EPOLL_CTL_ADD, ffd, (uint64_t)&ev } },
		{ "close", SYS_close, { ffd } },
	};
	const long n = sizeof(calls) / sizeof(calls[0]);
	long b0 = raw_ctx_stat(getpid(), "bounced"), io0 = server_io(), b1;
	struct esca_cqe c;

	if (ffd < 0 || ep < 0)
		DIE("open %s / epoll_create1: %s", g_fuse.file,
		    strerror(errno));
	for (long i = 0; i < n; i++) {
		int w = raw_call_ms(r, calls[i].nr, calls[i].a[0],
				    calls[i].a[1], calls[i].a[2], calls[i].a[3],
				    5000, &c);

		if (w != 1) {
			CHECK(0,
			      "%s of a FUSE file: %s after 5 s: the consumer "
			      "ran it and is stuck (server read %ld I/O "
			      "requests)",
			      calls[i].name, w ? "ring died" : "no completion",
			      server_io() - io0);
			return false;
		}
		CHECK(c.flags == ESCA_CQE_BOUNCED && c.res == 0,
		      "%s of a FUSE file: res %lld flags %#x, want BOUNCED",
		      calls[i].name, (long long)c.res, c.flags);
	}
	b1 = raw_ctx_stat(getpid(), "bounced");
	CHECK(b0 >= 0 && b1 - b0 == n,
	      "context bounced counter %ld -> %ld, want +%ld", b0, b1, n);
	CHECK(server_io() == io0,
	      "the server read %ld READ/WRITE/FSYNC/SETATTR/FLUSH/POLL/"
	      "RELEASE requests from bounced calls",
	      server_io() - io0);
	printf("# FUSE fd: %ld calls bounced, none reached the server\n", n);
	return true;
}

/* 3: exit with a FUSE file open; false if a consumer got stuck. */
static pid_t g_exit_child;

static bool fuse_exit_flush(const struct raw_prober *probe)
{
	long flush0 = server_ops(FUSE_FLUSH), calls;
	pid_t pid = fork();

	if (pid < 0)
		DIE("fork: %s", strerror(errno));
	g_exit_child = pid;
	if (pid == 0) {
		struct raw_ring r;
		int fd = open(g_fuse.file, O_RDWR | O_CLOEXEC);

		if (fd < 0 || raw_open_ring(&r, 8))
			_exit(2);
		_exit(0); /* the FUSE fd open: the table's last put closes it */
	}
	for (int i = 0; i < 100 && server_ops(FUSE_FLUSH) == flush0; i++)
		raw_sleep_us(50000);
	CHECK(server_ops(FUSE_FLUSH) > flush0,
	      "no FLUSH 5 s after the child exited: its FUSE file was never "
	      "closed");
	calls = probe->count;
	raw_sleep_us(2000000);
	calls = probe->count - calls;
	printf("# exit with a FUSE file open: its FLUSH waits; the prober "
	       "made %ld calls in the next 2 s\n",
	       calls);
	CHECK(calls >= 10,
	      "the prober made %ld calls in 2 s while an exited process's "
	      "FUSE file waited for FLUSH: a consumer is closing it",
	      calls);
	return calls >= 10;
}

/* 2: the dup2 race. */
static void fuse_dup2_race(struct raw_ring *r)
{
	static char buf[8] = "0123456";
	long n = 0, tmp = 0, bounced = 0, eintr = 0, bad = 0, stalls0, stalls1;
	long writes0 = server_ops(FUSE_WRITE), writes;
	long long bad_res = 0;
	uint32_t bad_flags = 0;
	uint64_t end;
	int stuck = 0, died = 0;
	pthread_t th;

	/* dup2 over X closes the FUSE fd there each time: no FLUSH for it */
	g_fuse.sh->noflush = 1;
	race_fuse_fd = open(g_fuse.file, O_RDWR | O_CLOEXEC);
	race_tmp_fd = open("/tmp/esca-fusefs.tmp",
			   O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	unlink("/tmp/esca-fusefs.tmp");
	if (race_fuse_fd < 0 || race_tmp_fd < 0 ||
	    dup2(race_tmp_fd, X_FD) != X_FD)
		DIE("race setup: %s", strerror(errno));
	stalls0 = t_stat("consumer ", "stalls");
	if (pthread_create(&th, NULL, swapper, NULL))
		DIE("pthread_create");
	end = raw_now_ns() + RACE_NS;
	while (n < RACE_MAX && raw_now_ns() < end) {
		uint32_t first, idx, head;
		int w = raw_batch(r, RACE_BATCH, SYS_write, X_FD, (uint64_t)buf,
				  sizeof(buf), 5000, &first, &head);

		for (idx = first; idx != head; idx++) {
			const struct esca_cqe *c = raw_cqe(r, idx);

			n++;
			if (c->flags == ESCA_CQE_BOUNCED && c->res == 0)
				bounced++;
			else if (c->flags == 0 && c->res == sizeof(buf))
				tmp++;
			else if (c->flags == 0 && c->res == -EINTR)
				eintr++;
			else if (!bad++) {
				bad_res = (long long)c->res;
				bad_flags = c->flags;
			}
		}
		if (w != 1) {
			stuck = w == 0;
			died = w < 0;
			break;
		}
	}
	race_stop = 1;
	pthread_join(th, NULL);
	writes = server_ops(FUSE_WRITE) - writes0;
	printf("# dup2 race: %ld writes (%ld swaps): %ld to tmpfs, %ld "
	       "bounced, %ld -EINTR, %ld other; the server read %ld WRITE "
	       "requests; %s\n",
	       n, (long)race_swaps, tmp, bounced, eintr, bad, writes,
	       stuck ? "one write stayed stuck" :
	       died  ? "the ring died" :
		       "no write stuck");
	CHECK(bad == 0,
	      "dup2 race: %ld writes ended otherwise (first: res %lld flags "
	      "%#x)",
	      bad, bad_res, bad_flags);
	/* The very first write may be the one that loses the race: then
	 * it is stuck and none completed, which is a valid outcome too. */
	CHECK(n > 0 || stuck, "dup2 race: no write completed, none stuck");
	/* A WRITE the server read can only end when the connection does. */
	CHECK(writes == 0 || stuck,
	      "the server read %ld WRITE requests, yet no ring entry waited "
	      "for them",
	      writes);
	if (stuck) {
		/* The old consumer is stuck: the prober must be served by
		 * its replacement for a while longer. */
		raw_sleep_us(3000000);
	}
	stalls1 = t_stat("consumer ", "stalls");
	printf("# consumer stalls=%ld -> %ld\n", stalls0, stalls1);
	CHECK(stalls0 >= 0 && stalls1 - stalls0 >= eintr,
	      "consumer stalls %ld -> %ld, but %ld calls were interrupted",
	      stalls0, stalls1, eintr);
	if (died)
		CHECK(0,
		      "dup2 race: the ring died (reason %u) with no call "
		      "stuck",
		      r->cq->dead_reason);
	if (!stuck)
		CHECK(!raw_dead(r), "ring died (reason %u) with no call stuck",
		      r->cq->dead_reason);
	close(race_fuse_fd);
}

int main(void)
{
	struct raw_prober *probe;
	struct raw_ring r;
	pid_t ppid;
	bool ok;

	setvbuf(stdout, NULL, _IONBF, 0);
	tfuse_need();
	/* before the mount: no fuse fd in it */
	ppid = raw_prober_start(&probe);
	g_prober = ppid;
	tfuse_mount(&g_fuse);
	signal(SIGALRM, on_alarm);
	alarm(120);
	raw_open_ring_near(&r, 64, probe);

	ok = fuse_calls_bounced(&r) && fuse_exit_flush(probe);
	if (ok)
		fuse_dup2_race(&r);
	raw_prober_check(ppid, probe,
			 ok ? "FUSE calls and dup2 race" : "FUSE calls");

	/* End the stuck requests; a stuck ring then dies STALLED. */
	tfuse_abort(&g_fuse);
	if (g_exit_child > 0) {
		int st = 0;

		CHECK(waitpid(g_exit_child, &st, 0) == g_exit_child &&
			      WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "the child that exited with a FUSE file open: status %#x",
		      st);
	}
	if (!ok || raw_dead(&r) || !raw_done(&r, r.tail - 1)) {
		for (int i = 0; i < 200 && !raw_dead(&r); i++)
			raw_sleep_us(100000);
		CHECK(raw_dead(&r) && r.cq->dead_reason == ESCA_DEAD_STALLED,
		      "stuck ring after the abort: flags %#x reason %u, want "
		      "DEAD with ESCA_DEAD_STALLED",
		      r.cq->flags, r.cq->dead_reason);
	}
	alarm(0);
	return t_done("t-fusefs");
}
