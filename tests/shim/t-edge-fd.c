// SPDX-License-Identifier: MIT
/*
 * The shim's descriptor table going stale, and epoll sets changed where
 * the shim cannot see: every case ends in a call whose result the shim
 * could wrongly "prove" (a deferred close or EPOLL_CTL_DEL returns 0 at
 * once) and checks it against what Linux returns.
 *
 *   t-edge-fd [CASE...]     (see edge.h; run directly and under the shim)
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <pty.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>

#include "edge.h"

static int sock(void)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	if (s < 0)
		DIE("socket");
	return s;
}

static int epfd(void)
{
	int ep = epoll_create1(0);

	if (ep < 0)
		DIE("epoll_create1");
	return ep;
}

static void add(int ep, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev))
		DIE("epoll_ctl ADD %d", fd);
}

/* ------------------------------------------------------------ streams */

/* fclose closes the descriptor inside libc: close() after it is EBADF. */
static void fdopen_fclose(void)
{
	int s = sock();
	FILE *f = fdopen(s, "r+");

	if (!f)
		DIE("fdopen");
	fclose(f);
	EXPECT("fdopen-fclose: close after fclose", close(s), -1, EBADF);
}

/* ... and a socket made next takes the number; its close is real. */
static void fdopen_fclose_reuse(void)
{
	int s = sock(), s2;
	FILE *f = fdopen(s, "r+");

	if (!f)
		DIE("fdopen");
	fclose(f);
	s2 = sock();
	CHECK("fdopen-reuse: new socket takes the number", s2 == s,
	      "got %d, want %d", s2, s);
	EXPECT("fdopen-reuse: close of the new socket", close(s2), 0, 0);
	EXPECT("fdopen-reuse: the number is free", fcntl(s2, F_GETFD), -1,
	       EBADF);
}

static void dir_streams(void)
{
	DIR *d = opendir("/");
	int n, fd;

	if (!d)
		DIE("opendir");
	n = dirfd(d);
	closedir(d);
	EXPECT("closedir: close(dirfd) after closedir", close(n), -1, EBADF);
	fd = open("/", O_RDONLY | O_DIRECTORY);
	d = fdopendir(fd);
	if (!d)
		DIE("fdopendir");
	closedir(d);
	EXPECT("fdopendir: close(fd) after closedir", close(fd), -1, EBADF);
}

/* dup2 onto a number a stream owns; fclose then closes the dup. */
static void dup2_onto_stream(void)
{
	int s = sock(), t = sock();
	FILE *f = fdopen(s, "r+");

	if (!f)
		DIE("fdopen");
	EXPECT("dup2-onto-stream: dup2", dup2(t, s), s, 0);
	fclose(f);
	EXPECT("dup2-onto-stream: close after fclose", close(s), -1, EBADF);
	EXPECT("dup2-onto-stream: the source survives", close(t), 0, 0);
}

/*
 * freopen closes the stream's descriptor and opens the new file inside
 * libc, usually on the same number: the socket's epoll registration went
 * with its file, and /dev/null cannot be polled (EPERM).
 */
static void freopen_epoll_del(void)
{
	int ep = epfd(), s = sock();
	FILE *f;

	add(ep, s);
	f = fdopen(s, "r");
	if (!f || !freopen("/dev/null", "r", f))
		DIE("fdopen/freopen");
	CHECK("freopen: same number", fileno(f) == s, "fileno %d, socket %d",
	      fileno(f), s);
	EXPECT("freopen: EPOLL_CTL_DEL of the old socket's number",
	       epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL), -1, EPERM);
	EXPECT("freopen: close of the new file", close(s), 0, 0);
}

/* ------------------------------------------------------------ bulk closes */

static void close_range_then_close(void)
{
	int s = sock();

	EXPECT("close_range: close_range(s, s)", close_range(s, s, 0), 0, 0);
	EXPECT("close_range: close after it", close(s), -1, EBADF);
}

/* closefrom (glibc 2.34) calls close_range inside libc. */
static void closefrom_then_close(void)
{
	int s = sock(), t = sock(), u, sv[2];
	char buf[8];

	e_warm();
	closefrom(s);
	EXPECT("closefrom: close of a socket it closed", close(s), -1, EBADF);
	EXPECT("closefrom: close of another", close(t), -1, EBADF);
	/* the process keeps working */
	u = sock();
	CHECK("closefrom: next socket takes the lowest number", u == s,
	      "got %d, want %d", u, s);
	EXPECT("closefrom: close works after", close(u), 0, 0);
	EXPECT("closefrom: and is real", fcntl(u, F_GETFD), -1, EBADF);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv))
		DIE("socketpair");
	EXPECT("closefrom: write works after", write(sv[0], "ab", 2), 2, 0);
	EXPECT("closefrom: read works after", read(sv[1], buf, 8), 2, 0);
}

