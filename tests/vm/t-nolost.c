// SPDX-License-Identifier: MIT
/*
 * Nothing lost (issue 7 item 6, spec "Nothing lost"): a deferred call the
 * library accepted takes effect even if the process dies right after, as
 * a direct call would have. The module drains a process's rings when its
 * address space is released, which happens before the parent's waitpid()
 * returns, so the parent checks the file at once:
 *  1. a child defers 64 writes of 64 bytes to a tmpfs file and _exit()s;
 *  2. a child defers them, tells the parent through a pipe (one direct
 *     write right after the last enqueue) and spins; the parent SIGKILLs it
 *     as soon as it reads the byte;
 *  3. as 2, with 4 threads each deferring 64 pwrite64s.
 * 1,000 times each (250 for 3; usage: t-nolost [N [N3]]). Every byte of every write must be in the file, in
 * place, when waitpid() returns. Each child proves its writes were queued
 * (esca_defer returned 0, not the 64 a direct write returns) and records
 * how many entries were still in its rings (sq_tail - sq_head, read from
 * its own mappings) at the moment it died, so we know the drain was
 * exercised. Half the children run on the consumer's CPU (entries stay
 * queued), half on the other one (they race a consumer mid-batch).
 */
#include "t.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <linux/magic.h>

#include "esca/abi.h"

#define NW 64 /* deferred writes per thread */
#define WSZ 64 /* bytes per write */
#define NT 4 /* threads in the multithreaded variant */
#define MAXRINGS 16
#define PATH "/tmp/t-nolost.dat"

enum { V_EXIT, V_KILL, V_THREADS, NVARIANTS };
static const char *const vname[NVARIANTS] = { "_exit", "kill -9",
					      "4 threads + kill -9" };

/* What a child tells its parent, through MAP_SHARED memory (no syscall). */
struct report {
	int active; /* threads offloaded */
	int queued; /* esca_defer() returned 0: the entry is in a ring */
	long pending; /* sq_tail - sq_head over its rings when it died */
	int rings; /* rings found in /proc/self/maps */
};

struct ringview {
	volatile uint32_t *tail; /* sq_hdr.sq_tail */
	volatile const uint32_t *head; /* cq_hdr.sq_head */
};

static char expect[NT * NW * WSZ];
static struct report *rep;
static struct ringview rv[MAXRINGS];
static int nrv;
static int pipefd[2];
static int child_cpu;

static pthread_barrier_t bar;
static volatile int defers_done;

/*
 * This process's rings, from its /dev/esca mappings: the mmap offset says
 * ring id (>> 24) and side (bit 23: completion side).
 */
static int find_rings(void)
{
	struct {
		unsigned long sq, cq;
	} by_id[MAXRINGS] = { { 0, 0 } };
	static char maps[65536];
	int fd = open("/proc/self/maps", O_RDONLY), n = 0;
	size_t len = 0;
	ssize_t r;

	/* one big buffer, few reads: this runs in every child */
	if (fd < 0)
		return 0;
	while (len < sizeof(maps) - 1 &&
	       (r = read(fd, maps + len, sizeof(maps) - 1 - len)) > 0)
		len += (size_t)r;
	close(fd);
	maps[len] = 0;
	for (char *line = maps, *nl; line && *line; line = nl) {
		unsigned long start, end, off, id;

		nl = strchr(line, '\n');
		if (nl)
			*nl++ = 0;
		if (!strstr(line, "/dev/esca") ||
		    sscanf(line, "%lx-%lx %*s %lx", &start, &end, &off) != 3)
			continue;
		id = off >> ESCA_RING_OFFSET_SHIFT;
		if (id >= MAXRINGS)
			continue;
		if (off & (1UL << 23))
			by_id[id].cq = start;
		else
			by_id[id].sq = start;
	}
	for (int i = 0; i < MAXRINGS; i++) {
		if (!by_id[i].sq || !by_id[i].cq)
			continue;
		rv[n].tail = &((struct esca_sq_hdr *)by_id[i].sq)->sq_tail;
		rv[n].head =
			&((const struct esca_cq_hdr *)by_id[i].cq)->sq_head;
		n++;
	}
	return n;
}

static long pending_now(void)
{
	long p = 0;

	for (int i = 0; i < nrv; i++)
		p += (uint32_t)(*rv[i].tail - *rv[i].head);
	return p;
}

static const char *rec(int t, int i)
{
	return &expect[(t * NW + i) * WSZ];
}

/* The bytes of iteration @it: each record names its iteration, thread
 * and index, so a lost, torn or misplaced write shows. */
static void make_expect(int it, int threads)
{
	for (int t = 0; t < threads; t++)
		for (int i = 0; i < NW; i++) {
			char *r = (char *)rec(t, i);
			int n = snprintf(r, WSZ, "it=%04d t=%d w=%02d ", it, t,
					 i);

			for (int k = n; k < WSZ - 1; k++)
				r[k] = (char)('a' + (it + t * 7 + i + k) % 26);
			r[WSZ - 1] = '\n';
		}
}

