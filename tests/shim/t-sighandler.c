// SPDX-License-Identifier: MIT
/*
 * t-sighandler: calls made from a signal handler give direct results (the
 * shim's rule: a call from a handler that interrupted the shim goes
 * direct; nothing may deadlock or mix up the two). A SIGALRM interval
 * timer fires every 200 us; its handler makes a socketpair, writes to it,
 * closes one end, reads the bytes and the end of file back, closes the
 * other end, closes a descriptor that is not open (EBADF), and writes to a
 * long-lived socket, checking every result. Meanwhile the main thread
 * loops over the same kind of calls (socketpair, writes, closes, reads)
 * and checks its own. At the end, the bytes the handler reported written
 * to the long-lived socket must all be there, in order.
 *
 * Break mode: every 50th run the handler counts a write it did not make:
 * the test must fail.
 */
#include "shimtest.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>

static int hw, hr; /* the handler's long-lived socket, and its peer */
static volatile sig_atomic_t runs, h_bad, h_first_step, h_first_err;
static volatile long h_bytes; /* reported written to hw */
static long main_rounds, main_bad;
static char main_first[200];

static void h_fail(int step, int err)
{
	if (!h_bad++) {
		h_first_step = step;
		h_first_err = err;
	}
}

static void on_alarm(int sig)
{
	int saved = errno, s[2];
	char buf[32], in[64];
	ssize_t r;

	(void)sig;
	runs++;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) < 0) {
		h_fail(1, errno);
		goto out;
	}
	memset(buf, 'h', sizeof(buf));
	if ((r = write(s[0], buf, sizeof(buf))) != (ssize_t)sizeof(buf))
		h_fail(2, r < 0 ? errno : 0);
	if (close(s[0]) != 0)
		h_fail(3, errno);
	if ((r = read(s[1], in, sizeof(in))) != (ssize_t)sizeof(buf))
		h_fail(4, r < 0 ? errno : 0);
	if ((r = read(s[1], in, sizeof(in))) != 0)
		h_fail(5, r < 0 ? errno : 0);
	if (close(s[1]) != 0)
		h_fail(6, errno);
	if (close(s[1]) != -1 || errno != EBADF)
		h_fail(7, errno);
	/* the long-lived socket: the bytes reported must all arrive */
	{
		uint8_t d[16];

		st_fill(d, sizeof(d), 7, (uint64_t)h_bytes);
		if (st_break() && runs % 50 == 0) {
			h_bytes += (long)sizeof(d); /* counted, never sent */
		} else {
			r = write(hw, d, sizeof(d));
			if (r > 0)
				h_bytes += r;
			else if (r < 0 && errno != EAGAIN)
				h_fail(8, errno);
		}
	}
out:
	errno = saved;
}

static void main_fail(const char *what, long r)
{
	if (!main_bad++)
		snprintf(main_first, sizeof(main_first), "%s returned %ld (%s)",
			 what, r, r < 0 ? strerror(errno) : "ok");
}

static uint8_t got[4 << 20];
static long got_n;

/* Take what the handler wrote so far (main thread, non-blocking). */
static void drain_handler(void)
{
	ssize_t r;

	while ((r = read(hr, got + got_n, sizeof(got) - (size_t)got_n)) > 0)
		got_n += r;
}

int main(void)
{
	struct sigaction sa = { .sa_handler = on_alarm,
				.sa_flags = SA_RESTART };
	struct itimerval it = { { 0, 200 }, { 0, 200 } }, off = { 0 };
	int s[2];
	double t0;
	sigset_t block;

	st_start("t-sighandler");
	signal(SIGPIPE, SIG_IGN);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) < 0 ||
	    fcntl(s[0], F_SETFL, O_NONBLOCK) < 0 ||
	    fcntl(s[1], F_SETFL, O_NONBLOCK) < 0)
		ST_DIE("socketpair");
	hw = s[0];
	hr = s[1];
	if (sigaction(SIGALRM, &sa, NULL) < 0 ||
	    setitimer(ITIMER_REAL, &it, NULL) < 0)
		ST_DIE("timer");
	t0 = st_now();
	while ((runs < 3000 || main_rounds < 3000) && st_now() - t0 < 20) {
		int p[2];
		char buf[100], in[200];
		long r;
		size_t n = 1 + (size_t)(main_rounds % 100);

		main_rounds++;
		if ((r = socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				    p)) != 0) {
			main_fail("socketpair", r);
			continue;
		}
		fcntl(p[0], F_SETFL, O_NONBLOCK);
		memset(buf, 'm', n);
		if ((r = write(p[0], buf, n)) != (long)n)
			main_fail("write", r);
		if ((r = close(p[0])) != 0)
			main_fail("close", r);
		if ((r = read(p[1], in, sizeof(in))) != (long)n)
			main_fail("read", r);
		if ((r = read(p[1], in, sizeof(in))) != 0)
			main_fail("read at end of file", r);
		if ((r = close(p[1])) != 0)
			main_fail("close", r);
		if ((r = close(p[1])) != -1 || errno != EBADF)
			main_fail("second close", r);
		if (main_rounds % 64 == 0) {
			/* the handler must not run while we look at its
			 * counters and socket together */
			sigemptyset(&block);
			sigaddset(&block, SIGALRM);
			sigprocmask(SIG_BLOCK, &block, NULL);
			drain_handler();
			sigprocmask(SIG_UNBLOCK, &block, NULL);
		}
	}
	setitimer(ITIMER_REAL, &off, NULL);
	drain_handler();
	st_result(
		!h_bad,
		"handler: %d runs of socketpair/write/close/read/close/close(EBADF)/write, %d wrong",
		(int)runs, (int)h_bad);
	if (h_bad)
		printf("# first wrong handler step %d, errno %d (%s)\n",
		       (int)h_first_step, (int)h_first_err,
		       strerror((int)h_first_err));
	st_result(got_n == h_bytes && st_mismatch(got, (size_t)got_n, 7, 0) < 0,
		  "handler's writes: reported %ld bytes, the peer read %ld%s",
		  (long)h_bytes, got_n,
		  st_mismatch(got, (size_t)got_n, 7, 0) >= 0 ?
			  " (content differs)" :
			  " in order");
	st_result(
		!main_bad,
		"main thread: %ld rounds of the same calls while the handler ran, %ld wrong%s%s",
		main_rounds, main_bad, main_bad ? "; first: " : "", main_first);
	st_result(runs >= 100, "the handler ran %d times (at least 100 needed)",
		  (int)runs);
	return st_end();
}
