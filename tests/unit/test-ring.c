// SPDX-License-Identifier: MIT
/*
 * lib/ring.h's producer functions against a simulated consumer thread that
 * follows the barrier diagram in include/esca/abi.h to the letter:
 *
 *   B: load-acquire sq_tail, read the sqe, write the cqe,
 *   C: store-release sq_head;
 *   sleeping: set NEED_WAKEUP, F: full fence, re-read sq_tail, sleep.
 *
 * The ring memory is laid out by hand as the kernel does it. A watchdog
 * turns a stall (say, a lost wakeup) into a failure after 10 s.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ring.h"
#include "unit.h"

#define UD_MAGIC 0x5eca5eca00000000ULL
#define STALL_SEC 10
#define MAX_REPORTS 5 /* per kind of mismatch, then just count */
#define SPINS 32 /* busy-wait this long, then yield: the host may be busy */
#define BUDGET_SEC 4.0 /* per threaded case: on a slow host, do fewer */
#define MIN_COUNT 20000 /* ...but at least this many (wraps in (b), (d)) */

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__asm__ __volatile__("pause" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

static double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* ---- the simulated consumer ------------------------------------------ */

struct sim {
	void *mem; /* submission side, then completion side */
	struct esca_sq_hdr *sq;
	struct esca_cq_hdr *cq;
	struct esca_sqe *sqes;
	struct esca_cqe *cqes;
	uint32_t entries, mask; /* private copies, as the kernel keeps */
	uint32_t head; /* private copy of sq_head */
	bool sleepy; /* (d): go to sleep when idle */
	int stop;
	uint64_t rng;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned long wake_seq; /* under lock: bumped by the "WAKE ioctl" */
	unsigned long sleeps, wakes, bad;
	char first_bad[160];
};

/* What the simulated "system call" returns: a function of the sqe. */
static int64_t sim_res(uint32_t nr, const __u64 args[6])
{
	return (int64_t)(args[0] * 3 - nr);
}

/* The producer's sqe for sequence number @seq. */
static void make_sqe(uint64_t seq, uint32_t *nr, __u64 args[6], uint64_t *ud)
{
	*nr = seq & 0x1ff;
	for (int k = 0; k < 6; k++)
		args[k] = seq * 0x9e3779b97f4a7c15ULL + k;
	*ud = args[0] ^ UD_MAGIC;
}

/* Ring memory as the kernel lays it out; head and tail start at @start. */
static void sim_init(struct sim *s, uint32_t entries, uint32_t start,
		     bool sleepy)
{
	uint64_t sq_size = (ESCA_SQ_MMAP_SIZE(entries) + 4095) & ~4095ULL;
	uint64_t cq_size = (ESCA_CQ_MMAP_SIZE(entries) + 4095) & ~4095ULL;

	memset(s, 0, sizeof(*s));
	s->mem = aligned_alloc(4096, sq_size + cq_size);
	if (!s->mem) {
		perror("test-ring: aligned_alloc");
		exit(1);
	}
	/* garbage everywhere but the headers */
	memset(s->mem, 0xa5, sq_size + cq_size);
	s->sq = s->mem;
	s->cq = (struct esca_cq_hdr *)((char *)s->mem + sq_size);
	memset(s->sq, 0, sizeof(*s->sq));
	memset(s->cq, 0, sizeof(*s->cq));
	s->cq->entries = entries;
	s->cq->mask = entries - 1;
	s->cq->ring_id = 7;
	s->sq->sq_tail = s->cq->sq_head = start;
	s->sqes = (struct esca_sqe *)((char *)s->sq + ESCA_SQES_OFFSET);
	s->cqes = (struct esca_cqe *)((char *)s->cq + ESCA_CQES_OFFSET);
	s->entries = entries;
	s->mask = entries - 1;
	s->head = start;
	s->sleepy = sleepy;
	s->rng = 0x2545f4914f6cdd1dULL;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
}

static void sim_flags(struct sim *s, uint32_t set, uint32_t clear)
{
	uint32_t f = __atomic_load_n(&s->cq->flags, __ATOMIC_RELAXED);

	/* the consumer is the only writer of flags: no RMW needed */
	__atomic_store_n(&s->cq->flags, (f | set) & ~clear, __ATOMIC_RELEASE);
}

static void sim_bad(struct sim *s, const char *fmt, uint32_t idx,
		    unsigned long long a, unsigned long long b)
{
	if (!s->bad++)
		snprintf(s->first_bad, sizeof(s->first_bad), fmt, idx, a, b);
}

/*
 * Run up to @max entries. Returns how many ran, or -1 if the producer broke
 * the protocol (tail too far ahead), which retires the ring.
 */
static int sim_poll(struct sim *s, uint32_t max)
{
	/* B, matches A */
	uint32_t tail = __atomic_load_n(&s->sq->sq_tail, __ATOMIC_ACQUIRE);
	int n = 0;

	if (tail - s->head > s->entries) {
		sim_bad(s, "entry %u: tail %llu more than %llu ahead", s->head,
			tail, s->entries);
		sim_flags(s, ESCA_RING_DEAD, 0);
		return -1;
	}
	while (s->head != tail && (uint32_t)n < max) {
		struct esca_sqe sqe = s->sqes[s->head & s->mask];
		struct esca_cqe *cqe = &s->cqes[s->head & s->mask];

		for (int k = 1; k < 6; k++)
			if (sqe.args[k] != sqe.args[0] + k)
				sim_bad(s, "entry %u: torn sqe, args %llx %llx",
					s->head, sqe.args[0], sqe.args[k]);
		if (sqe.user_data != (sqe.args[0] ^ UD_MAGIC) || sqe.flags)
			sim_bad(s, "entry %u: flags %llx ud %llx", s->head,
				sqe.flags, sqe.user_data);
		cqe->res = sim_res(sqe.nr, sqe.args);
		cqe->flags = 0;
		cqe->resv = 0;
		cqe->user_data = sqe.user_data;
		s->head++;
		/* C, matches D */
		__atomic_store_n(&s->cq->sq_head, s->head, __ATOMIC_RELEASE);
		n++;
	}
	return n;
}

/* Consumer going idle: the documented order, then sleep until woken. */
static void sim_sleep(struct sim *s)
{
	unsigned long seq;

	pthread_mutex_lock(&s->lock); /* "prepare_to_wait" */
	seq = s->wake_seq;
	pthread_mutex_unlock(&s->lock);

	sim_flags(s, ESCA_RING_NEED_WAKEUP, 0);
	__atomic_thread_fence(__ATOMIC_SEQ_CST); /* F, matches E */
	if (__atomic_load_n(&s->sq->sq_tail, __ATOMIC_ACQUIRE) == s->head) {
		pthread_mutex_lock(&s->lock);
		while (s->wake_seq == seq &&
		       !__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE))
			pthread_cond_wait(&s->cond, &s->lock);
		pthread_mutex_unlock(&s->lock);
		s->sleeps++;
	}
	sim_flags(s, 0, ESCA_RING_NEED_WAKEUP);
}

