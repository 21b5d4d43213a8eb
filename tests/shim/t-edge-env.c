// SPDX-License-Identifier: MIT
/*
 * The shim's settings given garbage: each bad value gets one clear line
 * on stderr naming the variable (the value cut short), the default is
 * used, and the program runs exactly as it would. Run directly there is
 * no shim and so no line at all.
 *
 *   t-edge-env [CASE...]    (see edge.h)
 *   t-edge-env --work       what each case runs, under its settings
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/epoll.h>

#include "edge.h"

/* Calls of every class: bookkeeping, deferred, sync, sync points. */
static int work(void)
{
	int sv[2], ep = epoll_create1(0), s;
	char buf[4];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) || ep < 0)
		return 2;
	for (int i = 0; i < 50; i++) {
		s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		if (s < 0 ||
		    epoll_ctl(ep, EPOLL_CTL_ADD, s,
			      &(struct epoll_event){ .events = EPOLLIN }) ||
		    epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL) ||
		    setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, &(int){ 1 },
			       sizeof(int)) ||
		    close(s) || close(s) != -1 || errno != EBADF ||
		    write(sv[0], "abc", 3) != 3 || read(sv[1], buf, 4) != 3 ||
		    epoll_wait(ep, &(struct epoll_event){ 0 }, 1, 0) != 0)
			return 3;
	}
	puts("worked");
	return 0;
}

static bool shimmed(void)
{
	const char *pre = getenv("LD_PRELOAD");

	return pre && strstr(pre, "esca");
}

/*
 * Run --work with @env (NAME=VALUE strings, NULL-terminated, added to
 * ours); check it worked and printed @lines lines on stderr starting
 * with "esca" (when shimmed), each containing @needle if given.
 */
static void run(const char *name, const char *const *env, int lines,
		const char *needle)
{
	char self[4096], err[8192] = "", out[64] = "";
	int ep[2], op[2], st, n = 0, bad_line = 0;
	ssize_t len, got = 0;
	pid_t pid;

	len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (len < 0 || pipe(ep) || pipe(op))
		DIE("setup");
	self[len] = 0;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		dup2(ep[1], 2);
		dup2(op[1], 1);
		/* only the case's settings (edge-run sets ESCA_STATS=1) */
		unsetenv("ESCA_STATS");
		unsetenv("ESCA_LOG");
		unsetenv("ESCA_OFFLOAD");
		for (int i = 0; env[i]; i++)
			putenv((char *)env[i]);
		execl(self, "t-edge-env", "--work", NULL);
		_exit(127);
	}
	close(ep[1]);
	close(op[1]);
	while ((len = read(ep[0], err + got, sizeof(err) - 1 - got)) > 0)
		got += len;
	err[got] = 0;
	len = read(op[0], out, sizeof(out) - 1);
	out[len > 0 ? len : 0] = 0;
	waitpid(pid, &st, 0);
	for (char *l = err; *l;) {
		char *e = strchr(l, '\n');
		size_t ll = e ? (size_t)(e - l) : strlen(l);

		/* without the module (a host run) its one line is expected
		 * besides the settings' own */
		if (!strncmp(l, "esca", 4) &&
		    !memmem(l, ll, "module not loaded", 17)) {
			n++;
			if ((needle &&
			     !memmem(l, ll, needle, strlen(needle))) ||
			    ll > 600)
				bad_line++;
		}
		l += ll + (e ? 1 : 0);
	}
	if (!shimmed())
		lines = 0;
	CHECK(name,
	      st == 0 && !strcmp(out, "worked\n") && n == lines &&
		      bad_line == 0,
	      "status %#x, stdout '%.20s', %d lines (want %d), %d unclear; "
	      "stderr: %.300s",
	      st, out, n, lines, bad_line, err);
}

static void env_offload(void)
{
	static char longval[5000 + sizeof("ESCA_OFFLOAD=")];

	run("env-offload: garbage",
	    (const char *[]){ "ESCA_OFFLOAD=garbage", NULL }, 1,
	    "ESCA_OFFLOAD=garbage");
	run("env-offload: empty name in a list",
	    (const char *[]){ "ESCA_OFFLOAD=write,,close", NULL }, 1,
	    "ESCA_OFFLOAD");
	run("env-offload: format characters",
	    (const char *[]){ "ESCA_OFFLOAD=%n%s%n%s%p", NULL }, 1,
	    "ESCA_OFFLOAD=%n%s%n%s%p");
	strcpy(longval, "ESCA_OFFLOAD=");
	memset(longval + strlen(longval), 'w', 5000);
	run("env-offload: 5000 characters", (const char *[]){ longval, NULL },
	    1, "ESCA_OFFLOAD=www");
	run("env-offload: upper case",
	    (const char *[]){ "ESCA_OFFLOAD=ALL", NULL }, 1, "ESCA_OFFLOAD");
	run("env-offload: a valid list",
	    (const char *[]){ "ESCA_OFFLOAD=write,close,epoll_ctl", NULL }, 0,
	    NULL);
	run("env-offload: none", (const char *[]){ "ESCA_OFFLOAD=none", NULL },
	    0, NULL);
	run("env-offload: defer-only",
	    (const char *[]){ "ESCA_OFFLOAD=defer-only", NULL }, 0, NULL);
}

static void env_log_stats(void)
{
	run("env-log: 7", (const char *[]){ "ESCA_LOG=7", NULL }, 1,
	    "ESCA_LOG=7");
	run("env-log: -1", (const char *[]){ "ESCA_LOG=-1", NULL }, 1,
	    "ESCA_LOG");
	run("env-log: empty", (const char *[]){ "ESCA_LOG=", NULL }, 0, NULL);
	run("env-log: 0 silences the others",
	    (const char *[]){ "ESCA_LOG=0", "ESCA_OFFLOAD=bad",
			      "ESCA_SPIN_US=x", "ESCA_STATS=yes", NULL },
	    0, NULL);
	run("env-stats: yes", (const char *[]){ "ESCA_STATS=yes", NULL }, 1,
	    "ESCA_STATS=yes");
	/* the totals, then the per-call counts of the calls it made */
	run("env-stats: 1 gives the stats lines",
	    (const char *[]){ "ESCA_STATS=1", NULL }, 2, "esca-stats");
	run("env-all-bad: one line each",
	    (const char *[]){ "ESCA_LOG=9", "ESCA_STATS=2", "ESCA_OFFLOAD=x",
			      "ESCA_SPIN_US=-5", "ESCA_ENTRIES=3", NULL },
	    5, "=");
}

static void env_lib(void)
{
	run("env-spin: negative", (const char *[]){ "ESCA_SPIN_US=-5", NULL },
	    1, "ESCA_SPIN_US=-5");
	run("env-spin: not a number",
	    (const char *[]){ "ESCA_SPIN_US=12abc", NULL }, 1,
	    "ESCA_SPIN_US=12abc");
	run("env-entries: not a power of two",
	    (const char *[]){ "ESCA_ENTRIES=100", NULL }, 1,
	    "ESCA_ENTRIES=100");
	run("env-entries: overflow",
	    (const char *[]){ "ESCA_ENTRIES=99999999999999999999999", NULL }, 1,
	    "ESCA_ENTRIES");
	run("env-entries: the smallest ring",
	    (const char *[]){ "ESCA_ENTRIES=8", NULL }, 0, NULL);
}

static const struct e_case cases[] = {
	E_CASE(env_offload),
	E_CASE(env_log_stats),
	E_CASE(env_lib),
};

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "--work"))
		return work();
	return e_main(cases, E_NCASES(cases), argc, argv);
}
