// SPDX-License-Identifier: MIT
/*
 * Helper of t-hotplug.sh (not a test on its own). Modes:
 *
 *  load N    N threads offload pwrite64/pread64 on their own tmpfs file
 *            through libesca and check every result and every byte, until
 *            /tmp/hp.stop exists. Prints "thread I cpu C" per thread, then
 *            "ready"; at the end "load: calls=N wrong=N direct_threads=N"
 *            (threads whose ring died, so they went direct). Exit 1 on any
 *            wrong result.
 *  raw       one ring registered by hand (no libesca), so its header can be
 *            watched: submits a 1-byte pwrite64 to a tmpfs file every 10 ms and waits
 *            for it (5 s hang guard); prints "raw cpu C", then either
 *            "raw dead reason=R" when the ring dies or, at /tmp/hp.stop,
 *            "raw alive completions=N". Exit 1 on a wrong result or a hang.
 *  where     register, print "where cpu=C", make 100 offloaded pwrite64s
 *            to a tmpfs file, and check (exit 1 otherwise) they were exact
 *            and ran on the consumer: this context's calls counter rose by
 *            100 and its bounced counter did not move.
 */
#include "t.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>

#include "esca/abi.h"

#define STOP "/tmp/hp.stop"
#define MAXT 16
#define REC 64

static pthread_barrier_t bar;
static long calls[MAXT], wrong[MAXT];
static int direct[MAXT];

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *load_thread(void *arg)
{
	int t = (int)(long)arg;
	char path[64], rec[REC], back[REC];
	double end = now_s() + 300; /* a forgotten helper ends anyway */
	int fd;

	snprintf(path, sizeof(path), "/tmp/hp.%d.%d", (int)getpid(), t);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		DIE("%s: %s", path, strerror(errno));
	if (!esca_active())
		DIE("thread %d: offload is not active", t);
	printf("thread %d cpu %d\n", t, esca_thread_cpu());
	fflush(stdout);
	pthread_barrier_wait(&bar);
	for (long i = 0;; i++) {
		long off = (i % 64) * REC, r;

		memset(rec, 'a' + (int)(i % 26), sizeof(rec));
		snprintf(rec, sizeof(rec), "%d:%ld:", t, i);
		r = O6(SYS_pwrite64, fd, rec, REC, off, 0, 0);
		calls[t]++;
		if (r != REC) {
			if (wrong[t]++ < 5)
				fprintf(stderr, "thread %d: pwrite64 -> %ld\n",
					t, r);
		}
		if (i % 4 == 3) {
			r = O6(SYS_pread64, fd, back, REC, off, 0, 0);
			calls[t]++;
			if (r != REC || memcmp(back, rec, REC)) {
				if (wrong[t]++ < 5)
					fprintf(stderr,
						"thread %d: pread64 -> %ld, %s\n",
						t, r,
						r == REC ? "other bytes" :
							   "short");
			}
		}
		if (!direct[t] && !esca_active())
			direct[t] = 1; /* its ring died: direct from now on */
		if (i % 64 == 63 && (access(STOP, F_OK) == 0 || now_s() > end))
			break;
	}
	close(fd);
	unlink(path);
	return NULL;
}

static int mode_load(int n)
{
	pthread_t th[MAXT];
	long c = 0, w = 0;
	int d = 0;

	if (n < 1 || n > MAXT)
		DIE("load: 1..%d threads", MAXT);
	pthread_barrier_init(&bar, NULL, (unsigned)n + 1);
	for (int t = 0; t < n; t++)
		pthread_create(&th[t], NULL, load_thread, (void *)(long)t);
	pthread_barrier_wait(&bar);
	printf("ready\n");
	fflush(stdout);
	for (int t = 0; t < n; t++) {
		pthread_join(th[t], NULL);
		c += calls[t];
		w += wrong[t];
		d += direct[t];
	}
	printf("load: calls=%ld wrong=%ld direct_threads=%d\n", c, w, d);
	return w ? 1 : 0;
}

static void *map(int fd, uint64_t off, size_t len, int prot)
{
	void *p = mmap(NULL, len, prot, MAP_SHARED, fd, (off_t)off);

	if (p == MAP_FAILED)
		DIE("mmap ring: %s", strerror(errno));
	return p;
}