/* The producer's ioctl(ESCA_IOC_WAKE). */
static void sim_wake(struct sim *s)
{
	pthread_mutex_lock(&s->lock);
	s->wake_seq++;
	s->wakes++;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

static void *sim_thread(void *arg)
{
	struct sim *s = arg;
	unsigned long idle = 0, spin = 0;

	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		int n = sim_poll(s, UINT32_MAX);

		if (n < 0)
			break;
		if (n > 0) {
			idle = 0;
			spin = s->sleepy ? xorshift(&s->rng) % 48 : 0;
			continue;
		}
		if (s->sleepy && idle >= spin) {
			sim_sleep(s);
			idle = 0;
		} else if (++idle % SPINS == 0) {
			sched_yield();
		} else {
			cpu_relax();
		}
	}
	return NULL;
}

static void sim_start(struct sim *s)
{
	if (pthread_create(&s->thread, NULL, sim_thread, s)) {
		fprintf(stderr, "test-ring: pthread_create failed\n");
		exit(1);
	}
}

static void sim_stop(struct sim *s)
{
	__atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
	sim_wake(s);
	pthread_join(s->thread, NULL);
}

static void sim_free(struct sim *s)
{
	CHECK(!s->bad, "consumer saw %lu bad entries, first: %s", s->bad,
	      s->first_bad);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s->mem);
}

