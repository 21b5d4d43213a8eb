// SPDX-License-Identifier: MIT
/*
 * A program built with -D_FORTIFY_SOURCE=2 -O2 calls the _chk variants
 * (__read_chk, __recv_chk, __recvfrom_chk, __pread64_chk, __poll_chk)
 * wherever the compiler knows the buffer's size but not the length: the
 * shim must offload them like the plain calls, and abort the way glibc
 * does when the length overruns the buffer.
 *
 *   t-edge-fortify [CASE...]     (see edge.h)
 */
#undef _FORTIFY_SOURCE
#define _FORTIFY_SOURCE 2
#define _GNU_SOURCE
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>

#include "edge.h"

#if !defined(__OPTIMIZE__)
#error "_FORTIFY_SOURCE needs optimisation: build with -O2"
#endif

/* The length comes from memory the compiler cannot see through. */
static volatile size_t len8 = 8, len_over = 17;
static volatile nfds_t two = 2, three = 3;

static void wait_readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	poll(&p, 1, 1000);
}

static void chk_calls(void)
{
	char buf[16], data[8] = "abcdefg";
	struct pollfd pfd[2];
	int pp[2], a, b, f;

	if (pipe2(pp, O_NONBLOCK))
		DIE("pipe2");
	tcp_pair(&a, &b);
	EXPECT("fortify: write to the pipe", write(pp[1], data, 8), 8, 0);
	EXPECT("fortify: __read_chk", read(pp[0], buf, len8), 8, 0);
	CHECK("fortify: __read_chk bytes", !memcmp(buf, data, 8), "wrong");
	EXPECT("fortify: __read_chk on empty", read(pp[0], buf, len8), -1,
	       EAGAIN);
	EXPECT("fortify: send", send(a, data, 8, 0), 8, 0);
	wait_readable(b);
	EXPECT("fortify: __recv_chk", recv(b, buf, len8, 0), 8, 0);
	EXPECT("fortify: send again", send(a, data, 8, 0), 8, 0);
	wait_readable(b);
	EXPECT("fortify: __recvfrom_chk", recvfrom(b, buf, len8, 0, NULL, NULL),
	       8, 0);
	f = open("/proc/self/exe", O_RDONLY);
	EXPECT("fortify: __pread_chk", pread(f, buf, len8, 1), 8, 0);
	CHECK("fortify: __pread_chk bytes", !memcmp(buf, "ELF", 3), "read %.3s",
	      buf);
	pfd[0] = (struct pollfd){ .fd = pp[1], .events = POLLOUT };
	pfd[1] = (struct pollfd){ .fd = b, .events = POLLIN };
	EXPECT("fortify: __poll_chk", poll(pfd, two, 0), 1, 0);
}

/* Overrunning the buffer aborts with glibc's message, in a child. */
static void overrun(const char *name, int which)
{
	int ep[2], st, pp[2];
	char err[256] = "";
	ssize_t n;
	pid_t pid;

	if (pipe(ep) || pipe2(pp, O_NONBLOCK))
		DIE("pipe");
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		char buf[16];
		struct pollfd pfd[2] = { { .fd = pp[0] }, { .fd = pp[0] } };

		dup2(ep[1], 2);
		long r;

		if (which == 0)
			r = read(pp[0], buf, len_over);
		else if (which == 1)
			r = recv(pp[0], buf, len_over, 0);
		else if (which == 2)
			r = pread(pp[0], buf, len_over, 0);
		else
			r = poll(pfd, three, 0);
		_exit(r == -12345); /* not reached */
	}
	close(ep[1]);
	n = read(ep[0], err, sizeof(err) - 1);
	err[n > 0 ? n : 0] = 0;
	waitpid(pid, &st, 0);
	CHECK(name,
	      WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT &&
		      strstr(err, "buffer overflow detected"),
	      "status %#x, stderr: %s", st, err);
}

static void chk_overrun(void)
{
	overrun("fortify-overrun: read", 0);
	overrun("fortify-overrun: recv", 1);
	overrun("fortify-overrun: pread", 2);
	overrun("fortify-overrun: poll", 3);
}

static const struct e_case cases[] = {
	E_CASE(chk_calls),
	E_CASE(chk_overrun),
};

int main(int argc, char **argv)
{
	return e_main(cases, E_NCASES(cases), argc, argv);
}
