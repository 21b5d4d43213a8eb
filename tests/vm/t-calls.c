// SPDX-License-Identifier: MIT
/*
 * Every allowlisted call returns the same value and errno offloaded as
 * direct, in success and error cases: EBADF, EFAULT, EAGAIN on a full
 * non-blocking TCP socket, EPIPE with SIGPIPE delivered to the calling
 * thread. A call outside the allowlist is answered ENOSYS.
 *
 * Each group of calls proves where it ran with the context's counters:
 * the offloaded ones (regular files on tmpfs, non-blocking TCP/UDP loopback
 * sockets and pipes) raise `calls` and not `bounced`; data calls on AF_UNIX
 * sockets and read/write on blocking pipes, FIFOs and sockets are bounced
 * (made directly by the library: same result, `bounced` rises by exactly
 * their number) while setsockopt/getsockopt/shutdown/epoll_ctl on AF_UNIX
 * sockets still run on the consumer.
 */
#include "t.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>

#define BAD_PTR ((void *)8) /* never mapped */

static volatile sig_atomic_t sigpipes;
static volatile pid_t sigpipe_tid;

static void on_sigpipe(int sig)
{
	(void)sig;
	sigpipes++;
	sigpipe_tid = (pid_t)syscall(SYS_gettid);
}

static int tmpfile_fd(const char *tag)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/tmp/t-calls-%s", tag);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		DIE("open %s: %s", path, strerror(errno));
	return fd;
}

static void nb_socketpair(int type, int sv[2])
{
	if (socketpair(AF_UNIX, type | SOCK_NONBLOCK, 0, sv))
		DIE("socketpair: %s", strerror(errno));
}

static struct sockaddr_in loopback(int fd)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && getsockname(fd, (struct sockaddr *)&a, &len))
		DIE("getsockname: %s", strerror(errno));
	return a;
}

/*
 * A connected TCP pair over 127.0.0.1 (ephemeral port): sv[0] connected,
 * sv[1] accepted; non-blocking unless @blocking. @small shrinks both
 * buffers so filling the pair takes little.
 */
