/* SPDX-License-Identifier: MIT */
/*
 * Raw ring ABI for guest tests that must see BOUNCED themselves: libesca
 * would make a bounced call directly, and on a never-answering file that
 * hangs the test. No WAIT ioctl either (it has no timeout): completions are
 * polled with a deadline, so a stalled consumer shows as a timeout.
 *
 * Also a prober: a second process with its own context on the same
 * consumer, making one offloaded call after another and recording the
 * worst latency, to show that the consumer kept serving others.
 */
#ifndef ESCA_TRING_H
#define ESCA_TRING_H

#include "t.h"

#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "esca/abi.h"

struct tring {
	int fd;
	struct esca_sq_hdr *sq;
	const struct esca_cq_hdr *cq;
	struct esca_sqe *sqes;
	const struct esca_cqe *cqes;
	uint32_t id, entries, tail, cpu;
};

static inline uint64_t tr_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void tr_sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
}

/* Open /dev/esca, set up this process, register this thread: 0 or -errno. */
static inline int tr_open(struct tring *r, uint32_t entries)
{
	struct esca_setup s = { .abi_version = ESCA_ABI_VERSION,
				.entries = entries };
	struct esca_register reg = { 0 };
	void *sq, *cq;

	memset(r, 0, sizeof(*r));
	r->fd = open(ESCA_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	if (r->fd < 0)
		return -errno;
	if (ioctl(r->fd, ESCA_IOC_SETUP, &s) ||
	    ioctl(r->fd, ESCA_IOC_REGISTER, &reg))
		return -errno;
	sq = mmap(NULL, reg.sq_size, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd,
		  (off_t)reg.sq_offset);
	if (sq == MAP_FAILED)
		return -errno;
	cq = mmap(NULL, reg.cq_size, PROT_READ, MAP_SHARED, r->fd,
		  (off_t)reg.cq_offset);
	if (cq == MAP_FAILED)
		return -errno;
	r->sq = sq;
	r->cq = cq;
	r->sqes = (void *)((char *)sq + ESCA_SQES_OFFSET);
	r->cqes = (const void *)((const char *)cq + ESCA_CQES_OFFSET);
	r->id = reg.ring_id;
	r->entries = reg.entries;
	r->cpu = reg.consumer_cpu;
	return 0;
}

/* Write entry r->tail (not yet visible); returns its index. */
static inline uint32_t tr_queue(struct tring *r, uint32_t nr, uint32_t flags,
				uint64_t a0, uint64_t a1, uint64_t a2,
				uint64_t a3, uint64_t ud)
{
	struct esca_sqe *s = &r->sqes[r->tail & (r->entries - 1)];

	memset(s, 0, sizeof(*s));
	s->nr = nr;
	s->flags = flags;
	s->args[0] = a0;
	s->args[1] = a1;
	s->args[2] = a2;
	s->args[3] = a3;
	s->user_data = ud;
	return r->tail++;
}

/* Publish the queued entries (A), then wake a sleeping consumer (E). */
static inline void tr_kick(struct tring *r)
{
	__atomic_store_n(&r->sq->sq_tail, r->tail, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&r->cq->flags, __ATOMIC_RELAXED) &
	    ESCA_RING_NEED_WAKEUP)
		ioctl(r->fd, ESCA_IOC_WAKE, r->id);
}

static inline bool tr_done(const struct tring *r, uint32_t idx)
{
	uint32_t head = __atomic_load_n(&r->cq->sq_head, __ATOMIC_ACQUIRE);

	return (int32_t)(head - idx) > 0;
}

static inline bool tr_dead(const struct tring *r)
{
	return __atomic_load_n(&r->cq->flags, __ATOMIC_ACQUIRE) &
	       ESCA_RING_DEAD;
}

static inline const struct esca_cqe *tr_cqe(const struct tring *r, uint32_t idx)
{
	return &r->cqes[idx & (r->entries - 1)];
}

/*
 * Poll until entry @idx completed (1), the ring died without running it
 * (-1), or @timeout_ms passed (0).
 */
static inline int tr_wait(struct tring *r, uint32_t idx, unsigned timeout_ms)
{
	uint64_t end = tr_now_ns() + timeout_ms * 1000000ull;

	for (unsigned n = 1;; n++) {
		if (tr_done(r, idx))
			return 1;
		if (tr_dead(r))
			return tr_done(r, idx) ? 1 : -1;
		if (tr_now_ns() > end)
			return 0;
		if (n % 512 == 0) /* belt and braces: re-kick */
			tr_kick(r);
		tr_sleep_us(100);
	}
}

