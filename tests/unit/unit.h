/* SPDX-License-Identifier: MIT */
/*
 * Tiny helpers for host unit tests. A test is a program: exit 0 pass,
 * 1 fail, 77 skip (UNIT_SKIP). CHECK() records a failure and goes on, so
 * one run reports every broken check; end main() with `return unit_done();`.
 * CHECK may be used from several threads at once.
 */
#ifndef ESCA_UNIT_H
#define ESCA_UNIT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

#define UNIT_SKIP 77

static unsigned long unit_checks, unit_failed;

static inline bool unit_check(bool ok, const char *file, int line,
			      const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static inline bool unit_check(bool ok, const char *file, int line,
			      const char *fmt, ...)
{
	char msg[4096];
	va_list ap;

	__atomic_add_fetch(&unit_checks, 1, __ATOMIC_RELAXED);
	if (ok)
		return true;
	__atomic_add_fetch(&unit_failed, 1, __ATOMIC_RELAXED);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fflush(stdout); /* keep the test's own output in order */
	fprintf(stderr, "%s:%d: FAIL: %s\n", file, line, msg);
	return false;
}

/*
 * CHECK(cond, fmt, ...): count a check; on failure print file:line and the
 * message, then carry on. Evaluates to cond, so `if (!CHECK(...)) break;`.
 */
#define CHECK(cond, ...) unit_check(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

/* Print the tally; returns the test's exit code (0 passed, 1 failed). */
static inline int unit_done(void)
{
	unsigned long n = __atomic_load_n(&unit_checks, __ATOMIC_RELAXED);
	unsigned long f = __atomic_load_n(&unit_failed, __ATOMIC_RELAXED);

	printf("# %lu checks, %lu failed\n", n, f);
	fflush(stdout);
	return f ? 1 : 0;
}

#endif /* ESCA_UNIT_H */
