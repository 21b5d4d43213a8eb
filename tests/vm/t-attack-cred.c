// SPDX-License-Identifier: MIT
/*
 * Attacks on a ring's identity (issue 7 items 1 and 5), through the raw
 * ABI since the library would never do them. Each check passes only
 * because the attack fails:
 *  vfork / clone(CLONE_VM): a uid-1000 child registers, then execs a
 *    setuid-root program; the parent (same old mm) writes fchmod/fchown of
 *    a root-owned file into the child's ring. Must not run as root.
 *  exited thread: a root thread registers and exits, the process drops to
 *    uid 1000, then fills the dead thread's ring. Must not run as root.
 *  setuid: the registering thread drops to uid 1000; entries written
 *    afterwards are not run (ring DEAD, IDENTITY), whatever the snapshot.
 *  seccomp: a filter on another thread (with and without TSYNC), and a
 *    REGISTER while a thread is filtered: nothing the filter forbids runs.
 *  unshare(CLONE_FILES) / close_range(CLOSE_RANGE_UNSHARE): the ring dies,
 *    so an fd closed in the new table is never written through the old.
 *  exec: the ring's reference to the old file table does not keep an
 *    O_CLOEXEC pipe end open (the reader sees EOF), also when the old mm
 *    (and so the ring's mapping) outlives the exec (clone(CLONE_VM)): an
 *    entry written then does not run (DEAD, IDENTITY).
 * Every ring first runs a probe entry, so the consumer demonstrably
 * served it before the attack. ESCA_ONLY=text runs only the scenarios
 * whose name contains text.
 */
#include "t.h"
#include "raw.h"

#include <linux/audit.h>
#include <linux/close_range.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>

#define SUID_PATH "/tmp/t-attack-suid"

/* The context of @pid ran no call since its counter read @before. */
#define NOTHING_RAN(pid, before, what)                                     \
	do {                                                               \
		long now_ = raw_calls(pid);                                \
		CHECK((before) >= 1 && now_ == (before),                   \
		      "%s: context calls %ld -> %ld: something ran", what, \
		      (long)(before), now_);                               \
	} while (0)

/* --sleep FD: the program exec'd by the victims (setuid copy or not). */
static int sleeper(int fd)
{
	char c = geteuid() == 0 ? 'R' : 'U';

	if (write(fd, &c, 1) != 1)
		return 1;
	close(fd);
	sleep(60);
	return 0;
}

static void copy_suid(void)
{
	char buf[65536];
	ssize_t n;
	int in = open("/proc/self/exe", O_RDONLY), out;

	unlink(SUID_PATH);
	out = open(SUID_PATH, O_WRONLY | O_CREAT | O_EXCL, 0700);
	if (in < 0 || out < 0)
		DIE("copy to %s: %s", SUID_PATH, strerror(errno));
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			DIE("write %s", SUID_PATH);
	if (fchown(out, 0, 0) || fchmod(out, 04755))
		DIE("chmod %s: %s", SUID_PATH, strerror(errno));
	close(in);
	close(out);
}

/* Keeps the consumer scanning its rings (the attacker has no fd to WAKE). */
static pid_t start_pump(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		struct raw_ring r;
		struct raw_out o;
		int fd = raw_open(8, 1), probefd = raw_probe_fd();

		alarm(120);
		if (fd < 0 || raw_register(fd, &r))
			_exit(3);
		for (;;) {
			raw_call(&r, SYS_write, (uint64_t)probefd,
				 (uint64_t) "x", 1, &o);
			usleep(2000);
		}
	}
	return pid;
}

/* ---------------------------------------------------------------- 1 */

struct vm_child {
	const char *file;
	int sync_w; /* the sleeper writes R/U here */
	int err; /* -errno of the step that failed, 0 if none */
	const char *step;
	int rootfd;
	struct raw_ring r;
	struct raw_out probe;
	char stack[256 * 1024] __attribute__((aligned(16)));
};

