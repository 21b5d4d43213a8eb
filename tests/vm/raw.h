/* SPDX-License-Identifier: MIT */
/*
 * A raw producer for the guest tests: the ring ABI without libesca, so a
 * test can do what the library would never do (write into another
 * thread's ring, keep a ring past setuid, see BOUNCED itself rather than
 * have the library make a bounced call that hangs on a never-answering
 * file, ...). Completions are either waited for with the WAIT ioctl
 * (raw_wait, no timeout) or polled with a deadline (raw_wait_ms), so a
 * stalled consumer shows as a timeout, not a hang.
 *
 * Also a prober: a second process with its own context on the same
 * consumer, making one offloaded call after another and recording the
 * worst latency, to show that the consumer kept serving others.
 */
#ifndef ESCA_RAW_H
#define ESCA_RAW_H

#include "t.h"

#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "esca/abi.h"

struct raw_ring {
	int fd; /* /dev/esca */
	uint32_t id, entries, tail, cpu;
	uint32_t sq_size, cq_size;
	struct esca_sq_hdr *sq;
	const struct esca_cq_hdr *cq;
	struct esca_sqe *sqes;
	const struct esca_cqe *cqes;
};

static inline uint64_t raw_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void raw_sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
}

static inline long raw_ioc(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) ? -errno : 0;
}

static inline long raw_ioc_n(int fd, unsigned long cmd, unsigned long arg)
{
	return ioctl(fd, cmd, arg) ? -errno : 0;
}

/* open + SETUP; the fd is inherited across exec unless @cloexec. */
static inline int raw_open(uint32_t entries, int cloexec)
{
	struct esca_setup s = { .abi_version = ESCA_ABI_VERSION,
				.entries = entries };
	int fd = open(ESCA_DEVICE_PATH, O_RDWR | (cloexec ? O_CLOEXEC : 0));
	long ret;

	if (fd < 0)
		return -errno;
	ret = raw_ioc(fd, ESCA_IOC_SETUP, &s);
	if (ret) {
		close(fd);
		return (int)ret;
	}
	return fd;
}

/* REGISTER only (no mapping): -errno or 0, @r filled. */
static inline long raw_register_only(int fd, struct raw_ring *r)
{
	struct esca_register reg = { 0 };
	long ret = raw_ioc(fd, ESCA_IOC_REGISTER, &reg);

	memset(r, 0, sizeof(*r));
	r->fd = fd;
	if (ret)
		return ret;
	r->id = reg.ring_id;
	r->entries = reg.entries;
	r->sq_size = reg.sq_size;
	r->cq_size = reg.cq_size;
	r->cpu = reg.consumer_cpu;
	return 0;
}

/* Map both sides of a registered ring (must be the registering thread). */
static inline long raw_map(struct raw_ring *r)
{
	void *sq, *cq;

	cq = mmap(NULL, r->cq_size, PROT_READ, MAP_SHARED, r->fd,
		  (off_t)ESCA_CQ_OFFSET(r->id));
	if (cq == MAP_FAILED)
		return -errno;
	sq = mmap(NULL, r->sq_size, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd,
		  (off_t)ESCA_SQ_OFFSET(r->id));
	if (sq == MAP_FAILED) {
		long e = -errno;

		munmap(cq, r->cq_size);
		return e;
	}
	r->sq = sq;
	r->cq = cq;
	r->sqes = (void *)((char *)sq + ESCA_SQES_OFFSET);
	r->cqes = (const void *)((const char *)cq + ESCA_CQES_OFFSET);
	r->tail = __atomic_load_n(&r->sq->sq_tail, __ATOMIC_RELAXED);
	return 0;
}

static inline long raw_register(int fd, struct raw_ring *r)
{
	long ret = raw_register_only(fd, r);

	return ret ? ret : raw_map(r);
}

/* Open /dev/esca, set up this process, register this thread: 0 or -errno. */
static inline int raw_open_ring(struct raw_ring *r, uint32_t entries)
{
	int fd = raw_open(entries, 1);

	memset(r, 0, sizeof(*r));
	r->fd = -1;
	if (fd < 0)
		return fd;
	return (int)raw_register(fd, r);
}

/* REGISTER (and map if @map) in a thread that then exits. */
struct raw_reg_thread {
	int fd, map;
	struct raw_ring *r;
	void (*then)(struct raw_ring *); /* run in the thread, if set */
	long ret;
};

