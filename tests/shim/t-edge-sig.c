// SPDX-License-Identifier: MIT
/*
 * Signal handlers that make calls while the code they interrupted is in
 * the middle of its own (inside the shim, or in a thread's exit), and
 * handlers that change the descriptors the interrupted code is using.
 * Every result is checked against what Linux gives.
 *
 *   t-edge-sig [CASE...]       (see edge.h)
 *   t-edge-sig --vfork-depth   used by the vfork_depth case
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>

#include "edge.h"

static void itimer(long us)
{
	struct itimerval it = { { 0, us }, { 0, us } };

	setitimer(ITIMER_REAL, &it, NULL);
}

/* Read what was sent until @want bytes came (or a second passed). */
static long drain_bytes(int fd, long want)
{
	long got = 0;
	char buf[4096];

	for (int i = 0; i < 1000 && got < want; i++) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n > 0)
			got += n;
		else
			usleep(1000);
	}
	return got;
}

/* ------------------------------------------------------------ hammer */

static int h_ep, h_out;
static volatile sig_atomic_t h_runs, h_bad, h_sent;

/* Every call here is async-signal-safe and checked exactly. */
static void hammer_handler(int sig)
{
	int saved = errno, s;

	(void)sig;
	h_runs++;
	s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (s < 0) {
		h_bad++;
		goto out;
	}
	if (epoll_ctl(h_ep, EPOLL_CTL_ADD, s,
		      &(struct epoll_event){ .events = EPOLLIN }) ||
	    epoll_ctl(h_ep, EPOLL_CTL_DEL, s, NULL) ||
	    epoll_ctl(h_ep, EPOLL_CTL_DEL, s, NULL) != -1 || errno != ENOENT)
		h_bad++;
	if (close(s) || close(s) != -1 || errno != EBADF)
		h_bad++;
	if (write(h_out, "h", 1) == 1)
		h_sent++;
	else if (errno != EAGAIN)
		h_bad++;
out:
	errno = saved;
}

/*
 * SIGALRM every 100 us while the main loop makes, watches, writes to and
 * closes sockets: every result on both sides is Linux's.
 */
static void sig_hammer(void)
{
	int ma, mb, ha, hb, ep = epoll_create1(0), bad = 0;
	long sent = 0, i;
	struct timespec t0, t;

	tcp_pair(&ma, &mb);
	tcp_pair(&ha, &hb);
	h_ep = epoll_create1(0);
	h_out = ha;
	signal(SIGALRM, hammer_handler);
	itimer(100);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0;; i++) {
		int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

		if (s < 0 ||
		    epoll_ctl(ep, EPOLL_CTL_ADD, s,
			      &(struct epoll_event){ .events = EPOLLIN }))
			bad++;
		if (write(ma, "m", 1) == 1)
			sent++;
		else if (errno != EAGAIN)
			bad++;
		if (epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL) ||
		    epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL) != -1 ||
		    errno != ENOENT)
			bad++;
		if (close(s) || close(s) != -1 || errno != EBADF)
			bad++;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec >= 3)
			break;
	}
	itimer(0);
	signal(SIGALRM, SIG_IGN);
	CHECK("sig-hammer: main loop results", bad == 0,
	      "%d wrong results in %ld rounds", bad, i);
	CHECK("sig-hammer: handler results", h_bad == 0 && h_runs > 20,
	      "%d wrong results in %d handler runs", (int)h_bad, (int)h_runs);
	CHECK("sig-hammer: bytes written by main arrive",
	      drain_bytes(mb, sent) == sent, "sent %ld", sent);
	CHECK("sig-hammer: bytes written by the handler arrive",
	      drain_bytes(hb, h_sent) == h_sent, "sent %d", (int)h_sent);
}

/* ------------------------------------------------------------ reuse */

static atomic_int cur = -1;
static volatile sig_atomic_t hc_res, hc_err, hs_fd, h_did;

