// SPDX-License-Identifier: MIT
/*
 * Identity: calls run with the submitter's credentials and file table.
 *  - uid 1000 (it can open /dev/esca: the suite loads the module with
 *    dev_mode=0666) gets EPERM from an offloaded fchmod on a root-owned
 *    file it opened read-only, exactly as direct, and the calls were
 *    offloaded (its own context's counters, which it may read);
 *  - a thread registered as root that drops to uid 1000: its ring dies
 *    (a ring keeps the credentials it was registered with, so it must not
 *    outlive a setuid), the library registers it again, and from then on
 *    its calls are offloaded again and judged as uid 1000: EPERM, exactly
 *    as direct. Its context is root's, so the root parent reads the
 *    counters for it;
 *  - fd numbers resolve in the caller's own table, never another
 *    process's, even when both are served by the same consumer;
 *  - two threads of one process with different credentials (a raw
 *    setresuid changes one thread only), their batches alternating on one
 *    consumer, which keeps a process's identity between batches: every
 *    call of the uid-1000 thread is refused, every call of the root
 *    thread allowed, all offloaded.
 */
#include "t.h"

#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define FILE_PATH "/tmp/t-identity-root"

static void drop_to_1000(void)
{
	if (setgroups(0, NULL) || setresgid(1000, 1000, 1000) ||
	    setresuid(1000, 1000, 1000))
		DIE("cannot become uid 1000: %s", strerror(errno));
}

/* Three offloaded calls, each refused as a direct call would be. */
static void check_eperm(const char *who)
{
	struct stat st;
	int fd = open(FILE_PATH, O_RDONLY);
	char what[64];

	if (fd < 0)
		DIE("%s: open: %s", who, strerror(errno));
	snprintf(what, sizeof(what), "%s fchmod", who);
	SAME(what, D6(SYS_fchmod, fd, 0666, 0, 0, 0, 0),
	     O6(SYS_fchmod, fd, 0666, 0, 0, 0, 0), -EPERM);
	snprintf(what, sizeof(what), "%s fchown", who);
	SAME(what, D6(SYS_fchown, fd, 1000, 1000, 0, 0, 0),
	     O6(SYS_fchown, fd, 1000, 1000, 0, 0, 0), -EPERM);
	snprintf(what, sizeof(what), "%s write on O_RDONLY", who);
	SAME(what, D6(SYS_write, fd, "x", 1, 0, 0, 0),
	     O6(SYS_write, fd, "x", 1, 0, 0, 0), -EBADF);
	CHECK(!fstat(fd, &st) && (st.st_mode & 07777) == 0644 && st.st_uid == 0,
	      "%s: file now mode %o uid %d", who, st.st_mode & 07777,
	      (int)st.st_uid);
	close(fd);
}

/* Run @fn in a child; its exit code is its verdict. */
static void in_child(const char *name, void (*fn)(void))
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		t_failed = 0; /* its own verdict, not the parent's so far */
		fn();
		exit(t_failed ? 1 : 0);
	}
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
		      WEXITSTATUS(status) == 0,
	      "%s child: status 0x%x", name, status);
}

static void uid1000_registers(void)
{
	struct t_counts c0;

	drop_to_1000();
	t_need_offload();
	c0 = t_counts_now();
	CHECK(c0.calls >= 0, "uid 1000 cannot see its own context");
	check_eperm("uid 1000");
	T_OFFLOADED("uid 1000", c0, 3, 0);
}

static int to_parent[2], from_parent[2];

/* Ask the root parent to read our counters, wait until it has. */
static void sync_parent(char what)
{
	char c;

	if (write(to_parent[1], &what, 1) != 1 ||
	    read(from_parent[0], &c, 1) != 1)
		DIE("lost the parent");
}

#define AFTER_SETUID 10 /* calls made (and offloaded) after re-registering */

static void root_registers_then_drops(void)
{
	int fd = open("/tmp/t-identity-mine", O_RDWR | O_CREAT | O_TRUNC, 0666);

	t_need_offload(); /* registered while root */
	CHECK(O6(SYS_write, fd, "root", 4, 0, 0, 0) == 4, "write as root");
	drop_to_1000();
	/* the ring dies on its next batch: this call is made directly */
	CHECK(O6(SYS_write, fd, "1000", 4, 0, 0, 0) == 4,
	      "first write as 1000");
	CHECK(esca_active(), "not registered again after setuid");
	sync_parent('a');
	check_eperm("root-registered, now uid 1000");
	for (int i = 0; i < AFTER_SETUID - 3; i++)
		CHECK(O6(SYS_write, fd, "x", 1, 0, 0, 0) == 1, "write %d", i);
	sync_parent('b');
	close(fd);
}

/*
 * The child's context is root's (it was set up as root): an unprivileged
 * reader cannot see it, so the parent reads it at the child's two sync
 * points and checks the calls made in between were offloaded.
 */
