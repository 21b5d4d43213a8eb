// SPDX-License-Identifier: MIT
/*
 * Attacks on the ring mappings and the module's resources (issue 7 items
 * 4 and 5), through the raw ABI. Each check passes only because the attack
 * fails:
 *  fork: MADV_DOFORK on a ring mapping is refused (VM_IO), and a fork
 *    child has nothing mapped where the parent's ring is;
 *  mmap of a ring by a thread other than the one that registered it;
 *  REGISTER into read-only memory (EFAULT) while another thread registers
 *    and unregisters: the process's other ring keeps working;
 *  WAKE of every ring id racing REGISTER/UNREGISTER (the suite's kernel
 *    log check catches a NULL dereference);
 *  /proc/esca/stats: uid 1000 does not see root's context; the opener's
 *    creds decide, not the reader's.
 * Helper modes for t-quota.sh and t-devperm.sh:
 *  --quota                  per-uid ring memory cap (module loaded with
 *                           user_ring_kb=2048)
 *  --register-as UID N      SETUP with N entries and REGISTER one ring
 *  --open-as UID            open /dev/esca: exit 0, or 2 on EACCES
 *  --churn-as UID N         N register/unregister rounds, one ring at a
 *                           time: none may fail (t-quota.sh)
 */
#include "t.h"
#include "raw.h"

#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>

/* ---------------------------------------------------------------- fork */

static sigjmp_buf segv_jmp;

static void on_segv(int sig)
{
	(void)sig;
	siglongjmp(segv_jmp, 1);
}

/* In a fork child: does reading @p fault? */
static int faults(const volatile uint32_t *p)
{
	if (sigsetjmp(segv_jmp, 1))
		return 1;
	(void)*p;
	return 0;
}

static int maps_lines(const char *needle)
{
	char line[512];
	int n = 0;
	FILE *f = fopen("/proc/self/maps", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n += !!strstr(line, needle);
	fclose(f);
	return n;
}

static void attack_fork(void *unused)
{
	struct raw_ring r;
	int fd, status;
	pid_t pid;

	(void)unused;
	fd = raw_open(8, 1);
	if (fd < 0 || raw_register(fd, &r))
		DIE("open/register: %s", strerror(errno));
	raw_probe(&r, "fork");
	CHECK(maps_lines(" /dev/esca") == 2,
	      "the parent maps %d /dev/esca ranges, want 2",
	      maps_lines(" /dev/esca"));
	{
		int rs = madvise(r.sq, r.sq_size, MADV_DOFORK), es = errno;
		int rc = madvise((void *)r.cq, r.cq_size, MADV_DOFORK),
		    ec = errno;

		CHECK(rs == -1 && es == EINVAL,
		      "MADV_DOFORK on the submission side: %s",
		      rs ? strerror(es) : "succeeded");
		CHECK(rc == -1 && ec == EINVAL,
		      "MADV_DOFORK on the completion side: %s",
		      rc ? strerror(ec) : "succeeded");
	}
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		struct sigaction sa = { .sa_handler = on_segv };
		int bad = 0, n = maps_lines(" /dev/esca");

		sigaction(SIGSEGV, &sa, NULL);
		sigaction(SIGBUS, &sa, NULL);
		if (n != 0) {
			fprintf(stderr, "fork child maps %d /dev/esca ranges\n",
				n);
			bad = 1;
		}
		if (!faults(&r.sq->sq_tail)) {
			/* Mapped: show that it could drive the ring. */
			fprintf(stderr,
				"fork child reads the parent's sq_tail (%u)\n",
				r.sq->sq_tail);
			bad = 1;
		}
		if (!faults(&r.cq->sq_head)) {
			fprintf(stderr, "fork child reads the parent's cq\n");
			bad = 1;
		}
		_exit(bad);
	}
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
		      WEXITSTATUS(status) == 0,
	      "fork child saw the parent's ring (0x%x)", status);
	raw_probe(&r, "fork, after the child");
}

/* ---------------------------------------------------------------- mmap */

