// SPDX-License-Identifier: MIT
/*
 * esca-micro: cost per call on the application core, direct vs offloaded
 * (synchronous and deferred), measured side by side in one run.
 *
 * The call is pwrite64(fd, 64 bytes, offset 0) on a tmpfs file: cheap in
 * the kernel, so the mode switch dominates the direct cost. The
 * application thread is pinned to a core that does not host a consumer.
 * For each mode: median over --runs of (thread CPU time / calls), wall
 * time / calls and traps / calls (raw_syscalls:sys_enter on this thread).
 * One grep-able SUMMARY line per mode.
 *
 * Modes: direct; sync (submit, spin on the completion); deferred (submit
 * and go on; the ring fills, so this is bounded by the consumer's
 * throughput; one drain at the end); defer-enq (what a deferred call costs
 * the application core itself: bursts that fit in the ring are timed, the
 * drain after each burst is not).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "esca/esca.h"
#include "perfcount.h"

enum { M_DIRECT, M_SYNC, M_DEFERRED, M_DEFER_ENQ, M_COUNT };
static const char *mode_name[] = { "direct", "sync", "deferred", "defer-enq" };
#define BURST 128 /* defer-enq: fits in the default 256-entry ring */

struct sample {
	double app_ns, wall_ns, traps;
};

static double ns_of(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int run_mode(int mode, int fd, int calls, int pc, struct sample *s)
{
	static char buf[64] = "esca-micro";
	double app0 = 0, wall0 = 0;
	long bad = 0;

	if (mode == M_DEFER_ENQ) {
		double app = 0, wall = 0;
		long traps = 0;

		/* Timed bursts; then the same bursts again, counting traps only:
		 * reading the clocks in so short a window may itself trap. */
		for (int pass = 0; pass < (pc >= 0 ? 2 : 1); pass++) {
			for (int done = 0; done < calls; done += BURST) {
				int n = calls - done < BURST ? calls - done :
							       BURST;

				if (pass) {
					trapcount_start(pc);
				} else {
					app0 = ns_of(CLOCK_THREAD_CPUTIME_ID);
					wall0 = ns_of(CLOCK_MONOTONIC);
				}
				for (int i = 0; i < n; i++)
					bad += esca_defer(SYS_pwrite64, fd,
							  (long)buf, 64, 0, 0,
							  0) != 0;
				if (pass) {
					traps += trapcount_stop(pc);
				} else {
					wall += ns_of(CLOCK_MONOTONIC) - wall0;
					app += ns_of(CLOCK_THREAD_CPUTIME_ID) -
					       app0;
				}
				bad += esca_drain(); /* untimed */
			}
		}
		s->app_ns = app / calls;
		s->wall_ns = wall / calls;
		s->traps = pc >= 0 ? (double)traps / calls : -1;
		return bad ? -1 : 0;
	}
	if (pc >= 0)
		trapcount_start(pc);
	app0 = ns_of(CLOCK_THREAD_CPUTIME_ID);
	wall0 = ns_of(CLOCK_MONOTONIC);
	for (int i = 0; i < calls; i++) {
		long r;

		switch (mode) {
		case M_DIRECT:
			r = esca_direct(SYS_pwrite64, fd, (long)buf, 64, 0, 0,
					0);
			bad += r != 64;
			break;
		case M_SYNC:
			r = esca_call(SYS_pwrite64, fd, (long)buf, 64, 0, 0, 0);
			bad += r != 64;
			break;
		default:
			bad += esca_defer(SYS_pwrite64, fd, (long)buf, 64, 0, 0,
					  0) != 0;
		}
	}
	if (mode == M_DEFERRED)
		bad += esca_drain();
	s->wall_ns = (ns_of(CLOCK_MONOTONIC) - wall0) / calls;
	s->app_ns = (ns_of(CLOCK_THREAD_CPUTIME_ID) - app0) / calls;
	s->traps = pc >= 0 ? (double)trapcount_stop(pc) / calls : -1;
	return bad ? -1 : 0;
}

/* Where the figures come from: native, KVM guest or TCG guest. */
static void print_environment(void)
{
	char line[512], model[256] = "unknown CPU", where[160] = "native";
	bool hypervisor = false;
	struct utsname u;
	FILE *f = fopen("/proc/cpuinfo", "r");

	while (f && fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "model name", 10) && strchr(line, ':'))
			snprintf(model, sizeof(model), "%s",
				 strchr(line, ':') + 2);
		if (!strncmp(line, "flags", 5) && strstr(line, " hypervisor"))
			hypervisor = true;
	}
	if (f)
		fclose(f);
	model[strcspn(model, "\n")] = 0;
	f = fopen("/proc/cmdline", "r");
	if (f && fgets(line, sizeof(line), f)) {
		if (strstr(line, "esca_accel=tcg"))
			snprintf(
				where, sizeof(where),
				"QEMU TCG guest: timings are emulated, read the ratios as indicative only");
		else if (strstr(line, "esca_accel=kvm"))
			snprintf(where, sizeof(where), "QEMU KVM guest");
		else if (hypervisor)
			snprintf(where, sizeof(where), "virtual machine");
	}
	if (f)
		fclose(f);
	uname(&u);
	printf("where: %s\nkernel %s, %s, %ld CPUs\n", where, u.release, model,
	       sysconf(_SC_NPROCESSORS_ONLN));
}

