// SPDX-License-Identifier: MIT
/*
 * t-dup2-pending: DESIGN §4 rule 3 (dup2/dup3 onto a descriptor waits
 * until every thread's pending calls on it are done). A descriptor X gets
 * calls the shim may queue (writes on a non-blocking socket, shutdown,
 * close), from this thread or from another one that finished them before
 * the dup2 (ordered by a join), then dup2(Y, X) or dup3(Y, X, O_CLOEXEC).
 * The direct result, checked every round:
 *  - dup2 returns X; dup3 sets FD_CLOEXEC on X;
 *  - every byte written to X before the dup2 reaches the old socket's
 *    peer, followed by end of file (the dup2 closed the old socket);
 *  - a shutdown(SHUT_WR) before the dup2 hit the old socket only;
 *  - a close(X) before the dup2 never closes the new X;
 *  - writes to X after the dup2 reach Y's peer, in order.
 *
 * Break mode: the dup2 is made before the first writes, as if a shim had
 * let it overtake them: the test must fail.
 */
#include "shimtest.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

enum { V_WRITES, V_SHUTDOWN, V_CLOSE, V_COUNT };
static const char *const vname[V_COUNT] = { "writes", "writes+shutdown",
					    "writes+close" };

struct job {
	int fd, pieces;
	uint64_t stream;
	long written;
	int err;
};

static uint8_t buf[65536], got_a[1 << 20], got_b[1 << 20];

static void do_writes(struct job *j)
{
	for (int i = 0; i < j->pieces; i++) {
		size_t n = 1 + (size_t)((j->stream * 131 + (uint64_t)i * 7919) %
					2048);
		ssize_t r;

		st_fill(buf, n, j->stream, (uint64_t)j->written);
		r = write(j->fd, buf, n);
		if (r < 0) {
			j->err = errno;
			return;
		}
		j->written += r;
	}
}

static void *writes_thread(void *arg)
{
	do_writes(arg);
	return NULL;
}

static int pair(bool tcp, int fds[2])
{
	if (tcp)
		return st_tcp_pair(fds);
	return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds);
}

/* Read @fd to end of file: bytes read, or -1 on an error. */
static long drain(int fd, uint8_t *got, size_t size)
{
	long n = 0;
	ssize_t r;

	while ((r = read(fd, got + n, size - (size_t)n)) > 0)
		n += r;
	return r < 0 ? -1 : n;
}

/* One round; on failure, what went wrong in @why. */
static bool round_ok(bool tcp, int variant, bool threaded, bool use_dup3,
		     uint64_t seed, char *why, size_t whylen)
{
	int a[2], b[2], x, y, r, fdflags;
	struct job before = { 0 }, after = { 0 };
	long na, nb;
	pthread_t t;

	if (pair(tcp, a) < 0 || pair(tcp, b) < 0)
		ST_DIE("pair");
	x = a[0];
	y = b[0];
	if (fcntl(x, F_SETFL, O_NONBLOCK) < 0 ||
	    fcntl(y, F_SETFL, O_NONBLOCK) < 0)
		ST_DIE("fcntl");
	before = (struct job){ .fd = x,
			       .pieces = 1 + (int)(seed % 6),
			       .stream = seed * 2 + 1 };
	after = (struct job){ .fd = x,
			      .pieces = 1 + (int)(seed / 7 % 4),
			      .stream = seed * 2 + 2 };

	if (st_break()) /* the dup2 overtakes the writes */
		dup2(y, x);
	if (threaded) {
		if (pthread_create(&t, NULL, writes_thread, &before))
			ST_DIE("pthread_create");
		pthread_join(t, NULL);
	} else {
		do_writes(&before);
	}
	if (variant == V_SHUTDOWN && shutdown(x, SHUT_WR) < 0) {
		snprintf(why, whylen, "shutdown(X) failed: %s",
			 strerror(errno));
		return false;
	}
	if (variant == V_CLOSE && close(x) < 0) {
		snprintf(why, whylen, "close(X) failed: %s", strerror(errno));
		return false;
	}
	r = use_dup3 ? dup3(y, x, O_CLOEXEC) : dup2(y, x);
	if (r != x) {
		snprintf(why, whylen, "%s returned %d (%s), want %d",
			 use_dup3 ? "dup3" : "dup2", r,
			 r < 0 ? strerror(errno) : "ok", x);
		return false;
	}
	fdflags = fcntl(x, F_GETFD);
	if (fdflags < 0 || !!(fdflags & FD_CLOEXEC) != use_dup3) {
		snprintf(why, whylen, "X after %s: F_GETFD %d (%s)",
			 use_dup3 ? "dup3" : "dup2", fdflags,
			 fdflags < 0 ? strerror(errno) : "wrong FD_CLOEXEC");
		return false;
	}
	do_writes(&after);
	if (close(x) < 0 || close(y) < 0) {
		snprintf(why, whylen, "close of X or Y failed: %s",
			 strerror(errno));
		return false;
	}
	/* the old socket is gone: its peer sees the bytes, then the end */
	na = drain(a[1], got_a, sizeof(got_a));
	nb = drain(b[1], got_b, sizeof(got_b));
	close(a[1]);
	close(b[1]);
	if (before.err || na != before.written ||
	    st_mismatch(got_a, (size_t)na, before.stream, 0) >= 0) {
		snprintf(
			why, whylen,
			"old socket's peer read %ld bytes (%s), writes before the dup2 reported %ld (error %s)",
			na,
			na >= 0 && st_mismatch(got_a, (size_t)na, before.stream,
					       0) < 0 ?
				"in order" :
				"wrong content",
			before.written,
			before.err ? strerror(before.err) : "none");
		return false;
	}
	if (after.err || nb != after.written ||
	    st_mismatch(got_b, (size_t)nb, after.stream, 0) >= 0) {
		snprintf(
			why, whylen,
			"new socket's peer read %ld bytes (%s), writes after the dup2 reported %ld (error %s)",
			nb,
			nb >= 0 && st_mismatch(got_b, (size_t)nb, after.stream,
					       0) < 0 ?
				"in order" :
				"wrong content",
			after.written,
			after.err ? strerror(after.err) : "none");
		return false;
	}
	return true;
}

int main(void)
{
	st_start("t-dup2-pending");
	signal(SIGPIPE, SIG_IGN); /* a wrong write must fail, not kill */
	for (int tcp = 0; tcp < 2; tcp++)
		for (int v = 0; v < V_COUNT; v++) {
			int rounds = tcp ? 40 : 120, bad = 0;
			char why[300], first[400] = "";

			for (int i = 0; i < rounds; i++) {
				bool threaded = i % 2, d3 = i % 3 == 0;

				if (!round_ok(tcp, v, threaded, d3,
					      (uint64_t)i * 97 + (uint64_t)v,
					      why, sizeof(why)) &&
				    !bad++)
					snprintf(
						first, sizeof(first),
						"round %d (%s, %s): %s", i,
						threaded ?
							"writes from another thread" :
							"writes from this thread",
						d3 ? "dup3" : "dup2", why);
			}
			st_result(
				!bad,
				"%s, %s pending then dup2/dup3: %d of %d rounds wrong%s%s",
				tcp ? "tcp" : "unix", vname[v], bad, rounds,
				bad ? "; first: " : "", first);
		}
	return st_end();
}