static void attack_mmap(void *unused)
{
	struct raw_ring r;
	void *p;
	long ret;
	int fd;

	(void)unused;
	fd = raw_open(8, 1);
	if (fd < 0)
		DIE("open: %s", strerror(-fd));
	ret = raw_register_in_thread(fd, &r, 0, NULL);
	if (ret)
		DIE("register: %s", strerror((int)-ret));
	/* The registering thread has exited: this thread adopts its ring.
	 * Any refusal will do here (the ring may be dead already). */
	p = mmap(NULL, r.sq_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		 (off_t)ESCA_SQ_OFFSET(r.id));
	CHECK(p == MAP_FAILED, "exited thread's ring: submission side mapped "
			       "by another thread");
	printf("# exited owner: foreign mmap %s\n",
	       p == MAP_FAILED ? strerror(errno) : "succeeded");
	p = mmap(NULL, r.cq_size, PROT_READ, MAP_SHARED, fd,
		 (off_t)ESCA_CQ_OFFSET(r.id));
	CHECK(p == MAP_FAILED, "exited thread's ring: completion side mapped "
			       "by another thread");
}

/* The registering thread alive: another thread still may not map. */
struct live_reg {
	int fd;
	struct raw_ring r;
	long ret, map_ret;
	int go[2], done[2];
};

static void *live_registrar(void *arg)
{
	struct live_reg *l = arg;
	char c;

	l->ret = raw_register_only(l->fd, &l->r);
	if (write(l->done[1], "r", 1) != 1 || read(l->go[0], &c, 1) != 1)
		return NULL;
	/* After the refusal, the owner maps it and it works. */
	l->map_ret = raw_map(&l->r);
	if (!l->map_ret)
		raw_probe(&l->r, "owner maps after a refused foreign mmap");
	return NULL;
}

static void attack_mmap_live(void *unused)
{
	struct live_reg l = { 0 };
	pthread_t th;
	char c;
	void *p;

	(void)unused;
	l.fd = raw_open(8, 1);
	if (l.fd < 0 || pipe(l.go) || pipe(l.done))
		DIE("open: %s", strerror(errno));
	pthread_create(&th, NULL, live_registrar, &l);
	if (read(l.done[0], &c, 1) != 1 || l.ret)
		DIE("register: %s", strerror((int)-l.ret));
	p = mmap(NULL, l.r.sq_size, PROT_READ | PROT_WRITE, MAP_SHARED, l.fd,
		 (off_t)ESCA_SQ_OFFSET(l.r.id));
	CHECK(p == MAP_FAILED && errno == EPERM,
	      "live thread's ring, submission side mapped by another thread: "
	      "%s",
	      p == MAP_FAILED ? strerror(errno) : "mapped");
	p = mmap(NULL, l.r.cq_size, PROT_READ, MAP_SHARED, l.fd,
		 (off_t)ESCA_CQ_OFFSET(l.r.id));
	CHECK(p == MAP_FAILED && errno == EPERM,
	      "live thread's ring, completion side mapped by another thread: "
	      "%s",
	      p == MAP_FAILED ? strerror(errno) : "mapped");
	if (write(l.go[1], "g", 1) != 1)
		DIE("pipe");
	pthread_join(th, NULL);
	CHECK(l.map_ret == 0, "the owner cannot map its ring after: %s",
	      strerror((int)-l.map_ret));
}

/* ---------------------------------------------------------------- EFAULT */

#define EFAULT_ROUNDS 200

struct efault {
	int fd;
	void *ro;
	int stop;
	int efaults, other_err, churn, churn_err;
	long churn_reg_err, churn_unreg_err; /* the last errors */
	long last_other;
	sem_t f_done, m_done; /* lockstep: one EFAULT, then one write */
};