static void syscall_close(void)
{
	int s = sock();

	EXPECT("syscall-close: syscall(SYS_close)", syscall(SYS_close, s), 0,
	       0);
	EXPECT("syscall-close: close after it", close(s), -1, EBADF);
}

static void syscall_dup2(void)
{
	int a = sock(), b = sock();

	EXPECT("syscall-dup2: syscall(SYS_dup2)", syscall(SYS_dup2, a, b), b,
	       0);
	EXPECT("syscall-dup2: close of the target", close(b), 0, 0);
	EXPECT("syscall-dup2: again", close(b), -1, EBADF);
	EXPECT("syscall-dup2: the source survives", close(a), 0, 0);
}

/* ------------------------------------------------------------ epoll */

static void epoll_del_self(void)
{
	int ep = epfd();

	EXPECT("epoll-del-self: EPOLL_CTL_DEL of the epoll on itself",
	       epoll_ctl(ep, EPOLL_CTL_DEL, ep, NULL), -1, EINVAL);
}

/* s is in outer, inner is in outer: s is not in inner. */
static void epoll_nested(void)
{
	int outer = epfd(), inner = epfd(), s = sock();

	add(outer, s);
	add(outer, inner);
	EXPECT("epoll-nested: DEL from the inner epoll of the outer's member",
	       epoll_ctl(inner, EPOLL_CTL_DEL, s, NULL), -1, ENOENT);
	EXPECT("epoll-nested: DEL of the inner epoll from the outer",
	       epoll_ctl(outer, EPOLL_CTL_DEL, inner, NULL), 0, 0);
	EXPECT("epoll-nested: DEL of the inner epoll again",
	       epoll_ctl(outer, EPOLL_CTL_DEL, inner, NULL), -1, ENOENT);
	EXPECT("epoll-nested: DEL of the member from the outer",
	       epoll_ctl(outer, EPOLL_CTL_DEL, s, NULL), 0, 0);
}

static void epoll_not_member(void)
{
	int ep = epfd(), ep2 = epfd(), s = sock();

	EXPECT("epoll-not-member: DEL of a socket never added",
	       epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL), -1, ENOENT);
	add(ep, s);
	EXPECT("epoll-not-member: DEL", epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL),
	       0, 0);
	EXPECT("epoll-not-member: DEL again",
	       epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL), -1, ENOENT);
	/* in two sets: DEL from one leaves it in the other */
	add(ep, s);
	add(ep2, s);
	EXPECT("epoll-not-member: DEL from the second set",
	       epoll_ctl(ep2, EPOLL_CTL_DEL, s, NULL), 0, 0);
	EXPECT("epoll-not-member: still in the first",
	       epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL), 0, 0);
	EXPECT("epoll-not-member: now in none",
	       epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL), -1, ENOENT);
}

static void epoll_dup(void)
{
	int ep = epfd(), s = sock(), ep2, t;

	add(ep, s);
	ep2 = dup(ep);
	EXPECT("epoll-dup: DEL through the epoll's dup",
	       epoll_ctl(ep2, EPOLL_CTL_DEL, s, NULL), 0, 0);
	EXPECT("epoll-dup: DEL through the original",
	       epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL), -1, ENOENT);
	/* member dup'd, original closed: (file, s) stays registered, but s
	 * names nothing */
	add(ep, s);
	t = dup(s);
	EXPECT("epoll-dup: close the member", close(s), 0, 0);
	EXPECT("epoll-dup: DEL of the closed number",
	       epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL), -1, EBADF);
	EXPECT("epoll-dup: DEL of the dup (never added)",
	       epoll_ctl(ep, EPOLL_CTL_DEL, t, NULL), -1, ENOENT);
	/* the epoll closed, its dup keeps the set */
	add(ep2, t);
	EXPECT("epoll-dup: close the epoll", close(ep), 0, 0);
	EXPECT("epoll-dup: DEL through the surviving dup",
	       epoll_ctl(ep2, EPOLL_CTL_DEL, t, NULL), 0, 0);
}

