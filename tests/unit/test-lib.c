// SPDX-License-Identifier: MIT
/*
 * lib/esca.c itself (included below, not a copy) against a simulated
 * esca.ko: its recovery paths (BOUNCED, PAUSED, DEAD, a closed fd), its
 * fallbacks and its messages.
 *
 * lib/esca.c makes every system call through sys(); ESCA_SYSCALL_HOOK
 * routes them to sim_sys() here, which simulates what /dev/esca would do
 * (openat of the device, its ioctls, mmap/munmap of a ring) and passes
 * every other call (the calls being offloaded) to the real kernel.
 *
 * The simulated module lays each ring out as abi.h says, in a memfd: the
 * "kernel" maps it read-write, the library gets the submission side
 * read-write and the completion side read-only (a store there would
 * crash the test), MADV_DONTFORK standing in for VM_DONTCOPY. One consumer
 * thread per ring follows abi.h's barrier diagram (B, C, F, H) and runs
 * each entry with a real system call. It can hold entries back (the gate),
 * bounce an entry (a record whose `bounce` is set: sync, or deferred and
 * then pause until sq_hdr.resume says the call was made), kill the ring
 * with a given dead_reason before a chosen entry, and WAIT fails -EBADF
 * once the test has closed the library's fd.
 *
 * The offloaded calls write numbered records to a memfd, so the file shows
 * what took effect, in which order and how many times; the hook counts the
 * records the library wrote directly. Each case runs in its own child
 * process (fresh library state) under a 30 s hang guard.
 */
#define _GNU_SOURCE
#define ESCA_SYSCALL_HOOK sim_sys
#include "../../lib/esca.c"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unit.h"

#define SIM_RINGS 64
#define NREC 256
#define REC_MAGIC 0xe5ca0000u
#define CASE_SEC 30
#define PAUSE_GAP_US 2000 /* PAUSED shows this long before the head moves */
#define IDLE_POLL_MS 200 /* a sleeping consumer looks at its rings anyway */

/* ---- records: what the offloaded calls write ---------------------------- */

struct rec {
	uint32_t magic;
	uint32_t seq;
	uint32_t bounce; /* the simulated module bounces this write */
	uint32_t pad;
};

static struct rec recs[NREC];

/* ---- the simulated module ----------------------------------------------- */

struct sring {
	uint32_t id, entries, mask;
	int memfd;
	size_t sq_len, cq_len; /* page-rounded sides in the memfd */
	struct esca_sq_hdr *sq; /* the "kernel's" read-write view */
	struct esca_cq_hdr *cq;
	struct esca_sqe *sqes;
	struct esca_cqe *cqes;
	void *user_sq, *user_cq; /* the library's mappings */
	size_t user_sq_len, user_cq_len;
	pid_t owner; /* registering thread */
	uint32_t head, flags; /* private copies, as the module keeps */
	uint32_t resume_seen;
	bool paused, dead, stop;
	uint32_t paused_idx;
	struct esca_sqe paused_sqe;
	long kill_after; /* die before processing entry number N; -1 never */
	uint32_t kill_reason;
	unsigned long processed, ran, bounced, pauses, resumes;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* any change: head, flags, gate, wake */
	/* faults to inject */
	long open_err, setup_err, register_err, mmap_err;
	long plan_after[SIM_RINGS]; /* kill plan per registration, -1: none */
	uint32_t plan_reason[SIM_RINGS];
	long kill_all_after; /* every later ring too, -1: none */
	uint32_t kill_all_reason;
	bool gate; /* consumers run nothing while set */
	unsigned int pause_gap_us;
	/* state */
	int fd; /* the "device": a real fd on /dev/null */
	uint32_t entries; /* from SETUP */
	uint32_t setup_entries_in;
	struct sring rings[SIM_RINGS];
	unsigned int nrings;
	int data_fd; /* memfd the records go to */
	/* counters */
	unsigned long opens, setups, registers, unregisters, wakes, wakes_ok,
		waits, ebadf, bad_ioctls, direct[NREC];
	unsigned long bad;
	char first_bad[256];
	char said[8192]; /* what the library wrote to fd 2 */
	size_t said_len;
} sim;

static pid_t gettid_(void)
{
	return (pid_t)esca_direct(SYS_gettid, 0, 0, 0, 0, 0, 0);
}

static void sim_bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sim_bad(const char *fmt, ...)
{
	va_list ap;

	if (!sim.bad++) {
		va_start(ap, fmt);
		vsnprintf(sim.first_bad, sizeof(sim.first_bad), fmt, ap);
		va_end(ap);
	}
}

static void sim_init(void)
{
	memset(&sim, 0, sizeof(sim));
	pthread_mutex_init(&sim.lock, NULL);
	pthread_cond_init(&sim.cond, NULL);
	for (int i = 0; i < SIM_RINGS; i++)
		sim.plan_after[i] = -1;
	sim.kill_all_after = -1;
	sim.fd = -1;
	sim.data_fd = memfd_create("test-lib-data", MFD_CLOEXEC);
	if (sim.data_fd < 0) {
		perror("test-lib: memfd_create");
		exit(1);
	}
	for (int i = 0; i < NREC; i++)
		recs[i] =
			(struct rec){ .magic = REC_MAGIC, .seq = (uint32_t)i };
}

/* The record an sqe writes to the data file, or NULL. */
static const struct rec *rec_of(const struct esca_sqe *sqe)
{
	if (sqe->nr != SYS_write || (long)sqe->args[0] != sim.data_fd ||
	    sqe->args[2] != sizeof(struct rec))
		return NULL;
	return (const struct rec *)(uintptr_t)sqe->args[1];
}

/* Under sim.lock. The consumer is the only writer of flags. */
static void ring_flags(struct sring *r, uint32_t set, uint32_t clear)
{
	r->flags = (r->flags | set) & ~clear;
	__atomic_store_n(&r->cq->flags, r->flags, __ATOMIC_RELEASE);
}

static void ring_die(struct sring *r, uint32_t reason)
{
	if (r->dead)
		return;
	/* the reason first: final once DEAD shows (head is already final) */
	__atomic_store_n(&r->cq->dead_reason, reason, __ATOMIC_RELAXED);
	ring_flags(r, ESCA_RING_DEAD, 0);
	r->dead = r->stop = true;
	pthread_cond_broadcast(&sim.cond);
}