static void *raw_reg_thread_fn(void *arg)
{
	struct raw_reg_thread *t = arg;

	t->ret = t->map ? raw_register(t->fd, t->r) :
			  raw_register_only(t->fd, t->r);
	if (!t->ret && t->then)
		t->then(t->r);
	return NULL; /* the thread exits, its ring stays */
}

/* -errno or 0; @r is the exited thread's ring. */
static inline long raw_register_in_thread(int fd, struct raw_ring *r, int map,
					  void (*then)(struct raw_ring *))
{
	struct raw_reg_thread t = { .fd = fd, .map = map, .r = r, .then = then };
	pthread_t th;

	if (pthread_create(&th, NULL, raw_reg_thread_fn, &t))
		DIE("pthread_create");
	pthread_join(th, NULL);
	return t.ret;
}

/* Write entry r->tail (not yet visible); returns its index. */
static inline uint32_t raw_queue(struct raw_ring *r, uint32_t nr,
				 uint32_t flags, uint64_t a0, uint64_t a1,
				 uint64_t a2, uint64_t a3, uint64_t ud)
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

/* Publish the queued entries (A). */
static inline void raw_publish(struct raw_ring *r)
{
	__atomic_store_n(&r->sq->sq_tail, r->tail, __ATOMIC_RELEASE);
}

/* Write one entry and publish it (A); returns its index. No wake. */
static inline uint32_t raw_push(struct raw_ring *r, uint32_t nr, uint64_t a0,
				uint64_t a1, uint64_t a2, uint64_t ud)
{
	uint32_t idx = raw_queue(r, nr, 0, a0, a1, a2, 0, ud);

	raw_publish(r);
	return idx;
}

/* E, then WAKE if the consumer sleeps (needs the ring's context fd). */
static inline void raw_kick(struct raw_ring *r)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&r->cq->flags, __ATOMIC_RELAXED) &
	    ESCA_RING_NEED_WAKEUP)
		ioctl(r->fd, ESCA_IOC_WAKE, (unsigned long)r->id);
}

/* Publish the queued entries (A), then wake a sleeping consumer (E). */
static inline void raw_submit(struct raw_ring *r)
{
	raw_publish(r);
	raw_kick(r);
}

static inline bool raw_done(const struct raw_ring *r, uint32_t idx)
{
	uint32_t head = __atomic_load_n(&r->cq->sq_head, __ATOMIC_ACQUIRE);

	return (int32_t)(head - idx) > 0;
}

static inline bool raw_dead(const struct raw_ring *r)
{
	return __atomic_load_n(&r->cq->flags, __ATOMIC_ACQUIRE) &
	       ESCA_RING_DEAD;
}

static inline const struct esca_cqe *raw_cqe(const struct raw_ring *r,
					     uint32_t idx)
{
	return &r->cqes[idx & (r->entries - 1)];
}

/*
 * Poll until entry @idx completed (1), the ring died without running it
 * (-1), or @timeout_ms passed (0).
 */
static inline int raw_wait_ms(struct raw_ring *r, uint32_t idx,
			      unsigned timeout_ms)
{
	uint64_t end = raw_now_ns() + timeout_ms * 1000000ull;

	for (unsigned n = 1;; n++) {
		if (raw_done(r, idx))
			return 1;
		if (raw_dead(r))
			return raw_done(r, idx) ? 1 : -1;
		if (raw_now_ns() > end)
			return 0;
		if (n % 512 == 0) /* belt and braces: re-kick */
			raw_submit(r);
		raw_sleep_us(100);
	}
}

/* One synchronous entry, polled; *cqe gets a copy of its completion. */
static inline int raw_call_ms(struct raw_ring *r, uint32_t nr, uint64_t a0,
			      uint64_t a1, uint64_t a2, uint64_t a3,
			      unsigned timeout_ms, struct esca_cqe *cqe)
{
	uint32_t idx = raw_queue(r, nr, 0, a0, a1, a2, a3, 0);
	int w;

	raw_submit(r);
	w = raw_wait_ms(r, idx, timeout_ms);
	if (w == 1)
		*cqe = *raw_cqe(r, idx);
	return w;
}

/*
 * A batch of @n copies of one entry, submitted together and polled for
 * up to @timeout_ms: raw_wait_ms's answer for the last one. *first and
 * *head bound the entries that completed ([*first, *head)).
 */