static void *efault_thread(void *arg)
{
	struct efault *e = arg;

	for (int i = 0; i < EFAULT_ROUNDS; i++) {
		long ret = raw_ioc(e->fd, ESCA_IOC_REGISTER, e->ro);

		if (ret == -EFAULT) {
			e->efaults++;
		} else {
			e->other_err++;
			e->last_other = ret;
		}
		sem_post(&e->f_done);
		sem_wait(&e->m_done);
	}
	{
		/* The failures left nothing behind: this thread registers. */
		struct raw_ring r;
		long ret = raw_register_only(e->fd, &r);

		if (ret) {
			e->other_err++;
			e->last_other = ret;
		} else {
			raw_ioc_n(e->fd, ESCA_IOC_UNREGISTER, r.id);
		}
	}
	__atomic_store_n(&e->stop, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void *churn_thread(void *arg)
{
	struct efault *e = arg;

	while (!__atomic_load_n(&e->stop, __ATOMIC_ACQUIRE)) {
		struct raw_ring r;
		long ret = raw_register_only(e->fd, &r);

		if (ret) {
			e->churn_reg_err = ret;
		} else {
			ret = raw_ioc_n(e->fd, ESCA_IOC_UNREGISTER, r.id);
			if (ret)
				e->churn_unreg_err = ret;
		}
		if (ret)
			e->churn_err++;
		e->churn++;
	}
	return NULL;
}

static void attack_efault(void *unused)
{
	struct efault e = { 0 };
	pthread_t f, c;
	struct raw_ring r;
	struct raw_out o;
	struct stat st;
	int tmp, writes = 0, bad = 0;
	long rings;
	char pfx[64];

	(void)unused;
	e.fd = raw_open(8, 1);
	tmp = open("/tmp/t-attack-efault", O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (e.fd < 0 || tmp < 0 || raw_register(e.fd, &r))
		DIE("open/register: %s", strerror(errno));
	e.ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (e.ro == MAP_FAILED || sem_init(&e.f_done, 0, 0) ||
	    sem_init(&e.m_done, 0, 0))
		DIE("mmap/sem_init");
	pthread_create(&c, NULL, churn_thread, &e);
	pthread_create(&f, NULL, efault_thread, &e);
	/* After each failed REGISTER, this thread's ring must still work. */
	for (int i = 0; i < EFAULT_ROUNDS; i++) {
		long ret;

		sem_wait(&e.f_done);
		ret = raw_call(&r, SYS_write, (uint64_t)tmp, (uint64_t) "w", 1,
			       &o);
		writes++;
		if (ret != 1 || o.cflags || o.dead) {
			if (!bad++)
				CHECK(0, "write %d on the other ring: " RAW_FMT,
				      writes, RAW_ARGS(o));
		}
		sem_post(&e.m_done);
	}
	pthread_join(f, NULL);
	pthread_join(c, NULL);
	CHECK(e.efaults == EFAULT_ROUNDS && e.other_err == 0,
	      "REGISTER into read-only memory: %d EFAULT of %d, %d other "
	      "(last %ld)",
	      e.efaults, EFAULT_ROUNDS, e.other_err, e.last_other);
	CHECK(e.churn_err == 0,
	      "register/unregister churn: %d of %d failed (last REGISTER "
	      "%ld, UNREGISTER %ld)",
	      e.churn_err, e.churn, e.churn_reg_err, e.churn_unreg_err);
	CHECK(bad == 0, "%d of %d writes on the other ring went wrong", bad,
	      writes);
	CHECK(!fstat(tmp, &st) && st.st_size == writes - bad,
	      "file has %lld bytes after %d writes", (long long)st.st_size,
	      writes);
	snprintf(pfx, sizeof(pfx), "context pid=%d ", (int)getpid());
	rings = t_stat(pfx, "rings");
	CHECK(rings == 1,
	      "context shows %ld rings, want 1 (failed registrations left "
	      "rings behind)",
	      rings);
	raw_probe(&r, "after the EFAULT rounds");
	printf("# efault: %d EFAULT, %d churn rounds, %d writes\n", e.efaults,
	       e.churn, writes);
}

/* ---------------------------------------------------------------- WAKE */

#define WAKE_ROUNDS 5000

struct wake {
	int fd, stop;
	int reg_err, wake_err, wakes, maps;
	long last_err;
};

static void *wake_registrar(void *arg)
{
	struct wake *w = arg;

	for (int i = 0; i < WAKE_ROUNDS; i++) {
		struct raw_ring r;
		long ret = raw_register_only(w->fd, &r);

		/* Now and then with the mapping too, the other half of a
		 * complete ring. */
		if (!ret && i % 50 == 0) {
			ret = raw_map(&r);
			if (!ret) {
				w->maps++;
				munmap(r.sq, r.sq_size);
				munmap((void *)r.cq, r.cq_size);
			}
		}
		if (!ret)
			ret = raw_ioc_n(w->fd, ESCA_IOC_UNREGISTER, r.id);
		if (ret) {
			w->reg_err++;
			w->last_err = ret;
		}
	}
	__atomic_store_n(&w->stop, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void *waker(void *arg)
{
	struct wake *w = arg;

	while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE))
		for (unsigned long id = 0; id <= 8; id++) {
			long ret = raw_ioc_n(w->fd, ESCA_IOC_WAKE, id);

			w->wakes++;
			if (ret && ret != -ENOENT) {
				w->wake_err++;
				w->last_err = ret;
			}
		}
	return NULL;
}

static void attack_wake(void *unused)
{
	struct wake w = { 0 };
	pthread_t a, b;

	(void)unused;
	w.fd = raw_open(8, 1);
	if (w.fd < 0)
		DIE("open: %s", strerror(-w.fd));
	pthread_create(&b, NULL, waker, &w);
	pthread_create(&a, NULL, wake_registrar, &w);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	CHECK(w.reg_err == 0 && w.wake_err == 0,
	      "WAKE racing REGISTER: %d register and %d wake errors (last "
	      "%ld)",
	      w.reg_err, w.wake_err, w.last_err);
	printf("# wake race: %d rounds (%d mapped), %d wakes\n", WAKE_ROUNDS,
	       w.maps, w.wakes);
}

/* ---------------------------------------------------------------- stats */

/* Every context line of @f: is there one for @pid, do all carry uid=? */
struct ctx_seen {
	int lines, found, no_uid, other_uid;
	long uid_of_pid;
};

static struct ctx_seen scan_stats(FILE *f, pid_t pid, long only_uid)
{
	struct ctx_seen s = { .uid_of_pid = -1 };
	char line[512], want[64];

	snprintf(want, sizeof(want), "context pid=%d ", (int)pid);
	while (fgets(line, sizeof(line), f)) {
		char *u;

		if (strncmp(line, "context ", 8))
			continue;
		s.lines++;
		u = strstr(line, " uid=");
		if (!u) {
			s.no_uid++;
			continue;
		}
		if (only_uid >= 0 && strtol(u + 5, NULL, 10) != only_uid)
			s.other_uid++;
		if (!strncmp(line, want, strlen(want))) {
			s.found = 1;
			s.uid_of_pid = strtol(u + 5, NULL, 10);
		}
	}
	return s;
}

static struct ctx_seen read_stats(pid_t pid, long only_uid)
{
	FILE *f = fopen("/proc/esca/stats", "r");
	struct ctx_seen s = { .uid_of_pid = -2 };

	if (f) {
		s = scan_stats(f, pid, only_uid);
		fclose(f);
	}
	return s;
}

static void attack_stats(void *unused)
{
	int go[2], ready[2], status, fd;
	struct raw_ring r;
	struct ctx_seen s;
	pid_t root = getpid(), child;
	char c;

	(void)unused;
	fd = raw_open(8, 1);
	if (fd < 0 || raw_register(fd, &r) || pipe(go) || pipe(ready))
		DIE("open/register: %s", strerror(errno));
	fflush(NULL);
	child = fork();
	if (child == 0) {
		struct raw_ring r2;
		int fd2;

		raw_drop_to(1000);
		fd2 = raw_open(8, 1);
		if (fd2 < 0 || raw_register(fd2, &r2))
			DIE("uid 1000: open/register: %s", strerror(errno));
		s = read_stats(root, 1000);
		CHECK(s.lines >= 1 && !s.found && !s.other_uid && !s.no_uid,
		      "uid 1000 reads: %d context lines, root's pid %d %s, %d "
		      "of another uid, %d without uid=",
		      s.lines, (int)root, s.found ? "shown" : "hidden",
		      s.other_uid, s.no_uid);
		s = read_stats(getpid(), 1000);
		CHECK(s.found && s.uid_of_pid == 1000,
		      "uid 1000 does not see its own context (uid %ld)",
		      s.uid_of_pid);
		if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(1);
		_exit(t_failed ? 1 : 0);
	}
	if (read(ready[0], &c, 1) != 1)
		DIE("child");
	s = read_stats(root, -1);
	CHECK(s.found && s.uid_of_pid == 0 && !s.no_uid,
	      "root does not see its own context with uid=0 (uid %ld, %d "
	      "lines without uid=)",
	      s.uid_of_pid, s.no_uid);
	s = read_stats(child, -1);
	CHECK(s.found && s.uid_of_pid == 1000,
	      "root does not see uid 1000's context pid %d (uid %ld)",
	      (int)child, s.uid_of_pid);
	{
		/* Opened without privilege, read with it: the opener's
		 * creds decide. */
		FILE *f;

		if (setresuid(1000, 1000, 0))
			DIE("setresuid: %s", strerror(errno));
		f = fopen("/proc/esca/stats", "r");
		if (setresuid(0, 0, 0) || !f)
			DIE("reopen as root: %s", strerror(errno));
		s = scan_stats(f, root, 1000);
		fclose(f);
		CHECK(!s.found && !s.other_uid,
		      "opened as uid 1000, read as root: root's context %s, "
		      "%d of another uid",
		      s.found ? "shown" : "hidden", s.other_uid);
	}
	if (write(go[1], "g", 1) != 1)
		DIE("pipe");
	CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) &&
		      WEXITSTATUS(status) == 0,
	      "uid-1000 stats reader failed (0x%x)", status);
}

/* ---------------------------------------------------------------- quota */

#define QUOTA_KB 2048
#define QUOTA_PROCS 8
#define QUOTA_RINGS 2 /* per process, one per thread */

struct q_ring {
	int fd, hold;
	long ret;
	uint32_t kb;
};

static void *q_thread(void *arg)
{
	struct q_ring *q = arg;
	struct raw_ring r;

	q->ret = raw_register(q->fd, &r);
	if (!q->ret)
		q->kb = (r.sq_size + r.cq_size) / 1024;
	__atomic_store_n(&q->hold, 1, __ATOMIC_RELEASE);
	/* Keep the ring (thread alive, mapped) until the process ends. */
	for (;;)
		pause();
	return NULL;
}

struct q_report {
	int rings;
	long err;
	uint32_t kb;
};

/* A uid-1000 process holding rings until @release reads EOF. */
static pid_t q_proc(int report_w, int release_r, int release_w)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid)
		return pid;
	close(release_w);
	raw_drop_to(1000);
	{
		struct q_report rep = { 0 };
		struct q_ring q[QUOTA_RINGS] = { 0 };
		pthread_t th[QUOTA_RINGS];
		int fd = raw_open(4096, 1);
		char c;

		if (fd < 0) {
			rep.err = fd;
		} else {
			for (int i = 0; i < QUOTA_RINGS; i++) {
				q[i].fd = fd;
				pthread_create(&th[i], NULL, q_thread, &q[i]);
				while (!__atomic_load_n(&q[i].hold,
							__ATOMIC_ACQUIRE))
					usleep(1000);
				if (q[i].ret) {
					rep.err = q[i].ret;
					break;
				}
				rep.rings++;
				rep.kb = q[i].kb;
			}
		}
		if (write(report_w, &rep, sizeof(rep)) != sizeof(rep))
			_exit(1);
		while (read(release_r, &c, 1) > 0)
			;
		_exit(0);
	}
}