/* The last record in the data file, or -1. */
static long last_rec(void)
{
	struct rec rc;
	off_t end = lseek(sim.data_fd, 0, SEEK_END);

	if (end < (off_t)sizeof(rc) ||
	    pread(sim.data_fd, &rc, sizeof(rc), end - (off_t)sizeof(rc)) !=
		    (ssize_t)sizeof(rc))
		return -1;
	return rc.seq;
}

/* Under sim.lock: run (or bounce) entry `head`. */
static void run_one(struct sring *r)
{
	uint32_t idx = r->head;
	struct esca_sqe sqe = r->sqes[idx & r->mask];
	struct esca_cqe *cqe = &r->cqes[idx & r->mask];
	const struct rec *rc = rec_of(&sqe);
	bool bounce = rc && rc->bounce;
	uint32_t cflags = 0;
	long res;

	if (sqe.flags & ~ESCA_SQE_VALID_FLAGS) {
		sim_bad("entry %u: flags %#x", idx, sqe.flags);
		res = -EINVAL;
	} else if (bounce) {
		res = 0;
		cflags = ESCA_CQE_BOUNCED;
		r->bounced++;
	} else {
		pthread_mutex_unlock(&sim.lock);
		res = esca_direct(sqe.nr, (long)sqe.args[0], (long)sqe.args[1],
				  (long)sqe.args[2], (long)sqe.args[3],
				  (long)sqe.args[4], (long)sqe.args[5]);
		pthread_mutex_lock(&sim.lock);
		r->ran++;
	}
	r->processed++;
	cqe->res = res;
	cqe->flags = cflags;
	cqe->resv = 0;
	cqe->user_data = sqe.user_data;
	if (bounce && (sqe.flags & ESCA_SQE_DEFERRED)) {
		/* as the module does: PAUSED shows before the head moves */
		r->paused = true;
		r->paused_idx = idx;
		r->paused_sqe = sqe;
		r->pauses++;
		ring_flags(r, ESCA_RING_PAUSED, 0);
		if (sim.pause_gap_us) {
			pthread_mutex_unlock(&sim.lock);
			usleep(sim.pause_gap_us);
			pthread_mutex_lock(&sim.lock);
		}
	}
	r->head = idx + 1;
	/* C, matches D */
	__atomic_store_n(&r->cq->sq_head, r->head, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&sim.cond);
}

/* Under sim.lock: one step of work; false if there is none. */
static bool consumer_step(struct sring *r)
{
	/* H, matches G */
	uint32_t res = __atomic_load_n(&r->sq->resume, __ATOMIC_ACQUIRE);
	uint32_t tail;

	if (res != r->resume_seen) {
		r->resume_seen = res;
		if (!r->paused || res != r->paused_idx + 1) {
			sim_bad("ring %u: resume %u stored, paused %d at %u",
				r->id, res, r->paused, r->paused_idx);
		} else {
			const struct rec *rc = rec_of(&r->paused_sqe);

			/* the library must have made the call before */
			if (rc && last_rec() != rc->seq)
				sim_bad("ring %u: resumed at %u before record %u was written (last %ld)",
					r->id, res, rc->seq, last_rec());
			r->paused = false;
			r->resumes++;
			ring_flags(r, 0, ESCA_RING_PAUSED);
			pthread_cond_broadcast(&sim.cond);
			return true;
		}
	}
	if (r->paused || sim.gate)
		return false;
	/* B, matches A */
	tail = __atomic_load_n(&r->sq->sq_tail, __ATOMIC_ACQUIRE);
	if (tail == r->head)
		return false;
	if (tail - r->head > r->entries) {
		sim_bad("ring %u: tail %u more than %u past head %u", r->id,
			tail, r->entries, r->head);
		ring_die(r, ESCA_DEAD_PROTOCOL);
		return true;
	}
	if (r->kill_after >= 0 && (long)r->processed >= r->kill_after) {
		ring_die(r, r->kill_reason);
		return true;
	}
	run_one(r);
	return true;
}

static void *consumer(void *arg)
{
	struct sring *r = arg;

	pthread_mutex_lock(&sim.lock);
	while (!r->stop) {
		struct timespec until;

		if (consumer_step(r))
			continue;
		/* going idle: NEED_WAKEUP, F, look again, then sleep */
		ring_flags(r, ESCA_RING_NEED_WAKEUP, 0);
		__atomic_thread_fence(__ATOMIC_SEQ_CST); /* F, matches E */
		if (consumer_step(r)) {
			ring_flags(r, 0, ESCA_RING_NEED_WAKEUP);
			continue;
		}
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += IDLE_POLL_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		if (!r->stop)
			pthread_cond_timedwait(&sim.cond, &sim.lock, &until);
		ring_flags(r, 0, ESCA_RING_NEED_WAKEUP);
	}
	pthread_mutex_unlock(&sim.lock);
	return NULL;
}

static struct sring *ring_by_id(uint32_t id)
{
	return id < sim.nrings ? &sim.rings[id] : NULL;
}

