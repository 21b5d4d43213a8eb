// SPDX-License-Identifier: MIT
/*
 * esca-traps: how many times the CPUs in a list entered the kernel
 * (raw_syscalls:sys_enter, counted CPU-wide) while a command ran.
 *
 *   esca-traps -c 0,1 [-o FILE] -- CMD [ARG...]
 *
 * Prints "traps cpus=0,1 total=N cpu0=N cpu1=N" (to FILE with -o, so the
 * command's own output stays clean) and exits with the command's status.
 * Every task on those CPUs is counted: pin the server there and nothing
 * else, and the count is the server's traps.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "perfcount.h"

#define MAX_CPUS 256

static int parse_cpus(const char *s, int *cpus)
{
	int n = 0;

	while (*s) {
		char *end;
		long a = strtol(s, &end, 10), b = a;

		if (end == s || a < 0 || a >= MAX_CPUS)
			return -1;
		if (*end == '-') {
			s = end + 1;
			b = strtol(s, &end, 10);
			if (end == s || b < a || b >= MAX_CPUS)
				return -1;
		}
		for (long c = a; c <= b && n < MAX_CPUS; c++)
			cpus[n++] = (int)c;
		s = end;
		if (*s == ',')
			s++;
		else if (*s)
			return -1;
	}
	return n;
}

int main(int argc, char **argv)
{
	int cpus[MAX_CPUS], fds[MAX_CPUS], n = -1, opt, status;
	const char *cpulist = NULL, *out = NULL;
	long total = 0, counts[MAX_CPUS];
	FILE *f = stdout;
	pid_t pid;

	while ((opt = getopt(argc, argv, "+c:o:h")) != -1) {
		switch (opt) {
		case 'c':
			cpulist = optarg;
			n = parse_cpus(optarg, cpus);
			break;
		case 'o':
			out = optarg;
			break;
		default:
			fprintf(stderr,
				"usage: esca-traps -c CPULIST [-o FILE] -- CMD [ARG...]\n");
			return 2;
		}
	}
	if (n <= 0 || optind >= argc) {
		fprintf(stderr, "esca-traps: %s\n",
			n == 0 || (n < 0 && cpulist) ?
				"bad CPU list (want e.g. 0 or 0,2-3)" :
				"usage: esca-traps -c CPULIST [-o FILE] -- CMD [ARG...]");
		return 2;
	}
	for (int i = 0; i < n; i++) {
		fds[i] = trapcount_open(cpus[i]);
		if (fds[i] < 0) {
			fprintf(stderr,
				"esca-traps: cannot count system calls on cpu %d: %s (root and tracefs needed)\n",
				cpus[i], strerror(-fds[i]));
			return 2;
		}
	}
	for (int i = 0; i < n; i++)
		trapcount_start(fds[i]);
	pid = fork();
	if (pid == 0) {
		execvp(argv[optind], &argv[optind]);
		fprintf(stderr, "esca-traps: cannot run %s: %s\n", argv[optind],
			strerror(errno));
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0) {
		perror("esca-traps");
		return 2;
	}
	for (int i = 0; i < n; i++) {
		counts[i] = trapcount_stop(fds[i]);
		total += counts[i];
	}
	if (out && !(f = fopen(out, "w"))) {
		fprintf(stderr, "esca-traps: cannot write %s: %s\n", out,
			strerror(errno));
		return 2;
	}
	fprintf(f, "traps cpus=%s total=%ld", cpulist, total);
	for (int i = 0; i < n; i++)
		fprintf(f, " cpu%d=%ld", cpus[i], counts[i]);
	fprintf(f, "\n");
	if (f != stdout)
		fclose(f);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