static void syscall_epoll_ctl(void)
{
	int ep = epfd(), s = sock();

	add(ep, s);
	EXPECT("syscall-epoll-ctl: syscall(SYS_epoll_ctl, DEL)",
	       syscall(SYS_epoll_ctl, ep, EPOLL_CTL_DEL, s, NULL), 0, 0);
	EXPECT("syscall-epoll-ctl: epoll_ctl DEL after it",
	       epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL), -1, ENOENT);
}

/* ------------------------------------------------------------ shared sets */

static int send_fds(int via, const int *fds, int n, bool mmsg)
{
	char cbuf[CMSG_SPACE(4 * sizeof(int))] = { 0 };
	char byte = 'x';
	struct iovec iov = { &byte, 1 };
	struct msghdr m = { .msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = cbuf,
			    .msg_controllen = CMSG_SPACE(n * sizeof(int)) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(n * sizeof(int));
	memcpy(CMSG_DATA(c), fds, n * sizeof(int));
	if (mmsg) {
		struct mmsghdr mm = { .msg_hdr = m };

		return sendmmsg(via, &mm, 1, 0) == 1 ? 0 : -1;
	}
	return sendmsg(via, &m, 0) == 1 ? 0 : -1;
}

static int recv_fds(int via, int *fds, int n)
{
	char cbuf[CMSG_SPACE(4 * sizeof(int))];
	char byte;
	struct iovec iov = { &byte, 1 };
	struct msghdr m = { .msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c;

	if (recvmsg(via, &m, 0) != 1)
		return -1;
	c = CMSG_FIRSTHDR(&m);
	if (!c || c->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(fds, CMSG_DATA(c), n * sizeof(int));
	return 0;
}

/*
 * A process that was never our fork child receives our epoll (and the
 * member, which it puts on the same number) over a unix socket and takes
 * the member out of the set. Our DEL then finds it gone.
 */
static void shared_by_scm(bool mmsg, const char *name)
{
	int sv[2], ep, s, got[2], res = -1;
	char line[96];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		DIE("socketpair");
	fflush(NULL);
	pid = fork(); /* before the epoll exists: it is ours alone */
	if (pid == 0) {
		int want;

		if (read(sv[1], &want, sizeof(want)) != sizeof(want) ||
		    recv_fds(sv[1], got, 2) || dup2(got[1], want) != want)
			_exit(2);
		res = epoll_ctl(got[0], EPOLL_CTL_DEL, want, NULL);
		_exit(res == 0 ? 0 : 3);
	}
	ep = epfd();
	s = sock();
	add(ep, s);
	if (write(sv[0], &s, sizeof(s)) != sizeof(s) ||
	    send_fds(sv[0], (int[]){ ep, s }, 2, mmsg))
		DIE("send");
	waitpid(pid, &res, 0);
	CHECK(name, WIFEXITED(res) && WEXITSTATUS(res) == 0,
	      "the other process could not DEL (status %#x)", res);
	snprintf(line, sizeof(line), "%s: our DEL after the other's", name);
	EXPECT(line, epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL), -1, ENOENT);
}

static void epoll_shared_sendmsg(void)
{
	shared_by_scm(false, "epoll-shared-sendmsg");
}

static void epoll_shared_sendmmsg(void)
{
	shared_by_scm(true, "epoll-shared-sendmmsg");
}

/* A fork child shares the epoll and takes the member out. */
static void epoll_shared_fork(void)
{
	int ep = epfd(), s = sock(), st;
	pid_t pid;

	add(ep, s);
	fflush(NULL);
	pid = fork();
	if (pid == 0)
		_exit(epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL) == 0 ? 0 : 3);
	waitpid(pid, &st, 0);
	CHECK("epoll-shared-fork: child DEL", st == 0, "status %#x", st);
	EXPECT("epoll-shared-fork: parent DEL after the child's",
	       epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL), -1, ENOENT);
}

/* The same through syscall(SYS_fork), which runs no atfork handler. */
static void epoll_shared_rawfork(void)
{
	int ep = epfd(), s = sock(), st;
	long pid;

	add(ep, s);
	fflush(NULL);
	pid = syscall(SYS_fork);
	if (pid == 0)
		_exit(epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL) == 0 ? 0 : 3);
	waitpid((pid_t)pid, &st, 0);
	CHECK("epoll-shared-rawfork: child DEL", st == 0, "status %#x", st);
	EXPECT("epoll-shared-rawfork: parent DEL after the child's",
	       epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL), -1, ENOENT);
}