/* The handler closes the socket main is about to close, and makes one. */
static void reuse_handler(int sig)
{
	int saved = errno, c = atomic_load(&cur);

	(void)sig;
	if (c >= 0 && !h_did) {
		h_did = 1;
		errno = 0;
		hc_res = close(c);
		hc_err = errno;
		hs_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	}
	errno = saved;
}

/*
 * Main closes a socket twice; a handler may close it first and make a
 * new socket, which lands on the same number. Linux: if the handler's
 * close found the old socket, main's first close closed the handler's new
 * one and the second is EBADF; if the handler came after main's first
 * close, main's second closes the handler's socket (0). Either way the
 * number ends closed.
 */
static void handler_reuses_fd(void)
{
	long rounds = 0, hits = 0, bad = 0;
	struct timespec t0, t;
	char why[160] = "";

	signal(SIGALRM, reuse_handler);
	itimer(50);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;; rounds++) {
		int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		int r1, r2, e2;

		h_did = 0;
		hs_fd = -1;
		atomic_store(&cur, s);
		r1 = close(s);
		errno = 0;
		r2 = close(s);
		e2 = errno;
		atomic_store(&cur, -1);
		if (h_did) {
			bool open_now = fcntl(s, F_GETFD) != -1, ok;

			hits++;
			if (hc_res == 0) /* before main's first close */
				ok = r1 == 0 && r2 == -1 && e2 == EBADF &&
				     !open_now;
			else /* after it: main's second closes the handler's
			      * socket, or the handler came after that too */
				ok = r1 == 0 && hs_fd == s &&
				     (r2 == 0 ? !open_now :
						e2 == EBADF && open_now);
			if (!ok && !bad++)
				snprintf(why, sizeof(why),
					 "handler close %d (%s), socket %d; "
					 "main's closes of %d: %d, %d (%s); "
					 "open after: %d",
					 (int)hc_res, e_errname(hc_err),
					 (int)hs_fd, s, r1, r2, e_errname(e2),
					 open_now);
			if (open_now)
				close(s);
			if (hs_fd >= 0 && hs_fd != s)
				close(hs_fd);
		} else if (r1 != 0 || r2 != -1 || e2 != EBADF) {
			if (!bad++)
				snprintf(why, sizeof(why),
					 "no handler; closes %d, %d", r1, r2);
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec >= 3)
			break;
	}
	itimer(0);
	signal(SIGALRM, SIG_IGN);
	CHECK("handler-reuses-fd", bad == 0 && hits > 0,
	      "%ld wrong of %ld rounds (%ld with the handler): %s", bad, rounds,
	      hits, why);
}

/* ------------------------------------------------------------ exits */

static int x_out;
static atomic_long x_sent, x_bad;

static void exit_handler(int sig)
{
	int saved = errno;

	(void)sig;
	if (write(x_out, "s", 1) == 1)
		atomic_fetch_add(&x_sent, 1);
	else if (errno != EAGAIN)
		atomic_fetch_add(&x_bad, 1);
	errno = saved;
}

static void *exiting(void *arg)
{
	struct sigevent sev = { .sigev_notify = SIGEV_THREAD_ID,
				.sigev_signo = SIGUSR1 };
	struct itimerspec its = { { 0, 20000 }, { 0, 20000 } };
	timer_t *tm = arg;

	sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
	if (timer_create(CLOCK_MONOTONIC, &sev, tm) ||
	    timer_settime(*tm, 0, &its, NULL))
		return (void *)1;
	/* offloaded: the thread gets a ring, which its exit takes down
	 * while the timer keeps firing */
	for (int i = 0; i < 20; i++)
		if (write(x_out, "t", 1) == 1)
			atomic_fetch_add(&x_sent, 1);
	return NULL;
}