/* ---- watchdog ----------------------------------------------------------- */

static struct {
	unsigned long progress;
	const char *phase;
	struct sim *sim;
	int done;
} wd;

static void wd_phase(const char *phase, struct sim *s)
{
	__atomic_store_n(&wd.sim, s, __ATOMIC_RELEASE);
	__atomic_store_n(&wd.phase, phase, __ATOMIC_RELEASE);
	__atomic_add_fetch(&wd.progress, 1, __ATOMIC_RELAXED);
}

static void *wd_thread(void *arg)
{
	unsigned long seen = 0;
	double last = now_sec();
	struct timespec tick = { .tv_sec = 0, .tv_nsec = 100 * 1000 * 1000 };

	(void)arg;
	while (!__atomic_load_n(&wd.done, __ATOMIC_ACQUIRE)) {
		unsigned long p =
			__atomic_load_n(&wd.progress, __ATOMIC_RELAXED);
		struct sim *h;

		nanosleep(&tick, NULL);
		if (p != seen) {
			seen = p;
			last = now_sec();
			continue;
		}
		if (now_sec() - last < STALL_SEC)
			continue;
		h = __atomic_load_n(&wd.sim, __ATOMIC_ACQUIRE);
		fflush(stdout);
		fprintf(stderr,
			"test-ring: FAIL: %s: no progress for %d s (lost "
			"wakeup?)",
			__atomic_load_n(&wd.phase, __ATOMIC_ACQUIRE),
			STALL_SEC);
		if (h)
			fprintf(stderr, ": sq_tail %u sq_head %u flags %#x",
				__atomic_load_n(&h->sq->sq_tail,
						__ATOMIC_RELAXED),
				__atomic_load_n(&h->cq->sq_head,
						__ATOMIC_RELAXED),
				__atomic_load_n(&h->cq->flags,
						__ATOMIC_RELAXED));
		fprintf(stderr, "\n");
		_exit(1);
	}
	return NULL;
}

/* ---- producer helpers ------------------------------------------------- */

static uint32_t submit_seq(struct esca_pring *r, uint64_t seq)
{
	__u64 args[6];
	uint64_t ud;
	uint32_t nr;

	make_sqe(seq, &nr, args, &ud);
	return esca_pring_submit(r, nr, args, 0, ud);
}

/* Spin until entry @idx is done; false if the ring died first. */
static bool wait_done(struct esca_pring *r, uint32_t idx)
{
	for (unsigned long spin = 1; !esca_pring_done(r, idx); spin++) {
		if (esca_pring_dead(r))
			return false;
		if (spin % SPINS == 0)
			sched_yield();
		else
			cpu_relax();
	}
	__atomic_add_fetch(&wd.progress, 1, __ATOMIC_RELAXED);
	return true;
}

/* Is the CQE of entry @idx (sequence @seq) right? Reports a few misses. */
static bool check_cqe(struct esca_pring *r, uint32_t idx, uint64_t seq,
		      const char *what, unsigned long *bad)
{
	const struct esca_cqe *cqe = esca_pring_cqe(r, idx);
	__u64 args[6];
	uint64_t ud;
	uint32_t nr;

	make_sqe(seq, &nr, args, &ud);
	if (cqe->res == sim_res(nr, args) && cqe->user_data == ud &&
	    !cqe->flags)
		return true;
	if ((*bad)++ < MAX_REPORTS)
		CHECK(0,
		      "%s: entry %u (seq %llu): res %lld ud %#llx, "
		      "want %lld %#llx",
		      what, idx, (unsigned long long)seq, (long long)cqe->res,
		      (unsigned long long)cqe->user_data,
		      (long long)sim_res(nr, args), (unsigned long long)ud);
	return false;
}