static int mode_raw(void)
{
	struct esca_setup s = { .abi_version = ESCA_ABI_VERSION };
	struct esca_register r;
	struct esca_sq_hdr *sq;
	const struct esca_cq_hdr *cq;
	struct esca_sqe *sqes;
	const struct esca_cqe *cqes;
	int fd = open(ESCA_DEVICE_PATH, O_RDWR);
	char path[64];
	int tmp;
	long done = 0;
	uint32_t tail = 0;

	snprintf(path, sizeof(path), "/tmp/hp.raw.%d", (int)getpid());
	tmp = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	unlink(path);
	if (fd < 0 || tmp < 0 || ioctl(fd, ESCA_IOC_SETUP, &s) ||
	    ioctl(fd, ESCA_IOC_REGISTER, &r))
		DIE("raw: setup/register: %s", strerror(errno));
	sq = map(fd, r.sq_offset, r.sq_size, PROT_READ | PROT_WRITE);
	cq = map(fd, r.cq_offset, r.cq_size, PROT_READ);
	sqes = (struct esca_sqe *)((char *)sq + ESCA_SQES_OFFSET);
	cqes = (const struct esca_cqe *)((const char *)cq + ESCA_CQES_OFFSET);
	printf("raw cpu %u\n", r.consumer_cpu);
	fflush(stdout);
	for (;;) {
		struct esca_sqe *e = &sqes[tail & (r.entries - 1)];
		const struct esca_cqe *c;
		double guard;

		if (__atomic_load_n(&cq->flags, __ATOMIC_ACQUIRE) &
		    ESCA_RING_DEAD)
			break;
		if (access(STOP, F_OK) == 0) {
			printf("raw alive completions=%ld\n", done);
			return 0;
		}
		memset(e, 0, sizeof(*e));
		e->nr = SYS_pwrite64; /* tmpfs: never bounced */
		e->args[0] = (__u64)tmp;
		e->args[1] = (__u64)(uintptr_t) "x";
		e->args[2] = 1;
		tail++;
		__atomic_store_n(&sq->sq_tail, tail, __ATOMIC_RELEASE);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		guard = now_s() + 5;
		while ((int32_t)(__atomic_load_n(&cq->sq_head,
						 __ATOMIC_ACQUIRE) -
				 tail) < 0) {
			if (__atomic_load_n(&cq->flags, __ATOMIC_ACQUIRE) &
			    ESCA_RING_DEAD)
				goto dead;
			if (now_s() > guard) {
				printf("raw hang: entry %u not done in 5 s (head %u, flags %#x)\n",
				       tail - 1, cq->sq_head, cq->flags);
				return 1;
			}
			if (cq->flags & ESCA_RING_NEED_WAKEUP)
				ioctl(fd, ESCA_IOC_WAKE, r.ring_id);
			usleep(1000);
		}
		c = &cqes[(tail - 1) & (r.entries - 1)];
		if (c->res != 1 || c->flags) {
			printf("raw: pwrite64 to tmpfs -> %lld, cqe flags %#x\n",
			       (long long)c->res, c->flags);
			return 1;
		}
		done++;
		usleep(10000);
	}
dead:
	printf("raw dead reason=%u completions=%ld\n",
	       __atomic_load_n(&cq->dead_reason, __ATOMIC_ACQUIRE), done);
	return 0;
}

static int mode_where(void)
{
	char key[64], path[64];
	long before, after, b0, b1;
	int bad = 0, fd;

	t_need_offload();
	snprintf(path, sizeof(path), "/tmp/hp.where.%d", (int)getpid());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	unlink(path);
	if (fd < 0)
		DIE("%s: %s", path, strerror(errno));
	snprintf(key, sizeof(key), "context pid=%d ", (int)getpid());
	printf("where cpu=%d\n", esca_thread_cpu());
	before = t_stat(key, "calls");
	b0 = t_stat(key, "bounced");
	for (int i = 0; i < 100; i++) /* tmpfs: never bounced */
		bad += O6(SYS_pwrite64, fd, "w", 1, i, 0, 0) != 1;
	after = t_stat(key, "calls");
	b1 = t_stat(key, "bounced");
	printf("where: %d wrong, context calls %ld -> %ld, bounced %ld -> %ld\n",
	       bad, before, after, b0, b1);
	return bad || after - before < 100 || b1 != b0;
}

int main(int argc, char **argv)
{
	if (argc > 2 && !strcmp(argv[1], "load"))
		return mode_load(atoi(argv[2]));
	if (argc > 1 && !strcmp(argv[1], "raw"))
		return mode_raw();
	if (argc > 1 && !strcmp(argv[1], "where"))
		return mode_where();
	fprintf(stderr, "usage: %s load N | raw | where\n", argv[0]);
	return 2;
}