/*
 * Fork, become @uid, SETUP with @entries, REGISTER + map one ring; try
 * @tries times while REGISTER fails EDQUOT. The last result.
 */
static long register_as(uid_t uid, uint32_t entries, int tries)
{
	int p[2], status;
	long ret = -1000;
	pid_t pid;

	if (pipe(p))
		DIE("pipe");
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		struct raw_ring r;
		long res;
		int fd;

		raw_drop_to(uid);
		fd = raw_open(entries, 1);
		res = fd;
		for (int i = 0; fd >= 0 && i < tries; i++) {
			res = raw_register(fd, &r);
			if (res != -EDQUOT)
				break;
		}
		_exit(write(p[1], &res, sizeof(res)) == sizeof(res) ? 0 : 1);
	}
	close(p[1]);
	if (read(p[0], &ret, sizeof(ret)) != sizeof(ret))
		ret = -1000;
	close(p[0]);
	waitpid(pid, &status, 0);
	return ret;
}

static int quota(void)
{
	int rep[2], rel[2], total = 0, nproc = 0;
	pid_t pids[QUOTA_PROCS];
	long err = 0, ret;
	uint32_t kb = 0;

	if (pipe(rep) || pipe(rel))
		DIE("pipe");
	for (int i = 0; i < QUOTA_PROCS && !err; i++) {
		struct q_report r;

		pids[nproc++] = q_proc(rep[1], rel[0], rel[1]);
		if (read(rep[0], &r, sizeof(r)) != sizeof(r))
			DIE("quota child %d died", i);
		total += r.rings;
		err = r.err;
		if (r.kb)
			kb = r.kb;
	}
	printf("# quota: uid 1000 registered %d rings of %u KiB in %d "
	       "processes, then %s\n",
	       total, kb, nproc, err ? strerror((int)-err) : "no failure");
	CHECK(err == -EDQUOT, "REGISTER past user_ring_kb=%d: %s, want EDQUOT",
	      QUOTA_KB, err ? strerror((int)-err) : "never failed");
	CHECK(kb && (long)total * kb <= QUOTA_KB &&
		      (long)(total + 2) * kb > QUOTA_KB,
	      "uid 1000 got %d rings of %u KiB under a %d KiB cap", total, kb,
	      QUOTA_KB);
	ret = register_as(0, 4096, 1);
	CHECK(ret == 0, "root cannot register while uid 1000 is at its cap: %s",
	      strerror((int)-ret));
	ret = register_as(1001, 4096, 1);
	CHECK(ret == 0,
	      "uid 1001 cannot register while uid 1000 is at its cap: %s",
	      strerror((int)-ret));
	/* 200 more refusals: t-quota.sh checks the log is not flooded. */
	ret = register_as(1000, 4096, 200);
	CHECK(ret == -EDQUOT, "uid 1000 at its cap registers again: %s",
	      strerror((int)-ret));
	/* The holders exit: their memory comes back to uid 1000. */
	close(rel[1]);
	for (int i = 0; i < nproc; i++)
		waitpid(pids[i], NULL, 0);
	for (int i = 0; i < 30; i++) {
		ret = register_as(1000, 4096, 1);
		if (ret != -EDQUOT)
			break;
		usleep(100000); /* release may trail the exit a little */
	}
	CHECK(ret == 0,
	      "uid 1000 cannot register after its processes exited: "
	      "%s",
	      strerror((int)-ret));
	return t_done("t-attack-mem --quota");
}