/* Runs in the clone child, on the parent's memory: no stdio. */
static int vm_child_fn(void *arg)
{
	struct vm_child *c = arg;
	char fdbuf[16];
	char *argv[] = { SUID_PATH, "--sleep", fdbuf, NULL };
	char *envp[] = { "PATH=/bin", NULL };
	int fd, probefd;
	long ret;

	/* No O_CLOEXEC: the context lives on in the setuid program. */
	c->step = "open+setup";
	fd = raw_open(8, 0);
	if (fd < 0) {
		c->err = fd;
		return 1;
	}
	c->step = "register+mmap";
	ret = raw_register(fd, &c->r);
	if (ret) {
		c->err = (int)ret;
		return 1;
	}
	c->step = "open root file";
	c->rootfd = open(c->file, O_RDONLY);
	if (c->rootfd < 0) {
		c->err = -errno;
		return 1;
	}
	probefd = raw_probe_fd();
	raw_call(&c->r, SYS_write, (uint64_t)probefd, (uint64_t) "p", 1,
		 &c->probe);
	close(probefd);
	snprintf(fdbuf, sizeof(fdbuf), "%d", c->sync_w);
	c->step = "exec";
	execve(SUID_PATH, argv, envp);
	c->err = -errno;
	return 1;
}

static struct vm_child vmc;

static void attack_vm(void *arg)
{
	int vfork_too = *(int *)arg;
	const char *what = vfork_too ? "vfork" : "clone(CLONE_VM)";
	int p[2], status;
	char c = 0;
	pid_t pid;
	uint32_t i1, i2;
	struct raw_out o1, o2;
	struct pollfd pfd;
	long calls;

	vmc.file = vfork_too ? "/tmp/t-attack-vfork" : "/tmp/t-attack-clonevm";
	raw_root_file(vmc.file);
	raw_drop_to(1000);
	if (pipe(p))
		DIE("pipe");
	vmc.sync_w = p[1];
	pid = clone(vm_child_fn, vmc.stack + sizeof(vmc.stack),
		    CLONE_VM | (vfork_too ? CLONE_VFORK : 0) | SIGCHLD, &vmc);
	if (pid < 0)
		DIE("clone: %s", strerror(errno));
	close(p[1]);
	pfd = (struct pollfd){ .fd = p[0], .events = POLLIN };
	if (poll(&pfd, 1, 20000) != 1 || read(p[0], &c, 1) != 1) {
		CHECK(0, "%s: child never ran the setuid program: step %s: %s",
		      what, vmc.step ? vmc.step : "?", strerror(-vmc.err));
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		return;
	}
	CHECK(vmc.probe.ran && vmc.probe.res == 1 && vmc.probe.cflags == 0,
	      "%s: child's probe not offloaded: " RAW_FMT, what,
	      RAW_ARGS(vmc.probe));
	CHECK(c == 'R',
	      "%s: the setuid program does not run with euid 0 (%c): "
	      "the attack is not armed",
	      what, c);

	/* The attack: old mm, new (root) owner of the ring's thread. */
	calls = raw_calls(pid);
	i1 = raw_push(&vmc.r, SYS_fchmod, (uint64_t)vmc.rootfd, 04755, 0, 1);
	i2 = raw_push(&vmc.r, SYS_fchown, (uint64_t)vmc.rootfd, 1000, 1000, 2);
	o2 = raw_poll(&vmc.r, i2, 10);
	o1 = raw_look(&vmc.r, i1);
	RAW_CHECK_FILE(vmc.file, 0644, what);
	if (!o1.ran && !o2.ran)
		NOTHING_RAN(pid, calls, what);
	CHECK((o1.ran && o1.res == -EPERM) || (!o1.ran && o1.dead),
	      "%s: fchmod 04755 in the exec'd child's ring: " RAW_FMT, what,
	      RAW_ARGS(o1));
	CHECK((o2.ran && o2.res == -EPERM) || (!o2.ran && o2.dead),
	      "%s: fchown in the exec'd child's ring: " RAW_FMT, what,
	      RAW_ARGS(o2));
	if (o1.dead)
		CHECK(o1.reason == ESCA_DEAD_IDENTITY ||
			      o1.reason == ESCA_DEAD_EXITED,
		      "%s: ring died for reason %u (%s), want IDENTITY", what,
		      o1.reason, raw_reason(o1.reason));
	printf("# %s: fchmod " RAW_FMT "\n", what, RAW_ARGS(o1));
	kill(pid, SIGKILL);
	CHECK(waitpid(pid, &status, 0) == pid, "%s: reap the setuid child",
	      what);
}

