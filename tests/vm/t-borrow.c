// SPDX-License-Identifier: MIT
/*
 * The file table a consumer keeps between batches (borrow once, serve
 * many). While a worker holds a process's identity its current->files is
 * that process's table, which root can see as /proc/<consumer pid>/fd: the
 * test watches that to see what is held, and when it is let go.
 *
 * With idle_us raised to 200 ms (so a worker that let go only at its idle
 * sleep would show), each in a child of its own:
 *  - one table per ring: a second thread unshares its file table
 *    (CLONE_FILES) and closes fd X there; alternating with the first
 *    thread, 100 rounds, its offloaded pwrite64 on X must fail EBADF while
 *    the first thread's succeeds: the worker never serves one ring with
 *    another ring's table, though both are the same process;
 *  - let go when the ring dies: after a burst of calls the consumer's fd
 *    table shows our marker file; once the thread unregisters (its only
 *    ring dies) the marker must be gone within idle_us / 4;
 *  - let go at exit: a child holding the write end of a pipe makes
 *    synchronous calls and _exits right after the last one; the parent,
 *    having closed its own write end, must see EOF as soon as waitpid
 *    returns, as without the module: the worker's and the rings'
 *    references on the table go in the exit's drain, not later.
 */
#include "t.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>

#define IDLE_US 200000L
#define IDLE_PATH "/sys/module/esca/parameters/idle_us"
#define MARKER "/tmp/t-borrow.marker"
#define ROUNDS 100

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Does the consumer's current file table name @path at @fd? */
static bool consumer_holds(pid_t cpid, int fd, const char *path)
{
	char link[64], got[256];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/%d/fd/%d", (int)cpid, fd);
	n = readlink(link, got, sizeof(got) - 1);
	if (n < 0)
		return false;
	got[n] = 0;
	return !strcmp(got, path);
}

static void in_child(const char *name, void (*fn)(void))
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		t_failed = 0;
		fn();
		exit(t_failed ? 1 : 0);
	}
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
		      WEXITSTATUS(status) == 0,
	      "%s child: status 0x%x", name, status);
}

/* ---- one table per ring ------------------------------------------------ */

static pthread_barrier_t g_bar;
static int g_fd;
static long g_second[ROUNDS];

static void *second_thread(void *arg)
{
	(void)arg;
	/* our own copy of the table, then X closed in it only */
	if (unshare(CLONE_FILES) || close(g_fd))
		DIE("unshare(CLONE_FILES)/close: %s", strerror(errno));
	for (int i = 0; i < ROUNDS; i++) {
		pthread_barrier_wait(&g_bar); /* the first thread's turn */
		pthread_barrier_wait(&g_bar);
		g_second[i] = O6(SYS_pwrite64, g_fd, "y", 1, 1, 0, 0);
	}
	esca_thread_exit();
	return NULL;
}