static long sim_register(struct esca_register *reg)
{
	uint32_t id = sim.nrings, e = sim.entries;
	struct sring *r = &sim.rings[id];
	pthread_t th;
	char *mem;

	sim.registers++;
	if (sim.register_err)
		return sim.register_err;
	if (!e || id >= SIM_RINGS)
		return -EINVAL;
	memset(r, 0, sizeof(*r));
	r->id = id;
	r->entries = e;
	r->mask = e - 1;
	r->sq_len = (ESCA_SQ_MMAP_SIZE(e) + 4095) & ~4095ULL;
	r->cq_len = (ESCA_CQ_MMAP_SIZE(e) + 4095) & ~4095ULL;
	r->memfd = memfd_create("test-lib-ring", MFD_CLOEXEC);
	if (r->memfd < 0 || ftruncate(r->memfd, r->sq_len + r->cq_len))
		return -ENOMEM;
	mem = mmap(NULL, r->sq_len + r->cq_len, PROT_READ | PROT_WRITE,
		   MAP_SHARED, r->memfd, 0);
	if (mem == MAP_FAILED)
		return -ENOMEM;
	memset(mem, 0xa5, r->sq_len + r->cq_len); /* garbage but the headers */
	r->sq = (struct esca_sq_hdr *)mem;
	r->cq = (struct esca_cq_hdr *)(mem + r->sq_len);
	memset(r->sq, 0, sizeof(*r->sq));
	memset(r->cq, 0, sizeof(*r->cq));
	r->sqes = (struct esca_sqe *)(mem + ESCA_SQES_OFFSET);
	r->cqes = (struct esca_cqe *)((char *)r->cq + ESCA_CQES_OFFSET);
	/* start near the u32 wrap: every index comparison is exercised */
	r->head = 0xfffffffau;
	r->sq->sq_tail = r->cq->sq_head = r->head;
	r->sq->resume = r->resume_seen = r->head;
	r->cq->entries = e;
	r->cq->mask = e - 1;
	r->cq->ring_id = id;
	r->owner = gettid_();
	r->kill_after = sim.plan_after[id];
	r->kill_reason = sim.plan_reason[id];
	if (r->kill_after < 0 && sim.kill_all_after >= 0) {
		r->kill_after = sim.kill_all_after;
		r->kill_reason = sim.kill_all_reason;
	}
	sim.nrings++;
	if (pthread_create(&th, NULL, consumer, r)) {
		fprintf(stderr, "test-lib: pthread_create failed\n");
		exit(1);
	}
	pthread_detach(th);
	memset(reg, 0, sizeof(*reg));
	reg->ring_id = id;
	reg->entries = e;
	reg->sq_offset = ESCA_SQ_OFFSET(id);
	reg->cq_offset = ESCA_CQ_OFFSET(id);
	reg->sq_size = (uint32_t)ESCA_SQ_MMAP_SIZE(e);
	reg->cq_size = (uint32_t)ESCA_CQ_MMAP_SIZE(e);
	reg->consumer_cpu = 0xffff; /* never the test's core: spin first */
	return 0;
}

static long sim_ioctl(unsigned long cmd, long arg)
{
	struct sring *r;
	long ret = 0;

	/* the program closed the library's fd */
	if (esca_direct(SYS_fcntl, sim.fd, F_GETFD, 0, 0, 0, 0) < 0) {
		__atomic_add_fetch(&sim.ebadf, 1, __ATOMIC_RELAXED);
		if (cmd == ESCA_IOC_WAIT)
			__atomic_add_fetch(&sim.waits, 1, __ATOMIC_RELAXED);
		if (cmd == ESCA_IOC_WAKE)
			__atomic_add_fetch(&sim.wakes, 1, __ATOMIC_RELAXED);
		return -EBADF;
	}
	pthread_mutex_lock(&sim.lock);
	switch (cmd) {
	case ESCA_IOC_SETUP: {
		struct esca_setup *s = (struct esca_setup *)arg;
		uint32_t e = s->entries ? s->entries : ESCA_ENTRIES_DEFAULT;

		sim.setups++;
		if (sim.setup_err)
			ret = sim.setup_err;
		else if (s->abi_version != ESCA_ABI_VERSION)
			ret = -EPROTO;
		else if (s->flags || s->resv[0] || s->resv[1] ||
			 e < ESCA_ENTRIES_MIN || e > ESCA_ENTRIES_MAX ||
			 (e & (e - 1)))
			ret = -EINVAL;
		if (ret)
			break;
		sim.setup_entries_in = s->entries;
		sim.entries = s->entries = e;
		s->nr_consumers = 1;
		break;
	}
	case ESCA_IOC_REGISTER:
		ret = sim_register((struct esca_register *)arg);
		break;
	case ESCA_IOC_UNREGISTER:
		sim.unregisters++;
		r = ring_by_id((uint32_t)arg);
		if (!r)
			ret = -ENOENT;
		else
			ring_die(r, ESCA_DEAD_CLOSED);
		break;
	case ESCA_IOC_WAKE:
		sim.wakes++;
		if (!ring_by_id((uint32_t)arg)) {
			ret = -ENOENT;
			break;
		}
		sim.wakes_ok++;
		pthread_cond_broadcast(&sim.cond);
		break;
	case ESCA_IOC_WAIT: {
		const struct esca_wait *w = (const struct esca_wait *)arg;

		sim.waits++;
		r = ring_by_id(w->ring_id);
		if (!r) {
			ret = -ENOENT;
			break;
		}
		/* returns when done, paused, or dead (-ENXIO) */
		while ((int32_t)(r->head - (w->index + 1)) < 0 && !r->paused &&
		       !r->dead)
			pthread_cond_wait(&sim.cond, &sim.lock);
		if ((int32_t)(r->head - (w->index + 1)) < 0 && r->dead)
			ret = -ENXIO;
		break;
	}
	default:
		sim.bad_ioctls++;
		sim_bad("unknown ioctl %#lx", cmd);
		ret = -ENOTTY;
	}
	pthread_mutex_unlock(&sim.lock);
	return ret;
}

static long sim_mmap(long len, long prot, long flags, long off)
{
	uint64_t o = (uint64_t)off, in = o & ((1ULL << 24) - 1);
	struct sring *r;
	bool cq;
	long p;

	if (esca_direct(SYS_fcntl, sim.fd, F_GETFD, 0, 0, 0, 0) < 0)
		return -EBADF;
	pthread_mutex_lock(&sim.lock);
	r = ring_by_id((uint32_t)(o >> ESCA_RING_OFFSET_SHIFT));
	cq = in == (1ULL << 23);
	if (sim.mmap_err) {
		p = sim.mmap_err;
	} else if (!r || (in && !cq) || r->dead || !(flags & MAP_SHARED) ||
		   (size_t)len > (cq ? r->cq_len : r->sq_len)) {
		p = -EINVAL;
	} else if (r->owner != gettid_() || (cq && (prot & PROT_WRITE))) {
		p = -EPERM; /* another thread's ring, or write to the cq */
	} else {
		p = esca_direct(SYS_mmap, 0, len, prot, MAP_SHARED, r->memfd,
				cq ? (long)r->sq_len : 0);
		if ((unsigned long)p < (unsigned long)-4095) {
			/* VM_DONTCOPY: a fork child never sees it */
			madvise((void *)p, (size_t)len, MADV_DONTFORK);
			if (cq) {
				r->user_cq = (void *)p;
				r->user_cq_len = (size_t)len;
			} else {
				r->user_sq = (void *)p;
				r->user_sq_len = (size_t)len;
			}
		}
	}
	pthread_mutex_unlock(&sim.lock);
	return p;
}