/* ---------------------------------------------------------------- 2 */

#define EXITED_FILE "/tmp/t-attack-exited"

/* Run in the registering thread, which then exits: its ring stays mapped. */
static void probe_exited(struct raw_ring *r)
{
	raw_probe(r, "exited thread");
}

static void attack_exited(void *unused)
{
	struct raw_ring r;
	struct raw_out o1, o2;
	uint32_t i1, i2;
	int fd, rootfd;
	long calls, ret;

	(void)unused;
	raw_root_file(EXITED_FILE);
	rootfd = open(EXITED_FILE, O_RDONLY);
	fd = raw_open(8, 1);
	if (fd < 0 || rootfd < 0)
		DIE("open: %s", strerror(errno));
	ret = raw_register_in_thread(fd, &r, 1, probe_exited);
	if (ret)
		DIE("register in a thread: %s", strerror((int)-ret));
	calls = raw_calls(getpid());
	raw_drop_to(1000); /* glibc: on every live thread */
	i1 = raw_push(&r, SYS_fchmod, (uint64_t)rootfd, 04755, 0, 1);
	i2 = raw_push(&r, SYS_fchown, (uint64_t)rootfd, 1000, 1000, 2);
	raw_kick(&r);
	o2 = raw_wait(&r, i2);
	o1 = raw_look(&r, i1);
	RAW_CHECK_FILE(EXITED_FILE, 0644, "exited thread");
	if (!o1.ran && !o2.ran)
		NOTHING_RAN(getpid(), calls, "exited thread");
	CHECK((!o1.ran && o1.dead && o1.reason == ESCA_DEAD_EXITED) ||
		      (o1.ran && o1.res == -EPERM),
	      "exited thread's ring, fchmod: " RAW_FMT " (want DEAD EXITED)",
	      RAW_ARGS(o1));
	CHECK((!o2.ran && o2.dead && o2.reason == ESCA_DEAD_EXITED) ||
		      (o2.ran && o2.res == -EPERM),
	      "exited thread's ring, fchown: " RAW_FMT " (want DEAD EXITED)",
	      RAW_ARGS(o2));
}

/* ---------------------------------------------------------------- 3 */

#define SETUID_FILE "/tmp/t-attack-setuid"