static inline int raw_batch(struct raw_ring *r, int n, uint32_t nr, uint64_t a0,
			    uint64_t a1, uint64_t a2, unsigned timeout_ms,
			    uint32_t *first, uint32_t *head)
{
	uint32_t last = r->tail;
	int w;

	*first = r->tail;
	for (int k = 0; k < n; k++)
		last = raw_queue(r, nr, 0, a0, a1, a2, 0, 0);
	raw_submit(r);
	w = raw_wait_ms(r, last, timeout_ms);
	*head = w == 1 ? last + 1 :
			 __atomic_load_n(&r->cq->sq_head, __ATOMIC_ACQUIRE);
	return w;
}

/* What became of entry @idx. */
struct raw_out {
	long wait; /* WAIT's return (0, -ENXIO once dead); 1: not waited */
	int ran; /* sq_head passed it: its CQE is final */
	int64_t res;
	uint32_t cflags;
	int dead;
	uint32_t reason;
	uint32_t head;
};

static inline struct raw_out raw_look(const struct raw_ring *r, uint32_t idx)
{
	struct raw_out o = { .wait = 1 };

	o.head = __atomic_load_n(&r->cq->sq_head, __ATOMIC_ACQUIRE); /* D */
	o.ran = (int32_t)(o.head - idx) > 0;
	o.dead = !!(__atomic_load_n(&r->cq->flags, __ATOMIC_ACQUIRE) &
		    ESCA_RING_DEAD);
	o.reason = o.dead ? __atomic_load_n(&r->cq->dead_reason,
					    __ATOMIC_RELAXED) :
			    0;
	if (o.ran) {
		const struct esca_cqe *c = &r->cqes[idx & (r->entries - 1)];

		o.res = c->res;
		o.cflags = c->flags;
	}
	return o;
}

/* WAIT for entry @idx through the context fd. */
static inline struct raw_out raw_wait(struct raw_ring *r, uint32_t idx)
{
	struct esca_wait w = { .ring_id = r->id, .index = idx };
	long ret = raw_ioc(r->fd, ESCA_IOC_WAIT, &w);
	struct raw_out o = raw_look(r, idx);

	o.wait = ret;
	return o;
}

/*
 * Without the fd (another process wrote the entry): watch the shared
 * memory until the entry is done or the ring dead; @secs is a hang guard.
 */
static inline struct raw_out raw_poll(const struct raw_ring *r, uint32_t idx,
				      int secs)
{
	struct raw_out o;

	for (int i = 0; i < secs * 100; i++) {
		o = raw_look(r, idx);
		if (o.ran || o.dead)
			return o;
		usleep(10000);
	}
	return raw_look(r, idx);
}

static inline long raw_call(struct raw_ring *r, uint32_t nr, uint64_t a0,
			    uint64_t a1, uint64_t a2, struct raw_out *out)
{
	uint32_t idx = raw_push(r, nr, a0, a1, a2, 0x5eed);

	raw_kick(r);
	*out = raw_wait(r, idx);
	return out->ran ? out->res : -1000;
}

static inline const char *raw_reason(uint32_t r)
{
	static const char *n[] = { "none",    "CLOSED",	  "PROTOCOL",
				   "EXITED",  "IDENTITY", "SECCOMP",
				   "STALLED", "OFFLINE",  "PROCESS" };

	return r < sizeof(n) / sizeof(n[0]) ? n[r] : "?";
}

#define RAW_FMT \
	"wait %ld ran %d res %lld flags %x dead %d reason %u (%s) head %u"
#define RAW_ARGS(o)                                                  \
	(o).wait, (o).ran, (long long)(o).res, (o).cflags, (o).dead, \
		(o).reason, raw_reason((o).reason), (o).head

/*
 * A tmpfs file anyone may append to: writes to it run on the consumer in
 * every version of the module, so a probe write proves the ring is served.
 */
static inline int raw_probe_fd(void)
{
	int fd = open("/tmp/t-attack-probe",
		      O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);

	if (fd >= 0 && geteuid() == 0)
		fchmod(fd, 0666);
	return fd;
}

static inline void raw_drop_to(uid_t uid)
{
	if (setgroups(0, NULL) || setresgid(uid, uid, uid) ||
	    setresuid(uid, uid, uid))
		DIE("cannot become uid %d: %s", (int)uid, strerror(errno));
}

