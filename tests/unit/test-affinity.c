// SPDX-License-Identifier: MIT
/*
 * affinity/esca-affinity end to end: the built binary ($ESCA_AFFINITY,
 * default build/bin/esca-affinity, run from the repo root) on the hwloc XML
 * topologies of tests/unit/data (made by data/make-topo.sh; see there what
 * each machine is). The expected choices are worked out from each
 * topology by the policy's rules, written next to each case; on the
 * two-socket machine the rules themselves are checked too, on every
 * answer: consumers on whole cores, siblings given to nobody, consumer
 * and server CPUs sharing an L3, CPU 0 never a consumer, nothing overlaps.
 * Errors: exit codes 1 (topology), 2 (usage), 3 (too small), 4 (bad
 * --app-cpus), one line on stderr and nothing on stdout.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unit.h"
#include "runbin.h"

#define DATA "tests/unit/data/"
#define ONE_SOCKET DATA "topo-1s8c.xml"
#define TWO_SOCKETS DATA "topo-2s-smt.xml"
#define TWO_CORES DATA "topo-2c.xml"
#define OFFLINE DATA "topo-offline.xml"
#define MALFORMED DATA "topo-malformed.xml"

#define MAX_CPUS 64

static const char *bin;

/* Run the tool with @args (NULL-terminated). */
#define RUN(...) run_bin(bin, (const char *const[]){ __VA_ARGS__, NULL })

/* The rest of the line of @out that starts with @prefix, or NULL. */
static char *field(const char *out, const char *prefix)
{
	static char buf[1024];
	size_t len = strlen(prefix);

	for (const char *l = out; l && *l;
	     l = strchr(l, '\n'), l = l ? l + 1 : l) {
		if (!strncmp(l, prefix, len)) {
			size_t n = strcspn(l + len, "\n");

			if (n >= sizeof(buf))
				n = sizeof(buf) - 1;
			memcpy(buf, l + len, n);
			buf[n] = '\0';
			return buf;
		}
	}
	return NULL;
}

static bool field_is(const char *out, const char *prefix, const char *want)
{
	const char *got = field(out, prefix);

	return got && !strcmp(got, want);
}

/* CPU list "0-2,5" into @set[]; false if malformed. */
static bool parse_list(const char *s, bool set[MAX_CPUS])
{
	memset(set, 0, MAX_CPUS * sizeof(bool));
	if (!s)
		return false;
	while (*s) {
		char *end;
		long lo = strtol(s, &end, 10), hi = lo;

		if (end == s)
			return false;
		if (*end == '-')
			hi = strtol(end + 1, &end, 10);
		if (lo < 0 || hi >= MAX_CPUS || hi < lo)
			return false;
		for (long c = lo; c <= hi; c++)
			set[c] = true;
		s = end;
		if (*s == ',')
			s++;
		else if (*s)
			return false;
	}
	return true;
}

static size_t count_lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/*
 * A successful text answer: cores=, the server's list and the load
 * generator's (NULL: none left, and then the line must say so).
 */
static void expect(const char *what, struct run r, const char *cores,
		   const char *server, const char *loadgen)
{
	CHECK(r.status == 0 && !*r.err, "%s: exit %d, stderr: %s", what,
	      r.status, r.err);
	CHECK(count_lines(r.out) == 5, "%s: want 5 lines, got:\n%s", what,
	      r.out);
	CHECK(field_is(r.out, "cores=", cores), "%s: want cores=%s, got:\n%s",
	      what, cores, r.out);
	CHECK(field_is(r.out, "server: numactl --physcpubind=", server),
	      "%s: want server %s, got:\n%s", what, server, r.out);
	if (loadgen)
		CHECK(field_is(r.out,
			       "loadgen: numactl --physcpubind=", loadgen),
		      "%s: want loadgen %s, got:\n%s", what, loadgen, r.out);
	else
		CHECK(field(r.out, "loadgen: none left"),
		      "%s: want loadgen none left, got:\n%s", what, r.out);
	CHECK(field(r.out, "why: consumer ") && strstr(r.out, "\nwhy: SMT: "),
	      "%s: want two why: lines, got:\n%s", what, r.out);
	run_free(&r);
}