static void table_per_ring(void)
{
	pthread_t t;
	long first_bad = 0, second_bad = 0, c0;

	g_fd = open(MARKER, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (g_fd < 0)
		DIE("%s: %s", MARKER, strerror(errno));
	t_need_offload();
	c0 = t_ctx(getpid(), "calls");
	pthread_barrier_init(&g_bar, NULL, 2);
	if (pthread_create(&t, NULL, second_thread, NULL))
		DIE("pthread_create");
	for (int i = 0; i < ROUNDS; i++) {
		long r = O6(SYS_pwrite64, g_fd, "x", 1, 0, 0, 0);

		if (r != 1 && first_bad++ < 3)
			fprintf(stderr,
				"round %d: first thread's pwrite64: %ld\n", i,
				r);
		pthread_barrier_wait(&g_bar);
		pthread_barrier_wait(&g_bar); /* the second thread's turn */
	}
	pthread_join(t, NULL);
	for (int i = 0; i < ROUNDS; i++)
		if (g_second[i] != -EBADF && second_bad++ < 3)
			fprintf(stderr,
				"round %d: second thread's pwrite64 on an fd closed in its own table: %ld (want -EBADF)\n",
				i, g_second[i]);
	CHECK(!first_bad,
	      "%ld of %d pwrite64 on the first thread's table failed",
	      first_bad, ROUNDS);
	CHECK(!second_bad,
	      "%ld of %d pwrite64 ran with the other thread's table",
	      second_bad, ROUNDS);
	/* both threads' calls went through the rings */
	CHECK(t_ctx_wait(getpid(), "calls", c0 + 2 * ROUNDS) >= c0 + 2 * ROUNDS,
	      "calls offloaded: %ld, want >= %ld", t_ctx(getpid(), "calls"),
	      c0 + 2 * ROUNDS);
	close(g_fd);
}

/* ---- let go when the ring dies --------------------------------------- */

static void let_go_on_ring_death(void)
{
	pid_t cpid;
	bool seen = false;
	long long t0, waited;
	int fd = open(MARKER, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		DIE("%s: %s", MARKER, strerror(errno));
	t_need_offload();
	cpid = (pid_t)t_stat("consumer ", "pid");
	CHECK(cpid > 0, "no consumer pid in /proc/esca/stats");
	/* Calls, looking between them: the worker idles holding our table. */
	for (int i = 0; i < 2000 && !seen; i++) {
		CHECK(O6(SYS_pwrite64, fd, "z", 1, 0, 0, 0) == 1,
		      "pwrite64 %d failed", i);
		if (i % 10 == 9)
			seen = consumer_holds(cpid, fd, MARKER);
	}
	CHECK(seen, "the consumer's fd table never showed " MARKER
		    " between batches: the test cannot see what is held");
	esca_thread_exit(); /* our only ring dies */
	t0 = now_ns();
	while (consumer_holds(cpid, fd, MARKER) && now_ns() - t0 < 2000000000LL)
		usleep(1000);
	waited = (now_ns() - t0) / 1000;
	printf("  ring death: the consumer let go of the table after %lld us (idle_us=%ld)\n",
	       waited, IDLE_US);
	CHECK(waited <= IDLE_US / 4,
	      "the table was still held %lld us after its only ring died",
	      waited);
	close(fd);
}

/* ---- let go at exit -------------------------------------------------- */

static void let_go_at_exit(void)
{
	int p[2], status;
	char c;
	struct pollfd pfd;
	long long t_exit, waited;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC))
		DIE("pipe2: %s", strerror(errno));
	pid = fork();
	if (pid == 0) {
		int fd = open(MARKER, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

		close(p[0]);
		t_need_offload();
		for (int i = 0; i < 500; i++)
			if (O6(SYS_pwrite64, fd, "w", 1, 0, 0, 0) != 1)
				_exit(2);
		_exit(0); /* right after the last batch: the table is held */
	}
	close(p[1]);
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
		      WEXITSTATUS(status) == 0,
	      "exit child: status 0x%x", status);
	t_exit = now_ns();
	pfd.fd = p[0];
	pfd.events = POLLIN;
	/* as without the module: the exit closed its files before waitpid
	 * returned (the rings' references go in the exit's own drain) */
	CHECK(poll(&pfd, 1, 0) == 1,
	      "no EOF on the pipe when waitpid returned: the exited child's files were still open");
	CHECK(poll(&pfd, 1, 2000) == 1 && read(p[0], &c, 1) == 0,
	      "no EOF on the pipe 2 s after the child exited: its file table (which holds the write end) was not let go");
	waited = (now_ns() - t_exit) / 1000;
	printf("  exit: EOF %lld us after waitpid (idle_us=%ld)\n", waited,
	       IDLE_US);
	CHECK(waited <= IDLE_US / 4,
	      "EOF came %lld us after waitpid: the table was let go late",
	      waited);
	close(p[0]);
}

int main(void)
{
	long idle = t_read_long(IDLE_PATH);

	if (idle < 0)
		DIE("cannot read " IDLE_PATH " (is esca.ko loaded?)");
	if (t_write_long(IDLE_PATH, IDLE_US))
		DIE("cannot set " IDLE_PATH);
	in_child("table per ring", table_per_ring);
	in_child("ring death", let_go_on_ring_death);
	let_go_at_exit();
	t_write_long(IDLE_PATH, idle);
	unlink(MARKER);
	return t_done("borrow");
}