/* A root-owned file, mode 0644, the target of the chmod/chown attacks. */
static inline void raw_root_file(const char *path)
{
	int fd;

	unlink(path);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0644);
	if (fd < 0 || fchown(fd, 0, 0) || fchmod(fd, 0644))
		DIE("create %s: %s", path, strerror(errno));
	close(fd);
}

/* The file still has mode @mode, owner 0:0. */
#define RAW_CHECK_FILE(path, mode, what)                                       \
	do {                                                                   \
		struct stat st_;                                               \
		CHECK(!stat(path, &st_) &&                                     \
			      (st_.st_mode & 07777) == (unsigned)(mode) &&     \
			      st_.st_uid == 0 && st_.st_gid == 0,              \
		      "%s: %s is now mode %o owner %d:%d (want %o 0:0)", what, \
		      path, st_.st_mode & 07777, (int)st_.st_uid,              \
		      (int)st_.st_gid, (unsigned)(mode));                      \
	} while (0)

/*
 * /proc/esca/stats, opened as root when a scenario starts, so the
 * process still reads its own context line after dropping to uid 1000
 * (the opener's creds decide what is shown).
 */
static int raw_stats = -1;

/* The context's calls= counter (calls the consumer ran), -1 if absent. */
static inline long raw_calls(pid_t pid)
{
	static char buf[65536];
	char want[48], *p;
	ssize_t n, got = 0;

	if (raw_stats < 0)
		raw_stats = open("/proc/esca/stats", O_RDONLY | O_CLOEXEC);
	if (raw_stats < 0 || lseek(raw_stats, 0, SEEK_SET))
		return -1;
	while (got < (ssize_t)sizeof(buf) - 1 &&
	       (n = read(raw_stats, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += n;
	buf[got] = 0;
	snprintf(want, sizeof(want), "\ncontext pid=%d ", (int)pid);
	p = strstr(buf, want);
	if (!p)
		return -1;
	if (strchr(p + 1, '\n'))
		*strchr(p + 1, '\n') = 0; /* this line only */
	p = strstr(p + 1, " calls=");
	return p ? strtol(p + 7, NULL, 10) : -1;
}

/* The probe's file (raw_probe_fd), opened at the first probe if not before. */
static int raw_probefd = -1;

/*
 * The probe: a write to a tmpfs file runs on the consumer (not bounced),
 * and the context's calls= counter shows it.
 */
static inline void raw_probe(struct raw_ring *r, const char *who)
{
	struct raw_out o;
	long res, calls;

	if (raw_probefd < 0)
		raw_probefd = raw_probe_fd();
	calls = raw_calls(getpid());
	res = raw_call(r, SYS_write, (uint64_t)raw_probefd, (uint64_t) "p", 1,
		       &o);
	CHECK(res == 1 && o.cflags == 0 && !o.dead,
	      "%s: probe write not run offloaded: " RAW_FMT, who, RAW_ARGS(o));
	CHECK(calls >= 0 && raw_calls(getpid()) > calls,
	      "%s: probe not counted: calls %ld -> %ld", who, calls,
	      raw_calls(getpid()));
}

/* ESCA_ONLY=substring runs only the scenarios whose name has it. */
static inline int raw_skip(const char *name)
{
	const char *only = getenv("ESCA_ONLY");

	return only && *only && !strstr(name, only);
}

/* Run @fn(@arg) in a forked child; its exit status is its verdict. */
static inline void raw_in_child(const char *name, void (*fn)(void *), void *arg)
{
	int status;
	pid_t pid;

	if (raw_skip(name))
		return;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		DIE("fork: %s", strerror(errno));
	if (pid == 0) {
		t_failed = t_checks = 0; /* the child's verdict is its own */
		raw_stats = open("/proc/esca/stats", O_RDONLY | O_CLOEXEC);
		alarm(120); /* hang guard */
		fn(arg);
		fflush(NULL);
		_exit(t_failed ? 1 : 0);
	}
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
		      WEXITSTATUS(status) == 0,
	      "%s: child %s %d", name,
	      WIFSIGNALED(status) ? "killed by signal" : "exit status",
	      WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	printf("# %s: %s\n", name,
	       WIFEXITED(status) && !WEXITSTATUS(status) ? "ok" : "FAILED");
}

/* A counter from /proc/esca/stats for the context of process @pid. */
static inline long raw_ctx_stat(pid_t pid, const char *key)
{
	char prefix[48];

	snprintf(prefix, sizeof(prefix), "context pid=%d ", (int)pid);
	return t_stat(prefix, key);
}

/* ------------------------------------------------------------- prober */

struct raw_prober {
	volatile int stop, ready, cpu, err;
	volatile long count, late, bad, bounced, worst_ns;
	volatile long first_bad_res, first_bad_flags;
	volatile long dead_reason; /* its ring died: ESCA_DEAD_* */
};

#define RAW_PROBER_LATE_MS 5000 /* generous: a hang guard, not a speed claim */

static inline void raw_prober_run(struct raw_prober *p)
{
	struct raw_ring r;
	struct esca_cqe c;
	char path[64];
	int fd, e;

	prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
	e = raw_open_ring(&r, 8);
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
		uint64_t t0 = raw_now_ns(), lat;
		uint32_t idx = raw_queue(&r, SYS_pwrite64, 0, (uint64_t)fd,
					 (uint64_t) "p", 1, 0, 0);
		int w;

		raw_submit(&r);
		w = raw_wait_ms(&r, idx, RAW_PROBER_LATE_MS);
		if (w == 0) {
			p->late++;
			/* still count the worst case, but never hang */
			w = raw_wait_ms(&r, idx, 60000);
		}
		lat = raw_now_ns() - t0;
		if ((long)lat > p->worst_ns)
			p->worst_ns = (long)lat;
		if (w != 1) {
			p->dead_reason = w < 0 ? (long)r.cq->dead_reason : -1;
			_exit(1);
		}
		c = *raw_cqe(&r, idx);
		if (c.flags & ESCA_CQE_BOUNCED)
			p->bounced++;
		else if (c.res != 1) {
			if (!p->bad++) {
				p->first_bad_res = c.res;
				p->first_bad_flags = c.flags;
			}
		}
		p->count++;
		raw_sleep_us(2000);
	}
	_exit(0);
}

/* Start the prober; it is ready (registered) when this returns. */
static inline pid_t raw_prober_start(struct raw_prober **out)
{
	struct raw_prober *p = mmap(NULL, sizeof(*p), PROT_READ | PROT_WRITE,
				    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t pid;

	if (p == MAP_FAILED)
		DIE("mmap: %s", strerror(errno));
	memset(p, 0, sizeof(*p));
	pid = fork();
	if (pid < 0)
		DIE("fork: %s", strerror(errno));
	if (pid == 0)
		raw_prober_run(p);
	for (int i = 0; i < 20000 && !p->ready; i++)
		raw_sleep_us(1000);
	if (!p->ready || p->err)
		DIE("prober did not start: %s",
		    p->err ? strerror(-p->err) : "timeout");
	*out = p;
	return pid;
}

/* raw_open_ring, and check the ring shares the prober's consumer. */
static inline void raw_open_ring_near(struct raw_ring *r, uint32_t entries,
				      const struct raw_prober *p)
{
	int e = raw_open_ring(r, entries);

	if (e)
		DIE("raw ring: %s", strerror(-e));
	CHECK(r->cpu == (uint32_t)p->cpu,
	      "prober on consumer %d, test on %u: run with cores=1", p->cpu,
	      r->cpu);
}

/* Stop the prober and check it was served all along. */
static inline void raw_prober_check(pid_t pid, struct raw_prober *p,
				    const char *what)
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
		raw_sleep_us(1000);
	}
	printf("# %s: prober (pid %d; test pid %d) made %ld calls, worst "
	       "latency %ld ms, %ld over %d ms\n",
	       what, (int)pid, (int)getpid(), p->count, p->worst_ns / 1000000,
	       p->late, RAW_PROBER_LATE_MS);
	CHECK(p->dead_reason == 0,
	      "%s: the prober's ring %s (reason %ld): an innocent ring was "
	      "retired",
	      what, p->dead_reason < 0 ? "never completed an entry" : "died",
	      p->dead_reason);
	CHECK(p->count > 0, "%s: the prober completed no call", what);
	CHECK(p->late == 0,
	      "%s: another process's calls waited over %d ms (worst %ld ms): "
	      "the consumer stalled",
	      what, RAW_PROBER_LATE_MS, p->worst_ns / 1000000);
	CHECK(p->bad == 0 && p->bounced == 0,
	      "%s: prober: %ld bad results (first res %ld flags %lx), %ld "
	      "bounced",
	      what, p->bad, p->first_bad_res, p->first_bad_flags, p->bounced);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "%s: prober exit status %#x", what, st);
}

#endif