/* An error: @status, one line on stderr containing @msg, empty stdout. */
static void expect_error(const char *what, struct run r, int status,
			 const char *msg)
{
	CHECK(r.status == status, "%s: exit %d, want %d; stderr: %s", what,
	      r.status, status, r.err);
	CHECK(count_lines(r.err) == 1 &&
		      !strncmp(r.err, "esca-affinity: ", 15) &&
		      strstr(r.err, msg),
	      "%s: want one stderr line with '%s', got: %s", what, msg, r.err);
	CHECK(!*r.out, "%s: stdout should be empty, got: %s", what, r.out);
	run_free(&r);
}

/*
 * topo-2s-smt: core c (0-15) has CPUs c and c+16; L3 domains hold cores
 * 0-3, 4-7, 8-11, 12-15; sockets (NUMA nodes) cores 0-7 and 8-15.
 */
static int core_of(int cpu)
{
	return cpu % 16;
}

static int l3_of(int cpu)
{
	return core_of(cpu) / 4;
}

/* The policy's rules, on any answer for the two-socket machine. */
static void check_rules(const char *what, const char *out)
{
	bool cons[MAX_CPUS], srv[MAX_CPUS], load[MAX_CPUS];
	const char *lg = field(out, "loadgen: numactl --physcpubind=");
	bool ok = parse_list(lg ? lg : "", load); /* before field() again */

	ok = ok && parse_list(field(out, "cores="), cons);
	ok = ok &&
	     parse_list(field(out, "server: numactl --physcpubind="), srv);
	if (!CHECK(ok, "%s: lists do not parse:\n%s", what, out))
		return;
	for (int c = 0; c < 32; c++) {
		bool shares = false;

		CHECK(cons[c] + srv[c] + load[c] <= 1,
		      "%s: CPU %d given twice:\n%s", what, c, out);
		if (!cons[c])
			continue;
		CHECK(c != 0, "%s: CPU 0 is a consumer:\n%s", what, out);
		CHECK(c < 16, "%s: consumer %d is not its core's first CPU",
		      what, c);
		/* its sibling: idle, neither the server's nor the loadgen's */
		CHECK(!srv[c + 16] && !load[c + 16] && !cons[c + 16],
		      "%s: sibling %d of consumer %d is in use:\n%s", what,
		      c + 16, c, out);
		for (int s = 0; s < 32; s++)
			shares |= srv[s] && l3_of(s) == l3_of(c);
		CHECK(shares || strstr(out, "shares no cache"),
		      "%s: consumer %d shares no L3 with the server and does not say so:\n%s",
		      what, c, out);
	}
	for (int c = 0; c < 32; c++) /* loadgen: whole cores only */
		CHECK(!load[c] || (!srv[(c + 16) % 32] && !cons[core_of(c)]),
		      "%s: loadgen CPU %d shares a core:\n%s", what, c, out);
}

