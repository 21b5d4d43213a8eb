/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the shim's rule tests (tests/shim/t-*.c). Each test is a
 * plain libc program: it runs directly and under LD_PRELOAD, prints one
 * PASS or FAIL line per property and exits 0 (all passed) or 1.
 *
 * ESCA_SHIMTEST_BREAK=1 makes a test break its own property on purpose
 * (each test says how): it must then print FAIL and exit 1, which shows
 * that its checks can fail.
 */
#ifndef ESCA_SHIMTEST_H
#define ESCA_SHIMTEST_H

#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ST_UNUSED __attribute__((unused))

static int st_failed, st_passed;
static const char *st_name = "test";

static void __attribute__((format(printf, 2, 3)))
st_result(bool ok, const char *fmt, ...)
{
	va_list ap;

	printf("%s %s: ", ok ? "PASS" : "FAIL", st_name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	if (ok)
		st_passed++;
	else
		st_failed++;
}

/* Stop the test: the setup itself failed. */
#define ST_DIE(...)                                                    \
	do {                                                           \
		printf("FAIL %s: setup: ", st_name);                   \
		printf(__VA_ARGS__);                                   \
		printf(" (%s, line %d)\n", strerror(errno), __LINE__); \
		exit(1);                                               \
	} while (0)

static ST_UNUSED bool st_break(void)
{
	const char *b = getenv("ESCA_SHIMTEST_BREAK");

	return b && *b && strcmp(b, "0");
}

/* Is the shim mapped into this process? (Information only.) */
static bool st_shim_loaded(void)
{
	char line[512];
	bool yes = false;
	FILE *f = fopen("/proc/self/maps", "r");

	if (!f)
		return false;
	while (!yes && fgets(line, sizeof(line), f))
		yes = strstr(line, "libesca-preload") != NULL;
	fclose(f);
	return yes;
}

static ST_UNUSED double st_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void st_start(const char *name)
{
	st_name = name;
	printf("# %s: shim %s%s\n", name,
	       st_shim_loaded() ? "loaded" : "not loaded",
	       st_break() ? ", breaking the property on purpose" : "");
	fflush(stdout);
}

static int st_end(void)
{
	printf("# %s: %d passed, %d failed\n", st_name, st_passed, st_failed);
	return st_failed ? 1 : 0;
}

/* The byte at position @i of stream @stream: data that shows where it
 * came from, so a lost, doubled or misplaced piece is caught. */
static inline uint8_t st_byte(uint64_t stream, uint64_t i)
{
	uint64_t z = stream * 0x9e3779b97f4a7c15ull + i;

	z = (z ^ (z >> 29)) * 0xbf58476d1ce4e5b9ull;
	return (uint8_t)(z ^ (z >> 32));
}

static inline void st_fill(uint8_t *p, size_t n, uint64_t stream, uint64_t at)
{
	for (size_t i = 0; i < n; i++)
		p[i] = st_byte(stream, at + i);
}

/* Where @p (n bytes of stream @stream from @at) first differs, or -1. */
static inline long st_mismatch(const uint8_t *p, size_t n, uint64_t stream,
			       uint64_t at)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != st_byte(stream, at + i))
			return (long)i;
	return -1;
}

/* A connected TCP loopback pair: fds[0] connected, fds[1] accepted. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

static inline int st_tcp_pair(int fds[2])
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof(a);
	int l, one = 1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(l, 4) < 0 || getsockname(l, (struct sockaddr *)&a, &al) < 0)
		goto fail;
	fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fds[0] < 0 || connect(fds[0], (struct sockaddr *)&a, al) < 0)
		goto fail;
	fds[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (fds[1] < 0)
		goto fail;
	close(l);
	setsockopt(fds[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fds[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return 0;
fail:
	if (l >= 0)
		close(l);
	return -1;
}

#endif