/* ... and through _Fork (glibc 2.34: no atfork handlers either). */
static void epoll_shared_Fork(void)
{
	int ep = epfd(), s = sock(), st;
	pid_t pid;

	add(ep, s);
	fflush(NULL);
	pid = _Fork();
	if (pid == 0)
		_exit(epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL) == 0 ? 0 : 3);
	waitpid(pid, &st, 0);
	CHECK("epoll-shared-_Fork: child DEL", st == 0, "status %#x", st);
	EXPECT("epoll-shared-_Fork: parent DEL after the child's",
	       epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL), -1, ENOENT);
}

/* A bad message pointer is EFAULT from the kernel, not a crash in libc. */
static void sendmsg_bad_pointer(void)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv))
		DIE("socketpair");
	EXPECT("sendmsg-bad-pointer: sendmsg",
	       sendmsg(sv[0], (const struct msghdr *)8, MSG_DONTWAIT), -1,
	       EFAULT);
	EXPECT("sendmsg-bad-pointer: sendmmsg",
	       sendmmsg(sv[0], (struct mmsghdr *)8, 1, MSG_DONTWAIT), -1,
	       EFAULT);
}

/* forkpty forks inside libc (its fork runs the atfork handlers). */
static void epoll_shared_forkpty(void)
{
	int ep = epfd(), s = sock(), st, master;
	pid_t pid;

	add(ep, s);
	fflush(NULL);
	pid = forkpty(&master, NULL, NULL, NULL);
	if (pid < 0)
		DIE("forkpty");
	if (pid == 0)
		_exit(epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL) == 0 ? 0 : 3);
	waitpid(pid, &st, 0);
	CHECK("epoll-shared-forkpty: child DEL", st == 0, "status %#x", st);
	EXPECT("epoll-shared-forkpty: parent DEL after the child's",
	       epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL), -1, ENOENT);
}

/* ------------------------------------------------------------ /dev/esca */

/*
 * A daemon closes every descriptor it did not open, then opens its own:
 * the first lands on 3 (its stdio stays 0-2), and the process keeps
 * working, at the speed it had (the shim's own descriptor is the shim's
 * business: closing it must neither break offload nor slow it down).
 */
static void close_everything(void)
{
	int s, sv[2], n = 0;
	long slow = 0;
	char buf[8];
	struct timespec t0, t1, idle = { 0, 20 * 1000 * 1000 };

	e_warm();
	for (int fd = 3; fd < 1024; fd++)
		(void)close(fd);
	s = sock();
	CHECK("close-everything: first socket is 3", s == 3, "got %d", s);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv))
		DIE("socketpair");
	/* idle between calls, so a consumer would sleep and need waking */
	for (int i = 0; i < 8; i++) {
		nanosleep(&idle, NULL);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, &(int){ 1 },
			       sizeof(int)) == 0)
			n++;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if ((t1.tv_sec - t0.tv_sec) * 1000000000L + t1.tv_nsec -
			    t0.tv_nsec >
		    200 * 1000 * 1000L)
			slow++;
	}
	CHECK("close-everything: calls still work", n == 8, "%d of 8 worked",
	      n);
	CHECK("close-everything: calls are not slowed to a crawl", slow == 0,
	      "%ld of 8 calls took over 200 ms", slow);
	EXPECT("close-everything: write", write(sv[0], "ab", 2), 2, 0);
	EXPECT("close-everything: read", read(sv[1], buf, sizeof(buf)), 2, 0);
	EXPECT("close-everything: close", close(s), 0, 0);
	EXPECT("close-everything: close again", close(s), -1, EBADF);
	/* a fork child keeps the descriptors its parent gave it */
	s = sock(); /* takes 3 again */
	fflush(NULL);
	pid_t pid = fork();

	if (pid == 0)
		_exit(fcntl(s, F_GETFD) == -1 ? 3 : 0);
	waitpid(pid, &n, 0);
	CHECK("close-everything: a fork child keeps descriptor 3", n == 0,
	      "child status %#x", n);
}

/* The number /dev/esca has in this process, or -1 (not under the shim). */
static int esca_number(void)
{
	char path[300], target[64];
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int found = -1;

	while (d && (e = readdir(d))) {
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		n = readlink(path, target, sizeof(target) - 1);
		if (n > 0 && (target[n] = 0, !strcmp(target, "/dev/esca")))
			found = atoi(e->d_name);
	}
	if (d)
		closedir(d);
	return found;
}

static long slow_calls(int s)
{
	struct timespec t0, t1, idle = { 0, 20 * 1000 * 1000 };
	long slow = 0;

	for (int i = 0; i < 8; i++) {
		nanosleep(&idle, NULL);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, &(int){ 1 },
			       sizeof(int)))
			slow += 100;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if ((t1.tv_sec - t0.tv_sec) * 1000000000L + t1.tv_nsec -
			    t0.tv_nsec >
		    200 * 1000 * 1000L)
			slow++;
	}
	return slow;
}

