// SPDX-License-Identifier: MIT
/*
 * t-fork-file: DESIGN §4 rules 6 and 9 at fork (a child never uses its
 * parent's ring; what it writes lands, exactly). The parent keeps its
 * ring busy: a second thread writes a stream to a non-blocking socket
 * without pause (a third one reads and checks it), and the main thread
 * writes to another socket between fork and waitpid. Meanwhile the main
 * thread forks children, one after the other; each writes a file of its
 * own in pieces (write, pwrite, writev; some pieces overwrite earlier
 * ones, one ftruncate), fsyncs, closes it and exits. After each waitpid
 * the file must hold exactly the bytes the child meant. At the end the
 * busy streams must have arrived whole, in order.
 *
 * Break mode: each child skips one of its writes: the test must fail.
 */
#include "shimtest.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>

#define FILE_SIZE (96 * 1024)

static atomic_bool stop;
static int busy_w, busy_r;
static long busy_written, busy_read, busy_bad;

static void *busy_writer(void *arg)
{
	uint8_t buf[4096];

	(void)arg;
	while (!atomic_load(&stop)) {
		size_t n = 1 + (size_t)(busy_written % 4000);
		ssize_t r;

		st_fill(buf, n, 11, (uint64_t)busy_written);
		r = write(busy_w, buf, n);
		if (r > 0)
			busy_written += r;
		else if (r < 0 && errno != EAGAIN)
			busy_bad++;
		else
			sched_yield();
	}
	shutdown(busy_w, SHUT_WR);
	return NULL;
}

static void *busy_reader(void *arg)
{
	static uint8_t buf[65536];
	ssize_t r;

	(void)arg;
	while ((r = read(busy_r, buf, sizeof(buf))) > 0) {
		if (st_mismatch(buf, (size_t)r, 11, (uint64_t)busy_read) >= 0)
			busy_bad++;
		busy_read += r;
	}
	return NULL;
}

/* What child @n leaves in its file: stream 100 + n, FILE_SIZE bytes. */
static void child(const char *path, int n)
{
	static uint8_t buf[FILE_SIZE];
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	uint64_t s = 100 + (uint64_t)n;
	size_t at = 0, skip = (size_t)n % 7;
	int piece = 0;

	if (fd < 0)
		_exit(2);
	/* a first pass of garbage, cut back, then the real content */
	memset(buf, 0xee, 8192);
	if (write(fd, buf, 8192) != 8192 || ftruncate(fd, 100) != 0)
		_exit(3);
	if (lseek(fd, 0, SEEK_SET) != 0)
		_exit(4);
	st_fill(buf, FILE_SIZE, s, 0);
	while (at < FILE_SIZE) {
		size_t len = 1 + (size_t)((s * 7 + at * 13) % 5000);
		ssize_t r;

		if (len > FILE_SIZE - at)
			len = FILE_SIZE - at;
		if (st_break() && piece == (int)skip) {
			at += len; /* skipped on purpose */
			piece++;
			continue;
		}
		switch (piece++ % 3) {
		case 0:
			r = pwrite(fd, buf + at, len, (off_t)at);
			break;
		case 1: {
			struct iovec iov[2] = { { buf + at, len / 2 },
						{ buf + at + len / 2,
						  len - len / 2 } };

			if (lseek(fd, (off_t)at, SEEK_SET) < 0)
				_exit(5);
			r = writev(fd, iov, 2);
			break;
		}
		default:
			if (lseek(fd, (off_t)at, SEEK_SET) < 0)
				_exit(5);
			r = write(fd, buf + at, len);
		}
		if (r != (ssize_t)len)
			_exit(6);
		at += len;
	}
	if (fsync(fd) != 0 || close(fd) != 0)
		_exit(7);
	_exit(0);
}

int main(void)
{
	static uint8_t got[FILE_SIZE + 1];
	char dir[] = "/tmp/t-fork-file.XXXXXX", path[64], first[200] = "";
	int s[2], m[2], bad = 0, forks = 40;
	pthread_t w, r;
	long main_written = 0, main_read = 0;

	st_start("t-fork-file");
	signal(SIGPIPE, SIG_IGN);
	if (!mkdtemp(dir))
		ST_DIE("mkdtemp");
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, m) < 0 ||
	    fcntl(s[0], F_SETFL, O_NONBLOCK) < 0 ||
	    fcntl(m[0], F_SETFL, O_NONBLOCK) < 0 ||
	    fcntl(m[1], F_SETFL, O_NONBLOCK) < 0)
		ST_DIE("socketpair");
	busy_w = s[0];
	busy_r = s[1];
	if (pthread_create(&w, NULL, busy_writer, NULL) ||
	    pthread_create(&r, NULL, busy_reader, NULL))
		ST_DIE("pthread_create");

	for (int n = 0; n < forks; n++) {
		int st = 0, fd;
		pid_t pid;
		ssize_t len;
		uint8_t mb[512];

		snprintf(path, sizeof(path), "%s/f%d", dir, n);
		pid = fork();
		if (pid < 0)
			ST_DIE("fork");
		if (pid == 0)
			child(path, n);
		/* the parent's main thread keeps writing meanwhile */
		while (waitpid(pid, &st, WNOHANG) == 0) {
			ssize_t k;

			st_fill(mb, sizeof(mb), 12, (uint64_t)main_written);
			k = write(m[0], mb, sizeof(mb));
			if (k > 0)
				main_written += k;
			while ((k = read(m[1], mb, sizeof(mb))) > 0) {
				if (st_mismatch(mb, (size_t)k, 12,
						(uint64_t)main_read) >= 0)
					busy_bad++;
				main_read += k;
			}
		}
		fd = open(path, O_RDONLY | O_CLOEXEC);
		len = fd < 0 ? -1 : read(fd, got, sizeof(got));
		if (fd >= 0)
			close(fd);
		unlink(path);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 ||
		    len != FILE_SIZE ||
		    st_mismatch(got, FILE_SIZE, 100 + (uint64_t)n, 0) >= 0) {
			if (!bad++)
				snprintf(
					first, sizeof(first),
					"child %d: status %#x, file %zd bytes (want %d), first wrong byte at %ld",
					n, (unsigned)st, len, FILE_SIZE,
					len > 0 ? st_mismatch(got, (size_t)len,
							      100 + (uint64_t)n,
							      0) :
						  -1);
		}
	}
	atomic_store(&stop, true);
	pthread_join(w, NULL);
	pthread_join(r, NULL);
	{
		ssize_t k;
		uint8_t mb[512];

		while ((k = read(m[1], mb, sizeof(mb))) > 0) {
			if (st_mismatch(mb, (size_t)k, 12,
					(uint64_t)main_read) >= 0)
				busy_bad++;
			main_read += k;
		}
	}
	rmdir(dir);
	st_result(
		!bad,
		"%d children each wrote a %d-byte file while the parent wrote: %d files wrong%s%s",
		forks, FILE_SIZE, bad, bad ? "; first: " : "", first);
	st_result(
		!busy_bad && busy_read == busy_written &&
			main_read == main_written && busy_written > 0,
		"parent's streams: thread wrote %ld, read %ld; main wrote %ld, read %ld; %ld errors",
		busy_written, busy_read, main_written, main_read, busy_bad);
	return st_end();
}
