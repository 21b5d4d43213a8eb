// SPDX-License-Identifier: MIT
/*
 * esca-stat: print the esca module's counters (/proc/esca/stats) as tables.
 *
 * Input: one record per line, a leading word then space-separated key=value
 * pairs. "esca" is the summary, "consumer" and "context" rows go to their
 * tables, "phases" rows (with -v) to a table of time per batch and per
 * call; other leading words are ignored, unknown keys are shown as is.
 */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_FILE "/proc/esca/stats"
#define MAX_KV 64 /* pairs kept per line; the rest are dropped */

enum kind { K_ESCA, K_CONSUMER, K_CONTEXT, K_PHASES, K_NR };

struct rec {
	enum kind kind;
	int n;
	char *key[MAX_KV];
	char *val[MAX_KV];
};

static const char *const kind_word[K_NR] = { "esca", "consumer", "context",
					     "phases" };
static bool verbose;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: esca-stat [-v] [--file PATH] [--interval SEC] [--count N]\n"
		"Print the esca module's counters as tables.\n"
		"  -v, --verbose   also where the consumers' time goes, per "
		"phase\n"
		"  --file PATH     read PATH instead of " DEFAULT_FILE "\n"
		"  --interval SEC  seconds between reports (default 1 if "
		"--count > 1)\n"
		"  --count N       print N reports, each with a timestamp "
		"(default 1)\n"
		"  -h, --help      show this help\n");
}

/* Whole file as one NUL-terminated string; NULL with errno set on failure. */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t cap = 0;
	int err;

	if (!f)
		return NULL;
	/* /proc files have no NUL in them: this reads to EOF */
	if (getdelim(&buf, &cap, '\0', f) < 0) {
		err = ferror(f) ? errno : 0;
		free(buf);
		buf = err ? NULL : strdup("");
		errno = err ? err : ENOMEM;
	}
	fclose(f);
	return buf;
}

/* Split @buf in place into records; returns how many went into @out. */
static int parse(char *buf, struct rec **out)
{
	char *line, *lsave, *tok, *tsave;
	struct rec *recs = NULL, *nr;
	int n = 0, k;

	for (line = strtok_r(buf, "\n", &lsave); line;
	     line = strtok_r(NULL, "\n", &lsave)) {
		tok = strtok_r(line, " \t\r", &tsave);
		for (k = 0; tok && k < K_NR && strcmp(tok, kind_word[k]); k++)
			;
		if (!tok || k == K_NR)
			continue; /* blank line or unknown leading word */
		nr = realloc(recs, (n + 1) * sizeof(*recs));
		if (!nr) {
			perror("esca-stat");
			exit(1);
		}
		recs = nr;
		recs[n].kind = k;
		recs[n].n = 0;
		while ((tok = strtok_r(NULL, " \t\r", &tsave))) {
			char *eq = strchr(tok, '=');

			if (!eq || eq == tok || recs[n].n == MAX_KV)
				continue;
			*eq = '\0';
			recs[n].key[recs[n].n] = tok;
			recs[n].val[recs[n].n++] = eq + 1;
		}
		n++;
	}
	*out = recs;
	return n;
}

/* A decimal u64: digits only, in range. */
static bool is_num(const char *s, unsigned long long *v)
{
	for (const char *p = s; *p; p++)
		if (!isdigit((unsigned char)*p))
			return false;
	errno = 0;
	*v = strtoull(s, NULL, 10);
	return *s && !errno;
}

static const char *lookup(const struct rec *r, const char *key)
{
	for (int i = 0; i < r->n; i++)
		if (!strcmp(r->key[i], key))
			return r->val[i];
	return NULL;
}