static void one_socket(void)
{
	struct run r;

	/* 8 cores, one L3: the last core consumes, CPU 0 never */
	r = RUN("--topology", ONE_SOCKET);
	CHECK(strstr(r.out, "shares its L3 with server CPUs 0-6") &&
		      strstr(r.out, "SMT: none") &&
		      strstr(r.out, "CPU 0 avoided"),
	      "1s8c: why lines:\n%s", r.out);
	expect("1s8c", r, "7", "0-6", NULL);
	expect("1s8c --consumers 2",
	       RUN("--topology", ONE_SOCKET, "--consumers", "2"), "6-7", "0-5",
	       NULL);
	/* 7 consumers leave CPU 0 alone as the application's */
	expect("1s8c --consumers 7",
	       RUN("--topology", ONE_SOCKET, "--consumers", "7"), "1-7", "0",
	       NULL);
	expect_error("1s8c --consumers 8",
		     RUN("--topology", ONE_SOCKET, "--consumers", "8"), 3,
		     "need 9 whole cores");
	/* the application on half: the consumer last, the rest to the loadgen */
	expect("1s8c --app-cpus 0-3",
	       RUN("--topology", ONE_SOCKET, "--app-cpus", "0-3"), "7", "0-3",
	       "4-6");
	/* only CPU 0 is left: used, and said so */
	r = RUN("--topology", ONE_SOCKET, "--app-cpus", "1-7");
	CHECK(strstr(r.out, "CPU 0 taken by a consumer"),
	      "1s8c app 1-7: want CPU 0 explained:\n%s", r.out);
	expect("1s8c --app-cpus 1-7", r, "0", "1-7", NULL);
	expect_error("1s8c --app-cpus 0-7",
		     RUN("--topology", ONE_SOCKET, "--app-cpus", "0-7"), 3,
		     "only 0 are free");

	r = RUN("--topology", ONE_SOCKET, "--cores-only");
	CHECK(r.status == 0 && !strcmp(r.out, "7\n"),
	      "--cores-only: exit %d, got '%s'", r.status, r.out);
	run_free(&r);

	r = RUN("--topology", ONE_SOCKET, "--json");
	CHECK(r.status == 0 && count_lines(r.out) == 1 && r.out[0] == '{' &&
		      !strcmp(r.out + strlen(r.out) - 2, "}\n"),
	      "--json: want one object on one line, exit %d:\n%s", r.status,
	      r.out);
	CHECK(strstr(r.out, "\"policy\":\"default\"") &&
		      strstr(r.out, "\"cores\":\"7\"") &&
		      strstr(r.out, "\"consumers\":[7]") &&
		      strstr(r.out, "\"server\":\"0-6\"") &&
		      strstr(r.out, "\"loadgen\":null") &&
		      strstr(r.out, "\"idle\":\"\"") &&
		      strstr(r.out, "\"why\":[\"consumer 7 shares its L3"),
	      "--json: keys or values wrong:\n%s", r.out);
	run_free(&r);
}

static void two_sockets(void)
{
	static const char *const app_cases[][5] = {
		/* --app-cpus, cores=, server, loadgen ("" none), why */
		/* cores 0-2 whole: core 3 is free in their L3 */
		{ "0-2,16-18", "3", "0-2,16-18", "4-15,20-31",
		  "with server CPUs 0-2,16-18" },
		/* first threads only: siblings 16-18 go to nobody */
		{ "0-2", "3", "0-2", "4-15,20-31", "(idle: 16-19)" },
		/* every core but 7 and 15: two nodes, two consumers */
		{ "0-6,8-14,16-22,24-30", "7,15", "0-6,8-14,16-22,24-30", "",
		  "" },
		/* the only core free in their L3 is CPU 0's: avoided */
		{ "1-3,17-19", "7", "1-3,17-19", "0,4-6,8-16,20-22,24-31",
		  "shares no cache" },
		/* all of socket 0: no whole core left there, socket 1's last */
		{ "0-7,16-23", "15", "0-7,16-23", "8-14,24-30",
		  "shares no cache" },
	};
	struct run r;
	char what[128];

	/* one consumer per socket, in the last L3, on the last core */
	r = RUN("--topology", TWO_SOCKETS);
	check_rules("2s", r.out);
	CHECK(strstr(r.out,
		     "consumer 7 shares its L3 with server CPUs 4-6,20-22; "
		     "consumer 15 shares its L3 with server CPUs 12-14,28-30") &&
		      strstr(r.out, "(idle: 23,31)"),
	      "2s: why lines:\n%s", r.out);
	expect("2s", r, "7,15", "0-6,8-14,16-22,24-30", NULL);

	/* four: each L3 gets one (the free L3 first, then the last core) */
	r = RUN("--topology", TWO_SOCKETS, "--consumers", "4");
	check_rules("2s x4", r.out);
	expect("2s --consumers 4", r, "3,7,11,15",
	       "0-2,4-6,8-10,12-14,16-18,20-22,24-26,28-30", NULL);

	/* the third goes to socket 0's other L3 */
	r = RUN("--topology", TWO_SOCKETS, "--consumers", "3");
	check_rules("2s x3", r.out);
	expect("2s --consumers 3", r, "3,7,15",
	       "0-2,4-6,8-14,16-18,20-22,24-30", NULL);

	for (size_t i = 0; i < sizeof(app_cases) / sizeof(app_cases[0]); i++) {
		const char *const *c = app_cases[i];

		snprintf(what, sizeof(what), "2s --app-cpus %s", c[0]);
		r = RUN("--topology", TWO_SOCKETS, "--app-cpus", c[0]);
		check_rules(what, r.out);
		CHECK(strstr(r.out, c[4]), "%s: want '%s' in:\n%s", what, c[4],
		      r.out);
		expect(what, r, c[1], c[2], *c[3] ? c[3] : NULL);
	}

	/* both in the application's L3, though socket 0's other L3 is free */
	r = RUN("--topology", TWO_SOCKETS, "--app-cpus", "1,17", "--consumers",
		"2");
	check_rules("2s app 1,17 x2", r.out);
	expect("2s --app-cpus 1,17 --consumers 2", r, "2-3", "1,17",
	       "0,4-16,20-31");

	/*
	 * Application: cores 0-1 whole (4 CPUs in L3 #0), CPU 4 alone in L3
	 * #1. One consumer: the L3 with more application CPUs, last free
	 * core (3). Two: the other L3 gets one (7) before L3 #0 a second.
	 */
	r = RUN("--topology", TWO_SOCKETS, "--app-cpus", "0-1,16-17,4");
	check_rules("2s uneven x1", r.out);
	expect("2s --app-cpus 0-1,16-17,4", r, "3", "0-1,4,16-17",
	       "2,5-15,18,21-31");
	r = RUN("--topology", TWO_SOCKETS, "--app-cpus", "0-1,16-17,4",
		"--consumers", "2");
	check_rules("2s uneven x2", r.out);
	CHECK(strstr(r.out, "(idle: 19-20,23)"), "2s uneven x2: idle:\n%s",
	      r.out);
	expect("2s --app-cpus 0-1,16-17,4 --consumers 2", r, "3,7",
	       "0-1,4,16-17", "2,5-6,8-15,18,21-22,24-31");

	/* compact: the last two whole cores */
	r = RUN("--topology", TWO_SOCKETS, "--policy", "compact", "--consumers",
		"2");
	check_rules("2s compact", r.out);
	expect("2s compact", r, "14-15", "0-13,16-29", NULL);

	r = RUN("--topology", TWO_SOCKETS, "--json", "--app-cpus", "0-2");
	CHECK(r.status == 0 && strstr(r.out, "\"consumers\":[3]") &&
		      strstr(r.out, "\"loadgen\":\"4-15,20-31\"") &&
		      strstr(r.out, "\"idle\":\"16-19\""),
	      "2s --json: %s", r.out);
	run_free(&r);
}