/*
 * A program dup2s onto the number the shim's descriptor has (it may: to
 * the program that number is free). The number is then the program's,
 * and the shim keeps working.
 */
static void dup2_onto_esca_fd(void)
{
	int n, s = sock(), after;

	e_warm();
	n = esca_number();
	if (n < 0) {
		CHECK("dup2-onto-esca-fd: no shim descriptor here", 1, "-");
		return;
	}
	EXPECT("dup2-onto-esca-fd: dup2 onto it", dup2(s, n), n, 0);
	after = esca_number();
	CHECK("dup2-onto-esca-fd: the shim's descriptor moved",
	      after >= 0 && after != n, "now at %d", after);
	CHECK("dup2-onto-esca-fd: offloaded calls stay quick",
	      slow_calls(n) == 0, "some failed or took over 200 ms");
	EXPECT("dup2-onto-esca-fd: close of the program's number", close(n), 0,
	       0);
	EXPECT("dup2-onto-esca-fd: closed", fcntl(n, F_GETFD), -1, EBADF);
}

/*
 * close_range(3, ~0U, CLOSE_RANGE_UNSHARE): a new descriptor table, with
 * everything from 3 closed. The shim keeps working (its ring dies with the
 * old table and a new one registers).
 */
static void close_range_unshare(void)
{
	int s = sock(), sv[2];
	char buf[4];

	e_warm();
	EXPECT("close-range-unshare: close_range",
	       close_range(3, ~0u, CLOSE_RANGE_UNSHARE), 0, 0);
	EXPECT("close-range-unshare: closed", fcntl(s, F_GETFD), -1, EBADF);
	EXPECT("close-range-unshare: close of it", close(s), -1, EBADF);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv))
		DIE("socketpair");
	CHECK("close-range-unshare: new descriptors from 3", sv[0] == 3,
	      "got %d", sv[0]);
	EXPECT("close-range-unshare: write", write(sv[0], "ab", 2), 2, 0);
	EXPECT("close-range-unshare: read", read(sv[1], buf, 4), 2, 0);
	s = sock();
	CHECK("close-range-unshare: offloaded calls stay quick",
	      slow_calls(s) == 0, "some failed or took over 200 ms");
	EXPECT("close-range-unshare: close", close(s), 0, 0);
	EXPECT("close-range-unshare: close again", close(s), -1, EBADF);
}

/*
 * The classic daemon start: stdio closed, then /dev/null opened on 0, 1
 * and 2. A call the shim offloads in between must not take those numbers.
 */
static void reopen_stdio(void)
{
	int keep = dup(1), fd, fd1, fd2;

	fflush(NULL);
	close_range(0, 2, 0);
	(void)write(-1, "", 0); /* offloadable: may set the shim up */
	fd = open("/dev/null", O_RDWR);
	fd1 = dup(fd);
	fd2 = dup(fd);
	dup2(keep, 1); /* our stdout back, to report */
	CHECK("reopen-stdio: /dev/null lands on 0, 1, 2",
	      fd == 0 && fd1 == 1 && fd2 == 2, "got %d, %d, %d", fd, fd1, fd2);
}

static const struct e_case cases[] = {
	E_CASE(fdopen_fclose),
	E_CASE(fdopen_fclose_reuse),
	E_CASE(dir_streams),
	E_CASE(dup2_onto_stream),
	E_CASE(freopen_epoll_del),
	E_CASE(close_range_then_close),
	E_CASE(closefrom_then_close),
	E_CASE(syscall_close),
	E_CASE(syscall_dup2),
	E_CASE(epoll_del_self),
	E_CASE(epoll_nested),
	E_CASE(epoll_not_member),
	E_CASE(epoll_dup),
	E_CASE(syscall_epoll_ctl),
	E_CASE(epoll_shared_sendmsg),
	E_CASE(epoll_shared_sendmmsg),
	E_CASE(epoll_shared_fork),
	E_CASE(epoll_shared_rawfork),
	E_CASE(epoll_shared_Fork),
	E_CASE(epoll_shared_forkpty),
	E_CASE(sendmsg_bad_pointer),
	E_CASE(close_everything),
	E_CASE(reopen_stdio),
	E_CASE(dup2_onto_esca_fd),
	E_CASE(close_range_unshare),
};

int main(int argc, char **argv)
{
	return e_main(cases, E_NCASES(cases), argc, argv);
}
