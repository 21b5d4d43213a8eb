/* SPDX-License-Identifier: MIT */
/*
 * Guest test helpers: one test per behaviour, exit 0 (pass), 1 (fail) or
 * 77 (skip, only on a named kernel answer). CHECK records and continues.
 */
#ifndef ESCA_T_H
#define ESCA_T_H

#define _GNU_SOURCE
#include <errno.h>
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

#endif