static void summary(const struct rec *recs, int n)
{
	const char *sep = " ";

	for (int i = 0; i < n; i++) {
		const struct rec *r = &recs[i];

		if (r->kind != K_ESCA)
			continue;
		printf("esca:");
		for (int j = 0; j < r->n; j++, sep = ", ") {
			const char *k = r->key[j], *v = r->val[j];

			if (!strcmp(k, "abi"))
				printf("%sABI %s", sep, v);
			else if (!strcmp(k, "consumers"))
				printf("%s%s consumer(s)", sep, v);
			else if (!strcmp(k, "live_contexts"))
				printf("%s%s live context(s)", sep, v);
			else
				printf("%s%s=%s", sep, k, v);
		}
		printf("\n");
		return;
	}
	printf("esca: (no summary record)\n");
}

struct table {
	int ncol;
	const char *col[MAX_KV];
	int width[MAX_KV];
	bool num[MAX_KV]; /* every value a decimal u64: right-aligned */
	bool summed[MAX_KV];
	char sum[MAX_KV][24];
};

/* Column @c of record @r, or of the TOTAL row if @r is NULL. */
static const char *cell(const struct table *t, const struct rec *r, int c)
{
	const char *s;

	if (!r)
		return c == 0 ? "TOTAL" : t->summed[c] ? t->sum[c] : "";
	s = lookup(r, t->col[c]);
	return s ? s : "-";
}

/* A row of the table (the header if @hdr); no trailing blanks. */
static void row(const struct table *t, const struct rec *r, bool hdr)
{
	for (int c = 0; c < t->ncol; c++) {
		const char *s = hdr ? t->col[c] : cell(t, r, c);
		int pad = t->width[c] - (int)strlen(s);

		printf("%*s", c ? 2 : 0, "");
		if (t->num[c])
			printf("%*s", pad, "");
		for (; *s; s++)
			putchar(hdr ? toupper((unsigned char)*s) : *s);
		if (!t->num[c] && c < t->ncol - 1)
			printf("%*s", pad, "");
	}
	printf("\n");
}

/*
 * Columns are the keys in order of first appearance. The TOTAL row sums
 * numeric columns except cpu, pid and the first, which holds its label.
 */
static void table(const char *title, enum kind kind, const struct rec *recs,
		  int n)
{
	struct table t = { .ncol = 0 };
	unsigned long long acc, v;
	int nrow = 0, c, i, j;
	bool ovf;

	for (i = 0; i < n; i++) {
		if (recs[i].kind != kind)
			continue;
		nrow++;
		for (j = 0; j < recs[i].n; j++) {
			for (c = 0;
			     c < t.ncol && strcmp(t.col[c], recs[i].key[j]);
			     c++)
				;
			if (c == t.ncol && t.ncol < MAX_KV)
				t.col[t.ncol++] = recs[i].key[j];
		}
	}
	printf("\n%s:\n", title);
	if (!nrow) {
		printf("(none)\n");
		return;
	}
	for (c = 0; c < t.ncol; c++) {
		const char *s;

		t.num[c] = true;
		acc = 0;
		ovf = false;
		for (i = 0; i < n; i++) {
			if (recs[i].kind != kind ||
			    !(s = lookup(&recs[i], t.col[c])))
				continue;
			if (!is_num(s, &v))
				t.num[c] = false;
			else if (acc > ULLONG_MAX - v)
				ovf = true;
			else
				acc += v;
		}
		t.summed[c] = t.num[c] && c > 0 && strcmp(t.col[c], "cpu") &&
			      strcmp(t.col[c], "pid");
		snprintf(t.sum[c], sizeof(t.sum[c]), ovf ? "overflow" : "%llu",
			 acc);
		t.width[c] = strlen(t.col[c]);
		for (i = 0; i <= n; i++) {
			if (i < n && recs[i].kind != kind)
				continue;
			s = cell(&t, i < n ? &recs[i] : NULL, c);
			if ((int)strlen(s) > t.width[c])
				t.width[c] = strlen(s);
		}
	}
	row(&t, NULL, true);
	for (i = 0; i < n; i++)
		if (recs[i].kind == kind)
			row(&t, &recs[i], false);
	row(&t, NULL, false);
}

/*
 * Where each consumer's time went (module parameter phase_times): ns per
 * batch for the checks before it, borrowing and releasing the process's
 * identity; ns per call for its checks (the blocking check), its body and
 * publishing its completion; and the consumer's whole time per call.
 */