static void usage(FILE *f, const char *name)
{
	fprintf(f,
		"usage: %s [--calls N] [--runs R] [--cpu C]\n"
		"  --calls N  calls per run and mode (default 20000)\n"
		"  --runs R   runs per mode; medians are reported (default 5)\n"
		"  --cpu C    application core, OS index (default: a core without a consumer)\n",
		name);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "calls", required_argument, NULL, 'n' },
		{ "runs", required_argument, NULL, 'r' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int calls = 20000, runs = 5, cpu = -1, consumer, pc, fd, o;
	double med[M_COUNT][3];
	cpu_set_t set;

	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'n':
			calls = atoi(optarg);
			break;
		case 'r':
			runs = atoi(optarg);
			break;
		case 'c':
			cpu = atoi(optarg);
			break;
		case 'h':
			usage(stdout, argv[0]);
			return 0;
		default:
			usage(stderr, argv[0]);
			return 2;
		}
	}
	if (calls <= 0 || runs <= 0 || runs > 100) {
		usage(stderr, argv[0]);
		return 2;
	}
	if (!getenv("ESCA_SPIN_US"))
		setenv("ESCA_SPIN_US", "100000",
		       1); /* measure the ring, not sleeps */
	consumer = esca_thread_cpu();
	if (consumer < 0) {
		fprintf(stderr,
			"esca-micro: offload is not active; nothing to compare\n");
		return 1;
	}
	if (cpu < 0)
		cpu = consumer == 0 ? 1 : 0;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		fprintf(stderr, "esca-micro: cannot pin to CPU %d: %s\n", cpu,
			strerror(errno));
		return 1;
	}
	fd = open("/tmp/esca-micro.dat", O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		fprintf(stderr, "esca-micro: /tmp/esca-micro.dat: %s\n",
			strerror(errno));
		return 1;
	}
	pc = trapcount_open(cpu);
	if (pc < 0)
		fprintf(stderr, "esca-micro: trap counting unavailable: %s\n",
			strerror(-pc));

	/* Interleave the modes run by run so drift hits all of them alike. */
	{
		double v[M_COUNT][3][100];
		struct sample s;

		for (int m = 0; m < M_COUNT; m++) /* warm-up */
			run_mode(m, fd, calls / 10 + 1, -1, &s);
		for (int r = 0; r < runs; r++) {
			for (int m = 0; m < M_COUNT; m++) {
				if (run_mode(m, fd, calls, pc, &s)) {
					fprintf(stderr,
						"esca-micro: %s: a call returned a wrong result\n",
						mode_name[m]);
					return 1;
				}
				v[m][0][r] = s.app_ns;
				v[m][1][r] = s.wall_ns;
				v[m][2][r] = s.traps;
			}
		}
		for (int m = 0; m < M_COUNT; m++)
			for (int k = 0; k < 3; k++)
				med[m][k] = median(v[m][k], runs);
	}

	printf("esca-micro: %d x pwrite64(64 B, tmpfs) per run, %d runs, medians\n",
	       calls, runs);
	print_environment();
	printf("app thread on CPU %d, consumer on CPU %d\n\n", cpu, consumer);
	printf("%-9s %16s %14s %16s %11s\n", "mode", "app-core ns/call",
	       "wall ns/call", "app cost/direct", "traps/call");
	for (int m = 0; m < M_COUNT; m++)
		printf("%-9s %16.1f %14.1f %16.2f %11.3f\n", mode_name[m],
		       med[m][0], med[m][1], med[m][0] / med[M_DIRECT][0],
		       med[m][2]);
	printf("\n");
	for (int m = 0; m < M_COUNT; m++)
		printf("SUMMARY esca-micro mode=%s calls=%d runs=%d app_cpu=%d consumer_cpu=%d "
		       "app_ns=%.1f wall_ns=%.1f traps_per_call=%.3f ratio_vs_direct=%.3f\n",
		       mode_name[m], calls, runs, cpu, consumer, med[m][0],
		       med[m][1], med[m][2], med[m][0] / med[M_DIRECT][0]);
	return 0;
}
