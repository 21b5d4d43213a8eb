/* SPDX-License-Identifier: MIT */
/*
 * A raw producer for the attack tests (t-attack-*.c): the ABI without
 * libesca, so a test can do what the library would never do (write into
 * another thread's ring, keep a ring past setuid, ...). Include after t.h.
 */
#ifndef ESCA_RAW_H
#define ESCA_RAW_H

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "esca/abi.h"

struct raw_ring {
	int fd; /* /dev/esca */
	uint32_t id, entries, tail;
	uint32_t sq_size, cq_size;
	struct esca_sq_hdr *sq;
	const struct esca_cq_hdr *cq;
	struct esca_sqe *sqes;
	const struct esca_cqe *cqes;
};

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

/* Write one entry and publish it (A); returns its index. No wake. */
static inline uint32_t raw_push(struct raw_ring *r, uint32_t nr, uint64_t a0,
				uint64_t a1, uint64_t a2, uint64_t ud)
{
	struct esca_sqe *s = &r->sqes[r->tail & (r->entries - 1)];
	uint32_t idx = r->tail;

	memset(s, 0, sizeof(*s));
	s->nr = nr;
	s->args[0] = a0;
	s->args[1] = a1;
	s->args[2] = a2;
	s->user_data = ud;
	__atomic_store_n(&r->sq->sq_tail, ++r->tail, __ATOMIC_RELEASE);
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

#endif