/* munmap of a ring side: the ring dies with its last mapping. */
static bool sim_munmap(long addr, long *ret)
{
	bool ours = false;

	pthread_mutex_lock(&sim.lock);
	for (unsigned int i = 0; i < sim.nrings && !ours; i++) {
		struct sring *r = &sim.rings[i];

		if (r->user_sq && (long)r->user_sq == addr) {
			*ret = esca_direct(SYS_munmap, addr,
					   (long)r->user_sq_len, 0, 0, 0, 0);
			r->user_sq = NULL;
			ours = true;
		} else if (r->user_cq && (long)r->user_cq == addr) {
			*ret = esca_direct(SYS_munmap, addr,
					   (long)r->user_cq_len, 0, 0, 0, 0);
			r->user_cq = NULL;
			ours = true;
		}
		if (ours && !r->user_sq && !r->user_cq)
			ring_die(r, ESCA_DEAD_CLOSED);
	}
	pthread_mutex_unlock(&sim.lock);
	return ours;
}

static long sim_sys(long nr, long a0, long a1, long a2, long a3, long a4,
		    long a5)
{
	long ret;

	switch (nr) {
	case SYS_openat:
		if (!a1 || strcmp((const char *)a1, ESCA_DEVICE_PATH))
			break;
		pthread_mutex_lock(&sim.lock);
		sim.opens++;
		ret = sim.open_err;
		if (!ret)
			ret = sim.fd = (int)esca_direct(SYS_openat, AT_FDCWD,
							(long)"/dev/null",
							O_RDWR | O_CLOEXEC, 0,
							0, 0);
		pthread_mutex_unlock(&sim.lock);
		return ret;
	case SYS_ioctl:
		if (sim.fd >= 0 && a0 == sim.fd)
			return sim_ioctl((unsigned long)a1, a2);
		break;
	case SYS_fcntl: /* the library moves its descriptor: follow it */
		if (sim.fd >= 0 && a0 == sim.fd && a1 == F_DUPFD_CLOEXEC) {
			ret = esca_direct(nr, a0, a1, a2, a3, a4, a5);
			if (ret >= 0)
				sim.fd = (int)ret;
			return ret;
		}
		break;
	case SYS_mmap:
		if (sim.fd >= 0 && a4 == sim.fd)
			return sim_mmap(a1, a2, a3, a5);
		break;
	case SYS_munmap:
		if (sim_munmap(a0, &ret))
			return ret;
		break;
	case SYS_write:
		if (a0 == 2) { /* the library's messages */
			pthread_mutex_lock(&sim.lock);
			if (sim.said_len + (size_t)a2 < sizeof(sim.said)) {
				memcpy(sim.said + sim.said_len,
				       (const void *)a1, (size_t)a2);
				sim.said_len += (size_t)a2;
			}
			pthread_mutex_unlock(&sim.lock);
			if (getenv("TEST_LIB_VERBOSE"))
				break;
			return a2;
		}
		if (a0 == sim.data_fd && a2 == sizeof(struct rec)) {
			const struct rec *rc = (const struct rec *)a1;

			if (rc->seq < NREC)
				__atomic_add_fetch(&sim.direct[rc->seq], 1,
						   __ATOMIC_RELAXED);
		}
		break;
	}
	return esca_direct(nr, a0, a1, a2, a3, a4, a5);
}

/*
 * CHECK under sim.lock: the counters are written by consumer threads, and
 * the head's release/acquire that orders them goes through two different
 * mappings of the ring, which a race detector cannot see.
 */
#define SIM_CHECK(...)                           \
	do {                                     \
		pthread_mutex_lock(&sim.lock);   \
		CHECK(__VA_ARGS__);              \
		pthread_mutex_unlock(&sim.lock); \
	} while (0)

/* ---- helpers for the cases ---------------------------------------------- */

static long put(int i) /* deferred write of record i */
{
	return esca_defer(SYS_write, sim.data_fd, (long)&recs[i],
			  sizeof(struct rec), 0, 0, 0);
}

static long put_sync(int i)
{
	return esca_call(SYS_write, sim.data_fd, (long)&recs[i],
			 sizeof(struct rec), 0, 0, 0);
}

static void set_gate(bool closed)
{
	pthread_mutex_lock(&sim.lock);
	sim.gate = closed;
	pthread_cond_broadcast(&sim.cond);
	pthread_mutex_unlock(&sim.lock);
}

static void *gate_later_thread(void *arg)
{
	struct timespec ts = { 0, (long)(uintptr_t)arg * 1000000L };

	nanosleep(&ts, NULL);
	set_gate(false);
	return NULL;
}

/* Open the gate @ms from now, from another thread. */
static void gate_later(unsigned int ms)
{
	pthread_t th;

	if (pthread_create(&th, NULL, gate_later_thread,
			   (void *)(uintptr_t)ms)) {
		fprintf(stderr, "test-lib: pthread_create failed\n");
		exit(1);
	}
	pthread_detach(th);
}

/* Kill ring @id before it processes @more further entries. */
static void kill_ring(uint32_t id, long more, uint32_t reason)
{
	pthread_mutex_lock(&sim.lock);
	sim.rings[id].kill_after = (long)sim.rings[id].processed + more;
	sim.rings[id].kill_reason = reason;
	pthread_mutex_unlock(&sim.lock);
}

static unsigned long snap(unsigned long *counter)
{
	unsigned long v;

	pthread_mutex_lock(&sim.lock);
	v = *counter;
	pthread_mutex_unlock(&sim.lock);
	return v;
}

static bool ring_dead(uint32_t id)
{
	bool dead;

	pthread_mutex_lock(&sim.lock);
	dead = sim.rings[id].dead;
	pthread_mutex_unlock(&sim.lock);
	return dead;
}

