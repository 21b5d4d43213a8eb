// SPDX-License-Identifier: MIT
/*
 * t-partial-write: DESIGN §4 rules 1 and 2 (exact results; never an
 * assumed success). Writes on a non-blocking socket (or pipe) until it is
 * full: the last ones are partial (0 < count < asked) or EAGAIN. The peer
 * then reads everything to end of file: it must get exactly the sum of
 * the counts the writes reported, in order. write, writev, send with
 * MSG_DONTWAIT on a blocking socket, sendmsg; socketpair, pipe and TCP,
 * with the default and a small SO_SNDBUF.
 *
 * Break mode: the test adds up the sizes it asked for instead of the
 * counts returned, as a shim that assumed success would report them: it
 * must fail (and does as soon as one write was partial).
 */
#include "shimtest.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/uio.h>

enum { K_UNIX, K_PIPE, K_TCP, K_COUNT };
static const char *const kname[K_COUNT] = { "socketpair", "pipe", "tcp" };
enum { W_WRITE, W_WRITEV, W_SEND, W_SENDMSG, W_COUNT };

static uint8_t buf[512 * 1024], got[16 << 20];

static ssize_t put(int how, int fd, const uint8_t *p, size_t n)
{
	struct iovec iov[3] = { { (void *)p, n / 3 },
				{ (void *)(p + n / 3), n / 3 },
				{ (void *)(p + 2 * (n / 3)),
				  n - 2 * (n / 3) } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 3 };

	switch (how) {
	case W_WRITEV:
		return writev(fd, iov, 3);
	case W_SEND:
		return send(fd, p, n, MSG_DONTWAIT);
	case W_SENDMSG:
		return sendmsg(fd, &mh, MSG_DONTWAIT);
	default:
		return write(fd, p, n);
	}
}

int main(void)
{
	st_start("t-partial-write");
	signal(SIGPIPE, SIG_IGN);
	for (int k = 0; k < K_COUNT; k++) {
		int rounds = k == K_TCP ? 8 : 40, bad = 0, partial = 0;
		long bytes = 0;
		char first[300] = "";

		for (int round = 0; round < rounds; round++) {
			int fds[2], how = round % W_COUNT;
			uint64_t stream = (uint64_t)round * 3 + (uint64_t)k;
			long reported = 0, n = 0;
			ssize_t r;

			if (k == K_PIPE) {
				how = how % 2; /* write or writev */
				if (pipe2(fds, O_CLOEXEC) < 0)
					ST_DIE("pipe2");
				/* fds[1] writes, fds[0] reads: swap */
				r = fds[0];
				fds[0] = fds[1];
				fds[1] = (int)r;
			} else if (k == K_UNIX ?
					   socketpair(AF_UNIX,
						      SOCK_STREAM |
							      SOCK_CLOEXEC,
						      0, fds) < 0 :
					   st_tcp_pair(fds) < 0) {
				ST_DIE("pair");
			}
			if (how != W_SEND && how != W_SENDMSG &&
			    fcntl(fds[0], F_SETFL, O_NONBLOCK) < 0)
				ST_DIE("fcntl");
			if (k != K_PIPE && round % 2) {
				int v = 4096 << (round % 4);

				setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &v,
					   sizeof(v));
			}
			/* fill it: sizes that do not divide the space */
			for (int i = 0; i < 4096; i++) {
				size_t want =
					1 + (size_t)((stream * 7 +
						      (uint64_t)i * 104729) %
						     (sizeof(buf) - 1));

				st_fill(buf, want, stream, (uint64_t)reported);
				r = put(how, fds[0], buf, want);
				if (r < 0) {
					if (errno != EAGAIN)
						ST_DIE("write");
					break;
				}
				if ((size_t)r < want)
					partial++;
				reported += st_break() ? (long)want : r;
			}
			if (shutdown(fds[0], SHUT_WR) < 0 && k != K_PIPE)
				ST_DIE("shutdown");
			if (k == K_PIPE)
				close(fds[0]);
			while ((r = read(fds[1], got + n,
					 sizeof(got) - (size_t)n)) > 0)
				n += r;
			bytes += n;
			if (r < 0 || n != reported ||
			    st_mismatch(got, (size_t)n, stream, 0) >= 0) {
				if (!bad++)
					snprintf(
						first, sizeof(first),
						"round %d (call %d): writes reported %ld bytes, peer read %ld%s",
						round, how, reported, n,
						st_mismatch(got, (size_t)n,
							    stream, 0) >= 0 ?
							", content differs" :
							"");
			}
			if (k != K_PIPE)
				close(fds[0]);
			close(fds[1]);
		}
		if (!partial && !bad)
			st_result(
				false,
				"%s: no write was partial: the property was not exercised",
				kname[k]);
		else
			st_result(
				!bad,
				"%s: %d rounds filled to EAGAIN, %d partial writes, %ld bytes; %d rounds where the peer read other than the counts%s%s",
				kname[k], rounds, partial, bytes, bad,
				bad ? "; first: " : "", first);
	}
	return st_end();
}