static void attack_setuid(void *unused)
{
	struct raw_ring r, r2;
	struct raw_out o1, o2, o;
	uint32_t i1, i2;
	int fd, rootfd;
	long ret, calls;

	(void)unused;
	raw_root_file(SETUID_FILE);
	rootfd = open(SETUID_FILE, O_RDONLY);
	fd = raw_open(8, 1);
	if (fd < 0 || rootfd < 0 || raw_register(fd, &r))
		DIE("open/register: %s", strerror(errno));
	raw_probe(&r, "setuid");
	calls = raw_calls(getpid());
	raw_drop_to(1000);
	i1 = raw_push(&r, SYS_fchmod, (uint64_t)rootfd, 04755, 0, 1);
	i2 = raw_push(&r, SYS_fchown, (uint64_t)rootfd, 1000, 1000, 2);
	raw_kick(&r);
	o2 = raw_wait(&r, i2);
	o1 = raw_look(&r, i1);
	RAW_CHECK_FILE(SETUID_FILE, 0644, "setuid");
	NOTHING_RAN(getpid(), calls, "after setuid");
	CHECK(!o1.ran && o1.dead && o1.reason == ESCA_DEAD_IDENTITY,
	      "after setuid, fchmod: " RAW_FMT " (want not run, DEAD IDENTITY)",
	      RAW_ARGS(o1));
	CHECK(!o2.ran && o2.dead && o2.reason == ESCA_DEAD_IDENTITY &&
		      o2.wait == -ENXIO,
	      "after setuid, fchown: " RAW_FMT " (want not run, DEAD IDENTITY)",
	      RAW_ARGS(o2));

	/* A new ring takes the new creds: offloaded, and refused. */
	munmap(r.sq, r.sq_size);
	munmap((void *)r.cq, r.cq_size);
	CHECK(raw_ioc_n(fd, ESCA_IOC_UNREGISTER, r.id) == 0,
	      "unregister the dead ring");
	ret = raw_register(fd, &r2);
	CHECK(ret == 0, "re-register as uid 1000: %s", strerror((int)-ret));
	if (!ret) {
		ret = raw_call(&r2, SYS_fchmod, (uint64_t)rootfd, 04755, 0, &o);
		CHECK(ret == -EPERM && o.cflags == 0,
		      "uid-1000 ring, fchmod: " RAW_FMT " (want -EPERM)",
		      RAW_ARGS(o));
		RAW_CHECK_FILE(SETUID_FILE, 0644, "uid-1000 ring");
	}
}

/* ---------------------------------------------------------------- 4 */

enum sc_variant { SC_THREAD, SC_TSYNC, SC_REGISTER };

struct sc {
	enum sc_variant v;
	int fd, target;
	struct raw_ring *a; /* the main thread's ring */
	struct raw_out o;
	long direct, reg;
	int fail;
	int ready[2], done[2];
};

static int install_filter(unsigned int flags)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_fchmod, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]),
				   .filter = f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -errno;
	return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog) ?
		       -errno :
		       0;
}

static void *sc_registrar(void *arg)
{
	struct sc *s = arg;
	struct raw_ring r;

	/* This thread has no filter; another thread of the process has. */
	s->reg = raw_register(s->fd, &r);
	if (!s->reg) {
		uint32_t i = raw_push(&r, SYS_fchmod, (uint64_t)s->target, 0600,
				      0, 3);

		raw_kick(&r);
		s->o = raw_wait(&r, i);
	}
	return NULL;
}

static void *sc_thread(void *arg)
{
	struct sc *s = arg;
	uint32_t i;
	long ret;

	ret = install_filter(s->v == SC_TSYNC ? SECCOMP_FILTER_FLAG_TSYNC : 0);
	if (ret) {
		s->fail = 1;
		fprintf(stderr, "seccomp: %s\n", strerror((int)-ret));
		return NULL;
	}
	s->direct = syscall(SYS_fchmod, s->target, 0600) ? -errno : 0;
	if (s->v == SC_REGISTER) {
		/* Stay alive (filtered) while an unfiltered thread the main
		 * thread makes registers. */
		char c;

		if (write(s->ready[1], "r", 1) != 1 ||
		    read(s->done[0], &c, 1) != 1)
			s->fail = 1;
		return NULL;
	}
	/* Write into the main thread's ring (no filter of its own but with
	 * TSYNC). */
	i = raw_push(s->a, SYS_fchmod, (uint64_t)s->target, 0600, 0, 3);
	raw_kick(s->a);
	s->o = raw_wait(s->a, i);
	return NULL;
}

#define SC_FILE "/tmp/t-attack-seccomp"