static void two_cores(void)
{
	struct run r;

	/* two cores: the consumer on the last, CPU 0 the application's */
	r = RUN("--topology", TWO_CORES);
	CHECK(strstr(r.out, "CPU 0 allowed (only 2 cores)") &&
		      strstr(r.out, "shares its L3 with server CPU 0\n"),
	      "2c: why lines:\n%s", r.out);
	expect("2c", r, "1", "0", NULL);
	expect("2c --app-cpus 1",
	       RUN("--topology", TWO_CORES, "--app-cpus", "1"), "0", "1", NULL);
	expect_error("2c --consumers 2",
		     RUN("--topology", TWO_CORES, "--consumers", "2"), 3,
		     "this machine has 2 usable");
	expect_error("2c --app-cpus 0-1",
		     RUN("--topology", TWO_CORES, "--app-cpus", "0-1"), 3,
		     "outside --app-cpus");
}

static void offline(void)
{
	struct run r;

	/* usable: 0-2,4,6 (3 and 7 offline, 5 not allowed) */
	r = RUN("--topology", OFFLINE);
	CHECK(strstr(r.out, "CPU 0 avoided (5 cores"), "offline: %s", r.out);
	expect("offline", r, "6", "0-2,4", NULL);
	expect("offline --consumers 4",
	       RUN("--topology", OFFLINE, "--consumers", "4"), "1-2,4,6", "0",
	       NULL);
	expect_error("offline --consumers 5",
		     RUN("--topology", OFFLINE, "--consumers", "5"), 3,
		     "has 5 usable");
	expect("offline --app-cpus 0-1",
	       RUN("--topology", OFFLINE, "--app-cpus", "0-1"), "6", "0-1",
	       "2,4");
	expect_error("offline --app-cpus 0-3",
		     RUN("--topology", OFFLINE, "--app-cpus", "0-3"), 4,
		     "CPU 3 is offline");
	expect_error("offline --app-cpus 5",
		     RUN("--topology", OFFLINE, "--app-cpus", "5"), 4,
		     "CPU 5 is not allowed");
	expect_error("offline --app-cpus 8",
		     RUN("--topology", OFFLINE, "--app-cpus", "8"), 4,
		     "CPU 8 does not exist");
}

