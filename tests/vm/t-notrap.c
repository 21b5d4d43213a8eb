// SPDX-License-Identifier: MIT
/*
 * No traps: 10,000 offloaded writes from one thread cause fewer than 100
 * raw_syscalls:sys_enter events on that thread while the consumer is
 * awake. The same counter must see >= 10,000 for 10,000 direct writes,
 * so the check cannot pass by counting nothing.
 *
 * "While the consumer is awake": idle_us is raised for the test, because a
 * vCPU descheduled by the host (TCG on a small machine) for more than the
 * default 1 ms lets the consumer sleep, and each wake is one ioctl. How
 * many wakeups the run needed is printed. The thread is pinned off its
 * consumer's core, as DESIGN lays cores out: on that core the library
 * sleeps in the module instead of spinning (it would starve its consumer).
 */
#include "t.h"
#include "perfcount.h"

#include <fcntl.h>
#include <sched.h>

#define N 10000

#define IDLE_US "/sys/module/esca/parameters/idle_us"

static long idle_us(long set)
{
	long old = -1;
	FILE *f = fopen(IDLE_US, "r");

	if (f) {
		if (fscanf(f, "%ld", &old) != 1)
			old = -1;
		fclose(f);
	}
	f = fopen(IDLE_US, "w");
	if (f) {
		fprintf(f, "%ld\n", set);
		fclose(f);
	}
	return old;
}

int main(void)
{
	static const char rec[64] = "esca no-trap record";
	long direct, offloaded, wakeups, old_idle;
	int fd, pc, i, cpu;

	/* Generous spin so a slow (emulated) round trip never sleeps. */
	setenv("ESCA_SPIN_US", "200000", 1);
	t_need_offload();
	cpu = esca_thread_cpu() == 0 ? 1 : 0;
	{
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set))
			DIE("pin to CPU %d: %s", cpu, strerror(errno));
		printf("application on CPU %d, consumer on CPU %d\n", cpu,
		       esca_thread_cpu());
	}
	fd = open("/tmp/t-notrap", O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		DIE("open: %s", strerror(errno));
	pc = trapcount_open(cpu);
	if (pc < 0) {
		printf("skip: perf_event_open(raw_syscalls:sys_enter): %s\n",
		       strerror(-pc));
		return pc == -ENOENT || pc == -EOPNOTSUPP ? 77 : 1;
	}

	for (i = 0; i < 100; i++) /* wake the consumer, fault pages in */
		esca_call(SYS_write, fd, (long)rec, sizeof(rec), 0, 0, 0);

	old_idle = idle_us(2000000);
	CHECK(old_idle >= 0, "cannot read %s", IDLE_US);
	wakeups = t_stat("consumer ", "wakeups");
	trapcount_start(pc);
	for (i = 0; i < N; i++)
		if (esca_call(SYS_write, fd, (long)rec, sizeof(rec), 0, 0, 0) !=
		    sizeof(rec))
			break;
	offloaded = trapcount_stop(pc);
	wakeups = t_stat("consumer ", "wakeups") - wakeups;
	idle_us(old_idle);
	CHECK(i == N, "offloaded write %d failed", i);
	printf("consumer wakeups during the offloaded run: %ld\n", wakeups);

	trapcount_start(pc);
	for (i = 0; i < N; i++)
		if (esca_direct(SYS_write, fd, (long)rec, sizeof(rec), 0, 0,
				0) != sizeof(rec))
			break;
	direct = trapcount_stop(pc);
	CHECK(i == N, "direct write %d failed", i);

	printf("traps for %d writes: offloaded %ld, direct %ld\n", N, offloaded,
	       direct);
	CHECK(direct >= N, "direct writes counted %ld traps: counter broken",
	      direct);
	CHECK(offloaded < 100, "offloaded writes trapped %ld times", offloaded);
	CHECK(lseek(fd, 0, SEEK_END) ==
		      (off_t)(N * 2 + 100) * (off_t)sizeof(rec),
	      "file size %ld", (long)lseek(fd, 0, SEEK_END));
	return t_done("t-notrap");
}