/* The data file holds records 0..n-1, in order, each once. */
static void check_file(const char *what, int n)
{
	static struct rec buf[NREC + 1];
	ssize_t len = pread(sim.data_fd, buf, sizeof(buf), 0);

	if (!CHECK(len == (ssize_t)(n * sizeof(struct rec)),
		   "%s: data file has %zd bytes, want %d records (%zu bytes)",
		   what, len, n, n * sizeof(struct rec)))
		n = len > 0 ? (int)(len / (ssize_t)sizeof(struct rec)) : 0;
	for (int i = 0; i < n; i++)
		if (!CHECK(buf[i].magic == REC_MAGIC &&
				   buf[i].seq == (uint32_t)i,
			   "%s: record %d in the file is %u (magic %#x)", what,
			   i, buf[i].seq, buf[i].magic))
			break;
}

/* How often each record was made directly: want[i] is '0', '1', ... */
static void check_direct(const char *what, const char *want)
{
	for (int i = 0; want[i]; i++) {
		unsigned long n =
			__atomic_load_n(&sim.direct[i], __ATOMIC_RELAXED);

		CHECK(n == (unsigned long)(want[i] - '0'),
		      "%s: record %d made directly %lu times, want %c", what, i,
		      n, want[i]);
	}
}

/* How many lines of what the library said contain @s. */
static int said(const char *s)
{
	int n = 0;

	pthread_mutex_lock(&sim.lock);
	sim.said[sim.said_len] = '\0';
	for (const char *p = sim.said; (p = strstr(p, s)); p += strlen(s))
		n++;
	pthread_mutex_unlock(&sim.lock);
	return n;
}

static int said_lines(void)
{
	int n = 0;

	pthread_mutex_lock(&sim.lock);
	for (size_t i = 0; i < sim.said_len; i++)
		n += sim.said[i] == '\n';
	pthread_mutex_unlock(&sim.lock);
	return n;
}

/* ---- the cases ---------------------------------------------------------- */

/* A synchronous call runs on the ring and returns its exact result. */
static void case_sync_exact(void)
{
	errno = 4242;
	CHECK(put_sync(0) == sizeof(struct rec), "write result");
	CHECK(esca_call(SYS_write, 9999, (long)&recs[1], sizeof(struct rec), 0,
			0, 0) == -EBADF,
	      "write to a bad fd: want -EBADF");
	CHECK(esca_call(SYS_getpid, 0, 0, 0, 0, 0, 0) == getpid(), "getpid");
	CHECK(errno == 4242, "errno changed to %d", errno);
	SIM_CHECK(sim.registers == 1 && sim.rings[0].ran == 3,
		  "%lu registrations, ring ran %lu calls, want 1 and 3",
		  sim.registers, sim.rings[0].ran);
	check_direct("sync", "00");
	check_file("sync", 1);
}

/* Deferred calls are queued (none has run), then drain makes them all. */
static void case_defer_drain(void)
{
	set_gate(true);
	for (int i = 0; i < 20; i++)
		CHECK(put(i) == 0, "defer %d did not return 0", i);
	CHECK(esca_defer(SYS_write, 9999, 0, 0, 0, 0, 0) == 0, "defer bad fd");
	CHECK(snap(&sim.rings[0].processed) == 0,
	      "the gate is closed but %lu entries were processed",
	      sim.rings[0].processed);
	set_gate(false);
	CHECK(esca_drain() == 1, "drain: want 1 failed deferred call");
	SIM_CHECK(sim.rings[0].ran == 21, "ring ran %lu, want 21",
		  sim.rings[0].ran);
	CHECK(esca_drain() == 0, "second drain: failures not reset");
	check_direct("defer", "00000000000000000000");
	check_file("defer", 20);
}

/* More deferred calls than the ring holds: waits for room, in order. */
static void case_defer_small_ring(void)
{
	for (int i = 0; i < 100; i++)
		put(i);
	CHECK(esca_drain() == 0, "drain failures");
	SIM_CHECK(sim.entries == 8 && sim.rings[0].ran == 100,
		  "entries %u (want 8), ran %lu (want 100)", sim.entries,
		  sim.rings[0].ran);
	for (int i = 0; i < 100; i++)
		if (!CHECK(sim.direct[i] == 0, "record %d made directly", i))
			break;
	check_file("small ring", 100);
}

/* A bounced synchronous call is made directly, exactly once. */
static void case_bounce_sync(void)
{
	recs[0].bounce = 1;
	CHECK(put_sync(0) == sizeof(struct rec), "write result");
	CHECK(put_sync(1) == sizeof(struct rec), "write result");
	SIM_CHECK(sim.rings[0].bounced == 1 && sim.rings[0].ran == 1 &&
			  sim.rings[0].pauses == 0,
		  "bounced %lu ran %lu pauses %lu, want 1 1 0",
		  sim.rings[0].bounced, sim.rings[0].ran, sim.rings[0].pauses);
	check_direct("bounce sync", "10");
	check_file("bounce sync", 2);
}

/*
 * Bounced deferred calls: made directly once each, in program order with
 * the entries around them (the consumer checks that the call was made
 * before it was resumed), through sq_hdr.resume and no ioctl.
 */
static void bounce_deferred(bool close_fd)
{
	uint32_t start;

	CHECK(esca_active(), "no ring");
	start = sim.rings[0].head;
	if (close_fd)
		close(sim.fd); /* the program closes the library's fd */
	sim.pause_gap_us = PAUSE_GAP_US;
	recs[1].bounce = recs[4].bounce = 1;
	set_gate(true);
	for (int i = 0; i < 6; i++)
		put(i);
	set_gate(false);
	CHECK(esca_drain() == 0, "drain failures");
	CHECK(put_sync(6) == sizeof(struct rec), "sync after the pauses");
	check_file("bounce deferred", 7);
	check_direct("bounce deferred", "0100100");
	pthread_mutex_lock(&sim.lock);
	CHECK(sim.rings[0].pauses == 2 && sim.rings[0].resumes == 2 &&
		      !sim.rings[0].paused,
	      "pauses %lu resumes %lu paused %d, want 2 2 0",
	      sim.rings[0].pauses, sim.rings[0].resumes, sim.rings[0].paused);
	CHECK(sim.rings[0].sq->resume == start + 5,
	      "sq_hdr.resume %u, want %u (index of record 4, plus 1)",
	      sim.rings[0].sq->resume, start + 5);
	CHECK(sim.bad_ioctls == 0, "unknown ioctls used (RESUME?)");
	if (close_fd)
		CHECK(sim.wakes_ok == 0 && sim.ebadf > 0,
		      "fd closed, yet %lu WAKEs worked (%lu EBADF)",
		      sim.wakes_ok, sim.ebadf);
	pthread_mutex_unlock(&sim.lock);
}