static void attack_seccomp(void *arg)
{
	struct sc s = { .v = *(enum sc_variant *)arg };
	static const char *name[] = { "seccomp on another thread",
				      "seccomp TSYNC",
				      "REGISTER while a thread is filtered" };
	struct raw_ring a;
	pthread_t th;
	long calls;
	char c;

	raw_root_file(SC_FILE);
	s.target = open(SC_FILE, O_RDONLY);
	s.fd = raw_open(8, 1);
	if (s.fd < 0 || s.target < 0 || raw_register(s.fd, &a))
		DIE("open/register: %s", strerror(errno));
	s.a = &a;
	raw_probe(&a, name[s.v]);
	calls = raw_calls(getpid());
	if (pipe(s.ready) || pipe(s.done))
		DIE("pipe");
	pthread_create(&th, NULL, sc_thread, &s);
	if (s.v != SC_REGISTER)
		pthread_join(th, NULL);
	else if (read(s.ready[0], &c, 1) != 1)
		s.fail = 1;
	if (s.fail)
		DIE("%s: cannot install the filter", name[s.v]);
	CHECK(s.direct == -EPERM, "%s: the filter does not refuse fchmod: %ld",
	      name[s.v], s.direct);
	if (s.v == SC_REGISTER) {
		pthread_t reg;

		pthread_create(&reg, NULL, sc_registrar, &s);
		pthread_join(reg, NULL);
		if (write(s.done[1], "", 1) != 1)
			DIE("pipe");
		pthread_join(th, NULL);
		CHECK(s.reg == -EPERM || (!s.reg && !s.o.ran && s.o.dead &&
					  s.o.reason == ESCA_DEAD_SECCOMP),
		      "%s: register %ld, fchmod " RAW_FMT
		      " (want EPERM, or not run and DEAD SECCOMP)",
		      name[s.v], s.reg, RAW_ARGS(s.o));
	} else {
		CHECK(!s.o.ran && s.o.dead && s.o.reason == ESCA_DEAD_SECCOMP,
		      "%s: fchmod in the unfiltered thread's ring: " RAW_FMT
		      " (want not run, DEAD SECCOMP)",
		      name[s.v], RAW_ARGS(s.o));
	}
	RAW_CHECK_FILE(SC_FILE, 0644, name[s.v]);
	NOTHING_RAN(getpid(), calls, name[s.v]);
}

/* ---------------------------------------------------------------- 5 */

#define FILES_FILE "/tmp/t-attack-files"
#define FILES_FD 60

static int files_pipe[2], files_reply[2];

/* Keeps the old file table shared, and looks into it on request. */
static void *files_holder(void *unused)
{
	char c;

	(void)unused;
	if (read(files_pipe[0], &c, 1) != 1)
		return NULL;
	c = fcntl(FILES_FD, F_GETFD) >= 0 ? 'y' : 'n';
	if (write(files_reply[1], &c, 1) != 1)
		return NULL;
	return NULL;
}

