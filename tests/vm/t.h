/* SPDX-License-Identifier: MIT */
/*
 * Guest test helpers: one test per behaviour, exit 0 (pass), 1 (fail) or
 * 77 (skip, only on a named kernel answer). CHECK records and continues.
 */
#ifndef ESCA_T_H
#define ESCA_T_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

#include "esca/esca.h"

static int t_failed, t_checks;

#define CHECK(cond, ...)                                              \
	do {                                                          \
		t_checks++;                                           \
		if (!(cond)) {                                        \
			t_failed++;                                   \
			fprintf(stderr, "%s:%d: FAIL %s: ", __FILE__, \
				__LINE__, #cond);                     \
			fprintf(stderr, __VA_ARGS__);                 \
			fputc('\n', stderr);                          \
		}                                                     \
	} while (0)

/* Same result offloaded as direct, and the one expected. */
#define SAME(what, d, o, want)                                             \
	do {                                                               \
		long d_ = (d), o_ = (o), w_ = (want);                      \
		CHECK(d_ == o_ && d_ == w_,                                \
		      "%s: direct %ld (%s), offloaded %ld (%s), want %ld", \
		      what, d_, d_ < 0 ? strerror((int)-d_) : "ok", o_,    \
		      o_ < 0 ? strerror((int)-o_) : "ok", w_);             \
	} while (0)

#define DIE(...)                                        \
	do {                                            \
		fprintf(stderr, "FATAL: " __VA_ARGS__); \
		fputc('\n', stderr);                    \
		exit(1);                                \
	} while (0)

static inline int t_done(const char *name)
{
	printf("# %s: %d checks, %d failed\n", name, t_checks, t_failed);
	return t_failed ? 1 : 0;
}

/* The number at the start of file @path (a module parameter, a cgroup
 * counter); -1 if it cannot be read. */
static inline long t_read_long(const char *path)
{
	char buf[64] = "";
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? strtol(buf, NULL, 10) : -1;
}

/* Write @v to file @path; 0 or -errno. */
static inline long t_write_long(const char *path, long v)
{
	char buf[32];
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	int n = snprintf(buf, sizeof(buf), "%ld\n", v);
	long r;

	if (fd < 0)
		return -errno;
	r = write(fd, buf, (size_t)n) == n ? 0 : -errno;
	close(fd);
	return r;
}

/* The module is loaded in the guest: offload must be on. */
static inline void t_need_offload(void)
{
	if (esca_init() < 0 || !esca_active())
		DIE("offload is not active (is esca.ko loaded?)");
}

#define D6(nr, a, b, c, d, e, f)                                               \
	esca_direct(nr, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), \
		    (long)(f))
#define O6(nr, a, b, c, d, e, f)                                             \
	esca_call(nr, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), \
		  (long)(f))

/* Read a "key=value" number from the /proc/esca/stats line that starts
 * with @prefix (e.g. "esca " or "context pid=123 "); -1 if absent. */
static inline long t_stat(const char *prefix, const char *key)
{
	char line[512], k[64];
	long v = -1;
	FILE *f = fopen("/proc/esca/stats", "r");

	if (!f)
		return -1;
	snprintf(k, sizeof(k), " %s=", key);
	while (fgets(line, sizeof(line), f)) {
		char *p;

		if (strncmp(line, prefix, strlen(prefix)))
			continue;
		p = strstr(line, k);
		if (p) {
			v = strtol(p + strlen(k), NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

/*
 * Read counter @key ("calls", "bounced", "rings", ...) from the context line
 * of process @pid in /proc/esca/stats ("context pid=N uid=N ... calls=N
 * bounced=N"); -1 if there is no such line (not registered, or not visible
 * to this reader: an unprivileged reader sees only its own uid's contexts).
 */
static inline long t_ctx(pid_t pid, const char *key)
{
	char line[512], want[32], k[64];
	long v = -1;
	FILE *f = fopen("/proc/esca/stats", "r");

	if (!f)
		return -1;
	snprintf(want, sizeof(want), " pid=%d ", (int)pid);
	snprintf(k, sizeof(k), " %s=", key);
	while (fgets(line, sizeof(line), f)) {
		char *p;

		if (strncmp(line, "context ", 8) ||
		    !strstr(line + 7, want)) /* " pid=" right after "context" */
			continue;
		p = strstr(line, k);
		if (p)
			v = strtol(p + strlen(k), NULL, 10);
		break;
	}
	fclose(f);
	return v;
}

/*
 * The consumer adds a batch to the counters just after it publishes the
 * batch's completions, so a caller that saw its last result may read the
 * counter a moment early: poll (at most 2 s, a hang guard) until @key of
 * @pid reaches @min, and return what it last read.
 */
static inline long t_ctx_wait(pid_t pid, const char *key, long min)
{
	long v = t_ctx(pid, key);

	for (int i = 0; i < 200 && v < min; i++) {
		usleep(10000);
		v = t_ctx(pid, key);
	}
	return v;
}

/*
 * Offload proof: snapshot the caller's context counters before a block of
 * calls, then CHECK afterwards that `calls` rose by at least @offloaded
 * and `bounced` by exactly @bounced. A library that silently went direct
 * leaves `calls` where it was.
 */
struct t_counts {
	long calls, bounced;
};

static inline struct t_counts t_counts_now(void)
{
	struct t_counts c = { t_ctx(getpid(), "calls"),
			      t_ctx(getpid(), "bounced") };

	return c;
}

#define T_OFFLOADED(what, before, offloaded, nbounced)                        \
	do {                                                                  \
		long dc_ = t_ctx_wait(getpid(), "calls",                      \
				      (before).calls + (offloaded)) -         \
			   (before).calls;                                    \
		long db_;                                                     \
		(void)t_ctx_wait(getpid(), "bounced",                         \
				 (before).bounced + (nbounced));              \
		usleep(20000); /* a stray late bounce would show by now */    \
		db_ = t_ctx(getpid(), "bounced") - (before).bounced;          \
		CHECK((before).calls >= 0 && dc_ >= (offloaded),              \
		      "%s: context calls rose by %ld, want >= %ld offloaded", \
		      what, dc_, (long)(offloaded));                          \
		CHECK((before).bounced >= 0 && db_ == (nbounced),             \
		      "%s: context bounced rose by %ld, want %ld", what, db_, \
		      (long)(nbounced));                                      \
	} while (0)

#endif