static void case_bounce_deferred(void)
{
	bounce_deferred(false);
}

static void case_bounce_deferred_closed_fd(void)
{
	bounce_deferred(true);
}

/*
 * The ring dies mid-queue (a bounced deferred entry before): the entries
 * that never ran are made directly, once, in order; the thread then goes
 * direct for good (not an identity change) and one line says why.
 */
static void case_dead_midqueue(void)
{
	sim.plan_after[0] = 4; /* runs 0, 1, bounces 2, runs 3, dies */
	sim.plan_reason[0] = ESCA_DEAD_SECCOMP;
	recs[2].bounce = 1;
	set_gate(true);
	for (int i = 0; i < 10; i++)
		CHECK(put(i) == 0, "defer %d", i);
	set_gate(false);
	CHECK(esca_drain() == 0, "drain failures");
	SIM_CHECK(sim.rings[0].ran == 3 && sim.rings[0].bounced == 1,
		  "ring ran %lu, bounced %lu, want 3 and 1", sim.rings[0].ran,
		  sim.rings[0].bounced);
	CHECK(put_sync(10) == sizeof(struct rec), "call after death");
	CHECK(put(11) == sizeof(struct rec), "defer after death: made at once");
	CHECK(!esca_active(), "a SECCOMP death must leave the thread direct");
	SIM_CHECK(sim.registers == 1,
		  "%lu registrations: a SECCOMP death must not re-register",
		  sim.registers);
	check_direct("dead mid-queue", "001011111111");
	check_file("dead mid-queue", 12);
	CHECK(said("seccomp") == 1, "want one line about seccomp, said: %s",
	      sim.said);
}

/* The ring dies while a synchronous call waits behind deferred ones. */
static void case_dead_sync(void)
{
	sim.plan_after[0] = 1;
	sim.plan_reason[0] = ESCA_DEAD_STALLED;
	set_gate(true);
	put(0);
	put(1);
	gate_later(100);
	CHECK(put_sync(2) == sizeof(struct rec), "sync result");
	CHECK(esca_drain() == 0, "drain failures");
	check_direct("dead sync", "011");
	check_file("dead sync", 3);
	CHECK(said("call_timeout_ms") == 1, "want one line, said: %s",
	      sim.said);
}

/* A deferred call queued on a ring that already died is not left there. */
static void case_dead_before_defer(void)
{
	CHECK(esca_active(), "no ring");
	kill_ring(0, 0, ESCA_DEAD_OFFLINE);
	put(0); /* the consumer dies instead of running it */
	/* wait until the ring is dead, without the library */
	for (int i = 0; i < 5000 && !ring_dead(0); i++)
		usleep(1000);
	CHECK(ring_dead(0), "ring did not die");
	CHECK(put(1) == sizeof(struct rec), "defer on a dead ring: made now");
	check_direct("dead before defer", "11");
	check_file("dead before defer", 2);
}

/* ESCA_DEAD_IDENTITY: the thread registers a new ring and is offloaded. */
static void case_dead_identity(void)
{
	sim.plan_after[0] = 2;
	sim.plan_reason[0] = ESCA_DEAD_IDENTITY;
	set_gate(true);
	for (int i = 0; i < 5; i++)
		put(i);
	set_gate(false);
	CHECK(esca_drain() == 0, "drain failures");
	check_direct("identity", "00111");
	CHECK(put_sync(5) == sizeof(struct rec), "call after identity change");
	SIM_CHECK(sim.registers == 2 && sim.nrings == 2 &&
			  sim.rings[1].ran == 1,
		  "%lu registrations, ring 1 ran %lu: want 2 and 1",
		  sim.registers, sim.rings[1].ran);
	SIM_CHECK(sim.rings[0].user_sq == NULL && sim.rings[0].user_cq == NULL,
		  "the dead ring is still mapped");
	check_direct("identity", "001110");
	check_file("identity", 6);
	CHECK(said_lines() == 0, "an identity change is not news: %s",
	      sim.said);
}

/* ...but at most 8 times per thread, then direct for good. */
static void case_dead_identity_cap(void)
{
	CHECK(esca_active(), "no ring");
	sim.kill_all_after = 0;
	sim.kill_all_reason = ESCA_DEAD_IDENTITY;
	kill_ring(0, 0, ESCA_DEAD_IDENTITY);
	for (int i = 0; i < 20; i++)
		CHECK(put_sync(i) == sizeof(struct rec), "call %d", i);
	SIM_CHECK(sim.registers == 1 + ESCA_MAX_REREGISTER,
		  "%lu registrations, want %d", sim.registers,
		  1 + ESCA_MAX_REREGISTER);
	check_direct("identity cap", "11111111111111111111");
	check_file("identity cap", 20);
	CHECK(said("identity") == 1, "want one line, said: %s", sim.said);
}

/* WAIT fails (fd closed): the call still completes, once, no hang. */
static void case_wait_ebadf(void)
{
	CHECK(esca_active(), "no ring");
	close(sim.fd);
	set_gate(true);
	gate_later(150);
	CHECK(put_sync(0) == sizeof(struct rec), "call result");
	SIM_CHECK(sim.rings[0].ran == 1, "ring ran %lu, want 1",
		  sim.rings[0].ran);
	SIM_CHECK(sim.waits > 0 && sim.ebadf >= sim.waits,
		  "%lu WAITs, %lu EBADF: the sleep path was not taken",
		  sim.waits, sim.ebadf);
	/* and the ring dying while the library polls */
	set_gate(true);
	kill_ring(0, 0, ESCA_DEAD_STALLED);
	gate_later(150);
	CHECK(put_sync(1) == sizeof(struct rec), "call result after death");
	check_direct("wait ebadf", "01");
	check_file("wait ebadf", 2);
}