static void pin(int cpu)
{
	cpu_set_t s;

	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	sched_setaffinity(0, sizeof(s), &s);
}

static void spin_forever(void)
{
	for (;;)
		__builtin_ia32_pause();
}

static void child_single(int variant)
{
	int fd = open(PATH, O_WRONLY);
	int queued = 0;

	pin(child_cpu);
	if (fd < 0 || !esca_active())
		_exit(2);
	rep->active = 1;
	nrv = find_rings();
	rep->rings = nrv;
	for (int i = 0; i < NW; i++)
		queued += esca_defer(SYS_write, fd, (long)rec(0, i), WSZ, 0, 0,
				     0) == 0;
	rep->pending = pending_now();
	rep->queued = queued;
	if (variant == V_EXIT)
		_exit(0); /* no destructor, no drain: the module's job */
	esca_direct(SYS_write, pipefd[1], (long)"x", 1, 0, 0, 0);
	spin_forever();
}

static void *thread_defer(void *arg)
{
	int t = (int)(long)arg, fd = open(PATH, O_WRONLY), queued = 0;

	if (fd >= 0 && esca_active())
		__atomic_fetch_add(&rep->active, 1, __ATOMIC_SEQ_CST);
	pthread_barrier_wait(&bar); /* all registered */
	pthread_barrier_wait(&bar); /* main has found the rings: go */
	for (int i = 0; i < NW; i++)
		queued += esca_defer(SYS_pwrite64, fd, (long)rec(t, i), WSZ,
				     (t * NW + i) * WSZ, 0, 0) == 0;
	__atomic_fetch_add(&rep->queued, queued, __ATOMIC_SEQ_CST);
	/* the last thread to finish queueing signals, right away */
	if (__atomic_add_fetch(&defers_done, 1, __ATOMIC_SEQ_CST) == NT) {
		rep->pending = pending_now();
		esca_direct(SYS_write, pipefd[1], (long)"x", 1, 0, 0, 0);
	}
	spin_forever();
	return NULL;
}

static void child_threads(void)
{
	pthread_t th;

	pin(child_cpu);
	pthread_barrier_init(&bar, NULL, NT + 1);
	for (int t = 0; t < NT; t++)
		if (pthread_create(&th, NULL, thread_defer, (void *)(long)t))
			_exit(2);
	pthread_barrier_wait(&bar);
	nrv = find_rings();
	rep->rings = nrv;
	pthread_barrier_wait(&bar);
	for (;;)
		pause();
}

/* The file holds exactly @len expected bytes? -1 if so, else the first
 * wrong offset (or the size, if it is short). */
