// SPDX-License-Identifier: MIT
/*
 * Identity: calls run with the submitter's credentials and file table.
 *  - uid 1000 gets EPERM from an offloaded fchmod on a root-owned file it
 *    opened read-only, exactly as direct;
 *  - a thread registered as root that then drops to uid 1000 is judged
 *    with uid 1000 (credentials are taken per batch, not at registration);
 *  - fd numbers resolve in the caller's own table, never another
 *    process's, even when both are served by the same consumer.
 */
#include "t.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define FILE_PATH "/tmp/t-identity-root"

static void drop_to_1000(void)
{
	if (setgroups(0, NULL) || setresgid(1000, 1000, 1000) ||
	    setresuid(1000, 1000, 1000))
		DIE("cannot become uid 1000: %s", strerror(errno));
}

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
		fn();
		exit(t_failed ? 1 : 0);
	}
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
		      WEXITSTATUS(status) == 0,
	      "%s child: status 0x%x", name, status);
}

static void uid1000_registers(void)
{
	drop_to_1000();
	t_need_offload();
	check_eperm("uid 1000");
}

static void root_registers_then_drops(void)
{
	t_need_offload(); /* registered while root */
	drop_to_1000();
	check_eperm("root-registered, now uid 1000");
}

/* Same fd number, different files in two processes. */
static void fd_tables(void)
{
	int a, b, p[2], status;
	pid_t pid;
	char buf[8] = { 0 };

	t_need_offload();
	if (pipe(p))
		DIE("pipe");
	b = open("/tmp/t-identity-b", O_RDWR | O_CREAT | O_TRUNC, 0644);
	pid = fork();
	if (pid == 0) {
		t_need_offload(); /* the child's own context */
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
		exit(t_failed ? 1 : 0);
	}
	dup2(b, 50);
	close(p[0]);
	CHECK(O6(SYS_write, 50, "parent", 6, 0, 0, 0) == 6,
	      "parent write to 50");
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

int main(void)
{
	int fd = open(FILE_PATH, O_RDWR | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || fchown(fd, 0, 0) || fchmod(fd, 0644))
		DIE("create %s: %s", FILE_PATH, strerror(errno));
	close(fd);
	setenv("ESCA_SPIN_US", "2000", 0);
	in_child("uid 1000", uid1000_registers);
	in_child("root then uid 1000", root_registers_then_drops);
	fd_tables();
	return t_done("t-identity");
}
