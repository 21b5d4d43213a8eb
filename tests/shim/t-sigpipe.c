// SPDX-License-Identifier: MIT
/*
 * t-sigpipe: DESIGN §4 rule 5 (a call that raises SIGPIPE raises it for
 * the submitting thread). A write that fails with EPIPE (socketpair whose
 * peer closed, pipe whose reader closed, TCP socket after shutdown
 * SHUT_WR; blocking and non-blocking) must, like the direct call:
 *  - raise exactly one SIGPIPE, handled by the thread that wrote (the
 *    handler records gettid()), before the call returns;
 *  - raise none with MSG_NOSIGNAL (not even a little later).
 * From the main thread and from a second thread while the main thread
 * waits in pthread_join.
 *
 * Break mode: the calls that should raise SIGPIPE are made with
 * MSG_NOSIGNAL: the test must fail.
 */
#include "shimtest.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>

static volatile sig_atomic_t sig_count;
static volatile pid_t sig_tid; /* the thread the last SIGPIPE hit */

static void on_sigpipe(int sig)
{
	(void)sig;
	sig_tid = (pid_t)syscall(SYS_gettid);
	sig_count++;
}

enum { K_UNIX, K_PIPE, K_TCP, K_COUNT };
static const char *const kname[K_COUNT] = { "socketpair", "pipe", "tcp" };

struct tally {
	int calls, bad;
	char first[300];
};

static void fail(struct tally *t, const char *fmt, ...)
{
	va_list ap;

	if (t->bad++)
		return;
	va_start(ap, fmt);
	vsnprintf(t->first, sizeof(t->first), fmt, ap);
	va_end(ap);
}

/* A descriptor whose writes fail with EPIPE; *other is closed after. */
static int broken(int kind, bool nonblock, int *other)
{
	int fds[2];

	switch (kind) {
	case K_UNIX:
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
			ST_DIE("socketpair");
		close(fds[1]);
		*other = -1;
		break;
	case K_PIPE:
		if (pipe2(fds, O_CLOEXEC) < 0)
			ST_DIE("pipe2");
		close(fds[0]);
		fds[0] = fds[1];
		*other = -1;
		break;
	default:
		if (st_tcp_pair(fds) < 0 || shutdown(fds[0], SHUT_WR) < 0)
			ST_DIE("tcp");
		*other = fds[1];
	}
	if (nonblock && fcntl(fds[0], F_SETFL, O_NONBLOCK) < 0)
		ST_DIE("fcntl");
	return fds[0];
}

/* One EPIPE call, with or without MSG_NOSIGNAL, checked. */
static void one(struct tally *t, int kind, bool nonblock, bool nosignal)
{
	static const char data[64] = "x";
	pid_t me = (pid_t)syscall(SYS_gettid);
	int other, fd = broken(kind, nonblock, &other), c0 = sig_count, c1;
	ssize_t r;
	bool flagged = nosignal || st_break();

	sig_tid = 0;
	if (kind == K_PIPE)
		r = flagged ? -2 : write(fd, data, sizeof(data));
	else
		r = send(fd, data, sizeof(data), flagged ? MSG_NOSIGNAL : 0);
	c1 = sig_count; /* before anything else: direct, it has run by now */
	if (r == -2) { /* a pipe has no MSG_NOSIGNAL: block the signal */
		sigset_t s, old;
		struct timespec zero = { 0, 0 };

		sigemptyset(&s);
		sigaddset(&s, SIGPIPE);
		pthread_sigmask(SIG_BLOCK, &s, &old);
		r = write(fd, data, sizeof(data));
		c1 = sig_count;
		/* it is pending for this thread, not delivered */
		if (sigtimedwait(&s, NULL, &zero) != SIGPIPE)
			fail(t,
			     "%s: write with SIGPIPE blocked: no SIGPIPE pending for the writer",
			     kname[kind]);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	t->calls++;
	if (r != -1 || errno != EPIPE)
		fail(t, "%s%s: write returned %zd (%s), want -1 EPIPE",
		     kname[kind], nonblock ? " non-blocking" : "", r,
		     r < 0 ? strerror(errno) : "ok");
	else if (nosignal) {
		poll(NULL, 0, 5); /* a late signal would be wrong too */
		if (sig_count != c0)
			fail(t, "%s%s with MSG_NOSIGNAL: %d SIGPIPE",
			     kname[kind], nonblock ? " non-blocking" : "",
			     sig_count - c0);
	} else if (c1 - c0 != 1 || sig_tid != me) {
		int late;

		poll(NULL, 0, 5);
		late = sig_count - c1;
		fail(t,
		     "%s%s: %d SIGPIPE before the call returned (%d later), handled by thread %d, the caller is %d",
		     kname[kind], nonblock ? " non-blocking" : "", c1 - c0,
		     late, (int)sig_tid, (int)me);
	}
	close(fd);
	if (other >= 0)
		close(other);
}

static void rounds(struct tally *t)
{
	for (int i = 0; i < 60; i++)
		for (int k = 0; k < K_COUNT; k++) {
			if (k == K_TCP && i % 4)
				continue; /* a TCP pair costs more */
			one(t, k, i % 2, false);
			one(t, k, i % 2, true);
		}
}

static void *thread_main(void *arg)
{
	rounds(arg);
	return NULL;
}

int main(void)
{
	struct sigaction sa = { .sa_handler = on_sigpipe };
	struct tally main_t = { 0 }, thr_t = { 0 };
	pthread_t t;

	st_start("t-sigpipe");
	if (sigaction(SIGPIPE, &sa, NULL) < 0)
		ST_DIE("sigaction");
	rounds(&main_t);
	st_result(!main_t.bad, "main thread: %d EPIPE calls, %d wrong%s%s",
		  main_t.calls, main_t.bad, main_t.bad ? "; first: " : "",
		  main_t.first);
	if (pthread_create(&t, NULL, thread_main, &thr_t))
		ST_DIE("pthread_create");
	pthread_join(t, NULL);
	st_result(!thr_t.bad, "second thread: %d EPIPE calls, %d wrong%s%s",
		  thr_t.calls, thr_t.bad, thr_t.bad ? "; first: " : "",
		  thr_t.first);
	return st_end();
}