static long file_wrong(size_t len)
{
	static char got[sizeof(expect) + 1];
	int fd = open(PATH, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return 0;
	n = read(fd, got, sizeof(got));
	close(fd);
	if (n < 0)
		return 0;
	for (size_t i = 0; i < (size_t)n && i < len; i++)
		if (got[i] != expect[i])
			return (long)i;
	return (size_t)n == len ? -1 : n;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void run_variant(int variant, int iters)
{
	int threads = variant == V_THREADS ? NT : 1;
	size_t len = (size_t)threads * NW * WSZ;
	int bad = 0, late = 0, inactive = 0, notqueued = 0, baddeath = 0;
	int hung = 0, with_pending[2] = { 0, 0 }, stat_looks = 0,
	    stat_pending = 0;
	long most = 0;
	double t0 = now_s(), worst_late = 0;
	char key[64];

	for (int it = 0; it < iters; it++) {
		int fd = open(PATH, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int status = 0;
		long wrong;
		pid_t pid;

		if (fd < 0)
			DIE("open %s: %s", PATH, strerror(errno));
		close(fd);
		make_expect(it, threads);
		memset(rep, 0, sizeof(*rep));
		child_cpu = it & 1 ? 0 : 1; /* 1: the consumer's CPU */
		setenv("ESCA_ENTRIES", "4096", 1); /* every write queues */
		if (pipe(pipefd))
			DIE("pipe: %s", strerror(errno));
		pid = fork();
		if (pid < 0)
			DIE("fork: %s", strerror(errno));
		if (pid == 0) {
			close(pipefd[0]);
			if (variant == V_THREADS)
				child_threads();
			child_single(variant);
		}
		close(pipefd[1]);
		if (variant != V_EXIT) {
			struct pollfd p = { .fd = pipefd[0], .events = POLLIN };
			char c;

			/* hang guard: a child that never finishes queueing */
			if (poll(&p, 1, 10000) != 1 ||
			    read(pipefd[0], &c, 1) != 1)
				hung++;
			if (it % 10 == 0) {
				/* the module's view, just before the kill */
				snprintf(key, sizeof(key), "context pid=%d ",
					 (int)pid);
				stat_looks++;
				stat_pending += t_stat(key, "pending") > 0;
			}
			kill(pid, SIGKILL);
		}
		close(pipefd[0]);
		if (waitpid(pid, &status, 0) != pid)
			DIE("waitpid: %s", strerror(errno));
		if (variant == V_EXIT ?
			    !(WIFEXITED(status) && WEXITSTATUS(status) == 0) :
			    !(WIFSIGNALED(status) &&
			      WTERMSIG(status) == SIGKILL))
			baddeath++;
		inactive += rep->active != threads || rep->rings != threads;
		notqueued += rep->queued != threads * NW;
		if (rep->pending > 0)
			with_pending[child_cpu]++;
		most = rep->pending > most ? rep->pending : most;

		/* waitpid has returned: a direct write would be there now */
		wrong = file_wrong(len);
		if (wrong >= 0) {
			/* late or lost? 2 s for the first few, 100 ms after
			 * that, so a module that loses writes fails fast */
			double t1 = now_s(), lim = bad < 5 ? 2.0 : 0.1, dt;
			long later = wrong;

			while (later >= 0 && now_s() - t1 < lim) {
				usleep(1000);
				later = file_wrong(len);
			}
			dt = now_s() - t1;
			if (later < 0) {
				late++;
				worst_late = dt > worst_late ? dt : worst_late;
			}
			if (bad < 5)
				fprintf(stderr,
					"%s iteration %d: file wrong at byte %ld of %zu when waitpid returned (%s %.3f s later; %ld entries were pending at death, child on CPU %d)\n",
					vname[variant], it, wrong, len,
					later < 0 ? "complete" : "still wrong",
					dt, rep->pending, child_cpu);
			bad++;
		}
	}
	printf("%s: %d iterations in %.1f s: %d with bytes missing when waitpid returned (%d of them complete later, at most %.3f s later); entries pending at death in %d (child on the consumer's CPU) + %d (other CPU) iterations, most %ld of %d",
	       vname[variant], iters, now_s() - t0, bad, late, worst_late,
	       with_pending[1], with_pending[0], most, threads * NW);
	if (stat_looks)
		printf("; /proc/esca/stats pending>0 just before the kill in %d of %d looks",
		       stat_pending, stat_looks);
	printf("\n");
	/* lost: not there even after the look (2 s for the first 5 bad
	 * iterations, 0.1 s after); late: there, but only after waitpid
	 * returned, which a direct write never is */
	CHECK(bad - late == 0,
	      "%s: %d of %d iterations lost deferred writes (still missing after the look)",
	      vname[variant], bad - late, iters);
	CHECK(late == 0,
	      "%s: %d of %d iterations had deferred writes missing when waitpid returned (done up to %.3f s later)",
	      vname[variant], late, iters, worst_late);
	CHECK(hung == 0, "%s: %d children never signalled (10 s guard)",
	      vname[variant], hung);
	CHECK(baddeath == 0, "%s: %d children died another way", vname[variant],
	      baddeath);
	/* proof of offload: every write went into a ring, none direct */
	CHECK(inactive == 0, "%s: %d children were not offloaded",
	      vname[variant], inactive);
	CHECK(notqueued == 0,
	      "%s: %d children had a defer made directly (ring full?)",
	      vname[variant], notqueued);
	/* without entries pending at death this test proves nothing */
	CHECK(with_pending[0] + with_pending[1] >= iters / 10,
	      "%s: only %d of %d children died with entries pending",
	      vname[variant], with_pending[0] + with_pending[1], iters);
}

int main(int argc, char **argv)
{
	/* 1,000 each as issue 7 asks; the threaded variant, an extra, costs
	 * ~4x an iteration under TCG, so it gets 250 to stay near 90 s */
	int iters = argc > 1 ? atoi(argv[1]) : 1000;
	int titers = argc > 2 ? atoi(argv[2]) : 250;
	struct statfs sf;
	int fd;

	rep = mmap(NULL, sizeof(*rep), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (rep == MAP_FAILED)
		DIE("mmap: %s", strerror(errno));
	fd = open(PATH, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || fstatfs(fd, &sf))
		DIE("%s: %s", PATH, strerror(errno));
	close(fd);
	/* tmpfs and ramfs writes are never bounced (spec) */
	if (sf.f_type != TMPFS_MAGIC && sf.f_type != RAMFS_MAGIC)
		DIE("%s is not on tmpfs (f_type %#lx)", PATH,
		    (unsigned long)sf.f_type);
	for (int v = 0; v < NVARIANTS; v++)
		run_variant(v, v == V_THREADS ? titers : iters);
	unlink(PATH);
	return t_done("t-nolost");
}
