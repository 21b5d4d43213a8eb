// SPDX-License-Identifier: MIT
/*
 * Every allowlisted call returns the same value and errno offloaded as
 * direct, in success and error cases: EBADF, EFAULT, EAGAIN on a full
 * non-blocking socket, EPIPE with SIGPIPE delivered to the calling thread.
 * A call outside the allowlist is answered ENOSYS.
 */
#include "t.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <netinet/in.h>

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

static void test_read_write(void)
{
	int fd = tmpfile_fd("rw");
	char buf[16] = { 0 };

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
	close(p[0]);
	close(p[1]);
	close(fd);
}

static void test_sockets(void)
{
	int sv[2], one = 1, val = 0, val2 = 0;
	char buf[64];
	socklen_t len = sizeof(val), len2 = sizeof(val2);
	struct iovec iov = { "msg", 3 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct iovec riov = { buf, sizeof(buf) };
	struct msghdr rmh = { .msg_iov = &riov, .msg_iovlen = 1 };

	nb_socketpair(SOCK_DGRAM, sv);
	SAME("sendto", D6(SYS_sendto, sv[0], "ping", 4, 0, 0, 0),
	     O6(SYS_sendto, sv[0], "pong", 4, 0, 0, 0), 4);
	SAME("recvfrom", D6(SYS_recvfrom, sv[1], buf, sizeof(buf), 0, 0, 0),
	     O6(SYS_recvfrom, sv[1], buf + 4, sizeof(buf) - 4, 0, 0, 0), 4);
	CHECK(!memcmp(buf, "pingpong", 8), "datagrams '%.8s'", buf);
	SAME("recvfrom EAGAIN", D6(SYS_recvfrom, sv[1], buf, 8, 0, 0, 0),
	     O6(SYS_recvfrom, sv[1], buf, 8, 0, 0, 0), -EAGAIN);
	SAME("sendmsg", D6(SYS_sendmsg, sv[0], &mh, 0, 0, 0, 0),
	     O6(SYS_sendmsg, sv[0], &mh, 0, 0, 0, 0), 3);
	SAME("recvmsg", D6(SYS_recvmsg, sv[1], &rmh, 0, 0, 0, 0),
	     O6(SYS_recvmsg, sv[1], &rmh, 0, 0, 0, 0), 3);
	SAME("sendmsg EFAULT", D6(SYS_sendmsg, sv[0], BAD_PTR, 0, 0, 0, 0),
	     O6(SYS_sendmsg, sv[0], BAD_PTR, 0, 0, 0, 0), -EFAULT);
	SAME("sendto ENOTSOCK", D6(SYS_sendto, 0, "x", 1, 0, 0, 0),
	     O6(SYS_sendto, 0, "x", 1, 0, 0, 0), -ENOTSOCK);

	SAME("setsockopt",
	     D6(SYS_setsockopt, sv[0], SOL_SOCKET, SO_PASSCRED, &one,
		sizeof(one), 0),
	     O6(SYS_setsockopt, sv[0], SOL_SOCKET, SO_PASSCRED, &one,
		sizeof(one), 0),
	     0);
	SAME("getsockopt",
	     D6(SYS_getsockopt, sv[0], SOL_SOCKET, SO_PASSCRED, &val, &len, 0),
	     O6(SYS_getsockopt, sv[0], SOL_SOCKET, SO_PASSCRED, &val2, &len2,
		0),
	     0);
	CHECK(val == 1 && val2 == 1 && len == len2, "SO_PASSCRED %d/%d", val,
	      val2);
	SAME("getsockopt EFAULT",
	     D6(SYS_getsockopt, sv[0], SOL_SOCKET, SO_TYPE, &val, BAD_PTR, 0),
	     O6(SYS_getsockopt, sv[0], SOL_SOCKET, SO_TYPE, &val, BAD_PTR, 0),
	     -EFAULT);
	SAME("setsockopt ENOPROTOOPT",
	     D6(SYS_setsockopt, sv[0], SOL_SOCKET, 9999, &one, sizeof(one), 0),
	     O6(SYS_setsockopt, sv[0], SOL_SOCKET, 9999, &one, sizeof(one), 0),
	     -ENOPROTOOPT);
	close(sv[0]);
	close(sv[1]);

	nb_socketpair(SOCK_STREAM, sv);
	SAME("shutdown", D6(SYS_shutdown, sv[0], SHUT_RD, 0, 0, 0, 0),
	     O6(SYS_shutdown, sv[1], SHUT_RD, 0, 0, 0, 0), 0);
	SAME("shutdown EINVAL", D6(SYS_shutdown, sv[0], 42, 0, 0, 0, 0),
	     O6(SYS_shutdown, sv[0], 42, 0, 0, 0, 0), -EINVAL);
	SAME("shutdown ENOTSOCK", D6(SYS_shutdown, 0, SHUT_RD, 0, 0, 0, 0),
	     O6(SYS_shutdown, 0, SHUT_RD, 0, 0, 0, 0), -ENOTSOCK);
	close(sv[0]);
	close(sv[1]);
}

static void test_full_socket_eagain(void)
{
	static char chunk[4096];
	int sv[2], n = 0;

	nb_socketpair(SOCK_STREAM, sv);
	while (D6(SYS_write, sv[0], chunk, sizeof(chunk), 0, 0, 0) > 0 &&
	       n < 100000)
		n++;
	SAME("write to a full socket", D6(SYS_write, sv[0], chunk, 1, 0, 0, 0),
	     O6(SYS_write, sv[0], chunk, 1, 0, 0, 0), -EAGAIN);
	SAME("sendto to a full socket",
	     D6(SYS_sendto, sv[0], chunk, 1, MSG_DONTWAIT, 0, 0),
	     O6(SYS_sendto, sv[0], chunk, 1, MSG_DONTWAIT, 0, 0), -EAGAIN);
	close(sv[0]);
	close(sv[1]);
}

/* EPIPE, and SIGPIPE raised on this very thread before the call returns. */
static void test_epipe(void)
{
	int sv[2], p[2], before;
	pid_t me = (pid_t)syscall(SYS_gettid);
	long d, o;

	signal(SIGPIPE, on_sigpipe);
	nb_socketpair(SOCK_STREAM, sv);
	close(sv[1]);

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
	SAME("write EPIPE", d, o, -EPIPE);

	before = sigpipes;
	SAME("sendto MSG_NOSIGNAL EPIPE",
	     D6(SYS_sendto, sv[0], "x", 1, MSG_NOSIGNAL, 0, 0),
	     O6(SYS_sendto, sv[0], "x", 1, MSG_NOSIGNAL, 0, 0), -EPIPE);
	CHECK(sigpipes == before, "MSG_NOSIGNAL still raised %d SIGPIPEs",
	      sigpipes - before);
	close(sv[0]);

	if (pipe2(p, O_NONBLOCK))
		DIE("pipe2");
	close(p[0]);
	before = sigpipes;
	SAME("pipe write EPIPE", D6(SYS_write, p[1], "x", 1, 0, 0, 0),
	     O6(SYS_write, p[1], "x", 1, 0, 0, 0), -EPIPE);
	CHECK(sigpipes == before + 2, "pipe EPIPE: %d SIGPIPEs, want 2",
	      sigpipes - before);
	close(p[1]);
	signal(SIGPIPE, SIG_DFL);
}

static void test_sendfile(void)
{
	int fd = tmpfile_fd("sf"), sv[2];
	char buf[64];
	off_t off = 0, off2 = 0;

	if (write(fd, "0123456789", 10) != 10)
		DIE("write");
	nb_socketpair(SOCK_STREAM, sv);
	SAME("sendfile", D6(SYS_sendfile, sv[0], fd, &off, 5, 0, 0),
	     O6(SYS_sendfile, sv[0], fd, &off2, 5, 0, 0), 5);
	CHECK(off == 5 && off2 == 5, "offsets %ld %ld", (long)off, (long)off2);
	CHECK(read(sv[1], buf, sizeof(buf)) == 10 &&
		      !memcmp(buf, "0123401234", 10),
	      "sendfile data");
	SAME("sendfile EBADF", D6(SYS_sendfile, sv[0], 999, NULL, 5, 0, 0),
	     O6(SYS_sendfile, sv[0], 999, NULL, 5, 0, 0), -EBADF);
	SAME("sendfile EFAULT", D6(SYS_sendfile, sv[0], fd, BAD_PTR, 5, 0, 0),
	     O6(SYS_sendfile, sv[0], fd, BAD_PTR, 5, 0, 0), -EFAULT);
	close(sv[0]);
	close(sv[1]);
	close(fd);
}

static void test_fd_calls(void)
{
	int fd = tmpfile_fd("fd"), ro, ep, sv[2], p[2];
	struct epoll_event ev = { .events = EPOLLIN };
	struct stat st;

	nb_socketpair(SOCK_STREAM, sv);
	ep = epoll_create1(EPOLL_CLOEXEC);
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
	close(p[0]);
	close(p[1]);
	close(ro);
	close(ep);
	close(sv[0]);
	close(sv[1]);
	close(fd);
}

/* Outside the allowlist, and a blocking pipe (bounced, made directly). */
static void test_refusals(void)
{
	int p[2];
	char c;

	CHECK(O6(SYS_getpid, 0, 0, 0, 0, 0, 0) == -ENOSYS, "getpid offloaded");
	CHECK(O6(SYS_openat, AT_FDCWD, "/tmp", O_RDONLY, 0, 0, 0) == -ENOSYS,
	      "openat offloaded");
	CHECK(O6(100000, 0, 0, 0, 0, 0, 0) == -ENOSYS, "nr 100000 offloaded");
	if (pipe(p))
		DIE("pipe");
	SAME("write on a blocking pipe", D6(SYS_write, p[1], "a", 1, 0, 0, 0),
	     O6(SYS_write, p[1], "b", 1, 0, 0, 0), 1);
	CHECK(read(p[0], &c, 1) == 1 && c == 'a', "first byte %c", c);
	CHECK(read(p[0], &c, 1) == 1 && c == 'b', "second byte %c", c);
	close(p[0]);
	close(p[1]);
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

	unlink("/tmp/t-calls-fifo");
	if (mkfifo("/tmp/t-calls-fifo", 0600))
		DIE("mkfifo: %s", strerror(errno));
	rd = open("/tmp/t-calls-fifo", O_RDONLY | O_NONBLOCK);
	wr_block = open("/tmp/t-calls-fifo", O_WRONLY);
	wr_nb = open("/tmp/t-calls-fifo", O_WRONLY | O_NONBLOCK);
	if (rd < 0 || wr_block < 0 || wr_nb < 0)
		DIE("open fifo: %s", strerror(errno));
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
	close(rd);
	close(wr_block);
	close(wr_nb);
}

int main(void)
{
	long calls0;

	setenv("ESCA_SPIN_US", "2000", 0);
	t_need_offload();
	calls0 = t_stat("esca ", "live_contexts");
	CHECK(calls0 >= 1, "live_contexts %ld with a context open", calls0);
	test_read_write();
	test_vectors_and_positions();
	test_sockets();
	test_full_socket_eagain();
	test_epipe();
	test_sendfile();
	test_fd_calls();
	test_refusals();
	test_bounce_order();
	{
		char key[64];

		snprintf(key, sizeof(key), "context pid=%d ", (int)getpid());
		CHECK(t_stat(key, "calls") >= 55, "context calls %ld",
		      t_stat(key, "calls"));
		CHECK(t_stat(key, "bounced") >= 1, "context bounced %ld",
		      t_stat(key, "bounced"));
	}
	return t_done("t-calls");
}
