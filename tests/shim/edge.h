/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the shim's edge-case tests (t-edge-*.c). Each test asserts
 * what Linux itself does, so the same binary must print only PASS lines
 * run directly and run under LD_PRELOAD=libesca-preload.so: any FAIL
 * under the shim is a difference a program could see.
 *
 * Every case runs in a forked child of its own: a fresh, single-threaded
 * process (the shim defers only then), whose descriptors and crashes
 * cannot disturb the next case. Output: "PASS name" / "FAIL name: why",
 * then "# N cases, N failed"; exit 0 iff nothing failed.
 */
#ifndef ESCA_TESTS_SHIM_EDGE_H
#define ESCA_TESTS_SHIM_EDGE_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int e_failed; /* in the case's child */

static void e_line(const char *verdict, const char *name, const char *why)
{
	printf("%s %s%s%s\n", verdict, name, why ? ": " : "", why ? why : "");
	fflush(stdout);
}

#define CHECK(name, cond, ...)                                     \
	do {                                                       \
		if (cond) {                                        \
			e_line("PASS", name, NULL);                \
		} else {                                           \
			char why_[512];                            \
			snprintf(why_, sizeof(why_), __VA_ARGS__); \
			e_failed++;                                \
			e_line("FAIL", name, why_);                \
		}                                                  \
	} while (0)

static inline const char *e_errname(int e)
{
	const char *n = strerrorname_np(e);

	return n ? n : "?";
}

/*
 * A libc call's result against the one Linux gives: want_r, and when that
 * is -1, errno want_err. errno is read right after the call.
 */
#define EXPECT(name, expr, want_r, want_err)                               \
	do {                                                               \
		long r_, w_ = (want_r);                                    \
		int e_;                                                    \
		errno = 0;                                                 \
		r_ = (long)(expr);                                         \
		e_ = errno;                                                \
		CHECK(name, r_ == w_ && (w_ != -1 || e_ == (want_err)),    \
		      "%s gave %ld (%s), Linux gives %ld (%s)", #expr, r_, \
		      r_ == -1 ? e_errname(e_) : "ok", w_,                 \
		      w_ == -1 ? e_errname(want_err) : "ok");              \
	} while (0)

#define DIE(...)                                                             \
	do {                                                                 \
		fprintf(stdout, "FAIL setup (%s:%d): ", __FILE__, __LINE__); \
		fprintf(stdout, __VA_ARGS__);                                \
		fprintf(stdout, " (errno %s)\n", e_errname(errno));          \
		exit(2);                                                     \
	} while (0)

struct e_case {
	const char *name;
	void (*fn)(void);
};

/* Run @fn in a fresh child; 1 if it failed or died. */
static int e_run(const struct e_case *c)
{
	int st;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		DIE("fork");
	if (pid == 0) {
		e_failed = 0;
		c->fn();
		/* exit, not _exit: the shim's ESCA_STATS line per case */
		exit(e_failed ? 1 : 0);
	}
	if (waitpid(pid, &st, 0) != pid)
		DIE("waitpid");
	if (WIFSIGNALED(st)) {
		char why[64];

		snprintf(why, sizeof(why), "killed by signal %d (%s)",
			 WTERMSIG(st), strsignal(WTERMSIG(st)));
		e_line("FAIL", c->name, why);
		return 1;
	}
	return WEXITSTATUS(st) != 0;
}

/* Run the cases named on the command line, or all; the exit status. */
static int e_main(const struct e_case *cases, int n, int argc, char **argv)
{
	int failed = 0, ran = 0;

	/* a peer that went away must show as EPIPE, not kill the test */
	signal(SIGPIPE, SIG_IGN);
	for (int i = 0; i < n; i++) {
		bool want = argc < 2;

		for (int a = 1; a < argc; a++)
			if (!strcmp(argv[a], cases[i].name))
				want = true;
		if (!want)
			continue;
		ran++;
		failed += e_run(&cases[i]);
	}
	printf("# %d cases, %d failed\n", ran, failed);
	return failed ? 1 : 0;
}

#define E_CASE(fn)      \
	{               \
#fn, fn \
	}
#define E_NCASES(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* A connected TCP pair over loopback, both ends non-blocking. */
static inline void tcp_pair(int *a, int *b)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int l = socket(AF_INET, SOCK_STREAM, 0);

	if (l < 0 || bind(l, (struct sockaddr *)&sin, sizeof(sin)) ||
	    listen(l, 1) || getsockname(l, (struct sockaddr *)&sin, &len))
		DIE("listen");
	*a = socket(AF_INET, SOCK_STREAM, 0);
	if (*a < 0 || connect(*a, (struct sockaddr *)&sin, sizeof(sin)))
		DIE("connect");
	*b = accept4(l, NULL, NULL, SOCK_NONBLOCK);
	if (*b < 0 || fcntl(*a, F_SETFL, O_NONBLOCK))
		DIE("accept");
	close(l);
}

/*
 * Make the shim set itself up (open /dev/esca, register this thread)
 * before a case starts counting descriptors: close(-1) is offloadable and
 * fails the same everywhere.
 */
static inline void e_warm(void)
{
	(void)close(-1);
}

#endif /* ESCA_TESTS_SHIM_EDGE_H */