/* ---- the cases -------------------------------------------------------- */

/* ESCA_UNIT_SCALE=0.1 runs a tenth of each count, but never below MIN_COUNT. */
static unsigned long scale(unsigned long n)
{
	const char *e = getenv("ESCA_UNIT_SCALE");
	double f = e ? atof(e) : 1.0;

	if (!(f > 0 && f < 1) || n <= MIN_COUNT)
		return n;
	return n * f < MIN_COUNT ? MIN_COUNT : (unsigned long)(n * f);
}

/* Time to stop early? Checked every 4096 iterations, after MIN_COUNT. */
static bool over_budget(unsigned long i, double start)
{
	return i >= MIN_COUNT && !(i & 4095) && now_sec() - start > BUDGET_SEC;
}

/* (a) one call at a time, waiting for each with esca_pring_done(). */
static unsigned long test_roundtrip(unsigned long n)
{
	double t0 = now_sec();
	struct sim s;
	struct esca_pring r;
	unsigned long bad = 0, full = 0;
	uint64_t seq;

	sim_init(&s, 8, 0, false);
	esca_pring_init(&r, s.sq, s.cq);
	CHECK(r.entries == 8 && r.mask == 7 && r.id == 7,
	      "init: entries %u mask %u id %u", r.entries, r.mask, r.id);
	wd_phase("(a) round trips", &s);
	sim_start(&s);
	for (seq = 0; seq < n; seq++) {
		uint32_t idx;

		if (over_budget(seq, t0))
			n = seq;
		if (seq == n)
			break;
		full += esca_pring_full(&r);
		idx = submit_seq(&r, seq);
		if (!CHECK(idx == (uint32_t)seq, "(a) index %u, want %u", idx,
			   (uint32_t)seq) ||
		    !CHECK(wait_done(&r, idx), "(a) ring died at %u", idx))
			break;
		check_cqe(&r, idx, seq, "(a)", &bad);
	}
	sim_stop(&s);
	CHECK(seq == n, "(a) stopped after %llu of %lu",
	      (unsigned long long)seq, n);
	CHECK(!bad, "(a) %lu wrong results", bad);
	CHECK(!full, "(a) ring full %lu times with one entry in flight", full);
	CHECK(s.sq->sq_tail == (uint32_t)n && s.cq->sq_head == (uint32_t)n,
	      "(a) tail %u head %u, want %u", s.sq->sq_tail, s.cq->sq_head,
	      (uint32_t)n);
	sim_free(&s);
	return n;
}

/*
 * (b) up to `entries` in flight, gated by esca_pring_full(), with the u32
 * indexes wrapping. CQEs are read in order, each before its slot is reused.
 */
static unsigned long test_pipeline(unsigned long n, uint32_t entries)
{
	double t0 = now_sec();
	const uint32_t start = UINT32_MAX - 1000;
	struct sim s;
	struct esca_pring r;
	unsigned long sub = 0, reaped = 0, bad = 0, fulls = 0, max_inflight = 0;
	unsigned long early = 0;

	sim_init(&s, entries, start, false);
	esca_pring_init(&r, s.sq, s.cq);
	wd_phase("(b) pipeline", &s);
	sim_start(&s);
	while (reaped < n) {
		if (sub < n && over_budget(sub, t0))
			n = sub;
		if (sub < n && !esca_pring_full(&r)) {
			/* not full, but is the slot's old CQE still unread? */
			if (sub - reaped == entries) {
				early += !esca_pring_done(&r, start + reaped);
				check_cqe(&r, start + reaped, reaped, "(b)",
					  &bad);
				reaped++;
			}
			submit_seq(&r, sub++);
			if (sub - reaped > max_inflight)
				max_inflight = sub - reaped;
			continue;
		}
		fulls += sub < n;
		if (!CHECK(wait_done(&r, start + reaped), "(b) ring died at %u",
			   start + (uint32_t)reaped))
			break;
		/* reap everything that is done, in order */
		do {
			check_cqe(&r, start + reaped, reaped, "(b)", &bad);
			reaped++;
		} while (reaped < sub && esca_pring_done(&r, start + reaped));
	}
	sim_stop(&s);
	CHECK(reaped == n, "(b) reaped %lu of %lu", reaped, n);
	CHECK(!bad, "(b) %lu wrong results", bad);
	CHECK(!early, "(b) not full, yet the oldest entry not done %lu times",
	      early);
	CHECK(max_inflight == entries, "(b) at most %lu in flight, want %u",
	      max_inflight, entries);
	CHECK(fulls > 0, "(b) the ring was never full");
	CHECK(s.sq->sq_tail == (uint32_t)(start + n) && r.tail == s.sq->sq_tail,
	      "(b) tail %u (private %u), want %u after the wrap", s.sq->sq_tail,
	      r.tail, (uint32_t)(start + n));
	CHECK(s.cq->sq_head == s.sq->sq_tail, "(b) head %u tail %u",
	      s.cq->sq_head, s.sq->sq_tail);
	CHECK(n <= 1000 || s.sq->sq_tail < start, "(b) indexes did not wrap");
	sim_free(&s);
	return n;
}

