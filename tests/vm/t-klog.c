// SPDX-License-Identifier: MIT
/*
 * The kernel log, by sequence number, for the suite's per-test check (not a
 * test itself). dmesg from a text marker can miss lines (the marker rotated
 * out of the ring buffer, or lines logged between one test's check and the
 * next test's marker); /dev/kmsg numbers every record, so a window [N, end)
 * is exact and a gap in it is seen.
 *
 *   t-klog seq                 print the sequence number the next record
 *                              will get
 *   t-klog since N [NEXTFILE]  print every record with seq >= N, as
 *                              "[seconds] text" (dmesg style), then write
 *                              the next sequence number to NEXTFILE (the
 *                              start of the next window); exit 1 if any
 *                              record of the window was lost (overwritten
 *                              before it was read: the oldest record is
 *                              past N, a gap, or EPIPE from /dev/kmsg)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One record: "prio,seq,usec,flags[,...];text\n" then " KEY=value" lines. */
struct rec {
	uint64_t seq, usec;
	const char *text;
	size_t len;
};

static int parse(char *buf, size_t n, struct rec *r)
{
	char *semi = memchr(buf, ';', n), *nl, *p;

	if (!semi)
		return -1;
	*semi = 0;
	p = strchr(buf, ',');
	if (!p)
		return -1;
	r->seq = strtoull(p + 1, &p, 10);
	if (*p != ',')
		return -1;
	r->usec = strtoull(p + 1, NULL, 10);
	r->text = semi + 1;
	nl = memchr(semi + 1, '\n', n - (size_t)(semi + 1 - buf));
	r->len = nl ? (size_t)(nl - (semi + 1)) : n - (size_t)(semi + 1 - buf);
	return 0;
}

/*
 * Read records from the oldest still held until none is left; call @fn
 * for each. Returns the next sequence number, or -1 on a read error.
 * *lost counts records at or past @from that are gone: after EPIPE the
 * next read jumps to the oldest record left, so a jump in seq shows it.
 */
static int64_t walk(void (*fn)(const struct rec *, uint64_t), uint64_t from,
		    uint64_t *lost, uint64_t *first)
{
	static char buf[8192 + 1];
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	uint64_t next = 0;
	int have = 0;

	if (fd < 0) {
		fprintf(stderr, "t-klog: open /dev/kmsg: %s\n",
			strerror(errno));
		return -1;
	}
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		struct rec r;

		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0 && errno == EPIPE) {
			/* overwritten before we read it: the next read
			 * resumes at the oldest record left */
			fprintf(stderr,
				"t-klog: records overwritten while reading (EPIPE)\n");
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "t-klog: read /dev/kmsg: %s\n",
				strerror(errno));
			close(fd);
			return -1;
		}
		buf[n] = 0;
		if (parse(buf, (size_t)n, &r)) {
			fprintf(stderr, "t-klog: cannot parse a record\n");
			continue;
		}
		if (!have)
			*first = r.seq;
		else if (r.seq != next && r.seq > from)
			*lost += r.seq - (next > from ? next : from);
		have = 1;
		next = r.seq + 1;
		if (fn)
			fn(&r, from);
	}
	close(fd);
	return next;
}

static void print_rec(const struct rec *r, uint64_t from)
{
	if (r->seq < from)
		return;
	printf("[%5" PRIu64 ".%06" PRIu64 "] %.*s\n", r->usec / 1000000,
	       r->usec % 1000000, (int)r->len, r->text);
}

int main(int argc, char **argv)
{
	uint64_t lost = 0, first = 0, from;
	int64_t next;

	if (argc == 2 && !strcmp(argv[1], "seq")) {
		next = walk(NULL, 0, &lost, &first);
		if (next < 0)
			return 2;
		printf("%" PRId64 "\n", next);
		return 0;
	}
	if ((argc != 3 && argc != 4) || strcmp(argv[1], "since")) {
		fprintf(stderr,
			"usage: t-klog seq | t-klog since N [NEXTFILE]\n");
		return 2;
	}
	from = strtoull(argv[2], NULL, 10);
	next = walk(print_rec, from, &lost, &first);
	if (next < 0)
		return 2;
	fflush(stdout);
	if (first > from) {
		/* the window's start rotated out before we got to it */
		lost += first - from;
	}
	if (argc == 4) {
		FILE *f = fopen(argv[3], "w");

		if (!f ||
		    fprintf(f, "%" PRIu64 "\n",
			    (uint64_t)next > from ? (uint64_t)next : from) <
			    0 ||
		    fclose(f)) {
			fprintf(stderr, "t-klog: cannot write %s\n", argv[3]);
			return 2;
		}
	}
	if (lost) {
		fprintf(stderr,
			"t-klog: %" PRIu64
			" kernel log records since seq %" PRIu64
			" were lost (overwritten before they were read; oldest left %" PRIu64
			")\n",
			lost, from, first);
		return 1;
	}
	return 0;
}
