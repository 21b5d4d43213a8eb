// SPDX-License-Identifier: MIT
/*
 * Ring memory is charged to the memory cgroup (issue 7 item 4, spec
 * "Memory cgroup"): a child in a fresh cgroup registers 16 threads with
 * 4096-entry rings (~360 KiB each); the cgroup's memory.current must be
 * higher, by at least the rings' pages, than for the same child that only
 * opens /dev/esca and registers nothing (less 512 KiB: memory.current
 * moves in 64-page batches per CPU, so two runs differ by up to that). Once the child is gone the charge
 * must go too. The child reads every page of its rings, so pages the
 * module allocates at fault time are there (and charged) as well.
 * Skips (77) only if cgroup2 cannot be mounted or its memory controller
 * cannot be enabled (the error is printed).
 */
#include "t.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "esca/abi.h"

#define CG "/sys/fs/cgroup"
#define NT 16
#define ENTRIES 4096

static pthread_barrier_t bar;
static volatile long touched;
static bool use_rings;

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	n = n < 0 ? -errno : 0;
	close(fd);
	return (int)n;
}

/* Read every page of this process's /dev/esca mappings (both sides). */
static long touch_rings(void)
{
	char line[512];
	long pages = 0;
	FILE *f = fopen("/proc/self/maps", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long start, end;

		if (!strstr(line, "/dev/esca") ||
		    sscanf(line, "%lx-%lx", &start, &end) != 2)
			continue;
		for (unsigned long p = start; p < end; p += 4096, pages++)
			touched += *(volatile const char *)p;
	}
	fclose(f);
	return pages;
}

static void *child_thread(void *arg)
{
	long *ok = arg;

	*ok = use_rings ? esca_active() : 1;
	pthread_barrier_wait(&bar);
	for (;;)
		pause();
	return NULL;
}

/* The measured child: with use_rings it registers NT threads, else it only
 * opens /dev/esca. Tells the parent "ready" (and its ring pages) on @out. */
static void child(int go, int out)
{
	pthread_t th[NT];
	long ok[NT], pages = 0, good = 0;
	char c;

	if (read(go, &c, 1) != 1) /* moved into the cgroup */
		_exit(2);
	pthread_barrier_init(&bar, NULL, NT + 1);
	if (!use_rings && open(ESCA_DEVICE_PATH, O_RDWR) < 0)
		_exit(3);
	for (int t = 0; t < NT; t++) {
		ok[t] = 0;
		if (pthread_create(&th[t], NULL, child_thread, &ok[t]))
			_exit(5);
	}
	pthread_barrier_wait(&bar);
	for (int t = 0; t < NT; t++)
		good += ok[t] != 0;
	if (use_rings)
		pages = touch_rings();
	if (write(out, &good, sizeof(good)) != sizeof(good) ||
	    write(out, &pages, sizeof(pages)) != sizeof(pages))
		_exit(4);
	for (;;)
		pause();
}

struct run {
	pid_t pid;
	long current, threads_ok, pages, rings;
};

static void start(const char *cg, bool rings, struct run *r)
{
	int go[2], out[2];
	char path[128], pid[32];
	int err;

	if (pipe(go) || pipe(out))
		DIE("pipe: %s", strerror(errno));
	snprintf(path, sizeof(path), CG "/%s", cg);
	rmdir(path);
	if (mkdir(path, 0755))
		DIE("mkdir %s: %s", path, strerror(errno));
	r->pid = fork();
	if (r->pid < 0)
		DIE("fork: %s", strerror(errno));
	if (r->pid == 0) {
		close(go[1]);
		close(out[0]);
		use_rings = rings;
		child(go[0], out[1]);
	}
	close(go[0]);
	close(out[1]);
	snprintf(path, sizeof(path), CG "/%s/cgroup.procs", cg);
	snprintf(pid, sizeof(pid), "%d", (int)r->pid);
	err = write_file(path, pid);
	if (err)
		DIE("move %s to %s: %s", pid, path, strerror(-err));
	if (write(go[1], "g", 1) != 1 ||
	    read(out[0], &r->threads_ok, sizeof(long)) != sizeof(long) ||
	    read(out[0], &r->pages, sizeof(long)) != sizeof(long))
		DIE("child %s did not get ready", cg);
	close(go[1]);
	close(out[0]);
	usleep(200000);
	snprintf(path, sizeof(path), CG "/%s/memory.current", cg);
	r->current = t_read_long(path);
	snprintf(pid, sizeof(pid), "context pid=%d ", (int)r->pid);
	r->rings = t_stat(pid, "rings");
}

static void stop(struct run *r)
{
	kill(r->pid, SIGKILL);
	waitpid(r->pid, NULL, 0);
}

int main(void)
{
	struct run off, on;
	long ring_bytes, need, after = -1;
	bool mounted = false;
	int err;

	if (access(CG "/cgroup.controllers", F_OK)) {
		if (mount("none", CG, "cgroup2", 0, NULL)) {
			printf("skip: mount -t cgroup2 none %s: %s\n", CG,
			       strerror(errno));
			return 77;
		}
		mounted = true;
	}
	err = write_file(CG "/cgroup.subtree_control", "+memory");
	if (err) {
		printf("skip: echo +memory > %s/cgroup.subtree_control: %s\n",
		       CG, strerror(-err));
		return 77;
	}
	setenv("ESCA_ENTRIES", "4096", 1);
	/* both sides of a ring, whole pages (abi.h geometry) */
	ring_bytes = (long)(((ESCA_SQ_MMAP_SIZE(ENTRIES) + 4095) & ~4095ULL) +
			    ((ESCA_CQ_MMAP_SIZE(ENTRIES) + 4095) & ~4095ULL));

	start("t-memcg-off", false, &off);
	stop(&off);
	start("t-memcg-on", true, &on);
	printf("module unused: memory.current %ld; %d rings of %d entries: %ld (+%ld, rings are %ld bytes, %ld pages mapped)\n",
	       off.current, NT, ENTRIES, on.current, on.current - off.current,
	       NT * ring_bytes, on.pages);
	/* proof the rings exist: every thread registered and mapped */
	CHECK(on.threads_ok == NT && on.rings == NT,
	      "%ld of %d threads offloaded, context shows %ld rings",
	      on.threads_ok, NT, on.rings);
	CHECK(on.pages * 4096 >= NT * ring_bytes,
	      "only %ld ring pages mapped, want %ld", on.pages,
	      NT * ring_bytes / 4096);
	/* the charge: all ring pages, less two CPUs' charge batches */
	need = NT * ring_bytes - 2 * 64 * 4096;
	CHECK(off.current > 0 && on.current - off.current >= need,
	      "memory.current rose by %ld bytes with %d rings, want >= %ld: ring memory not charged to the cgroup",
	      on.current - off.current, NT, need);
	stop(&on);
	/* freed rings are uncharged (5 s, the release may be deferred);
	 * only meaningful if they were charged */
	for (int i = 0; i < 50 && on.current - off.current >= need; i++) {
		after = t_read_long(CG "/t-memcg-on/memory.current");
		if (after >= 0 && on.current - after >= need)
			break;
		usleep(100000);
	}
	printf("after the child exited: memory.current %ld\n", after);
	CHECK(on.current - off.current < need || on.current - after >= need,
	      "memory.current only fell from %ld to %ld after the rings were freed",
	      on.current, after);
	for (int i = 0; i < 50; i++) {
		if (!rmdir(CG "/t-memcg-on") || errno != EBUSY)
			break;
		usleep(100000);
	}
	rmdir(CG "/t-memcg-off");
	if (mounted)
		umount(CG);
	return t_done("t-memcg");
}