/* (c) esca_pring_full() against a consumer stepped by hand. */
static void test_full(uint32_t start)
{
	struct sim s;
	struct esca_pring r;
	unsigned long bad = 0;
	uint32_t k;

	sim_init(&s, 8, start, false);
	esca_pring_init(&r, s.sq, s.cq);
	for (k = 0; k < 8; k++) {
		CHECK(!esca_pring_full(&r), "(c) full with %u of 8 in flight",
		      k);
		submit_seq(&r, k);
	}
	CHECK(esca_pring_full(&r), "(c) not full with 8 of 8 in flight");
	CHECK(esca_pring_full(&r), "(c) full is not stable");
	CHECK(!esca_pring_done(&r, start), "(c) entry done before it ran");
	CHECK(sim_poll(&s, 1) == 1, "(c) consumer ran nothing");
	CHECK(esca_pring_done(&r, start) && !esca_pring_done(&r, start + 1),
	      "(c) done wrong after one completion");
	CHECK(!esca_pring_full(&r), "(c) still full after one completed");
	check_cqe(&r, start, 0, "(c)", &bad);
	submit_seq(&r, 8);
	CHECK(esca_pring_full(&r), "(c) not full after refilling the slot");
	CHECK(sim_poll(&s, UINT32_MAX) == 8, "(c) consumer did not run 8");
	CHECK(!esca_pring_full(&r), "(c) full with nothing in flight");
	for (k = 1; k <= 8; k++)
		check_cqe(&r, start + k, k, "(c)", &bad);
	CHECK(!bad, "(c) %lu wrong results", bad);
	CHECK(esca_pring_done(&r, start + 8) && !esca_pring_done(&r, start + 9),
	      "(c) done wrong at the end");
	sim_free(&s);
}

/*
 * (d) a consumer that sleeps when idle: set NEED_WAKEUP, F, re-check the
 * tail, sleep. The producer submits, asks esca_pring_needs_wakeup() and
 * wakes it if so. A lost wakeup stalls the round trip: the watchdog fires.
 */
static unsigned long test_wakeup(unsigned long n)
{
	double t0 = now_sec();
	struct sim s;
	struct esca_pring r;
	unsigned long bad = 0, seq, asked = 0;
	uint64_t rng = 0x9e3779b97f4a7c15ULL;

	sim_init(&s, 8, UINT32_MAX - 100, true);
	esca_pring_init(&r, s.sq, s.cq);
	wd_phase("(d) sleep/wake round trips", &s);
	sim_start(&s);
	for (seq = 0; seq < n; seq++) {
		uint32_t idx;

		if (over_budget(seq, t0))
			n = seq;
		if (seq == n)
			break;
		/* sometimes let the consumer get (part way) to sleep */
		for (uint64_t d = xorshift(&rng) % 64; d; d--)
			cpu_relax();
		idx = submit_seq(&r, seq);
		if (esca_pring_needs_wakeup(&r)) {
			asked++;
			sim_wake(&s);
		}
		if (!CHECK(wait_done(&r, idx), "(d) ring died at %u", idx))
			break;
		check_cqe(&r, idx, seq, "(d)", &bad);
	}
	sim_stop(&s);
	CHECK(seq == n, "(d) stopped after %lu of %lu", seq, n);
	CHECK(!bad, "(d) %lu wrong results", bad);
	CHECK(s.sleeps > 0 && asked > 0,
	      "(d) consumer slept %lu times, producer woke it %lu times",
	      s.sleeps, asked);
	printf("# (d) consumer slept %lu times, %lu wakeups\n", s.sleeps,
	       asked);
	sim_free(&s);
	return n;
}

