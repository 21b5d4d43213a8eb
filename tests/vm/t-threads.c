// SPDX-License-Identifier: MIT
/*
 * 8 threads x 10,000 calls: every result right, per-thread order kept.
 * Each thread appends numbered 16-byte records to its own file, mixing
 * synchronous and deferred writes (draining now and then), then reads
 * the file back: record k must be the k-th call that thread made.
 */
#include "t.h"

#include <fcntl.h>
#include <pthread.h>

#define THREADS 8
#define CALLS 10000
#define REC 16

struct worker {
	int id;
	int fd;
	int bad_results;
	long deferred_failed;
	bool active;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	char rec[REC + 1];
	int k;

	w->active = esca_active();
	for (k = 0; k < CALLS; k++) {
		snprintf(rec, sizeof(rec), "t%d:%011d\n", w->id, k);
		if (k % 4 == 3) {
			if (esca_defer(SYS_write, w->fd, (long)rec, REC, 0, 0,
				       0) != 0)
				w->bad_results++;
			/* a deferred call's buffer must stay valid until drained */
			w->deferred_failed += esca_drain();
		} else if (esca_call(SYS_write, w->fd, (long)rec, REC, 0, 0,
				     0) != REC) {
			w->bad_results++;
		}
	}
	w->deferred_failed += esca_drain();
	return NULL;
}

static int verify(struct worker *w)
{
	char buf[REC + 1], want[REC + 1];
	int k, bad = 0;

	lseek(w->fd, 0, SEEK_SET);
	for (k = 0; k < CALLS; k++) {
		if (read(w->fd, buf, REC) != REC) {
			fprintf(stderr, "thread %d: short file at record %d\n",
				w->id, k);
			return 1;
		}
		snprintf(want, sizeof(want), "t%d:%011d\n", w->id, k);
		if (memcmp(buf, want, REC) && bad++ < 3)
			fprintf(stderr, "thread %d: record %d is '%.15s'\n",
				w->id, k, buf);
	}
	return bad;
}

int main(void)
{
	struct worker w[THREADS];
	pthread_t th[THREADS];
	struct t_counts c0;
	char path[64];
	int i;

	setenv("ESCA_SPIN_US", "2000", 0);
	t_need_offload();
	for (i = 0; i < THREADS; i++) {
		snprintf(path, sizeof(path), "/tmp/t-threads-%d", i);
		w[i] = (struct worker){ .id = i };
		w[i].fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
		if (w[i].fd < 0)
			DIE("open %s", path);
	}
	c0 = t_counts_now();
	for (i = 0; i < THREADS; i++)
		pthread_create(&th[i], NULL, work, &w[i]);
	for (i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < THREADS; i++) {
		CHECK(w[i].active, "thread %d did not register", i);
		CHECK(w[i].bad_results == 0, "thread %d: %d wrong results", i,
		      w[i].bad_results);
		CHECK(w[i].deferred_failed == 0,
		      "thread %d: %ld deferred failures", i,
		      w[i].deferred_failed);
		CHECK(verify(&w[i]) == 0, "thread %d: order broken", i);
	}
	{
		T_OFFLOADED("8 threads", c0, THREADS * CALLS, 0);
		/* the workers gave their rings back; main keeps its own */
		CHECK(t_ctx(getpid(), "rings") == 1,
		      "rings left after threads exited: %ld",
		      t_ctx(getpid(), "rings"));
	}
	return t_done("t-threads");
}