static void *absent_thread(void *arg)
{
	(void)arg;
	for (int i = 0; i < 100; i++) {
		CHECK(esca_call(SYS_getpid, 0, 0, 0, 0, 0, 0) == getpid(),
		      "getpid");
		CHECK(esca_defer(SYS_getppid, 0, 0, 0, 0, 0, 0) == getppid(),
		      "deferred getppid made directly");
		CHECK(!esca_active() && esca_drain() == 0, "no offload");
	}
	return NULL;
}

/* Module absent: calls go direct, and no call takes g_lock after the first. */
static void case_absent_no_mutex(void)
{
	pthread_t th[4];
	bool joined[4] = { false };
	struct timespec until;

	sim.open_err = -ENOENT;
	CHECK(put_sync(0) == sizeof(struct rec), "direct write");
	CHECK(esca_init() == -ENOENT, "esca_init: want -ENOENT");
	pthread_mutex_lock(&g_lock); /* held: whoever takes it hangs */
	CHECK(put_sync(1) == sizeof(struct rec), "second call");
	for (int i = 0; i < 4; i++)
		if (pthread_create(&th[i], NULL, absent_thread, NULL))
			exit(1);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	for (int i = 0; i < 4; i++)
		joined[i] = !pthread_timedjoin_np(th[i], NULL, &until);
	for (int i = 0; i < 4; i++)
		CHECK(joined[i], "thread %d blocked on the library's mutex", i);
	pthread_mutex_unlock(&g_lock);
	for (int i = 0; i < 4; i++)
		if (!joined[i])
			pthread_join(th[i], NULL);
	SIM_CHECK(sim.opens == 1, "/dev/esca opened %lu times, want 1",
		  sim.opens);
	CHECK(said("module not loaded") == 1 && said_lines() == 1,
	      "want one line, said: %s", sim.said);
	check_direct("absent", "11");
	check_file("absent", 2);
}

/* The test's own fork handlers: sim.lock is not held across fork. */
static void sim_fork_prepare(void)
{
	pthread_mutex_lock(&sim.lock);
}

static void sim_fork_parent(void)
{
	pthread_mutex_unlock(&sim.lock);
}

static void sim_fork_child(void)
{
	pthread_mutex_init(&sim.lock, NULL);
	pthread_cond_init(&sim.cond, NULL);
	sim.fd = -1; /* a new process: a new context */
	sim.gate = false;
}

/*
 * fork with deferred calls pending: they have taken effect when the
 * child starts; the child has a clean state, never touches the parent's
 * ring (unmapped there, as VM_DONTCOPY does) and sets up a ring of its own.
 */
static void case_fork_prepare_drains(void)
{
	pid_t pid;
	int st;

	/* before the library's: its prepare (the drain) must run first */
	pthread_atfork(sim_fork_prepare, sim_fork_parent, sim_fork_child);
	set_gate(true);
	for (int i = 0; i < 5; i++)
		put(i);
	gate_later(200);
	pid = fork();
	if (pid == 0) {
		bool ok = true;
		struct rec buf[8];
		unsigned long regs = sim.registers;

		ok &= pread(sim.data_fd, buf, sizeof(buf), 0) ==
		      5 * (ssize_t)sizeof(struct rec);
		if (!ok)
			fprintf(stderr,
				"child: the deferred writes are not in the file\n");
		if (t_self.state != T_NONE || g_fd != -1 || g_state != 0) {
			fprintf(stderr, "child: state %d fd %d g_state %d\n",
				t_self.state, g_fd, g_state);
			ok = false;
		}
		if (esca_call(SYS_getpid, 0, 0, 0, 0, 0, 0) != getpid() ||
		    sim.registers != regs + 1 || !esca_active()) {
			fprintf(stderr, "child: no ring of its own\n");
			ok = false;
		}
		_exit(ok ? 0 : 1);
	}
	CHECK(pid > 0, "fork failed");
	st = -1;
	if (pid > 0 && waitpid(pid, &st, 0) != pid)
		st = -1;
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
	CHECK(esca_drain() == 0, "drain failures");
	SIM_CHECK(sim.rings[0].ran == 5, "ring ran %lu, want 5",
		  sim.rings[0].ran);
	check_direct("fork", "00000");
	check_file("fork", 5);
}

/* Setup refused for a reason: one line naming it, then direct. */
static void msg_case(const char *want)
{
	CHECK(put_sync(0) == sizeof(struct rec), "direct write");
	CHECK(put_sync(1) == sizeof(struct rec), "direct write");
	CHECK(said(want) == 1 && said_lines() == 1,
	      "want one line with \"%s\", said: %s", want, sim.said);
	check_direct("msg", "11");
}

static void case_msg_open_eacces(void)
{
	sim.open_err = -EACCES;
	msg_case("dev_uid/dev_gid/dev_mode");
}

static void case_msg_setup_eperm(void)
{
	sim.setup_err = -EPERM;
	msg_case("seccomp or audit");
	CHECK(esca_direct(SYS_fcntl, sim.fd, F_GETFD, 0, 0, 0, 0) == -EBADF,
	      "the refused fd was left open");
}

static void *two_calls_thread(void *arg)
{
	int i = (int)(uintptr_t)arg;

	CHECK(put_sync(i) == sizeof(struct rec), "write %d", i);
	CHECK(put_sync(i + 1) == sizeof(struct rec), "write %d", i + 1);
	return NULL;
}

/* Three threads hit a failure: one line per process, each thread direct. */
static void three_threads(const char *want, unsigned long registers)
{
	for (int k = 0; k < 3; k++) {
		pthread_t th;

		if (pthread_create(&th, NULL, two_calls_thread,
				   (void *)(uintptr_t)(2 * k)))
			exit(1);
		pthread_join(th, NULL);
	}
	CHECK(said(want) == 1 && said_lines() == 1,
	      "want one line with \"%s\", said: %s", want, sim.said);
	SIM_CHECK(sim.registers == registers && sim.opens == 1,
		  "%lu registrations (want %lu: one per thread), %lu opens",
		  sim.registers, registers, sim.opens);
	check_direct("three threads", "111111");
}