/*
 * --churn-as UID N: one thread of a uid-UID process registers, maps,
 * unmaps and unregisters a 4096-entry ring N times. It never holds more
 * than one ring, so under any cap that fits one ring REGISTER must never
 * fail EDQUOT (an unregistered ring's memory must stop counting).
 */
static int churn_as(uid_t uid, int n)
{
	int fd, fails = 0;
	long last = 0;

	raw_drop_to(uid);
	fd = raw_open(4096, 1);
	if (fd < 0)
		DIE("open/setup: %s", strerror(-fd));
	for (int i = 0; i < n; i++) {
		struct raw_ring r;
		long ret = raw_register(fd, &r);

		if (ret) {
			fails++;
			last = ret;
			continue;
		}
		munmap(r.sq, r.sq_size);
		munmap((void *)r.cq, r.cq_size);
		ret = raw_ioc_n(fd, ESCA_IOC_UNREGISTER, r.id);
		if (ret) {
			fails++;
			last = ret;
		}
	}
	CHECK(fails == 0,
	      "uid %d holding one ring at a time: %d of %d "
	      "register/unregister rounds failed (last %s)",
	      (int)uid, fails, n, last ? strerror((int)-last) : "-");
	return t_done("t-attack-mem --churn-as");
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "--churn-as"))
		return churn_as((uid_t)atoi(argv[2]), atoi(argv[3]));
	if (argc == 3 && !strcmp(argv[1], "--open-as")) {
		int fd;

		raw_drop_to((uid_t)atoi(argv[2]));
		fd = open(ESCA_DEVICE_PATH, O_RDWR);
		printf("uid %s: open %s: %s\n", argv[2], ESCA_DEVICE_PATH,
		       fd < 0 ? strerror(errno) : "ok");
		return fd >= 0 ? 0 : errno == EACCES ? 2 : 1;
	}
	if (argc == 4 && !strcmp(argv[1], "--register-as")) {
		long ret = register_as((uid_t)atoi(argv[2]),
				       (uint32_t)atoi(argv[3]), 1);

		printf("uid %s: register: %s\n", argv[2],
		       ret ? strerror((int)-ret) : "ok");
		return ret ? 1 : 0;
	}
	if (argc == 2 && !strcmp(argv[1], "--quota"))
		return quota();
	raw_probefd = raw_probe_fd(); /* as root, before any scenario */
	if (access(ESCA_DEVICE_PATH, R_OK | W_OK))
		DIE("%s: %s", ESCA_DEVICE_PATH, strerror(errno));
	raw_in_child("fork: MADV_DOFORK, child mapping", attack_fork, NULL);
	raw_in_child("mmap by another thread (owner exited)", attack_mmap,
		     NULL);
	raw_in_child("mmap by another thread (owner alive)", attack_mmap_live,
		     NULL);
	raw_in_child("REGISTER into read-only memory", attack_efault, NULL);
	raw_in_child("WAKE racing REGISTER", attack_wake, NULL);
	raw_in_child("stats per uid", attack_stats, NULL);
	return t_done("t-attack-mem");
}