/* (e) esca_pring_dead() and needs_wakeup() follow the flag bits. */
static void test_dead(void)
{
	struct sim s;
	struct esca_pring r;
	const struct {
		uint32_t flags;
		bool dead, wake;
	} cases[] = {
		{ 0, false, false },
		{ ESCA_RING_NEED_WAKEUP, false, true },
		{ ESCA_RING_DEAD, true, false },
		{ ESCA_RING_DEAD | ESCA_RING_NEED_WAKEUP, true, true },
		{ 1U << 31, false, false },
	};

	sim_init(&s, 8, 0, false);
	esca_pring_init(&r, s.sq, s.cq);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		__atomic_store_n(&s.cq->flags, cases[i].flags,
				 __ATOMIC_RELEASE);
		CHECK(esca_pring_dead(&r) == cases[i].dead,
		      "(e) flags %#x: dead %d", cases[i].flags,
		      esca_pring_dead(&r));
		CHECK(esca_pring_needs_wakeup(&r) == cases[i].wake,
		      "(e) flags %#x: needs_wakeup %d", cases[i].flags,
		      esca_pring_needs_wakeup(&r));
	}
	/* a producer running more than `entries` ahead gets its ring retired */
	__atomic_store_n(&s.cq->flags, 0, __ATOMIC_RELEASE);
	for (uint64_t k = 0; k < 3; k++)
		submit_seq(&r, k);
	CHECK(sim_poll(&s, 2) == 2, "(e) consumer did not run 2");
	r.tail = s.head + 9; /* 9 > 8 ahead: break the protocol on purpose */
	__atomic_store_n(&s.sq->sq_tail, r.tail, __ATOMIC_RELEASE);
	CHECK(!esca_pring_dead(&r), "(e) dead too early");
	CHECK(sim_poll(&s, UINT32_MAX) == -1, "(e) bad tail accepted");
	CHECK(esca_pring_dead(&r), "(e) not dead after a bad tail");
	CHECK(esca_pring_done(&r, 1) && !esca_pring_done(&r, 2),
	      "(e) head moved on a retired ring");
	s.bad = 0; /* that one was on purpose */
	sim_free(&s);
}

int main(void)
{
	pthread_t wdt;
	double t0, t;
	unsigned long n;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (pthread_create(&wdt, NULL, wd_thread, NULL)) {
		fprintf(stderr, "test-ring: pthread_create failed\n");
		return 1;
	}

	t0 = t = now_sec();
	n = test_roundtrip(scale(1000000));
	printf("# (a) %lu round trips, 8 entries: %.2f s\n", n, now_sec() - t);
	t = now_sec();
	n = test_pipeline(scale(1000000), 8);
	printf("# (b) %lu pipelined, 8 entries, wrapping: %.2f s\n", n,
	       now_sec() - t);
	t = now_sec();
	test_full(0);
	test_full(UINT32_MAX - 3);
	printf("# (c) esca_pring_full: %.2f s\n", now_sec() - t);
	t = now_sec();
	n = test_wakeup(scale(200000));
	printf("# (d) %lu sleep/wake round trips: %.2f s\n", n, now_sec() - t);
	test_dead();
	printf("# total %.2f s\n", now_sec() - t0);

	__atomic_store_n(&wd.done, 1, __ATOMIC_RELEASE);
	pthread_join(wdt, NULL);
	return unit_done();
}
