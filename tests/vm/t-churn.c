// SPDX-License-Identifier: MIT
/*
 * Lifetime races under load: while busy threads keep offloading, other
 * threads are born, register, make a few calls and exit (UNREGISTER and
 * munmap from the thread destructor) over and over; meanwhile child
 * processes are killed while their threads sleep in ESCA_IOC_WAIT or are
 * mid-batch. Every result must be right, and (with the suite's kernel log
 * check, and slub_debug when the runner enables it) the module must not
 * touch freed memory. Every call this process made must show in its
 * context's `calls` counter: offloaded, none bounced.
 */
#include "t.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#define BUSY 3
#define CHURNERS 2
#define LIVES 400 /* thread lifetimes per churner */

static int fd;
static volatile int stop;
static long bad, made; /* wrong results; calls made in this process */
static pthread_mutex_t bad_lock = PTHREAD_MUTEX_INITIALIZER;

static void count_bad(long n, long calls)
{
	pthread_mutex_lock(&bad_lock);
	bad += n;
	made += calls;
	pthread_mutex_unlock(&bad_lock);
}

static void *busy(void *arg)
{
	long wrong = 0, calls = 0;

	(void)arg;
	while (!stop) {
		wrong += esca_call(SYS_pwrite64, fd, (long)"busy", 4, 0, 0,
				   0) != 4;
		wrong += esca_defer(SYS_pwrite64, fd, (long)"bz", 2, 8, 0, 0) !=
			 0;
		calls += 2;
	}
	wrong += esca_drain();
	count_bad(wrong, calls);
	return NULL;
}

static void *short_life(void *arg)
{
	long wrong = !esca_active();

	(void)arg;
	for (int i = 0; i < 3; i++)
		wrong += esca_call(SYS_pwrite64, fd, (long)"life", 4, 16, 0,
				   0) != 4;
	wrong += esca_defer(SYS_pwrite64, fd, (long)"x", 1, 24, 0, 0) != 0;
	count_bad(wrong, 4);
	return NULL; /* the destructor drains, unregisters and unmaps */
}

static void *churn(void *arg)
{
	(void)arg;
	for (int i = 0; i < LIVES; i++) {
		pthread_t th;

		if (pthread_create(&th, NULL, short_life, NULL) == 0)
			pthread_join(th, NULL);
	}
	return NULL;
}

/* A child whose threads sleep in WAIT (spin 0) on a busy consumer. */
static void *sleeper(void *arg)
{
	(void)arg;
	for (;;)
		esca_call(SYS_pwrite64, fd, (long)"s", 1, 32, 0, 0);
	return NULL;
}

static int kill_sleepers(int n)
{
	int wrong = 0;

	for (int i = 0; i < n; i++) {
		pid_t pid = fork();
		int status;

		if (pid == 0) {
			pthread_t th;

			setenv("ESCA_SPIN_US", "0", 1);
			for (int k = 0; k < 3; k++)
				pthread_create(&th, NULL, sleeper, NULL);
			sleeper(NULL);
		}
		usleep(3000 + (i % 7) * 1000);
		kill(pid, SIGKILL);
		if (waitpid(pid, &status, 0) != pid || !WIFSIGNALED(status) ||
		    WTERMSIG(status) != SIGKILL)
			wrong++;
	}
	return wrong;
}

int main(void)
{
	pthread_t b[BUSY], c[CHURNERS];
	struct t_counts c0;
	int killed_wrong;

	setenv("ESCA_SPIN_US", "2000", 0);
	fd = open("/tmp/t-churn", O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		DIE("open: %s", strerror(errno));
	t_need_offload();
	c0 = t_counts_now();
	for (int i = 0; i < BUSY; i++)
		pthread_create(&b[i], NULL, busy, NULL);
	for (int i = 0; i < CHURNERS; i++)
		pthread_create(&c[i], NULL, churn, NULL);
	killed_wrong = kill_sleepers(40);
	for (int i = 0; i < CHURNERS; i++)
		pthread_join(c[i], NULL);
	stop = 1;
	for (int i = 0; i < BUSY; i++)
		pthread_join(b[i], NULL);

	CHECK(bad == 0, "%ld wrong results", bad);
	CHECK(killed_wrong == 0, "%d children did not die of SIGKILL",
	      killed_wrong);
	T_OFFLOADED("busy and short-lived threads", c0, made, 0);
	{
		long rings;

		/* busy threads exited too: only main's ring is left */
		for (int i = 0;
		     i < 100 && (rings = t_ctx(getpid(), "rings")) != 1; i++)
			usleep(10000);
		CHECK(rings == 1, "%ld rings left, want 1 (main)", rings);
		printf("%d thread lifetimes, %ld calls made, %ld in this context\n",
		       CHURNERS * LIVES, made, t_ctx(getpid(), "calls"));
	}
	return t_done("t-churn");
}