/* One synchronous entry; *cqe gets a copy of its completion. */
static inline int tr_call(struct tring *r, uint32_t nr, uint64_t a0,
			  uint64_t a1, uint64_t a2, uint64_t a3,
			  unsigned timeout_ms, struct esca_cqe *cqe)
{
	uint32_t idx = tr_queue(r, nr, 0, a0, a1, a2, a3, 0);
	int w;

	tr_kick(r);
	w = tr_wait(r, idx, timeout_ms);
	if (w == 1)
		*cqe = *tr_cqe(r, idx);
	return w;
}

/* A counter from /proc/esca/stats for the context of process @pid. */
static inline long tr_ctx_stat(pid_t pid, const char *key)
{
	char prefix[48];

	snprintf(prefix, sizeof(prefix), "context pid=%d ", (int)pid);
	return t_stat(prefix, key);
}

/* ------------------------------------------------------------- prober */

struct tprobe {
	volatile int stop, ready, cpu, err;
	volatile long count, late, bad, bounced, worst_ns;
	volatile long first_bad_res, first_bad_flags;
	volatile long dead_reason; /* its ring died: ESCA_DEAD_* */
};

#define TPROBE_LATE_MS 5000 /* generous: a hang guard, not a speed claim */

static inline void tprobe_run(struct tprobe *p)
{
	struct tring r;
	struct esca_cqe c;
	char path[64];
	int fd, e;

	prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
	e = tr_open(&r, 8);
	if (e) {
		p->err = e;
		p->ready = 1;
		_exit(1);
	}
	snprintf(path, sizeof(path), "/tmp/esca-probe.%d", (int)getpid());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	unlink(path);
	p->cpu = (int)r.cpu;
	p->ready = 1;
	while (!p->stop) {
		uint64_t t0 = tr_now_ns(), lat;
		uint32_t idx = tr_queue(&r, SYS_pwrite64, 0, (uint64_t)fd,
					(uint64_t) "p", 1, 0, 0);
		int w;

		tr_kick(&r);
		w = tr_wait(&r, idx, TPROBE_LATE_MS);
		if (w == 0) {
			p->late++;
			/* still count the worst case, but never hang */
			w = tr_wait(&r, idx, 60000);
		}
		lat = tr_now_ns() - t0;
		if ((long)lat > p->worst_ns)
			p->worst_ns = (long)lat;
		if (w != 1) {
			p->dead_reason = w < 0 ? (long)r.cq->dead_reason : -1;
			_exit(1);
		}
		c = *tr_cqe(&r, idx);
		if (c.flags & ESCA_CQE_BOUNCED)
			p->bounced++;
		else if (c.res != 1) {
			if (!p->bad++) {
				p->first_bad_res = c.res;
				p->first_bad_flags = c.flags;
			}
		}
		p->count++;
		tr_sleep_us(2000);
	}
	_exit(0);
}

/* Start the prober; it is ready (registered) when this returns. */
static inline pid_t tprobe_start(struct tprobe **out)
{
	struct tprobe *p = mmap(NULL, sizeof(*p), PROT_READ | PROT_WRITE,
				MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t pid;

	if (p == MAP_FAILED)
		DIE("mmap: %s", strerror(errno));
	memset(p, 0, sizeof(*p));
	pid = fork();
	if (pid < 0)
		DIE("fork: %s", strerror(errno));
	if (pid == 0)
		tprobe_run(p);
	for (int i = 0; i < 20000 && !p->ready; i++)
		tr_sleep_us(1000);
	if (!p->ready || p->err)
		DIE("prober did not start: %s",
		    p->err ? strerror(-p->err) : "timeout");
	*out = p;
	return pid;
}

/* Stop the prober and check it was served all along. */
static inline void tprobe_check(pid_t pid, struct tprobe *p, const char *what)
{
	int st = 0;

	p->stop = 1;
	for (int i = 0; i < 70000; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			break;
		if (i == 69999) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
		}
		tr_sleep_us(1000);
	}
	printf("# %s: prober (pid %d; test pid %d) made %ld calls, worst "
	       "latency %ld ms, %ld over %d ms\n",
	       what, (int)pid, (int)getpid(), p->count, p->worst_ns / 1000000,
	       p->late, TPROBE_LATE_MS);
	CHECK(p->dead_reason == 0,
	      "%s: the prober's ring %s (reason %ld): an innocent ring was "
	      "retired",
	      what, p->dead_reason < 0 ? "never completed an entry" : "died",
	      p->dead_reason);
	CHECK(p->count > 0, "%s: the prober completed no call", what);
	CHECK(p->late == 0,
	      "%s: another process's calls waited over %d ms (worst %ld ms): "
	      "the consumer stalled",
	      what, TPROBE_LATE_MS, p->worst_ns / 1000000);
	CHECK(p->bad == 0 && p->bounced == 0,
	      "%s: prober: %ld bad results (first res %ld flags %lx), %ld "
	      "bounced",
	      what, p->bad, p->first_bad_res, p->first_bad_flags, p->bounced);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "%s: prober exit status %#x", what, st);
}

#endif