static void case_msg_register_edquot(void)
{
	sim.register_err = -EDQUOT;
	three_threads("user_ring_kb", 3);
}

static void case_msg_mmap_eperm(void)
{
	sim.mmap_err = -EPERM;
	three_threads("refused to map", 3);
	SIM_CHECK(sim.unregisters == 3, "%lu rings given back, want 3",
		  sim.unregisters);
}

static void case_msg_mmap_enomem(void)
{
	sim.mmap_err = -ENOMEM;
	three_threads("no memory", 3);
}

/* A bad environment setting: one line naming it, then the default. */
static void env_case(const char *name, long spin_ns, uint32_t entries)
{
	CHECK(put_sync(0) == sizeof(struct rec), "write");
	CHECK(name ? said(name) == 1 && said_lines() == 1 : said_lines() == 0,
	      "want %s line naming %s, said: %s", name ? "one" : "no",
	      name ? name : "nothing", sim.said);
	CHECK(g_spin_ns == spin_ns, "spin %ld ns, want %ld", g_spin_ns,
	      spin_ns);
	SIM_CHECK(sim.entries == entries, "ring entries %u, want %u",
		  sim.entries, entries);
	SIM_CHECK(sim.rings[0].ran == 1, "not offloaded");
}

static void case_env_spin_word(void)
{
	env_case("ESCA_SPIN_US", 50000, 256);
}

static void case_env_spin_big(void)
{
	env_case("ESCA_SPIN_US", 50000, 256);
}

static void case_env_spin_negative(void)
{
	env_case("ESCA_SPIN_US", 50000, 256);
}

static void case_env_entries_odd(void)
{
	env_case("ESCA_ENTRIES", 50000, 256);
}

static void case_env_entries_big(void)
{
	env_case("ESCA_ENTRIES", 50000, 256);
}

static void case_env_ok(void)
{
	env_case(NULL, 1000000000L, 8);
}

/* ---- driver ------------------------------------------------------------- */

static const struct tcase {
	const char *name;
	void (*fn)(void);
	const char *env[2]; /* "NAME=value" */
} cases[] = {
	{ "sync_exact", case_sync_exact, { NULL } },
	{ "defer_drain", case_defer_drain, { NULL } },
	{ "defer_small_ring", case_defer_small_ring, { "ESCA_ENTRIES=8" } },
	{ "bounce_sync", case_bounce_sync, { NULL } },
	{ "bounce_deferred", case_bounce_deferred, { NULL } },
	{ "bounce_deferred_closed_fd",
	  case_bounce_deferred_closed_fd,
	  { "ESCA_SPIN_US=0" } },
	{ "dead_midqueue", case_dead_midqueue, { NULL } },
	{ "dead_sync", case_dead_sync, { NULL } },
	{ "dead_before_defer", case_dead_before_defer, { NULL } },
	{ "dead_identity", case_dead_identity, { NULL } },
	{ "dead_identity_cap", case_dead_identity_cap, { NULL } },
	{ "wait_ebadf", case_wait_ebadf, { "ESCA_SPIN_US=0" } },
	{ "absent_no_mutex", case_absent_no_mutex, { NULL } },
	{ "fork_prepare_drains", case_fork_prepare_drains, { NULL } },
	{ "msg_open_eacces", case_msg_open_eacces, { NULL } },
	{ "msg_setup_eperm", case_msg_setup_eperm, { NULL } },
	{ "msg_register_edquot", case_msg_register_edquot, { NULL } },
	{ "msg_mmap_eperm", case_msg_mmap_eperm, { NULL } },
	{ "msg_mmap_enomem", case_msg_mmap_enomem, { NULL } },
	{ "env_spin_word", case_env_spin_word, { "ESCA_SPIN_US=abc" } },
	{ "env_spin_big", case_env_spin_big, { "ESCA_SPIN_US=1000001" } },
	{ "env_spin_negative", case_env_spin_negative, { "ESCA_SPIN_US=-5" } },
	{ "env_entries_odd", case_env_entries_odd, { "ESCA_ENTRIES=100" } },
	{ "env_entries_big", case_env_entries_big, { "ESCA_ENTRIES=8192" } },
	{ "env_ok", case_env_ok, { "ESCA_SPIN_US=1000000", "ESCA_ENTRIES=8" } },
};

/* In a child: fresh library and simulator state. */
static int run_case(const struct tcase *c)
{
	unit_checks = unit_failed = 0; /* the parent's are not ours */
	unsetenv("ESCA_SPIN_US");
	unsetenv("ESCA_ENTRIES");
	unsetenv("ESCA_QUIET");
	for (int i = 0; i < 2 && c->env[i]; i++)
		putenv((char *)c->env[i]);
	sim_init();
	c->fn();
	pthread_mutex_lock(&sim.lock);
	CHECK(!sim.bad, "simulated module saw %lu protocol errors, first: %s",
	      sim.bad, sim.first_bad);
	pthread_mutex_unlock(&sim.lock);
	return unit_done();
}

int main(int argc, char **argv)
{
	const size_t n = sizeof(cases) / sizeof(cases[0]);

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t i = 0; i < n; i++) {
		const struct tcase *c = &cases[i];
		int st = 0, waited = 0;
		bool wanted = argc < 2;
		pid_t pid;

		for (int a = 1; a < argc; a++)
			wanted |= !strcmp(argv[a], c->name);
		if (!wanted)
			continue;
		fflush(stdout);
		pid = fork();
		if (pid < 0) {
			perror("test-lib: fork");
			return 1;
		}
		if (pid == 0) {
			alarm(CASE_SEC + 5); /* in case the parent is gone */
			_exit(run_case(c));
		}
		/* hang guard: a hung case fails, the rest still run */
		while (waitpid(pid, &st, WNOHANG) == 0) {
			if (waited++ > CASE_SEC * 100) {
				kill(pid, SIGKILL);
				waitpid(pid, &st, 0);
				fprintf(stderr, "%s: hung for %d s\n", c->name,
					CASE_SEC);
				break;
			}
			usleep(10000);
		}
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "case %s failed (status %#x)", c->name, st);
		printf("%s %s\n",
		       WIFEXITED(st) && !WEXITSTATUS(st) ? "ok" : "FAIL",
		       c->name);
	}
	return unit_done();
}
