// SPDX-License-Identifier: MIT
/*
 * tools/esca-stat end to end: the built binary ($ESCA_STAT, default
 * build/bin/esca-stat, run from the repo root) on a sample counters file
 * must print tests/unit/data/stats-expected.txt byte for byte; errors and
 * misuse must give the documented exit codes. A missing binary is a failure.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unit.h"
#include "runbin.h"

#define SAMPLE "tests/unit/data/stats-sample.txt"
#define EXPECTED "tests/unit/data/stats-expected.txt"
#define NOFILE_MSG "esca-stat: cannot read /nonexistent: "

static size_t count_lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* Where do @a and @b first differ? Line number, for the message. */
static size_t first_diff_line(const char *a, const char *b)
{
	size_t line = 1;

	for (; *a && *a == *b; a++, b++)
		line += *a == '\n';
	return line;
}

int main(void)
{
	const char *bin = getenv("ESCA_STAT");
	struct run r;
	FILE *f;
	char *want;
	size_t want_len;

	if (!bin || !*bin)
		bin = "build/bin/esca-stat";
	if (access(bin, X_OK)) {
		printf("# no esca-stat at %s (make builds it)\n", bin);
		return 1;
	}
	f = fopen(EXPECTED, "r");
	if (!CHECK(f, "cannot open %s: run from the repo root", EXPECTED))
		return unit_done();
	want = slurp(f, &want_len);
	fclose(f);

	/* the sample, byte for byte */
	r = run_bin(bin, (const char *const[]){ "--file", SAMPLE, NULL });
	CHECK(r.status == 0, "--file %s: exit %d, want 0; stderr: %s", SAMPLE,
	      r.status, r.err);
	CHECK(r.out_len == want_len && !memcmp(r.out, want, want_len),
	      "--file %s: output differs from %s at line %zu; got:\n%s", SAMPLE,
	      EXPECTED, first_diff_line(r.out, want), r.out);
	CHECK(r.err_len == 0, "--file %s: stderr not empty: %s", SAMPLE, r.err);
	run_free(&r);

	/* repeated: a timestamp line, then the same report, twice */
	r = run_bin(bin,
		    (const char *const[]){ "--file", SAMPLE, "--count", "2",
					   "--interval", "0.01", NULL });
	CHECK(r.status == 0, "--count 2: exit %d, want 0", r.status);
	{
		char *p = r.out, *nl;
		int reports = 0;

		while (!strncmp(p, "=== ", 4) && (nl = strchr(p, '\n'))) {
			p = nl + 1;
			if (!CHECK(!strncmp(p, want, want_len),
				   "--count 2: report %d differs", reports + 1))
				break;
			p += want_len;
			reports++;
			if (*p == '\n')
				p++;
		}
		CHECK(reports == 2 && !*p,
		      "--count 2: %d timestamped reports, want 2; got:\n%s",
		      reports, r.out);
	}
	run_free(&r);

	/* -v: the phases table, per batch and per call, from the same file */
	r = run_bin(bin, (const char *const[]){ "-v", "--file", SAMPLE, NULL });
	CHECK(r.status == 0 && !strncmp(r.out, want, want_len),
	      "-v: exit %d, want 0 and the plain report first; got:\n%s",
	      r.status, r.out);
	CHECK(strstr(r.out,
		     "\n    1       5000     120034      100      200"
		     "       50       50      100       10      175\n") &&
		      strstr(r.out, "\n    3          0          0        -"),
	      "-v: phases rows wrong (want ns per batch and per call); got:\n%s",
	      r.out);
	run_free(&r);

	/* a missing file: exit 1, one line on stderr, nothing on stdout */
	r = run_bin(bin,
		    (const char *const[]){ "--file", "/nonexistent", NULL });
	CHECK(r.status == 1, "--file /nonexistent: exit %d, want 1", r.status);
	CHECK(count_lines(r.err) == 1 && r.err[r.err_len - 1] == '\n' &&
		      !strncmp(r.err, NOFILE_MSG, strlen(NOFILE_MSG)),
	      "--file /nonexistent: stderr should be one line, got: %s", r.err);
	CHECK(r.out_len == 0, "--file /nonexistent: stdout: %s", r.out);
	run_free(&r);

	/* misuse: usage on stderr, exit 2 */
	r = run_bin(bin, (const char *const[]){ "--bogus", NULL });
	CHECK(r.status == 2, "--bogus: exit %d, want 2", r.status);
	CHECK(strstr(r.err, "usage:") && r.out_len == 0,
	      "--bogus: want usage on stderr only; stdout: %s stderr: %s",
	      r.out, r.err);
	run_free(&r);

	r = run_bin(bin, (const char *const[]){ "--count", "0", NULL });
	CHECK(r.status == 2, "--count 0: exit %d, want 2", r.status);
	run_free(&r);

	/* help: usage on stdout, exit 0 */
	r = run_bin(bin, (const char *const[]){ "--help", NULL });
	CHECK(r.status == 0 && !strncmp(r.out, "usage:", 6) && !r.err_len,
	      "--help: exit %d, stdout: %s", r.status, r.out);
	run_free(&r);

	free(want);
	return unit_done();
}
