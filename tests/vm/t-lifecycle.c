// SPDX-License-Identifier: MIT
/*
 * Lifetimes (DESIGN §5):
 *  - fork: the child has no ring mapping and is not registered;
 *  - exec drops the registration;
 *  - a thread that exits gives its ring back;
 *  - seccomp: refused at setup; a ring whose thread later installs a
 *    filter stops, and calls still happen exactly once (directly);
 *  - the program closes the library's /dev/esca fd: calls still complete
 *    exactly once, without a hang (a consumer sleeps a second at most);
 *  - 1,000 register/exit cycles;
 *  - 100 kill -9 while thousands of entries are pending;
 *  - afterwards the live-context counter returns to 0.
 * Children that claim their calls were offloaded prove it with their own
 * context's counters (a silent fallback to direct calls fails).
 */
#include "t.h"

#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

static bool maps_have_esca(void)
{
	char line[512];
	bool found = false;
	FILE *f = fopen("/proc/self/maps", "r");

	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, "/dev/esca"))
			found = true;
	if (f)
		fclose(f);
	return found;
}

/* A tmpfs file the consumer serves, wherever stdout goes. */
static int sink(void)
{
	static int fd = -1;

	if (fd < 0)
		fd = open("/tmp/t-lifecycle-sink",
			  O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	return fd;
}

static int wait_ok(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Poll up to 10 s for a counter to reach @want. */
static long wait_stat(const char *prefix, const char *key, long want)
{
	long v = -2;

	for (int i = 0; i < 1000; i++) {
		v = t_stat(prefix, key);
		if (v == want)
			break;
		usleep(10000);
	}
	return v;
}

static void test_fork(void)
{
	pid_t pid;

	t_need_offload();
	CHECK(maps_have_esca(), "parent has no ring mapping");
	pid = fork();
	if (pid == 0) {
		int bad = maps_have_esca();

		/* not registered: no context for this pid until it asks */
		bad |= t_ctx(getpid(), "rings") != -1;
		/* and it can register on its own */
		bad |= !esca_active();
		bad |= t_ctx(getpid(), "rings") != 1;
		bad |= O6(SYS_write, sink(), "", 0, 0, 0, 0) != 0;
		bad |= t_ctx_wait(getpid(), "calls", 1) != 1;
		bad |= t_ctx(getpid(), "bounced") != 0;
		_exit(bad);
	}
	CHECK(wait_ok(pid) == 0, "fork child saw the parent's registration");
}

static void test_exec(const char *self)
{
	pid_t pid = fork();

	if (pid == 0) {
		t_need_offload();
		if (t_ctx(getpid(), "rings") != 1)
			_exit(3);
		execl(self, self, "--no-context", (char *)NULL);
		_exit(4);
	}
	CHECK(wait_ok(pid) == 0, "context survived exec");
}

static void *thread_registers(void *arg)
{
	(void)arg;
	return (void *)(long)esca_active();
}

static void test_thread_exit(void)
{
	pthread_t th;
	void *active;
	long before = t_ctx(getpid(), "rings");

	pthread_create(&th, NULL, thread_registers, NULL);
	pthread_join(th, &active);
	CHECK(active, "thread did not register");
	for (int i = 0; i < 1000 && t_ctx(getpid(), "rings") != before; i++)
		usleep(10000);
	CHECK(t_ctx(getpid(), "rings") == before,
	      "rings %ld after a thread exited, want %ld",
	      t_ctx(getpid(), "rings"), before);
}

static void install_seccomp(void)
{
	struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	struct sock_fprog prog = { .len = 1, .filter = &allow };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog))
		DIE("seccomp: %s", strerror(errno));
}

static void test_seccomp(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		install_seccomp();
		setenv("ESCA_QUIET", "1", 1);
		_exit(esca_init() == -EPERM && !esca_active() &&
				      O6(SYS_write, sink(), "", 0, 0, 0, 0) ==
					      0 &&
				      t_ctx(getpid(), "calls") == -1 ?
			      0 :
			      1);
	}
	CHECK(wait_ok(pid) == 0, "setup under seccomp was not refused");

	pid = fork();
	if (pid == 0) {
		int fd = open("/tmp/t-lifecycle-sc", O_RDWR | O_CREAT | O_TRUNC,
			      0644);
		struct stat st;
		int bad = 0;

		long calls;

		t_need_offload();
		bad |= O6(SYS_write, fd, "1234", 4, 0, 0, 0) != 4;
		calls = t_ctx_wait(getpid(), "calls", 1);
		bad |= (calls != 1) << 1;
		install_seccomp();
		/* the ring stops; the call still happens, once, directly */
		bad |= (O6(SYS_write, fd, "5678", 4, 0, 0, 0) != 4) << 2;
		bad |= (O6(SYS_write, fd, "9", 1, 0, 0, 0) != 1) << 3;
		bad |= esca_active() << 4;
		bad |= (fstat(fd, &st) || st.st_size != 9) << 5;
		usleep(20000);
		bad |= (t_ctx(getpid(), "calls") != calls) << 6; /* none ran */
		_exit(bad);
	}
	{
		int st = wait_ok(pid);

		CHECK(st == 0,
		      "seccomp after registration: wrong results (bits %#x: 2 not offloaded before, 4-32 results, 64 ran after)",
		      st);
	}
}