static void tcp_pair(int sv[2], bool blocking, bool small)
{
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), sz = 4096;
	struct sockaddr_in a = loopback(-1);

	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1))
		DIE("tcp listen: %s", strerror(errno));
	a = loopback(l);
	sv[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (small)
		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	if (sv[0] < 0 || connect(sv[0], (struct sockaddr *)&a, sizeof(a)))
		DIE("tcp connect: %s", strerror(errno));
	sv[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (sv[1] < 0)
		DIE("accept: %s", strerror(errno));
	if (small)
		setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	close(l);
	if (!blocking)
		for (int i = 0; i < 2; i++)
			fcntl(sv[i], F_SETFL,
			      fcntl(sv[i], F_GETFL) | O_NONBLOCK);
}

/* Two non-blocking UDP sockets on 127.0.0.1, connected to each other. */
static void udp_pair(int sv[2])
{
	struct sockaddr_in a[2];

	for (int i = 0; i < 2; i++) {
		a[i] = loopback(-1);
		sv[i] = socket(AF_INET,
			       SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (sv[i] < 0 ||
		    bind(sv[i], (struct sockaddr *)&a[i], sizeof(a[i])))
			DIE("udp bind: %s", strerror(errno));
		a[i] = loopback(sv[i]);
	}
	if (connect(sv[0], (struct sockaddr *)&a[1], sizeof(a[1])) ||
	    connect(sv[1], (struct sockaddr *)&a[0], sizeof(a[0])))
		DIE("udp connect: %s", strerror(errno));
}

/* Loopback delivery is normally done when send returns; wait if not. */
static void readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	if (poll(&p, 1, 2000) != 1)
		DIE("fd %d not readable after 2 s", fd);
}

/* Read @n bytes from a non-blocking socket, waiting for them to land. */
static long read_all(int fd, char *buf, long n)
{
	long got = 0;

	while (got < n) {
		long r;

		readable(fd);
		r = read(fd, buf + got, (size_t)(n - got));
		if (r <= 0)
			break;
		got += r;
	}
	return got;
}

static void test_read_write(void)
{
	int fd = tmpfile_fd("rw");
	char buf[16] = { 0 };
	struct t_counts c0 = t_counts_now();

	SAME("write", D6(SYS_write, fd, "direct", 6, 0, 0, 0),
	     O6(SYS_write, fd, "offld!", 6, 0, 0, 0), 6);
	SAME("write EBADF", D6(SYS_write, 999, "x", 1, 0, 0, 0),
	     O6(SYS_write, 999, "x", 1, 0, 0, 0), -EBADF);
	SAME("write EFAULT", D6(SYS_write, fd, BAD_PTR, 4, 0, 0, 0),
	     O6(SYS_write, fd, BAD_PTR, 4, 0, 0, 0), -EFAULT);
	lseek(fd, 0, SEEK_SET);
	SAME("read", D6(SYS_read, fd, buf, 6, 0, 0, 0),
	     O6(SYS_read, fd, buf + 6, 6, 0, 0, 0), 6);
	CHECK(!memcmp(buf, "directoffld!", 12), "read back '%.12s'", buf);
	SAME("read at EOF", D6(SYS_read, fd, buf, 6, 0, 0, 0),
	     O6(SYS_read, fd, buf, 6, 0, 0, 0), 0);
	lseek(fd, 0, SEEK_SET);
	SAME("read EFAULT", D6(SYS_read, fd, BAD_PTR, 6, 0, 0, 0),
	     O6(SYS_read, fd, BAD_PTR, 6, 0, 0, 0), -EFAULT);
	SAME("read EBADF", D6(SYS_read, -1, buf, 1, 0, 0, 0),
	     O6(SYS_read, -1, buf, 1, 0, 0, 0), -EBADF);
	T_OFFLOADED("read/write on tmpfs", c0, 7, 0);
	close(fd);
}

static void test_vectors_and_positions(void)
{
	int fd = tmpfile_fd("vec"), p[2];
	char a[4] = "abcd", b[4] = "efgh", out[16] = { 0 };
	struct iovec iov[2] = { { a, 4 }, { b, 4 } };
	struct iovec rio[2] = { { out, 3 }, { out + 3, 5 } };
	struct iovec rio2[2] = { { out + 8, 3 }, { out + 11, 5 } };
	struct iovec bad[1] = { { BAD_PTR, 4 } };
	struct t_counts c0 = t_counts_now();

	SAME("writev", D6(SYS_writev, fd, iov, 2, 0, 0, 0),
	     O6(SYS_writev, fd, iov, 2, 0, 0, 0), 8);
	SAME("writev EFAULT iov", D6(SYS_writev, fd, BAD_PTR, 2, 0, 0, 0),
	     O6(SYS_writev, fd, BAD_PTR, 2, 0, 0, 0), -EFAULT);
	SAME("writev EFAULT buf", D6(SYS_writev, fd, bad, 1, 0, 0, 0),
	     O6(SYS_writev, fd, bad, 1, 0, 0, 0), -EFAULT);
	SAME("writev EINVAL", D6(SYS_writev, fd, iov, -1, 0, 0, 0),
	     O6(SYS_writev, fd, iov, -1, 0, 0, 0), -EINVAL);
	lseek(fd, 0, SEEK_SET);
	SAME("readv", D6(SYS_readv, fd, rio, 2, 0, 0, 0),
	     O6(SYS_readv, fd, rio2, 2, 0, 0, 0), 8);
	CHECK(!memcmp(out, "abcdefghabcdefgh", 16), "readv got '%.16s'", out);
	SAME("pwrite64", D6(SYS_pwrite64, fd, "XY", 2, 1, 0, 0),
	     O6(SYS_pwrite64, fd, "ZW", 2, 3, 0, 0), 2);
	memset(out, 0, sizeof(out));
	SAME("pread64", D6(SYS_pread64, fd, out, 3, 0, 0, 0),
	     O6(SYS_pread64, fd, out + 3, 3, 3, 0, 0), 3);
	CHECK(!memcmp(out, "aXYZWf", 6), "pread got '%.6s'", out);
	SAME("pread64 EINVAL offset", D6(SYS_pread64, fd, out, 1, -1, 0, 0),
	     O6(SYS_pread64, fd, out, 1, -1, 0, 0), -EINVAL);
	if (pipe2(p, O_NONBLOCK))
		DIE("pipe2");
	SAME("pwrite64 on a pipe", D6(SYS_pwrite64, p[1], "x", 1, 0, 0, 0),
	     O6(SYS_pwrite64, p[1], "x", 1, 0, 0, 0), -ESPIPE);
	T_OFFLOADED("vectors and positions", c0, 9, 0);
	close(p[0]);
	close(p[1]);
	close(fd);
}

/* Datagrams over UDP, options and shutdown over TCP: all offloaded. */
static void test_inet_sockets(void)
{
	int sv[2], one = 1, val = 0, val2 = 0, file = tmpfile_fd("notsock");
	char buf[64];
	socklen_t len = sizeof(val), len2 = sizeof(val2);
	struct iovec iov = { "msg", 3 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct iovec riov = { buf, sizeof(buf) };
	struct msghdr rmh = { .msg_iov = &riov, .msg_iovlen = 1 };
	struct t_counts c0;

	udp_pair(sv);
	c0 = t_counts_now();
	/* each datagram lands before the next is sent: the two senders run
	 * on different CPUs, and loopback keeps no order between them */
	SAME("udp sendto", D6(SYS_sendto, sv[0], "ping", 4, 0, 0, 0),
	     (readable(sv[1]), O6(SYS_sendto, sv[0], "pong", 4, 0, 0, 0)), 4);
	readable(sv[1]);
	SAME("udp recvfrom", D6(SYS_recvfrom, sv[1], buf, sizeof(buf), 0, 0, 0),
	     (readable(sv[1]),
	      O6(SYS_recvfrom, sv[1], buf + 4, sizeof(buf) - 4, 0, 0, 0)),
	     4);
	CHECK(!memcmp(buf, "pingpong", 8), "datagrams '%.8s'", buf);
	SAME("udp recvfrom EAGAIN", D6(SYS_recvfrom, sv[1], buf, 8, 0, 0, 0),
	     O6(SYS_recvfrom, sv[1], buf, 8, 0, 0, 0), -EAGAIN);
	SAME("udp sendmsg", D6(SYS_sendmsg, sv[0], &mh, 0, 0, 0, 0),
	     O6(SYS_sendmsg, sv[0], &mh, 0, 0, 0, 0), 3);
	readable(sv[1]);
	SAME("udp recvmsg", D6(SYS_recvmsg, sv[1], &rmh, 0, 0, 0, 0),
	     (readable(sv[1]), O6(SYS_recvmsg, sv[1], &rmh, 0, 0, 0, 0)), 3);
	SAME("udp sendmsg EFAULT", D6(SYS_sendmsg, sv[0], BAD_PTR, 0, 0, 0, 0),
	     O6(SYS_sendmsg, sv[0], BAD_PTR, 0, 0, 0, 0), -EFAULT);
	SAME("sendto ENOTSOCK", D6(SYS_sendto, file, "x", 1, 0, 0, 0),
	     O6(SYS_sendto, file, "x", 1, 0, 0, 0), -ENOTSOCK);

	SAME("setsockopt",
	     D6(SYS_setsockopt, sv[0], SOL_SOCKET, SO_REUSEADDR, &one,
		sizeof(one), 0),
	     O6(SYS_setsockopt, sv[0], SOL_SOCKET, SO_REUSEADDR, &one,
		sizeof(one), 0),
	     0);
	SAME("getsockopt",
	     D6(SYS_getsockopt, sv[0], SOL_SOCKET, SO_REUSEADDR, &val, &len, 0),
	     O6(SYS_getsockopt, sv[0], SOL_SOCKET, SO_REUSEADDR, &val2, &len2,
		0),
	     0);
	CHECK(val == 1 && val2 == 1 && len == len2, "SO_REUSEADDR %d/%d", val,
	      val2);
	SAME("getsockopt EFAULT",
	     D6(SYS_getsockopt, sv[0], SOL_SOCKET, SO_TYPE, &val, BAD_PTR, 0),
	     O6(SYS_getsockopt, sv[0], SOL_SOCKET, SO_TYPE, &val, BAD_PTR, 0),
	     -EFAULT);
	SAME("setsockopt ENOPROTOOPT",
	     D6(SYS_setsockopt, sv[0], SOL_SOCKET, 9999, &one, sizeof(one), 0),
	     O6(SYS_setsockopt, sv[0], SOL_SOCKET, 9999, &one, sizeof(one), 0),
	     -ENOPROTOOPT);
	T_OFFLOADED("UDP data and options", c0, 11, 0);
	close(sv[0]);
	close(sv[1]);

	tcp_pair(sv, false, false);
	c0 = t_counts_now();
	SAME("tcp write", D6(SYS_write, sv[0], "ab", 2, 0, 0, 0),
	     O6(SYS_write, sv[0], "cd", 2, 0, 0, 0), 2);
	memset(buf, 0, sizeof(buf));
	readable(sv[1]);
	{
		long d = D6(SYS_read, sv[1], buf, 1, 0, 0, 0), o;

		readable(sv[1]);
		o = O6(SYS_read, sv[1], buf + 1, 3, 0, 0, 0);
		/* the second write may still be on its way: read the rest */
		CHECK(d == 1 && o >= 1 && o <= 3 &&
			      read_all(sv[1], buf + 1 + o, 3 - o) == 3 - o,
		      "tcp read: direct %ld offloaded %ld", d, o);
		CHECK(!strcmp(buf, "abcd"), "tcp stream '%s'", buf);
	}
	SAME("tcp shutdown", D6(SYS_shutdown, sv[0], SHUT_RD, 0, 0, 0, 0),
	     O6(SYS_shutdown, sv[1], SHUT_RD, 0, 0, 0, 0), 0);
	SAME("shutdown EINVAL", D6(SYS_shutdown, sv[0], 42, 0, 0, 0, 0),
	     O6(SYS_shutdown, sv[0], 42, 0, 0, 0, 0), -EINVAL);
	SAME("shutdown ENOTSOCK", D6(SYS_shutdown, file, SHUT_RD, 0, 0, 0, 0),
	     O6(SYS_shutdown, file, SHUT_RD, 0, 0, 0, 0), -ENOTSOCK);
	T_OFFLOADED("TCP shutdown, write, read", c0, 5, 0);
	close(sv[0]);
	close(sv[1]);
	close(file);
}

/*
 * AF_UNIX: data calls are bounced (the library makes them: same results,
 * `bounced` rises by one each); options and shutdown still run.
 */
static void test_unix_sockets(void)
{
	int sv[2], one = 1, val = 0, val2 = 0;
	char buf[64];
	socklen_t len = sizeof(val), len2 = sizeof(val2);
	struct iovec iov = { "msg", 3 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct iovec riov = { buf, sizeof(buf) };
	struct msghdr rmh = { .msg_iov = &riov, .msg_iovlen = 1 };
	struct t_counts c0;

	nb_socketpair(SOCK_DGRAM, sv);
	c0 = t_counts_now();
	SAME("unix sendto", D6(SYS_sendto, sv[0], "ping", 4, 0, 0, 0),
	     O6(SYS_sendto, sv[0], "pong", 4, 0, 0, 0), 4);
	SAME("unix recvfrom",
	     D6(SYS_recvfrom, sv[1], buf, sizeof(buf), 0, 0, 0),
	     O6(SYS_recvfrom, sv[1], buf + 4, sizeof(buf) - 4, 0, 0, 0), 4);
	CHECK(!memcmp(buf, "pingpong", 8), "unix datagrams '%.8s'", buf);
	SAME("unix recvfrom EAGAIN", D6(SYS_recvfrom, sv[1], buf, 8, 0, 0, 0),
	     O6(SYS_recvfrom, sv[1], buf, 8, 0, 0, 0), -EAGAIN);
	SAME("unix sendmsg", D6(SYS_sendmsg, sv[0], &mh, 0, 0, 0, 0),
	     O6(SYS_sendmsg, sv[0], &mh, 0, 0, 0, 0), 3);
	SAME("unix recvmsg", D6(SYS_recvmsg, sv[1], &rmh, 0, 0, 0, 0),
	     O6(SYS_recvmsg, sv[1], &rmh, 0, 0, 0, 0), 3);
	SAME("unix write", D6(SYS_write, sv[0], "w", 1, 0, 0, 0),
	     O6(SYS_write, sv[0], "w", 1, 0, 0, 0), 1);
	SAME("unix read", D6(SYS_read, sv[1], buf, sizeof(buf), 0, 0, 0),
	     O6(SYS_read, sv[1], buf, sizeof(buf), 0, 0, 0), 1);
	T_OFFLOADED("AF_UNIX data calls", c0, 0, 7);

	c0 = t_counts_now();
	SAME("unix setsockopt",
	     D6(SYS_setsockopt, sv[0], SOL_SOCKET, SO_PASSCRED, &one,
		sizeof(one), 0),
	     O6(SYS_setsockopt, sv[0], SOL_SOCKET, SO_PASSCRED, &one,
		sizeof(one), 0),
	     0);
	SAME("unix getsockopt",
	     D6(SYS_getsockopt, sv[0], SOL_SOCKET, SO_PASSCRED, &val, &len, 0),
	     O6(SYS_getsockopt, sv[0], SOL_SOCKET, SO_PASSCRED, &val2, &len2,
		0),
	     0);
	CHECK(val == 1 && val2 == 1 && len == len2, "SO_PASSCRED %d/%d", val,
	      val2);
	T_OFFLOADED("AF_UNIX options", c0, 2, 0);
	close(sv[0]);
	close(sv[1]);

	nb_socketpair(SOCK_STREAM, sv);
	c0 = t_counts_now();
	SAME("unix shutdown", D6(SYS_shutdown, sv[0], SHUT_RD, 0, 0, 0, 0),
	     O6(SYS_shutdown, sv[1], SHUT_RD, 0, 0, 0, 0), 0);
	T_OFFLOADED("AF_UNIX shutdown", c0, 1, 0);
	close(sv[0]);
	close(sv[1]);
}

/* Fill @fd's send side until EAGAIN, twice, so it stays full. */
static void fill(int fd)
{
	static char chunk[4096];

	for (int round = 0; round < 2; round++) {
		for (int n = 0; n < 100000; n++)
			if (D6(SYS_write, fd, chunk, sizeof(chunk), 0, 0, 0) <=
			    0)
				break;
		for (int n = 0; n < 100000; n++)
			if (D6(SYS_write, fd, chunk, 1, 0, 0, 0) <= 0)
				break;
		usleep(50000); /* in flight to the receiver: let it land */
	}
}

static void test_full_socket_eagain(void)
{
	static char chunk[16];
	int sv[2];
	struct t_counts c0;

	tcp_pair(sv, false, true);
	fill(sv[0]);
	c0 = t_counts_now();
	SAME("write to a full TCP socket",
	     D6(SYS_write, sv[0], chunk, 1, 0, 0, 0),
	     O6(SYS_write, sv[0], chunk, 1, 0, 0, 0), -EAGAIN);
	SAME("sendto to a full TCP socket",
	     D6(SYS_sendto, sv[0], chunk, 1, MSG_DONTWAIT, 0, 0),
	     O6(SYS_sendto, sv[0], chunk, 1, MSG_DONTWAIT, 0, 0), -EAGAIN);
	T_OFFLOADED("full TCP socket", c0, 2, 0);
	close(sv[0]);
	close(sv[1]);

	nb_socketpair(SOCK_STREAM, sv);
	fill(sv[0]);
	c0 = t_counts_now();
	SAME("write to a full AF_UNIX socket",
	     D6(SYS_write, sv[0], chunk, 1, 0, 0, 0),
	     O6(SYS_write, sv[0], chunk, 1, 0, 0, 0), -EAGAIN);
	T_OFFLOADED("full AF_UNIX socket", c0, 0, 1);
	close(sv[0]);
	close(sv[1]);
}

/* EPIPE, and SIGPIPE raised on this very thread before the call returns. */
static void test_epipe(void)
{
	int sv[2], p[2], before;
	pid_t me = (pid_t)syscall(SYS_gettid);
	struct t_counts c0;
	long d, o;

	signal(SIGPIPE, on_sigpipe);
	/* our side shut for writing: every write gets EPIPE, no race */
	tcp_pair(sv, false, false);
	shutdown(sv[0], SHUT_WR);
	c0 = t_counts_now();

	before = sigpipes;
	d = D6(SYS_write, sv[0], "x", 1, 0, 0, 0);
	CHECK(sigpipes == before + 1, "direct write: %d SIGPIPEs",
	      sigpipes - before);
	before = sigpipes;
	sigpipe_tid = 0;
	o = O6(SYS_write, sv[0], "x", 1, 0, 0, 0);
	CHECK(sigpipes == before + 1, "offloaded write: %d SIGPIPEs by return",
	      sigpipes - before);
	CHECK(sigpipe_tid == me, "SIGPIPE handled by tid %d, caller is %d",
	      (int)sigpipe_tid, (int)me);
	SAME("tcp write EPIPE", d, o, -EPIPE);

	before = sigpipes;
	SAME("tcp sendto MSG_NOSIGNAL EPIPE",
	     D6(SYS_sendto, sv[0], "x", 1, MSG_NOSIGNAL, 0, 0),
	     O6(SYS_sendto, sv[0], "x", 1, MSG_NOSIGNAL, 0, 0), -EPIPE);
	CHECK(sigpipes == before, "MSG_NOSIGNAL still raised %d SIGPIPEs",
	      sigpipes - before);
	close(sv[0]);
	close(sv[1]);

	if (pipe2(p, O_NONBLOCK))
		DIE("pipe2");
	close(p[0]);
	before = sigpipes;
	SAME("pipe write EPIPE", D6(SYS_write, p[1], "x", 1, 0, 0, 0),
	     O6(SYS_write, p[1], "x", 1, 0, 0, 0), -EPIPE);
	CHECK(sigpipes == before + 2, "pipe EPIPE: %d SIGPIPEs, want 2",
	      sigpipes - before);
	close(p[1]);
	T_OFFLOADED("EPIPE on TCP and a pipe", c0, 3, 0);

	/* AF_UNIX: bounced, and the direct call raises the signal */
	nb_socketpair(SOCK_STREAM, sv);
	close(sv[1]);
	c0 = t_counts_now();
	before = sigpipes;
	sigpipe_tid = 0;
	SAME("unix write EPIPE", D6(SYS_write, sv[0], "x", 1, 0, 0, 0),
	     O6(SYS_write, sv[0], "x", 1, 0, 0, 0), -EPIPE);
	CHECK(sigpipes == before + 2 && sigpipe_tid == me,
	      "unix EPIPE: %d SIGPIPEs (want 2), last on tid %d",
	      sigpipes - before, (int)sigpipe_tid);
	before = sigpipes;
	SAME("unix sendto MSG_NOSIGNAL EPIPE",
	     D6(SYS_sendto, sv[0], "x", 1, MSG_NOSIGNAL, 0, 0),
	     O6(SYS_sendto, sv[0], "x", 1, MSG_NOSIGNAL, 0, 0), -EPIPE);
	CHECK(sigpipes == before, "unix MSG_NOSIGNAL raised %d SIGPIPEs",
	      sigpipes - before);
	T_OFFLOADED("EPIPE on AF_UNIX", c0, 0, 2);
	close(sv[0]);
	signal(SIGPIPE, SIG_DFL);
}

static void test_sendfile(void)
{
	int fd = tmpfile_fd("sf"), sv[2];
	char buf[64] = { 0 };
	off_t off = 0, off2 = 0;
	struct t_counts c0;

	if (write(fd, "0123456789", 10) != 10)
		DIE("write");
	tcp_pair(sv, false, false);
	c0 = t_counts_now();
	SAME("sendfile to TCP", D6(SYS_sendfile, sv[0], fd, &off, 5, 0, 0),
	     O6(SYS_sendfile, sv[0], fd, &off2, 5, 0, 0), 5);
	CHECK(off == 5 && off2 == 5, "offsets %ld %ld", (long)off, (long)off2);
	CHECK(read_all(sv[1], buf, 10) == 10 && !memcmp(buf, "0123401234", 10),
	      "sendfile data '%.10s'", buf);
	SAME("sendfile EBADF", D6(SYS_sendfile, sv[0], 999, NULL, 5, 0, 0),
	     O6(SYS_sendfile, sv[0], 999, NULL, 5, 0, 0), -EBADF);
	SAME("sendfile EFAULT", D6(SYS_sendfile, sv[0], fd, BAD_PTR, 5, 0, 0),
	     O6(SYS_sendfile, sv[0], fd, BAD_PTR, 5, 0, 0), -EFAULT);
	T_OFFLOADED("sendfile to TCP", c0, 3, 0);
	close(sv[0]);
	close(sv[1]);

	nb_socketpair(SOCK_STREAM, sv);
	off = off2 = 0;
	c0 = t_counts_now();
	SAME("sendfile to AF_UNIX", D6(SYS_sendfile, sv[0], fd, &off, 5, 0, 0),
	     O6(SYS_sendfile, sv[0], fd, &off2, 5, 0, 0), 5);
	CHECK(read(sv[1], buf, sizeof(buf)) == 10 &&
		      !memcmp(buf, "0123401234", 10),
	      "AF_UNIX sendfile data");
	T_OFFLOADED("sendfile to AF_UNIX", c0, 0, 1);
	close(sv[0]);
	close(sv[1]);
	close(fd);
}

static void test_fd_calls(void)
{
	int fd = tmpfile_fd("fd"), ro, ep, sv[2], us[2], p[2];
	struct epoll_event ev = { .events = EPOLLIN };
	struct t_counts c0;
	struct stat st;

	tcp_pair(sv, false, false);
	nb_socketpair(SOCK_STREAM, us);
	ep = epoll_create1(EPOLL_CLOEXEC);
	c0 = t_counts_now();
	SAME("epoll_ctl ADD",
	     D6(SYS_epoll_ctl, ep, EPOLL_CTL_ADD, sv[0], &ev, 0, 0),
	     O6(SYS_epoll_ctl, ep, EPOLL_CTL_ADD, sv[1], &ev, 0, 0), 0);
	SAME("epoll_ctl EEXIST",
	     D6(SYS_epoll_ctl, ep, EPOLL_CTL_ADD, sv[0], &ev, 0, 0),
	     O6(SYS_epoll_ctl, ep, EPOLL_CTL_ADD, sv[1], &ev, 0, 0), -EEXIST);
	SAME("epoll_ctl EFAULT",
	     D6(SYS_epoll_ctl, ep, EPOLL_CTL_MOD, sv[0], BAD_PTR, 0, 0),
	     O6(SYS_epoll_ctl, ep, EPOLL_CTL_MOD, sv[1], BAD_PTR, 0, 0),
	     -EFAULT);
	SAME("epoll_ctl EBADF",
	     D6(SYS_epoll_ctl, ep, EPOLL_CTL_ADD, 999, &ev, 0, 0),
	     O6(SYS_epoll_ctl, ep, EPOLL_CTL_ADD, 999, &ev, 0, 0), -EBADF);
	SAME("epoll_ctl DEL",
	     D6(SYS_epoll_ctl, ep, EPOLL_CTL_DEL, sv[0], 0, 0, 0),
	     O6(SYS_epoll_ctl, ep, EPOLL_CTL_DEL, sv[1], 0, 0, 0), 0);
	SAME("epoll_ctl ADD AF_UNIX",
	     D6(SYS_epoll_ctl, ep, EPOLL_CTL_ADD, us[0], &ev, 0, 0),
	     O6(SYS_epoll_ctl, ep, EPOLL_CTL_ADD, us[1], &ev, 0, 0), 0);

	SAME("fsync", D6(SYS_fsync, fd, 0, 0, 0, 0, 0),
	     O6(SYS_fsync, fd, 0, 0, 0, 0, 0), 0);
	SAME("fdatasync", D6(SYS_fdatasync, fd, 0, 0, 0, 0, 0),
	     O6(SYS_fdatasync, fd, 0, 0, 0, 0, 0), 0);
	if (pipe2(p, O_NONBLOCK))
		DIE("pipe2");
	SAME("fsync on a pipe", D6(SYS_fsync, p[0], 0, 0, 0, 0, 0),
	     O6(SYS_fsync, p[0], 0, 0, 0, 0, 0), -EINVAL);
	SAME("fsync EBADF", D6(SYS_fsync, 999, 0, 0, 0, 0, 0),
	     O6(SYS_fsync, 999, 0, 0, 0, 0, 0), -EBADF);

	SAME("ftruncate", D6(SYS_ftruncate, fd, 100, 0, 0, 0, 0),
	     O6(SYS_ftruncate, fd, 200, 0, 0, 0, 0), 0);
	CHECK(!fstat(fd, &st) && st.st_size == 200, "size %ld",
	      (long)st.st_size);
	ro = open("/tmp/t-calls-fd", O_RDONLY);
	SAME("ftruncate on read-only fd", D6(SYS_ftruncate, ro, 0, 0, 0, 0, 0),
	     O6(SYS_ftruncate, ro, 0, 0, 0, 0, 0), -EINVAL);
	SAME("ftruncate EINVAL length", D6(SYS_ftruncate, fd, -1, 0, 0, 0, 0),
	     O6(SYS_ftruncate, fd, -1, 0, 0, 0, 0), -EINVAL);

	SAME("fchmod", D6(SYS_fchmod, fd, 0600, 0, 0, 0, 0),
	     O6(SYS_fchmod, fd, 0640, 0, 0, 0, 0), 0);
	CHECK(!fstat(fd, &st) && (st.st_mode & 07777) == 0640, "mode %o",
	      st.st_mode & 07777);
	SAME("fchown", D6(SYS_fchown, fd, 1000, 1000, 0, 0, 0),
	     O6(SYS_fchown, fd, 1001, 1001, 0, 0, 0), 0);
	CHECK(!fstat(fd, &st) && st.st_uid == 1001, "uid %d", (int)st.st_uid);
	SAME("fchmod EBADF", D6(SYS_fchmod, 999, 0600, 0, 0, 0, 0),
	     O6(SYS_fchmod, 999, 0600, 0, 0, 0, 0), -EBADF);

	/* close: the second close of the same number fails the same way. */
	{
		int a = dup(fd), b = dup(fd);

		SAME("close", D6(SYS_close, a, 0, 0, 0, 0, 0),
		     O6(SYS_close, b, 0, 0, 0, 0, 0), 0);
		SAME("close EBADF", D6(SYS_close, a, 0, 0, 0, 0, 0),
		     O6(SYS_close, b, 0, 0, 0, 0, 0), -EBADF);
		CHECK(fcntl(b, F_GETFD) == -1 && errno == EBADF,
		      "offloaded close left fd %d open", b);
	}
	/* a socket and an AF_UNIX socket closed by the consumer */
	CHECK(O6(SYS_close, sv[1], 0, 0, 0, 0, 0) == 0, "close TCP socket");
	CHECK(O6(SYS_close, us[1], 0, 0, 0, 0, 0) == 0, "close AF_UNIX socket");
	T_OFFLOADED("fd calls", c0, 20, 0);
	close(p[0]);
	close(p[1]);
	close(ro);
	close(ep);
	close(sv[0]);
	close(us[0]);
	close(fd);
}

/*
 * Outside the allowlist; read/write on a blocking pipe and a blocking TCP
 * socket (bounced: made directly, same result, in order).
 */
static void test_refusals(void)
{
	int p[2], sv[2];
	char c, buf[4] = { 0 };
	struct t_counts c0;

	CHECK(O6(SYS_getpid, 0, 0, 0, 0, 0, 0) == -ENOSYS, "getpid offloaded");
	CHECK(O6(SYS_openat, AT_FDCWD, "/tmp", O_RDONLY, 0, 0, 0) == -ENOSYS,
	      "openat offloaded");
	CHECK(O6(100000, 0, 0, 0, 0, 0, 0) == -ENOSYS, "nr 100000 offloaded");
	if (pipe(p))
		DIE("pipe");
	tcp_pair(sv, true, false);
	c0 = t_counts_now();
	SAME("write on a blocking pipe", D6(SYS_write, p[1], "a", 1, 0, 0, 0),
	     O6(SYS_write, p[1], "b", 1, 0, 0, 0), 1);
	SAME("read on a blocking pipe", D6(SYS_read, p[0], &c, 1, 0, 0, 0),
	     O6(SYS_read, p[0], &c, 1, 0, 0, 0), 1);
	CHECK(c == 'b', "second byte %c", c);
	SAME("write on a blocking TCP socket",
	     D6(SYS_write, sv[0], "a", 1, 0, 0, 0),
	     O6(SYS_write, sv[0], "b", 1, 0, 0, 0), 1);
	CHECK(read_all(sv[1], buf, 2) == 2 && !strcmp(buf, "ab"),
	      "blocking TCP got '%s'", buf);
	T_OFFLOADED("blocking pipe and socket", c0, 0, 3);
	close(p[0]);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
}

/*
 * Per-thread order holds across a bounce: a deferred write on a blocking
 * FIFO fd (bounced, made by the library) then a synchronous write through
 * a non-blocking fd of the same FIFO (made by the consumer) land in that
 * order: the consumer waits for the bounced call before going on.
 */
static void test_bounce_order(void)
{
	char buf[8] = { 0 };
	int rd, wr_block, wr_nb;
	struct t_counts c0;

	unlink("/tmp/t-calls-fifo");
	if (mkfifo("/tmp/t-calls-fifo", 0600))
		DIE("mkfifo: %s", strerror(errno));
	rd = open("/tmp/t-calls-fifo", O_RDONLY | O_NONBLOCK);
	wr_block = open("/tmp/t-calls-fifo", O_WRONLY);
	wr_nb = open("/tmp/t-calls-fifo", O_WRONLY | O_NONBLOCK);
	if (rd < 0 || wr_block < 0 || wr_nb < 0)
		DIE("open fifo: %s", strerror(errno));
	c0 = t_counts_now();
	for (int i = 0; i < 20; i++) {
		CHECK(esca_defer(SYS_write, wr_block, (long)"a", 1, 0, 0, 0) ==
			      0,
		      "deferred write");
		CHECK(O6(SYS_write, wr_nb, "b", 1, 0, 0, 0) == 1, "sync write");
		memset(buf, 0, sizeof(buf));
		CHECK(read(rd, buf, sizeof(buf)) == 2 && !strcmp(buf, "ab"),
		      "round %d: FIFO got '%s', want 'ab'", i, buf);
	}
	CHECK(esca_drain() == 0, "deferred failures");
	T_OFFLOADED("bounced deferred FIFO writes", c0, 20, 20);
	close(rd);
	close(wr_block);
	close(wr_nb);
}

int main(void)
{
	long live;

	setenv("ESCA_SPIN_US", "2000", 0);
	t_need_offload();
	live = t_stat("esca ", "live_contexts");
	CHECK(live >= 1, "live_contexts %ld with a context open", live);
	CHECK(t_ctx(getpid(), "calls") >= 0, "no context line for pid %d",
	      (int)getpid());
	test_read_write();
	test_vectors_and_positions();
	test_inet_sockets();
	test_unix_sockets();
	test_full_socket_eagain();
	test_epipe();
	test_sendfile();
	test_fd_calls();
	test_refusals();
	test_bounce_order();
	printf("context: calls=%ld bounced=%ld\n", t_ctx(getpid(), "calls"),
	       t_ctx(getpid(), "bounced"));
	return t_done("t-calls");
}