static void attack_files(void *arg)
{
	int use_close_range = *(int *)arg;
	const char *what = use_close_range ? "close_range(UNSHARE)" :
					     "unshare(CLONE_FILES)";
	struct raw_ring r;
	struct raw_out o;
	struct stat st;
	pthread_t th;
	uint32_t i;
	int fd, tmp;
	long ret, calls;
	char c = 0;

	unlink(FILES_FILE);
	tmp = open(FILES_FILE, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (tmp < 0 || dup2(tmp, FILES_FD) != FILES_FD)
		DIE("open %s: %s", FILES_FILE, strerror(errno));
	close(tmp);
	fd = raw_open(8, 1);
	if (fd < 0 || raw_register(fd, &r))
		DIE("open/register: %s", strerror(errno));
	if (pipe(files_pipe) || pipe(files_reply))
		DIE("pipe");
	pthread_create(&th, NULL, files_holder, NULL);
	ret = raw_call(&r, SYS_write, FILES_FD, (uint64_t) "a", 1, &o);
	CHECK(ret == 1 && o.cflags == 0,
	      "%s: write before, not offloaded: " RAW_FMT, what, RAW_ARGS(o));
	calls = raw_calls(getpid());

	if (use_close_range) {
		ret = syscall(SYS_close_range, FILES_FD, ~0U,
			      CLOSE_RANGE_UNSHARE);
		CHECK(ret == 0, "close_range: %s", strerror(errno));
	} else {
		CHECK(unshare(CLONE_FILES) == 0, "unshare: %s",
		      strerror(errno));
		close(FILES_FD);
	}
	/* The attack is armed: closed here, open in the old table. */
	CHECK(write(FILES_FD, "d", 1) == -1 && errno == EBADF,
	      "%s: direct write to the closed fd did not fail EBADF", what);
	if (write(files_pipe[1], "?", 1) != 1 ||
	    read(files_reply[0], &c, 1) != 1)
		DIE("holder thread");
	CHECK(c == 'y', "%s: fd %d not open in the old table", what, FILES_FD);

	i = raw_push(&r, SYS_write, FILES_FD, (uint64_t) "bbbb", 4, 2);
	raw_kick(&r);
	o = raw_wait(&r, i);
	CHECK(!o.ran && o.dead && o.reason == ESCA_DEAD_IDENTITY,
	      "%s: write after: " RAW_FMT " (want not run, DEAD IDENTITY)",
	      what, RAW_ARGS(o));
	CHECK(!stat(FILES_FILE, &st) && st.st_size == 1,
	      "%s: the file has %lld bytes, want 1 (written through the "
	      "old table)",
	      what, (long long)st.st_size);
	NOTHING_RAN(getpid(), calls, what);
	pthread_join(th, NULL);
}

/* ---------------------------------------------------------------- 6 */

struct ex_child {
	int eof_w, sync_w, err;
	struct raw_ring r;
	struct raw_out probe;
	char stack[256 * 1024] __attribute__((aligned(16)));
};

/*
 * Registers, makes the ring use the table holding the pipe's O_CLOEXEC
 * write end, then execs the sleeper. Runs in a fork child or, sharing the
 * parent's memory, in a clone(CLONE_VM) child: no stdio.
 */
static int ex_child_fn(void *arg)
{
	struct ex_child *c = arg;
	char fdbuf[16];
	char *argv[] = { "t-attack-cred", "--sleep", fdbuf, NULL };
	long ret;
	int fd;

	fd = raw_open(8, 0); /* no O_CLOEXEC: the context outlives exec */
	if (fd < 0) {
		c->err = fd;
		return 2;
	}
	ret = raw_register(fd, &c->r);
	if (ret) {
		c->err = (int)ret;
		return 2;
	}
	raw_call(&c->r, SYS_write, (uint64_t)c->eof_w, (uint64_t) "x", 1,
		 &c->probe);
	snprintf(fdbuf, sizeof(fdbuf), "%d", c->sync_w);
	execv("/proc/self/exe", argv);
	c->err = -errno;
	return 4;
}

static struct ex_child exc;

/*
 * @keep_mm: the child shares our memory (clone(CLONE_VM)), so its ring
 * stays mapped after its exec; we write an entry into it, which must not
 * run (the ring is DEAD), and the ring must not keep the old table.
 */
static void attack_exec(void *arg)
{
	int keep_mm = *(int *)arg;
	const char *what = keep_mm ? "exec, old mm kept" : "exec";
	int eofp[2], sync[2], status, n;
	char c = 0, buf[8];
	struct pollfd pfd;
	pid_t pid;

	if (pipe2(eofp, O_CLOEXEC | O_NONBLOCK) || pipe(sync))
		DIE("pipe");
	exc.eof_w = eofp[1];
	exc.sync_w = sync[1];
	if (keep_mm) {
		pid = clone(ex_child_fn, exc.stack + sizeof(exc.stack),
			    CLONE_VM | SIGCHLD, &exc);
	} else {
		pid = fork();
		if (pid == 0) {
			close(eofp[0]);
			close(sync[0]);
			_exit(ex_child_fn(&exc));
		}
	}
	if (pid < 0)
		DIE("fork: %s", strerror(errno));
	close(eofp[1]);
	close(sync[1]);
	pfd = (struct pollfd){ .fd = sync[0], .events = POLLIN };
	if (poll(&pfd, 1, 20000) != 1 || read(sync[0], &c, 1) != 1) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		CHECK(0, "%s: the child never ran the new program (0x%x): %s",
		      what, status, strerror(-exc.err));
		return;
	}
	if (!keep_mm) {
		n = (int)read(eofp[0], buf, sizeof(buf));
		CHECK(n == 1 && buf[0] == 'x',
		      "%s: the offloaded write before exec is missing (%d)",
		      what, n);
	} else {
		struct raw_out o;
		uint32_t i;
		long calls;

		CHECK(exc.probe.ran && exc.probe.res == 1 &&
			      exc.probe.cflags == 0,
		      "%s: the write before exec did not run offloaded: " RAW_FMT,
		      what, RAW_ARGS(exc.probe));
		n = (int)read(eofp[0], buf, sizeof(buf));
		CHECK(n == 1 && buf[0] == 'x',
		      "%s: the offloaded write before exec is missing (%d)",
		      what, n);
		/* An fd of the old table: must not be resolved any more. */
		calls = raw_calls(pid);
		i = raw_push(&exc.r, SYS_write, (uint64_t)exc.eof_w,
			     (uint64_t) "y", 1, 9);
		o = raw_poll(&exc.r, i, 10);
		CHECK(!o.ran && o.dead && o.reason == ESCA_DEAD_IDENTITY,
		      "%s: write into the exec'd child's ring: " RAW_FMT
		      " (want not run, DEAD IDENTITY)",
		      what, RAW_ARGS(o));
		NOTHING_RAN(pid, calls, what);
	}
	pfd = (struct pollfd){ .fd = eofp[0], .events = POLLIN };
	n = poll(&pfd, 1, 10000);
	if (n == 1)
		n = (int)read(eofp[0], buf, sizeof(buf));
	else
		n = -1000;
	CHECK(n == 0,
	      "%s: no EOF on the O_CLOEXEC pipe 10 s after exec (read %d%s): "
	      "the old file table is still held",
	      what, n,
	      n == -1000 ? ", timed out" :
	      n > 0	 ? " bytes" :
			   "");
	CHECK(waitpid(pid, &status, WNOHANG) == 0,
	      "%s: the new program is gone (0x%x): EOF proves nothing", what,
	      status);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
}