static void setuid_child(void)
{
	long calls = -1, bounced = -1, c, b;
	int status;
	char what;
	pid_t pid;

	if (pipe(to_parent) || pipe(from_parent))
		DIE("pipe");
	pid = fork();
	if (pid == 0) {
		t_failed = 0; /* its own verdict, not the parent's so far */
		close(to_parent[0]);
		close(from_parent[1]);
		root_registers_then_drops();
		exit(t_failed ? 1 : 0);
	}
	close(to_parent[1]);
	close(from_parent[0]);
	while (read(to_parent[0], &what, 1) == 1) {
		if (what == 'a') {
			calls = t_ctx(pid, "calls");
			bounced = t_ctx(pid, "bounced");
		} else {
			c = t_ctx_wait(pid, "calls", calls + AFTER_SETUID);
			b = t_ctx(pid, "bounced");
			CHECK(calls >= 0 && c - calls >= AFTER_SETUID,
			      "after setuid: context calls rose by %ld, want >= %d (offloaded again)",
			      c - calls, AFTER_SETUID);
			CHECK(b == bounced, "after setuid: bounced rose by %ld",
			      b - bounced);
		}
		if (write(from_parent[1], &what, 1) != 1)
			break;
	}
	CHECK(calls >= 0, "no context line for the setuid child %d", (int)pid);
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
		      WEXITSTATUS(status) == 0,
	      "root then uid 1000 child: status 0x%x", status);
	close(to_parent[0]);
	close(from_parent[1]);
}

/* Same fd number, different files in two processes. */
static void fd_tables(void)
{
	int a, b, p[2], status;
	pid_t pid;
	char buf[8] = { 0 };

	struct t_counts c0;

	t_need_offload();
	if (pipe(p))
		DIE("pipe");
	b = open("/tmp/t-identity-b", O_RDWR | O_CREAT | O_TRUNC, 0644);
	pid = fork();
	if (pid == 0) {
		t_failed = 0; /* its own verdict, not the parent's so far */
		t_need_offload(); /* the child's own context */
		c0 = t_counts_now();
		close(p[0]);
		a = open("/tmp/t-identity-a", O_RDWR | O_CREAT | O_TRUNC, 0644);
		dup2(a, 50);
		/* p[1] is closed here but open in the parent. */
		close(p[1]);
		SAME("child: write to its closed fd",
		     D6(SYS_write, p[1], "x", 1, 0, 0, 0),
		     O6(SYS_write, p[1], "x", 1, 0, 0, 0), -EBADF);
		CHECK(O6(SYS_write, 50, "child", 5, 0, 0, 0) == 5,
		      "child write to 50");
		T_OFFLOADED("child", c0, 2, 0);
		exit(t_failed ? 1 : 0);
	}
	dup2(b, 50);
	close(p[0]);
	c0 = t_counts_now();
	CHECK(O6(SYS_write, 50, "parent", 6, 0, 0, 0) == 6,
	      "parent write to 50");
	T_OFFLOADED("parent", c0, 1, 0);
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
		      WEXITSTATUS(status) == 0,
	      "fd child status 0x%x", status);
	a = open("/tmp/t-identity-a", O_RDONLY);
	CHECK(read(a, buf, sizeof(buf)) == 5 && !memcmp(buf, "child", 5),
	      "a holds '%s'", buf);
	memset(buf, 0, sizeof(buf));
	CHECK(pread(b, buf, sizeof(buf), 0) == 6 && !memcmp(buf, "parent", 6),
	      "b holds '%s'", buf);
	close(p[1]);
}

#define ROUNDS 100

static pthread_barrier_t turn;
static int two_fd;

/* The second thread: uid 1000 by a raw setresuid (this thread only). */
static void *uid1000_thread(void *arg)
{
	(void)arg;
	if (syscall(SYS_setresgid, 1000, 1000, 1000) ||
	    syscall(SYS_setresuid, 1000, 1000, 1000))
		DIE("thread: cannot become uid 1000: %s", strerror(errno));
	for (int i = 0; i < ROUNDS; i++) {
		pthread_barrier_wait(&turn); /* the root thread's batch ran */
		CHECK(O6(SYS_fchmod, two_fd, 0666, 0, 0, 0, 0) == -EPERM,
		      "round %d: uid-1000 thread's fchmod not refused", i);
		CHECK(O6(SYS_fchown, two_fd, 1000, 1000, 0, 0, 0) == -EPERM,
		      "round %d: uid-1000 thread's fchown not refused", i);
		pthread_barrier_wait(&turn);
	}
	return NULL;
}

static void two_identities(void)
{
	struct t_counts c0;
	struct stat st;
	pthread_t th;

	two_fd = open(FILE_PATH, O_RDONLY);
	if (two_fd < 0)
		DIE("open %s: %s", FILE_PATH, strerror(errno));
	t_need_offload();
	c0 = t_counts_now();
	pthread_barrier_init(&turn, NULL, 2);
	if (pthread_create(&th, NULL, uid1000_thread, NULL))
		DIE("pthread_create");
	for (int i = 0; i < ROUNDS; i++) {
		CHECK(O6(SYS_fchmod, two_fd, 0644, 0, 0, 0, 0) == 0,
		      "round %d: root thread's fchmod refused", i);
		pthread_barrier_wait(&turn);
		pthread_barrier_wait(&turn); /* the uid-1000 thread's ran */
	}
	pthread_join(th, NULL);
	T_OFFLOADED("two identities", c0, 3 * ROUNDS, 0);
	CHECK(!fstat(two_fd, &st) && (st.st_mode & 07777) == 0644 &&
		      st.st_uid == 0 && st.st_gid == 0,
	      "two identities: file now mode %o uid %d gid %d",
	      st.st_mode & 07777, (int)st.st_uid, (int)st.st_gid);
	close(two_fd);
}

int main(void)
{
	int fd = open(FILE_PATH, O_RDWR | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || fchown(fd, 0, 0) || fchmod(fd, 0644))
		DIE("create %s: %s", FILE_PATH, strerror(errno));
	close(fd);
	setenv("ESCA_SPIN_US", "2000", 0);
	in_child("uid 1000", uid1000_registers);
	setuid_child();
	fd_tables();
	in_child("two identities", two_identities);
	return t_done("t-identity");
}
