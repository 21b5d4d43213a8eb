// SPDX-License-Identifier: MIT
/*
 * t-epoll-ctl: DESIGN §4 rule 4 (epoll_wait waits for the thread's
 * deferred calls, so readiness reflects them). epoll_ctl is a call the
 * shim may defer; the epoll_wait right after it (timeout 0) must see the
 * change, every time:
 *  - ADD of a ready descriptor: reported, with its events and data;
 *  - MOD to other events: reported with the new ones (or not at all);
 *  - DEL: no longer reported;
 *  - ADD with EPOLLET: reported once, then not until new data comes;
 *  - the errors are exact: ADD twice EEXIST, MOD or DEL of an absent
 *    descriptor ENOENT.
 * Over a socketpair end, a pipe's read end and a TCP socket, in one or
 * several epoll sets at once.
 *
 * Break mode: each epoll_wait is made before the epoll_ctl it checks, as
 * if the change were still queued: the test must fail.
 */
#include "shimtest.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>

enum { K_UNIX, K_PIPE, K_TCP, K_COUNT };
static const char *const kname[K_COUNT] = { "socketpair", "pipe", "tcp" };

static char why[400];

/* epoll_ctl, then epoll_wait(timeout 0): the one event (or none) seen
 * must be @want_events for data @tag. */
static bool ctl_then_wait(int ep, int op, int fd, uint32_t events, uint64_t tag,
			  int want_ret, int want_errno, uint32_t want_events)
{
	struct epoll_event ev = { .events = events, .data.u64 = tag };
	struct epoll_event out[8];
	int r, n = -1;

	if (st_break()) /* the wait overtakes the change */
		n = epoll_wait(ep, out, 8, 0);
	r = epoll_ctl(ep, op, fd, &ev);
	if (r != want_ret || (r < 0 && errno != want_errno)) {
		snprintf(why, sizeof(why),
			 "epoll_ctl(op %d, events %#x) = %d (%s), want %d (%s)",
			 op, events, r, r < 0 ? strerror(errno) : "ok",
			 want_ret, want_ret < 0 ? strerror(want_errno) : "ok");
		return false;
	}
	if (!st_break())
		n = epoll_wait(ep, out, 8, 0);
	if (n != (want_events ? 1 : 0) ||
	    (n == 1 &&
	     (out[0].data.u64 != tag || out[0].events != want_events))) {
		snprintf(
			why, sizeof(why),
			"after epoll_ctl(op %d, events %#x): epoll_wait = %d, first %#x/%llu; want %s %#x/%llu",
			op, events, n, n > 0 ? out[0].events : 0,
			n > 0 ? (unsigned long long)out[0].data.u64 : 0ull,
			want_events ? "1 event" : "none", want_events,
			(unsigned long long)tag);
		return false;
	}
	return true;
}

/* Put @n bytes in @w and wait (poll, up to 5 s) until @r can read them:
 * on TCP they arrive a little later. */
static void feed(int w, int r, size_t n)
{
	static char buf[4096];
	struct pollfd p = { .fd = r, .events = POLLIN };

	if (write(w, buf, n) != (ssize_t)n)
		ST_DIE("write");
	if (poll(&p, 1, 5000) != 1)
		ST_DIE("poll: the data never came");
}

static bool round_ok(int kind, int round)
{
	int fds[2], ep[3], r, w, sets = 1 + round % 3;
	bool ok = true;
	uint64_t tag = (uint64_t)round << 8;
	uint32_t out_ev;

	switch (kind) {
	case K_UNIX:
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
			ST_DIE("socketpair");
		break;
	case K_PIPE:
		if (pipe2(fds, O_CLOEXEC) < 0)
			ST_DIE("pipe2");
		break;
	default:
		if (st_tcp_pair(fds) < 0)
			ST_DIE("tcp pair");
	}
	r = fds[0];
	w = fds[1];
	/* the pipe's read end is never writable: MOD to OUT reports nothing */
	out_ev = kind == K_PIPE ? 0 : EPOLLOUT;
	if (fcntl(r, F_SETFL, O_NONBLOCK) < 0)
		ST_DIE("fcntl");
	for (int i = 0; i < sets; i++)
		if ((ep[i] = epoll_create1(EPOLL_CLOEXEC)) < 0)
			ST_DIE("epoll_create1");
	feed(w, r, 100);
	for (int i = 0; ok && i < sets; i++) {
		uint64_t t = tag + (uint64_t)i;

		ok = ctl_then_wait(ep[i], EPOLL_CTL_ADD, r, EPOLLIN, t, 0, 0,
				   EPOLLIN) &&
		     ctl_then_wait(ep[i], EPOLL_CTL_ADD, r, EPOLLIN, t, -1,
				   EEXIST, EPOLLIN) &&
		     ctl_then_wait(ep[i], EPOLL_CTL_MOD, r, EPOLLOUT, t + 16, 0,
				   0, out_ev) &&
		     ctl_then_wait(ep[i], EPOLL_CTL_MOD, r, EPOLLIN | EPOLLOUT,
				   t + 32, 0, 0, EPOLLIN | out_ev);
	}
	for (int i = 0; ok && i < sets; i++)
		ok = ctl_then_wait(ep[i], EPOLL_CTL_DEL, r, 0, 0, 0, 0, 0) &&
		     ctl_then_wait(ep[i], EPOLL_CTL_DEL, r, 0, 0, -1, ENOENT,
				   0) &&
		     ctl_then_wait(ep[i], EPOLL_CTL_MOD, r, EPOLLIN, tag, -1,
				   ENOENT, 0);
	/* edge-triggered: once, then again only for new data */
	if (ok)
		ok = ctl_then_wait(ep[0], EPOLL_CTL_ADD, r, EPOLLIN | EPOLLET,
				   tag + 48, 0, 0, EPOLLIN);
	if (ok) {
		struct epoll_event out[8];
		int n = epoll_wait(ep[0], out, 8, 0);

		if (n != 0) {
			snprintf(why, sizeof(why),
				 "EPOLLET reported twice without new data (%d)",
				 n);
			ok = false;
		}
	}
	if (ok) {
		feed(w, r, 10);
		ok = ctl_then_wait(ep[0], EPOLL_CTL_MOD, r, EPOLLIN | EPOLLET,
				   tag + 64, 0, 0, EPOLLIN);
	}
	for (int i = 0; i < sets; i++)
		close(ep[i]);
	close(r);
	close(w);
	return ok;
}

int main(void)
{
	st_start("t-epoll-ctl");
	signal(SIGPIPE, SIG_IGN);
	for (int k = 0; k < K_COUNT; k++) {
		int rounds = k == K_TCP ? 60 : 200, bad = 0;
		char first[500] = "";

		for (int i = 0; i < rounds; i++)
			if (!round_ok(k, i) && !bad++)
				snprintf(first, sizeof(first), "round %d: %s",
					 i, why);
		st_result(
			!bad,
			"%s: %d of %d rounds of ADD/MOD/DEL/ET then epoll_wait wrong%s%s",
			kname[k], bad, rounds, bad ? "; first: " : "", first);
	}
	return st_end();
}