static void misuse(void)
{
	struct run r;

	expect_error("malformed", RUN("--topology", MALFORMED), 1,
		     "topo-malformed.xml: malformed");
	expect_error("missing file", RUN("--topology", DATA "nonexistent.xml"),
		     1, "cannot read " DATA "nonexistent.xml");
	expect_error("empty app",
		     RUN("--topology", ONE_SOCKET, "--app-cpus", ""), 4,
		     "empty list");
	expect_error("bad app",
		     RUN("--topology", ONE_SOCKET, "--app-cpus", "1,,2"), 4,
		     "'1,,2'");
	expect_error("backwards",
		     RUN("--topology", ONE_SOCKET, "--app-cpus", "3-1"), 4,
		     "backwards");
	expect_error("policy",
		     RUN("--topology", ONE_SOCKET, "--policy", "spread"), 2,
		     "unknown policy 'spread'");
	expect_error("consumers 0",
		     RUN("--topology", ONE_SOCKET, "--consumers", "0"), 2,
		     "--consumers '0'");
	expect_error("json+cores-only",
		     RUN("--topology", ONE_SOCKET, "--json", "--cores-only"), 2,
		     "exclude");

	expect_error("modprobe unwritable",
		     RUN("--topology", TWO_CORES, "--modprobe",
			 "/nonexistent-dir/esca.conf"),
		     5, "cannot write /nonexistent-dir/esca.conf");

	r = RUN("--bogus");
	CHECK(r.status == 2 && strstr(r.err, "usage:") && !*r.out,
	      "--bogus: exit %d, stderr %s", r.status, r.err);
	run_free(&r);
	r = RUN("--help");
	CHECK(r.status == 0 && !strncmp(r.out, "usage:", 6) &&
		      strstr(r.out, "Exit status") && !*r.err,
	      "--help: exit %d, stdout: %s", r.status, r.out);
	run_free(&r);

	/* this machine: any sound answer, or too small on one core */
	r = RUN("--cores-only");
	CHECK((r.status == 0 && r.out[0] >= '0' && r.out[0] <= '9') ||
		      r.status == 3,
	      "this machine: exit %d, out %s err %s", r.status, r.out, r.err);
	run_free(&r);
}

/* --modprobe FILE: the options line with the same cores=, replacing the
 * file whole; the choice is still printed. */
static void modprobe(void)
{
	const char *path = "/tmp/test-affinity.modprobe.conf";
	const char *want = "# written by esca-affinity: the consumer cores "
			   "it chose here\noptions esca cores=1\n";
	FILE *f = fopen(path, "w");
	struct run r;
	size_t len;
	char *got;

	if (f) { /* an older, longer file: replaced, not patched */
		fputs("options esca cores=0,1,2,3,4,5,6,7 idle_us=5\n# old\n",
		      f);
		fclose(f);
	}
	r = RUN("--topology", TWO_CORES, "--cores-only", "--modprobe", path);
	CHECK(r.status == 0 && !strcmp(r.out, "1\n") && !*r.err,
	      "--modprobe: exit %d, stdout '%s', stderr '%s'", r.status, r.out,
	      r.err);
	run_free(&r);
	f = fopen(path, "r");
	if (!CHECK(f, "--modprobe: %s not written", path))
		return;
	got = slurp(f, &len);
	fclose(f);
	CHECK(!strcmp(got, want), "--modprobe: %s holds '%s', want '%s'", path,
	      got, want);
	free(got);
	unlink(path);
}

int main(void)
{
	bin = getenv("ESCA_AFFINITY");
	if (!bin || !*bin)
		bin = "build/bin/esca-affinity";
	if (access(bin, X_OK)) {
		printf("# no esca-affinity at %s (make builds it)\n", bin);
		return 1;
	}
	one_socket();
	two_sockets();
	two_cores();
	offline();
	misuse();
	modprobe();
	return unit_done();
}
