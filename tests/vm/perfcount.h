/* SPDX-License-Identifier: MIT */
/*
 * Count raw_syscalls:sys_enter on one CPU with perf_event_open: pin the
 * measured thread there and this is how often it entered the kernel (any
 * other task's system calls on that CPU are counted too, which can only
 * make a "few traps" check stricter).
 *
 * CPU-wide, not per task: a per-task event flips the perf_sched_events
 * static key in __schedule (back off a second later, from a work item),
 * and QEMU's multi-threaded TCG mishandles that live patch under load:
 * guests died with "Oops: int3" at __schedule within two loops of this
 * test and t-threads, and never in 70 loops without the per-task event.
 */
#ifndef ESCA_PERFCOUNT_H
#define ESCA_PERFCOUNT_H

#define _GNU_SOURCE
#include <linux/perf_event.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Returns an fd counting system call entries on @cpu, or -errno. */
static inline int trapcount_open(int cpu)
{
	static const char *paths[] = {
		"/sys/kernel/tracing/events/raw_syscalls/sys_enter/id",
		"/sys/kernel/debug/tracing/events/raw_syscalls/sys_enter/id",
	};
	struct perf_event_attr attr;
	long id = -1;
	int fd;

	for (unsigned i = 0; i < 2 && id < 0; i++) {
		FILE *f = fopen(paths[i], "r");

		if (f) {
			if (fscanf(f, "%ld", &id) != 1)
				id = -1;
			fclose(f);
		}
	}
	if (id < 0)
		return -ENOENT;
	memset(&attr, 0, sizeof(attr));
	attr.type = PERF_TYPE_TRACEPOINT;
	attr.size = sizeof(attr);
	attr.config = (uint64_t)id;
	attr.disabled = 1;
	fd = (int)syscall(SYS_perf_event_open, &attr, -1, cpu, -1,
			  PERF_FLAG_FD_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static inline void trapcount_start(int fd)
{
	ioctl(fd, PERF_EVENT_IOC_RESET, 0);
	ioctl(fd, PERF_EVENT_IOC_ENABLE, 0);
}

/* Stop and read; the enable/disable ioctls themselves are subtracted. */
static inline long trapcount_stop(int fd)
{
	uint64_t n = 0;

	ioctl(fd, PERF_EVENT_IOC_DISABLE, 0);
	if (read(fd, &n, sizeof(n)) != sizeof(n))
		return -1;
	return n > 0 ? (long)n - 1 : 0; /* the DISABLE ioctl's own entry */
}

#endif