int main(int argc, char **argv)
{
	int vf0 = 0, vf1 = 1, cr0 = 0, cr1 = 1, ex0 = 0, ex1 = 1;
	enum sc_variant v0 = SC_THREAD, v1 = SC_TSYNC, v2 = SC_REGISTER;
	pid_t pump;

	if (argc == 3 && !strcmp(argv[1], "--sleep"))
		return sleeper(atoi(argv[2]));
	if (access(ESCA_DEVICE_PATH, R_OK | W_OK))
		DIE("%s: %s", ESCA_DEVICE_PATH, strerror(errno));
	close(raw_probe_fd()); /* created 0666 by root, for uid 1000 too */
	copy_suid();
	pump = start_pump();
	raw_in_child("clone(CLONE_VM) + setuid exec", attack_vm, &vf0);
	raw_in_child("vfork + setuid exec", attack_vm, &vf1);
	raw_in_child("exec drops the file table", attack_exec, &ex0);
	raw_in_child("exec, old mm kept, drops the file table", attack_exec,
		     &ex1);
	kill(pump, SIGKILL);
	waitpid(pump, NULL, 0);
	raw_in_child("registered thread exited, then setuid", attack_exited,
		     NULL);
	raw_in_child("registering thread setuid", attack_setuid, NULL);
	raw_in_child("seccomp on another thread", attack_seccomp, &v0);
	raw_in_child("seccomp TSYNC", attack_seccomp, &v1);
	raw_in_child("register under seccomp", attack_seccomp, &v2);
	raw_in_child("unshare(CLONE_FILES)", attack_files, &cr0);
	raw_in_child("close_range(CLOSE_RANGE_UNSHARE)", attack_files, &cr1);
	unlink(SUID_PATH);
	return t_done("t-attack-cred");
}