/* Threads leave while a timer of their own fires at them every 20 us. */
static void thread_exit_signals(void)
{
	int a, b, failed = 0;

	tcp_pair(&a, &b);
	x_out = a;
	signal(SIGUSR1, exit_handler);
	for (int i = 0; i < 300; i++) {
		pthread_t t;
		timer_t tm;
		void *res;

		if (pthread_create(&t, NULL, exiting, &tm))
			DIE("pthread_create");
		pthread_join(t, &res);
		failed += res != NULL;
		timer_delete(tm);
	}
	CHECK("thread-exit-signals: no wrong result",
	      failed == 0 && atomic_load(&x_bad) == 0,
	      "%d threads failed, %ld handler writes failed", failed,
	      atomic_load(&x_bad));
	CHECK("thread-exit-signals: every byte arrives",
	      drain_bytes(b, atomic_load(&x_sent)) == atomic_load(&x_sent),
	      "sent %ld", atomic_load(&x_sent));
}

/* ------------------------------------------------------------ vfork */

static atomic_int v_in_child, v_go;
static int v_pipe[2], v_pipe2[2];

static void v_handler(int sig)
{
	(void)sig;
	(void)write(v_pipe2[1], "", 0);
}

static void *v_thread(void *arg)
{
	struct pollfd p = { .fd = v_pipe[0], .events = POLLIN };

	(void)arg;
	while (!atomic_load(&v_in_child))
		;
	/* made while a vfork child runs: goes direct */
	poll(&p, 1, 5000);
	/* now a handler interrupts this thread inside the shim */
	atomic_store(&v_go, 1);
	p.fd = v_pipe2[0];
	poll(&p, 1, 500);
	return NULL;
}

/*
 * A thread's call that began while another thread's vfork child ran and
 * ended after it: the shim's count of "inside the shim" must come back to
 * where it was, or a handler interrupting a later call is not seen as
 * such (it would re-enter the thread's ring). The shim's ESCA_STATS line
 * shows it: the handler's call below must be counted as signal=1.
 */
static int vfork_depth_child(void)
{
	struct timespec nap = { 0, 200 * 1000 * 1000 };
	pthread_t t;
	pid_t pid;

	if (pipe2(v_pipe, O_NONBLOCK) || pipe2(v_pipe2, O_NONBLOCK))
		return 2;
	signal(SIGUSR1, v_handler);
	pthread_create(&t, NULL, v_thread, NULL);
	pid = vfork();
	if (pid == 0) {
		atomic_store(&v_in_child, 1);
		syscall(SYS_nanosleep, &nap, NULL);
		_exit(0);
	}
	waitpid(pid, NULL, 0);
	(void)write(v_pipe[1], "x", 1);
	while (!atomic_load(&v_go))
		;
	syscall(SYS_nanosleep, &(struct timespec){ 0, 100 * 1000 * 1000 },
		NULL);
	pthread_kill(t, SIGUSR1);
	pthread_join(t, NULL);
	return 0;
}

static void vfork_depth(void)
{
	const char *pre = getenv("LD_PRELOAD");
	char self[4096], line[512] = "", *p;
	ssize_t n;
	int err[2], st;
	FILE *f;
	pid_t pid;

	if (!pre || !strstr(pre, "esca")) {
		CHECK("vfork-depth: not under the shim, nothing to count", 1,
		      "-");
		return;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0 || pipe(err))
		DIE("readlink/pipe");
	self[n] = 0;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		dup2(err[1], 2);
		setenv("ESCA_STATS", "1", 1);
		execl(self, "t-edge-sig", "--vfork-depth", NULL);
		_exit(127);
	}
	close(err[1]);
	f = fdopen(err[0], "r");
	while (fgets(line, sizeof(line), f) && strncmp(line, "esca-stats", 10))
		;
	fclose(f);
	waitpid(pid, &st, 0);
	p = strstr(line, "signal=");
	CHECK("vfork-depth: the handler's call is seen as a handler's",
	      st == 0 && p && atoi(p + 7) == 1, "status %#x, stats: %s", st,
	      line);
}

static const struct e_case cases[] = {
	E_CASE(sig_hammer),
	E_CASE(handler_reuses_fd),
	E_CASE(thread_exit_signals),
	E_CASE(vfork_depth),
};

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "--vfork-depth"))
		return vfork_depth_child();
	return e_main(cases, E_NCASES(cases), argc, argv);
}