static void phases(const struct rec *recs, int n)
{
	static const char *const per_batch[] = { "check", "borrow", "release" };
	static const char *const per_call[] = { "block", "body", "publish" };
	bool any = false;

	printf("\nphases (of the batches and calls timed, one batch in 16; "
	       "ns per batch: check, borrow, release; per call: block, "
	       "body, publish; all per call):\n");
	for (int i = 0; i < n; i++) {
		const struct rec *r = &recs[i];
		unsigned long long batches = 0, calls = 0, v, all = 0;
		const char *s;
		char key[32];

		if (r->kind != K_PHASES)
			continue;
		if (!any)
			printf("%5s %10s %10s %8s %8s %8s %8s %8s %8s %8s\n",
			       "CPU", "BATCHES", "CALLS", "CHECK", "BORROW",
			       "RELEASE", "BLOCK", "BODY", "PUBLISH", "ALL");
		any = true;
		s = lookup(r, "batches");
		if (s)
			is_num(s, &batches);
		s = lookup(r, "calls");
		if (s)
			is_num(s, &calls);
		s = lookup(r, "cpu");
		printf("%5s %10llu %10llu", s ? s : "-", batches, calls);
		for (int k = 0; k < 6; k++) {
			snprintf(key, sizeof(key), "%s_ns",
				 k < 3 ? per_batch[k] : per_call[k - 3]);
			s = lookup(r, key);
			v = 0;
			if (s)
				is_num(s, &v);
			all += v;
			if (k < 3 ? !batches : !calls)
				printf(" %8s", "-");
			else
				printf(" %8.0f",
				       (double)v / (k < 3 ? batches : calls));
		}
		if (calls)
			printf(" %8.0f\n", (double)all / calls);
		else
			printf(" %8s\n", "-");
	}
	if (!any)
		printf("(none: the module does not count them)\n");
}

static int report(const char *path)
{
	struct rec *recs;
	char *buf = slurp(path);
	int n;

	if (!buf) {
		fprintf(stderr, "esca-stat: cannot read %s: %s\n", path,
			errno == ENOENT && !strcmp(path, DEFAULT_FILE) ?
				"module not loaded" :
				strerror(errno));
		return 1;
	}
	n = parse(buf, &recs);
	summary(recs, n);
	table("consumers", K_CONSUMER, recs, n);
	table("contexts", K_CONTEXT, recs, n);
	if (verbose)
		phases(recs, n);
	free(recs);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	const char *path = DEFAULT_FILE;
	double interval = -1;
	long count = -1;
	char *end;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
			verbose = true;
			continue;
		} else if (!strcmp(a, "--file") && v) {
			path = v;
		} else if (!strcmp(a, "--interval") && v) {
			errno = 0;
			interval = strtod(v, &end);
			if (errno || *end || end == v || !(interval > 0) ||
			    interval > 86400)
				goto misuse;
		} else if (!strcmp(a, "--count") && v) {
			errno = 0;
			count = strtol(v, &end, 10);
			if (errno || *end || end == v || count < 1)
				goto misuse;
		} else {
			goto misuse;
		}
		i++;
	}

	bool stamp = count > 0 || interval > 0;

	if (count < 0)
		count = 1;
	if (interval < 0)
		interval = 1;
	for (long r = 0; r < count; r++) {
		if (r) {
			time_t sec = (time_t)interval;
			struct timespec ts = {
				.tv_sec = sec,
				.tv_nsec = (long)((interval - sec) * 1e9),
			};

			while (nanosleep(&ts, &ts) && errno == EINTR)
				;
			printf("\n");
		}
		if (stamp) {
			char when[64];
			time_t now = time(NULL);

			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S",
				 localtime(&now));
			printf("=== %s ===\n", when);
		}
		if (report(path))
			return 1;
		if (fflush(stdout))
			return 1;
	}
	return 0;

misuse:
	usage(stderr);
	return 2;
}
