// SPDX-License-Identifier: MIT
/*
 * t-write-close: DESIGN §4 rule 3 (per descriptor, close waits for every
 * thread's pending calls on it). One thread writes to a non-blocking
 * socket (a call the shim may hand to its ring), then, ordered after it by
 * a mutex and condition variable, another thread closes the socket. The
 * peer must read every byte the writes reported, in order, then end of
 * file; close must return 0.
 *
 * Break mode: the writer sends its last piece to /dev/null but counts it
 * as written, as a shim that dropped a queued write would: the test must
 * fail.
 */
#include "shimtest.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

enum { IDLE, WRITE, CLOSE, DONE };

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int state = IDLE, job_fd, close_ret, close_err, write_err;
static long written;
static uint64_t stream;
static bool quit;

static void set_state(int s)
{
	pthread_mutex_lock(&mu);
	state = s;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

static bool wait_state(int s)
{
	pthread_mutex_lock(&mu);
	while (state != s && !quit)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	return !quit;
}

static void *writer(void *arg)
{
	static uint8_t buf[65536];
	int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);

	(void)arg;
	while (wait_state(WRITE)) {
		int pieces = 1 + (int)(stream % 8);

		write_err = 0;
		for (int i = 0; i < pieces; i++) {
			size_t n =
				1 + (size_t)((stream * 31 + (uint64_t)i * 977) %
					     16384);
			bool lose = st_break() && i == pieces - 1;
			ssize_t r;

			st_fill(buf, n, stream, (uint64_t)written);
			r = write(lose ? devnull : job_fd, buf, n);
			if (r < 0) {
				if (errno != EAGAIN)
					write_err = errno;
				break;
			}
			written += r;
			if ((size_t)r < n)
				break;
		}
		set_state(CLOSE);
	}
	close(devnull);
	return NULL;
}

static void *closer(void *arg)
{
	(void)arg;
	while (wait_state(CLOSE)) {
		close_ret = close(job_fd);
		close_err = errno;
		set_state(DONE);
	}
	return NULL;
}

static void run(const char *kind, int iterations)
{
	static uint8_t got[1 << 20];
	int bad = 0;
	long total = 0;
	char first[200] = "";

	for (int it = 0; it < iterations; it++) {
		int fds[2];
		long n = 0;
		ssize_t r;

		if (!strcmp(kind, "unix") ?
			    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				       fds) < 0 :
			    st_tcp_pair(fds) < 0)
			ST_DIE("%s pair", kind);
		if (fcntl(fds[0], F_SETFL, O_NONBLOCK) < 0)
			ST_DIE("fcntl");
		job_fd = fds[0];
		written = 0;
		stream = (uint64_t)it * 2654435761u + (kind[0] == 't');
		set_state(WRITE);
		while ((r = read(fds[1], got + n, sizeof(got) - (size_t)n)) > 0)
			n += r;
		wait_state(DONE);
		close(fds[1]);
		total += n;
		if (n != written || close_ret != 0 || write_err ||
		    st_mismatch(got, (size_t)n, stream, 0) >= 0) {
			if (!bad++)
				snprintf(
					first, sizeof(first),
					"iteration %d: writes reported %ld bytes, peer read %ld (read %s), close %d (%s), write error %s, content %s",
					it, written, n,
					r < 0 ? "failed" : "ended", close_ret,
					close_ret ? strerror(close_err) : "ok",
					write_err ? strerror(write_err) :
						    "none",
					st_mismatch(got, (size_t)n, stream, 0) <
							0 ?
						"in order" :
						"differs");
		}
	}
	if (bad)
		st_result(
			false,
			"%s: %d of %d write-then-close rounds lost data; first: %s",
			kind, bad, iterations, first);
	else
		st_result(
			true,
			"%s: %d write-then-close rounds, %ld bytes, every byte read back in order",
			kind, iterations, total);
}

int main(void)
{
	pthread_t w, c;

	st_start("t-write-close");
	signal(SIGPIPE, SIG_IGN); /* a wrong write must fail, not kill */
	if (pthread_create(&w, NULL, writer, NULL) ||
	    pthread_create(&c, NULL, closer, NULL))
		ST_DIE("pthread_create");
	run("unix", 400);
	run("tcp", 150);
	pthread_mutex_lock(&mu);
	quit = true;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	pthread_join(w, NULL);
	pthread_join(c, NULL);
	return st_end();
}