/* The program closes the library's /dev/esca fd: no hang, no call twice. */
static void test_fd_closed(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		int fd = open("/tmp/t-lifecycle-fd", O_RDWR | O_CREAT | O_TRUNC,
			      0644);
		char link[64], target[64];
		struct stat st;
		int bad = 0;

		t_need_offload();
		for (int i = 3; i < 1024; i++) {
			ssize_t n;

			snprintf(link, sizeof(link), "/proc/self/fd/%d", i);
			n = readlink(link, target, sizeof(target) - 1);
			if (n > 0 &&
			    (target[n] = 0, !strcmp(target, "/dev/esca")))
				close(i);
		}
		struct t_counts c0 = t_counts_now();

		usleep(20000); /* let the consumer fall asleep: no one can wake it */
		bad |= O6(SYS_write, fd, "abc", 3, 0, 0, 0) != 3;
		bad |= esca_defer(SYS_write, fd, (long)"de", 2, 0, 0, 0) != 0;
		bad |= esca_drain() != 0;
		bad |= O6(SYS_write, fd, "f", 1, 0, 0, 0) != 1;
		bad |= fstat(fd, &st) || st.st_size != 6;
		/* still offloaded, not quietly made directly */
		bad |= t_ctx_wait(getpid(), "calls", c0.calls + 3) <
		       c0.calls + 3;
		bad |= t_ctx(getpid(), "bounced") != c0.bounced;
		_exit(bad);
	}
	CHECK(wait_ok(pid) == 0,
	      "calls after the program closed /dev/esca went wrong");
}

static void test_cycles(int n)
{
	int failures = 0;

	for (int i = 0; i < n; i++) {
		pid_t pid = fork();

		if (pid == 0) {
			int rd = open("/tmp/t-lifecycle-sink", O_RDONLY);
			int ok = esca_active() &&
				 O6(SYS_write, sink(), "", 0, 0, 0, 0) == 0 &&
				 esca_defer(SYS_close, rd, 0, 0, 0, 0, 0) ==
					 0 &&
				 esca_drain() == 0 &&
				 t_ctx_wait(getpid(), "calls", 2) == 2 &&
				 t_ctx(getpid(), "bounced") == 0;
			_exit(ok ? 0 : 1);
		}
		if (wait_ok(pid) != 0)
			failures++;
	}
	CHECK(failures == 0, "%d of %d register/exit cycles failed", failures,
	      n);
}

static void *flood(void *arg)
{
	static const char rec[64] = "flood";
	int fd = (int)(long)arg;

	for (;;)
		esca_defer(SYS_write, fd, (long)rec, sizeof(rec), 0, 0, 0);
	return NULL;
}

/* A fresh image (settings are read once per image): 4 threads flooding
 * rings of 4096 entries, which a full ring refills from half. */
static void flood_child(const char *self)
{
	setenv("ESCA_ENTRIES", "4096", 1);
	execl("/proc/self/exe", self, "--flood", (char *)NULL);
	_exit(127);
}

static void flood_run(void)
{
	int fd = open("/tmp/t-lifecycle-flood", O_WRONLY | O_CREAT | O_TRUNC,
		      0644);
	pthread_t th;

	for (int k = 0; k < 3; k++)
		pthread_create(&th, NULL, flood, (void *)(long)fd);
	flood((void *)(long)fd);
}

static void test_kill9(const char *self, int n)
{
	int wrong = 0, loaded = 0;
	long most = 0;

	srand(42);
	for (int i = 0; i < n; i++) {
		pid_t pid = fork();

		if (pid == 0)
			flood_child(self);
		usleep(2000 + rand() % 20000);
		{
			long pending = t_ctx(pid, "pending");

			/* a slow (emulated, shared) CPU may not have queued
			 * much yet: give it up to 1 s more, then kill */
			for (int k = 0; k < 100 && pending < 1000; k++) {
				usleep(10000);
				pending = t_ctx(pid, "pending");
			}
			loaded += pending >= 1000;
			most = pending > most ? pending : most;
		}
		kill(pid, SIGKILL);
		if (wait_ok(pid) != 128 + SIGKILL)
			wrong++;
	}
	CHECK(wrong == 0, "%d of %d flooding children did not die of SIGKILL",
	      wrong, n);
	printf("kill -9: %d of %d children had >= 1000 entries pending just before (most %ld)\n",
	       loaded, n, most);
	CHECK(loaded >= n / 4,
	      "only %d of %d kills hit >= 1000 pending entries", loaded, n);
}

int main(int argc, char **argv)
{
	long live;

	if (argc > 1 && !strcmp(argv[1], "--no-context"))
		return maps_have_esca() || t_ctx(getpid(), "rings") != -1;
	if (argc > 1 && !strcmp(argv[1], "--flood")) {
		flood_run();
		return 1;
	}
	if (argc > 2 && !strcmp(argv[1], "--hold")) {
		/* Stay registered and busy for argv[2] seconds (t-rmmod.sh). */
		time_t end = time(NULL) + atoi(argv[2]);

		t_need_offload();
		printf("holding\n");
		fflush(stdout);
		while (time(NULL) < end)
			O6(SYS_write, 1, "", 0, 0, 0, 0);
		return 0;
	}

	setenv("ESCA_SPIN_US", "2000", 0);
	test_fork();
	test_exec(argv[0]);
	test_thread_exit();
	test_seccomp();
	test_fd_closed();
	test_cycles(1000);
	test_kill9(argv[0], 100);
	esca_thread_exit();
	printf("contexts still live before this process exits: %ld\n",
	       t_stat("esca ", "live_contexts"));
	/* Only ours may be left; the suite checks 0 after we exit. */
	live = wait_stat("esca ", "live_contexts", 1);
	CHECK(live == 1, "live_contexts %ld, want 1 (this process)", live);
	return t_done("t-lifecycle");
}
