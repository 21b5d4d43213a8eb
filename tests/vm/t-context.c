// SPDX-License-Identifier: MIT
/*
 * Issue 7, item 3 (namespaces and filesystem context) and close made
 * synchronous (item 5). A consumer is a kernel thread: its root, cwd, pid
 * namespace, pending signals and rlimits are not the caller's. Every call
 * that reads one of those must be bounced (libesca then makes it directly)
 * or borrow it exactly. Each scenario runs in its own child process (its
 * own context), offloaded through libesca and directly, and checks that
 * the results match the direct ones and that the context's bounced counter
 * rose (or, for close, that the call ran in the module: calls rose, bounced
 * did not).
 *
 *  chroot     sendto/sendmsg to an AF_UNIX path from a chrooted process
 *             reach the socket it sees; the one at the same path outside
 *             gets nothing.
 *  mntns      the same from a new mount namespace (tmpfs over the dir).
 *  pidns      SO_PEERCRED and SCM_CREDENTIALS from a process in a new pid
 *             namespace: pids as that process sees them (0 for a peer
 *             outside, 1 for itself), and the outside receiver sees its
 *             global pid as the sender.
 *  scm        recvmsg with SCM_CREDENTIALS and SCM_RIGHTS as direct, and
 *             with RLIMIT_NOFILE 16 and no free fd: MSG_CTRUNC, no fd.
 *  fsize      RLIMIT_FSIZE 100: write/pwrite64/writev/ftruncate return
 *             what direct returns (100, -EFBIG) and SIGXFSZ arrives.
 *  signalfd   read of a signalfd with a queued blocked signal: the same
 *             siginfo as direct, and the signal is consumed.
 *  close      offloaded close is synchronous: right after it returns, an
 *             AF_UNIX stream peer reads EOF, a pipe reader EOF, a flock is
 *             free (for another file description and another process),
 *             and a TCP peer sees FIN or, if softirq processing has not
 *             delivered it yet (seen with direct close on 6.1), the closed
 *             end is no longer ESTABLISHED.
 */
#include "t.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>

/* ------------------------------------------------ per-child counters */

static int g_statfd = -1; /* opened before any chroot/unshare */
static pid_t g_gpid; /* our pid in the initial pid namespace, if not ours */

/* A counter of this process's context line (pid as the module shows it:
 * ours or, inside a new pid namespace, the global one). */
static long cstat(const char *key)
{
	static char buf[1 << 16];
	char k[64];
	size_t len = 0;
	ssize_t n;

	if (g_statfd < 0 || lseek(g_statfd, 0, SEEK_SET) < 0)
		return -1;
	while (len < sizeof(buf) - 1 &&
	       (n = read(g_statfd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = 0;
	snprintf(k, sizeof(k), " %s=", key);
	for (char *l = buf; l && *l;
	     l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		long pid;
		char *p;

		if (strncmp(l, "context pid=", 12))
			continue;
		pid = strtol(l + 12, NULL, 10);
		if (pid != getpid() && (!g_gpid || pid != g_gpid))
			continue;
		p = strstr(l, k);
		if (p && (!strchr(l, '\n') || p < strchr(l, '\n')))
			return strtol(p + strlen(k), NULL, 10);
	}
	return -1;
}

static void child_init(void)
{
	g_statfd = open("/proc/esca/stats", O_RDONLY | O_CLOEXEC);
	if (g_statfd < 0)
		DIE("/proc/esca/stats: %s", strerror(errno));
	t_need_offload();
}

/* At least @want offloaded calls were bounced since @b0. */
static void check_bounced(const char *what, long b0, long want)
{
	long b1 = cstat("bounced");

	CHECK(b0 >= 0 && b1 - b0 >= want,
	      "%s: context bounced %ld -> %ld, want at least +%ld", what, b0,
	      b1, want);
}

static int run(const char *name, void (*fn)(void))
{
	int st = 0;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		DIE("fork: %s", strerror(errno));
	if (pid == 0) {
		t_checks = t_failed = 0; /* this child's own count */
		fn();
		exit(t_done(name));
	}
	waitpid(pid, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: child status %#x",
	      name, st);
	return 0;
}

/* ------------------------------------------------ AF_UNIX helpers */

static socklen_t un_addr(struct sockaddr_un *a, const char *path)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	if (path[0] == '@') { /* abstract */
		memcpy(a->sun_path + 1, path + 1, strlen(path) - 1);
		return (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
				   strlen(path));
	}
	strcpy(a->sun_path, path);
	return sizeof(*a);
}

static int dgram_bound(const char *path)
{
	struct sockaddr_un a;
	socklen_t l = un_addr(&a, path);
	int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	unlink(path);
	if (s < 0 || bind(s, (struct sockaddr *)&a, l))
		DIE("bind %s: %s", path, strerror(errno));
	return s;
}

/* What one recvmsg gave. */
struct rcv {
	long res;
	int flags, nfds;
	pid_t pid;
	uid_t uid;
	gid_t gid;
	ino_t ino[4];
	char data[16];
};

static void recv_msg(bool off, int s, struct rcv *r)
{
	union {
		char b[CMSG_SPACE(sizeof(struct ucred)) +
		       CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { r->data, sizeof(r->data) - 1 };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = ctl.b,
			     .msg_controllen = sizeof(ctl.b) };

	memset(r, 0, sizeof(*r));
	r->pid = -1;
	memset(&ctl, 0, sizeof(ctl));
	r->res = off ? O6(SYS_recvmsg, s, &mh, 0, 0, 0, 0) :
		       D6(SYS_recvmsg, s, &mh, 0, 0, 0, 0);
	if (r->res < 0)
		return;
	r->flags = mh.msg_flags;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c;
	     c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET)
			continue;
		if (c->cmsg_type == SCM_CREDENTIALS) {
			struct ucred u;

			memcpy(&u, CMSG_DATA(c), sizeof(u));
			r->pid = u.pid;
			r->uid = u.uid;
			r->gid = u.gid;
		} else if (c->cmsg_type == SCM_RIGHTS) {
			int n = (int)((c->cmsg_len - CMSG_LEN(0)) /
				      sizeof(int));

			for (int i = 0; i < n; i++) {
				struct stat st;
				int fd;

				memcpy(&fd, CMSG_DATA(c) + i * sizeof(int),
				       sizeof(fd));
				if (r->nfds < 4 && !fstat(fd, &st))
					r->ino[r->nfds] = st.st_ino;
				r->nfds++;
				close(fd);
			}
		}
	}
}

/* sendmsg of @msg with @nfds copies of @fd and, if @cred, explicit
 * SCM_CREDENTIALS {@cred_pid, our uid, gid}. */
static long send_msg(bool off, int s, const char *msg, int fd, int nfds,
		     bool cred, pid_t cred_pid)
{
	union {
		char b[CMSG_SPACE(sizeof(struct ucred)) +
		       CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { (void *)msg, strlen(msg) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;
	size_t len = 0;

	memset(&ctl, 0, sizeof(ctl));
	mh.msg_control = ctl.b;
	mh.msg_controllen = sizeof(ctl.b);
	c = CMSG_FIRSTHDR(&mh);
	if (nfds) {
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		for (int i = 0; i < nfds; i++)
			memcpy(CMSG_DATA(c) + i * sizeof(int), &fd, sizeof(fd));
		len += CMSG_SPACE(nfds * sizeof(int));
		c = CMSG_NXTHDR(&mh, c);
	}
	if (cred) {
		struct ucred u = { cred_pid, getuid(), getgid() };

		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_CREDENTIALS;
		c->cmsg_len = CMSG_LEN(sizeof(u));
		memcpy(CMSG_DATA(c), &u, sizeof(u));
		len += CMSG_SPACE(sizeof(u));
	}
	mh.msg_controllen = len;
	if (!len)
		mh.msg_control = NULL;
	return off ? O6(SYS_sendmsg, s, &mh, 0, 0, 0, 0) :
		     D6(SYS_sendmsg, s, &mh, 0, 0, 0, 0);
}

/* Datagrams waiting on @s, joined by '|'. */
static void drain(int s, char *out, size_t n)
{
	char b[64];
	ssize_t r;

	out[0] = 0;
	while ((r = recv(s, b, sizeof(b) - 1, MSG_DONTWAIT)) >= 0) {
		b[r] = 0;
		if (out[0])
			strncat(out, "|", n - strlen(out) - 1);
		strncat(out, b, n - strlen(out) - 1);
	}
}

/* sendto and sendmsg to @path, direct then offloaded (twice). */
static void send_three(int s, const char *path)
{
	struct sockaddr_un a;
	socklen_t l = un_addr(&a, path);
	struct iovec iov = { (void *)"offmsg", 6 };
	struct msghdr mh = { .msg_name = &a,
			     .msg_namelen = l,
			     .msg_iov = &iov,
			     .msg_iovlen = 1 };
	long b0 = cstat("bounced");

	SAME("sendto, direct", D6(SYS_sendto, s, "direct", 6, 0, &a, l), 6, 6);
	SAME("sendto, offloaded", O6(SYS_sendto, s, "offload", 7, 0, &a, l), 7,
	     7);
	SAME("sendmsg, offloaded", O6(SYS_sendmsg, s, &mh, 0, 0, 0, 0), 6, 6);
	check_bounced("sendto/sendmsg to an AF_UNIX path", b0, 2);
}

/* ------------------------------------------------ the scenarios */

#define CHR "/tmp/esca-ctx-root"
#define SOCKNAME "/esca-ctx.sock"

static void t_chroot(void)
{
	char got[128];
	int out, in, s;

	child_init();
	out = dgram_bound(SOCKNAME); /* outside: the host's socket */
	mkdir(CHR, 0755);
	in = dgram_bound(CHR SOCKNAME); /* what the chroot sees there */
	s = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (chroot(CHR) || chdir("/"))
		DIE("chroot %s: %s", CHR, strerror(errno));
	send_three(s, SOCKNAME);
	drain(in, got, sizeof(got));
	CHECK(!strcmp(got, "direct|offload|offmsg"),
	      "socket inside the chroot got \"%s\"", got);
	drain(out, got, sizeof(got));
	CHECK(!got[0], "socket at the same path outside the chroot got \"%s\"",
	      got);
}

#define NSDIR "/tmp/esca-ctx-ns"

static void t_mntns(void)
{
	char got[128];
	int out, in, s;

	child_init();
	mkdir(NSDIR, 0755);
	out = dgram_bound(NSDIR "/s");
	s = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (unshare(CLONE_NEWNS) ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	    mount("tmpfs", NSDIR, "tmpfs", 0, NULL))
		DIE("new mount namespace: %s", strerror(errno));
	in = dgram_bound(NSDIR "/s");
	send_three(s, NSDIR "/s");
	drain(in, got, sizeof(got));
	CHECK(!strcmp(got, "direct|offload|offmsg"),
	      "socket in the new mount namespace got \"%s\"", got);
	drain(out, got, sizeof(got));
	CHECK(!got[0],
	      "socket at the same path in the old namespace got \"%s\"", got);
}

#define PIDNS_SOCK "@esca-ctx-pidns"

static void peercred(int s, pid_t want)
{
	struct ucred d = { 0 }, o = { 0 };
	socklen_t dl = sizeof(d), ol = sizeof(o);
	long b0 = cstat("bounced");

	SAME("getsockopt SO_PEERCRED",
	     D6(SYS_getsockopt, s, SOL_SOCKET, SO_PEERCRED, &d, &dl, 0),
	     O6(SYS_getsockopt, s, SOL_SOCKET, SO_PEERCRED, &o, &ol, 0), 0);
	CHECK(d.pid == want && o.pid == d.pid && o.uid == d.uid &&
		      o.gid == d.gid && ol == dl,
	      "SO_PEERCRED: direct pid %d uid %u, offloaded pid %d uid %u, "
	      "want pid %d",
	      (int)d.pid, d.uid, (int)o.pid, o.uid, (int)want);
	check_bounced("getsockopt SO_PEERCRED", b0, 1);

	/* level and optname are ints: high bits must not slip past. */
	memset(&o, 0, sizeof(o));
	ol = sizeof(o);
	b0 = cstat("bounced");
	SAME("getsockopt SO_PEERCRED, level with high bits",
	     D6(SYS_getsockopt, s, SOL_SOCKET, SO_PEERCRED, &d, &dl, 0),
	     O6(SYS_getsockopt, s, SOL_SOCKET | (1L << 32),
		SO_PEERCRED | (1L << 40), &o, &ol, 0),
	     0);
	CHECK(o.pid == d.pid, "high-bit SO_PEERCRED: offloaded pid %d, want %d",
	      (int)o.pid, (int)d.pid);
	check_bounced("getsockopt SO_PEERCRED, high bits", b0, 1);
}

/* In the new pid namespace, as its pid 1. */
static void pidns_child(void)
{
	struct sockaddr_un a;
	socklen_t l = un_addr(&a, PIDNS_SOCK);
	struct rcv r;
	int s, sp[2], one = 1;
	long b0;

	child_init();
	CHECK(getpid() == 1, "pid %d in the new namespace", (int)getpid());
	/* a peer outside our namespace: invisible here, pid 0 */
	s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (connect(s, (struct sockaddr *)&a, l))
		DIE("connect %s: %s", PIDNS_SOCK, strerror(errno));
	peercred(s, 0);
	/* a peer in it (ourselves): pid 1 */
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp))
		DIE("socketpair: %s", strerror(errno));
	peercred(sp[0], 1);
	/* SCM_CREDENTIALS between two sockets of ours: pid 1 both ways */
	setsockopt(sp[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one));
	b0 = cstat("bounced");
	SAME("sendmsg, offloaded", send_msg(true, sp[0], "a", -1, 0, false, 0),
	     1, 1);
	recv_msg(false, sp[1], &r);
	CHECK(r.res == 1 && r.pid == 1,
	      "offloaded sendmsg: receiver saw sender pid %d (res %ld), want 1",
	      (int)r.pid, r.res);
	SAME("sendmsg, direct", send_msg(false, sp[0], "b", -1, 0, false, 0), 1,
	     1);
	recv_msg(true, sp[1], &r);
	CHECK(r.res == 1 && r.pid == 1,
	      "offloaded recvmsg: sender pid %d (res %ld), want 1", (int)r.pid,
	      r.res);
	check_bounced("sendmsg/recvmsg in a pid namespace", b0, 2);
	/* to the receiver outside: it must see our global pid */
	SAME("sendmsg out, offloaded", send_msg(true, s, "o", -1, 0, false, 0),
	     1, 1);
	SAME("sendmsg out with SCM_CREDENTIALS, offloaded",
	     send_msg(true, s, "e", -1, 0, true, 1), 1, 1);
	SAME("sendmsg out, direct", send_msg(false, s, "d", -1, 0, false, 0), 1,
	     1);
}

static void t_pidns(void)
{
	struct sockaddr_un a;
	socklen_t l = un_addr(&a, PIDNS_SOCK);
	volatile pid_t *gpid = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
				    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int lsn = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK,
			 0),
	    one = 1;
	int go[2], st = 0, c;
	pid_t g;
	char x;

	/* The listener (its creds recorded at listen) is this process,
	 * outside the namespace the child is created in. */
	if (lsn < 0 || bind(lsn, (struct sockaddr *)&a, l) || listen(lsn, 4) ||
	    pipe(go) || gpid == MAP_FAILED)
		DIE("pidns setup: %s", strerror(errno));
	if (unshare(CLONE_NEWPID))
		DIE("unshare(CLONE_NEWPID): %s", strerror(errno));
	g = fork();
	if (g < 0)
		DIE("fork: %s", strerror(errno));
	if (g == 0) {
		if (read(go[0], &x, 1) != 1)
			_exit(1);
		g_gpid = *gpid;
		t_checks = t_failed = 0;
		pidns_child();
		exit(t_done("pidns (in the namespace)"));
	}
	*gpid = g;
	if (write(go[1], "x", 1) != 1)
		DIE("pipe");
	waitpid(g, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "child in the pid namespace: status %#x", st);
	c = accept4(lsn, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (c < 0)
		DIE("accept: %s", strerror(errno));
	setsockopt(c, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one));
	for (int i = 0; i < 3; i++) {
		static const char *const want[] = { "o", "e", "d" };
		struct rcv r;

		recv_msg(false, c, &r);
		CHECK(r.res == 1 && !strcmp(r.data, want[i]) && r.pid == g,
		      "message %d from the pid namespace: res %ld \"%s\" "
		      "sender pid %d, want \"%s\" from %d",
		      i, r.res, r.data, (int)r.pid, want[i], (int)g);
	}
}

static void t_scm(void)
{
	struct rcv d, o, x;
	struct rlimit rl, low = { 16, 16 };
	struct stat st;
	int sv[2], one = 1, tfd, fill[32], nfill = 0;
	long b0;

	child_init();
	tfd = open("/tmp/esca-ctx.scm", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (tfd < 0 || fstat(tfd, &st) ||
	    socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) ||
	    setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)))
		DIE("scm setup: %s", strerror(errno));
	b0 = cstat("bounced");
	/* direct send, direct recv: the reference */
	send_msg(false, sv[0], "m", tfd, 1, false, 0);
	recv_msg(false, sv[1], &d);
	send_msg(false, sv[0], "m", tfd, 1, false, 0);
	recv_msg(true, sv[1], &o);
	CHECK(d.res == 1 && d.nfds == 1 && d.ino[0] == st.st_ino &&
		      d.pid == getpid() && d.uid == getuid(),
	      "direct recvmsg: res %ld nfds %d pid %d", d.res, d.nfds,
	      (int)d.pid);
	CHECK(o.res == d.res && o.flags == d.flags && o.nfds == d.nfds &&
		      o.ino[0] == d.ino[0] && o.pid == d.pid &&
		      o.uid == d.uid && o.gid == d.gid,
	      "offloaded recvmsg: res %ld flags %#x nfds %d ino %lu pid %d "
	      "uid %u; direct res %ld flags %#x nfds %d ino %lu pid %d uid %u",
	      o.res, o.flags, o.nfds, (unsigned long)o.ino[0], (int)o.pid,
	      o.uid, d.res, d.flags, d.nfds, (unsigned long)d.ino[0],
	      (int)d.pid, d.uid);
	/* offloaded send, direct recv */
	SAME("sendmsg SCM_RIGHTS",
	     send_msg(true, sv[0], "m", tfd, 1, true, getpid()), 1, 1);
	recv_msg(false, sv[1], &x);
	CHECK(x.res == 1 && x.nfds == 1 && x.ino[0] == st.st_ino &&
		      x.pid == getpid(),
	      "after an offloaded sendmsg: res %ld nfds %d pid %d (want %d)",
	      x.res, x.nfds, (int)x.pid, (int)getpid());
	check_bounced("sendmsg/recvmsg SCM_RIGHTS", b0, 2);

	/* RLIMIT_NOFILE 16 and fds 0..15 all taken: no fd can be received */
	getrlimit(RLIMIT_NOFILE, &rl);
	for (int fd; nfill < 32 && (fd = dup(tfd)) >= 0 && fd < 16;)
		fill[nfill++] = fd;
	if (setrlimit(RLIMIT_NOFILE, &low))
		DIE("setrlimit NOFILE: %s", strerror(errno));
	b0 = cstat("bounced");
	send_msg(false, sv[0], "m", tfd, 2, false, 0);
	recv_msg(false, sv[1], &d);
	send_msg(false, sv[0], "m", tfd, 2, false, 0);
	recv_msg(true, sv[1], &o);
	CHECK(d.res == 1 && (d.flags & MSG_CTRUNC) && d.nfds == 0,
	      "direct recvmsg at RLIMIT_NOFILE: res %ld flags %#x nfds %d",
	      d.res, d.flags, d.nfds);
	CHECK(o.res == d.res && o.flags == d.flags && o.nfds == d.nfds &&
		      o.pid == d.pid,
	      "offloaded recvmsg at RLIMIT_NOFILE 16: res %ld flags %#x nfds "
	      "%d pid %d; direct res %ld flags %#x nfds %d pid %d",
	      o.res, o.flags, o.nfds, (int)o.pid, d.res, d.flags, d.nfds,
	      (int)d.pid);
	check_bounced("recvmsg at RLIMIT_NOFILE", b0, 1);
	while (nfill)
		close(fill[--nfill]);
	setrlimit(RLIMIT_NOFILE, &rl);
	unlink("/tmp/esca-ctx.scm");
}

static volatile sig_atomic_t xfsz;

static void on_xfsz(int sig)
{
	(void)sig;
	xfsz++;
}

/*
 * One call both ways under RLIMIT_FSIZE 100; SIGXFSZ must come with it
 * both ways. The limit is lifted before anything is printed: our stdout
 * is a file too.
 */
static const struct rlimit fsz_low = { 100, RLIM_INFINITY };
static const struct rlimit fsz_none = { RLIM_INFINITY, RLIM_INFINITY };

#define FSZ(what, want, wantsig, dcall, ocall)                              \
	do {                                                                \
		int x0, xd, xo;                                             \
		long dres, ores;                                            \
		if (setrlimit(RLIMIT_FSIZE, &fsz_low))                      \
			DIE("setrlimit FSIZE: %s", strerror(errno));        \
		x0 = xfsz;                                                  \
		dres = (dcall);                                             \
		xd = xfsz - x0;                                             \
		x0 = xfsz;                                                  \
		ores = (ocall);                                             \
		xo = xfsz - x0;                                             \
		setrlimit(RLIMIT_FSIZE, &fsz_none);                         \
		SAME(what, dres, ores, want);                               \
		CHECK(xd == (wantsig) && xo == xd,                          \
		      "%s: SIGXFSZ direct %d, offloaded %d, want %d", what, \
		      xd, xo, wantsig);                                     \
	} while (0)

static void t_fsize(void)
{
	struct sigaction sa = { .sa_handler = on_xfsz };
	static char buf[200];
	struct iovec iov[2] = { { buf, 100 }, { buf + 100, 100 } };
	int d[3], o[3];
	struct stat ds, os;
	long b0;

	child_init();
	for (int i = 0; i < 3; i++) {
		char p[64];

		snprintf(p, sizeof(p), "/tmp/esca-ctx.fsz.d%d", i);
		d[i] = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		unlink(p);
		snprintf(p, sizeof(p), "/tmp/esca-ctx.fsz.o%d", i);
		o[i] = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		unlink(p);
	}
	sigaction(SIGXFSZ, &sa, NULL);
	b0 = cstat("bounced");
	FSZ("write 200 at 0", 100, 0, D6(SYS_write, d[0], buf, 200, 0, 0, 0),
	    O6(SYS_write, o[0], buf, 200, 0, 0, 0));
	FSZ("write 200 at 100", -EFBIG, 1,
	    D6(SYS_write, d[0], buf, 200, 0, 0, 0),
	    O6(SYS_write, o[0], buf, 200, 0, 0, 0));
	FSZ("pwrite64 200 at 0", 100, 0,
	    D6(SYS_pwrite64, d[1], buf, 200, 0, 0, 0),
	    O6(SYS_pwrite64, o[1], buf, 200, 0, 0, 0));
	FSZ("pwrite64 10 at 150", -EFBIG, 1,
	    D6(SYS_pwrite64, d[1], buf, 10, 150, 0, 0),
	    O6(SYS_pwrite64, o[1], buf, 10, 150, 0, 0));
	FSZ("writev 2x100 at 0", 100, 0, D6(SYS_writev, d[2], iov, 2, 0, 0, 0),
	    O6(SYS_writev, o[2], iov, 2, 0, 0, 0));
	FSZ("ftruncate to 200", -EFBIG, 1,
	    D6(SYS_ftruncate, d[2], 200, 0, 0, 0, 0),
	    O6(SYS_ftruncate, o[2], 200, 0, 0, 0, 0));
	FSZ("ftruncate to 50", 0, 0, D6(SYS_ftruncate, d[2], 50, 0, 0, 0, 0),
	    O6(SYS_ftruncate, o[2], 50, 0, 0, 0, 0));
	check_bounced("calls under a finite RLIMIT_FSIZE", b0, 7);
	for (int i = 0; i < 3; i++)
		CHECK(!fstat(d[i], &ds) && !fstat(o[i], &os) &&
			      ds.st_size == os.st_size,
		      "file %d: direct %lld bytes, offloaded %lld", i,
		      (long long)ds.st_size, (long long)os.st_size);
}

static void t_signalfd(void)
{
	struct signalfd_siginfo d, o;
	union sigval v;
	sigset_t set;
	int sfd;
	long b0;

	child_init();
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	/* non-blocking: bounced for being a signalfd, not for blocking */
	sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0)
		DIE("signalfd: %s", strerror(errno));
	b0 = cstat("bounced");
	memset(&d, 0, sizeof(d));
	memset(&o, 0, sizeof(o));
	v.sival_int = 41;
	sigqueue(getpid(), SIGUSR1, v);
	SAME("read signalfd, direct", D6(SYS_read, sfd, &d, sizeof(d), 0, 0, 0),
	     sizeof(d), sizeof(d));
	v.sival_int = 42;
	sigqueue(getpid(), SIGUSR1, v);
	SAME("read signalfd, offloaded",
	     O6(SYS_read, sfd, &o, sizeof(o), 0, 0, 0), sizeof(o), sizeof(o));
	CHECK(o.ssi_signo == SIGUSR1 && o.ssi_signo == d.ssi_signo &&
		      o.ssi_code == SI_QUEUE && o.ssi_code == d.ssi_code &&
		      o.ssi_pid == (uint32_t)getpid() &&
		      o.ssi_pid == d.ssi_pid && o.ssi_uid == d.ssi_uid &&
		      d.ssi_int == 41 && o.ssi_int == 42,
	      "signalfd: direct signo %u code %d pid %u int %d, offloaded "
	      "signo %u code %d pid %u int %d",
	      d.ssi_signo, d.ssi_code, d.ssi_pid, d.ssi_int, o.ssi_signo,
	      o.ssi_code, o.ssi_pid, o.ssi_int);
	sigpending(&set);
	CHECK(!sigismember(&set, SIGUSR1),
	      "SIGUSR1 still pending after the offloaded read");
	SAME("read empty signalfd", D6(SYS_read, sfd, &d, sizeof(d), 0, 0, 0),
	     O6(SYS_read, sfd, &o, sizeof(o), 0, 0, 0), -EAGAIN);
	check_bounced("read of a signalfd", b0, 2);
}

/*
 * close of @fd, offloaded or direct. Counters are read before and only
 * checked by close_ran() after the caller's immediate check, so nothing
 * sits between the close returning and that check.
 */
static long cl0, bl0;

static long do_close(bool off, int fd)
{
	if (!off)
		return D6(SYS_close, fd, 0, 0, 0, 0, 0);
	cl0 = cstat("calls");
	bl0 = cstat("bounced");
	return O6(SYS_close, fd, 0, 0, 0, 0, 0);
}

/* The offloaded close ran in the module (not bounced): calls rose. */
static void close_ran(bool off, const char *what)
{
	long c1 = cstat("calls"), b1 = cstat("bounced");

	if (off)
		CHECK(cl0 >= 0 && c1 > cl0 && b1 == bl0,
		      "%s: calls %ld -> %ld, bounced %ld -> %ld: the close did "
		      "not run in the module",
		      what, cl0, c1, bl0, b1);
}

/* State (hex st of /proc/net/tcp) of the 127.0.0.1 connection
 * @lport -> @rport, or 0 if none is listed. */
static int tcp_state(int lport, int rport)
{
	char line[256], want[64];
	int st = 0;
	FILE *f = fopen("/proc/net/tcp", "r");

	snprintf(want, sizeof(want), "0100007F:%04X 0100007F:%04X", lport,
		 rport);
	while (f && fgets(line, sizeof(line), f)) {
		char *p = strstr(line, want);

		if (p)
			st = (int)strtol(p + strlen(want), NULL, 16);
	}
	if (f)
		fclose(f);
	return st;
}

static void t_close(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);
	const char *lock = "/tmp/esca-ctx.lock";
	int l, one = 1;

	child_init();
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (l < 0 || bind(l, (struct sockaddr *)&sin, sizeof(sin)) ||
	    listen(l, 4) || getsockname(l, (struct sockaddr *)&sin, &sl))
		DIE("tcp listen: %s", strerror(errno));
	for (int off = 0; off < 2; off++) {
		const char *how = off ? "offloaded" : "direct";
		struct sockaddr_in cin;
		socklen_t cl = sizeof(cin);
		char b;
		long r, n;
		int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), a, st;

		if (c < 0 || connect(c, (struct sockaddr *)&sin, sizeof(sin)) ||
		    getsockname(c, (struct sockaddr *)&cin, &cl))
			DIE("tcp connect: %s", strerror(errno));
		a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
		fcntl(c, F_SETFL, O_NONBLOCK);
		r = do_close(off, a);
		n = recv(c, &b, 1, MSG_DONTWAIT) < 0 ? -errno : 0;
		/*
		 * The FIN itself may wait for softirq processing (seen with a
		 * direct close on 6.1); what close owes is the socket's own
		 * state: past ESTABLISHED (1) when close has returned.
		 */
		st = n ? tcp_state(ntohs(sin.sin_port), ntohs(cin.sin_port)) :
			 0;
		CHECK(r == 0 && (n == 0 || st != 1),
		      "%s close of a TCP socket: %ld; right after it the peer's "
		      "recv gave %ld (%s) and the closed end is still "
		      "ESTABLISHED",
		      how, r, n, n ? strerror((int)-n) : "EOF");
		close_ran(off, "close of a TCP socket");
		for (int i = 0; n && i < 2000; i++) { /* hang guard only */
			usleep(1000);
			n = recv(c, &b, 1, MSG_DONTWAIT) < 0 ? -errno : 0;
		}
		CHECK(n == 0,
		      "%s close of a TCP socket: the peer never saw FIN", how);
		close(c);
	}
	for (int off = 0; off < 2; off++) {
		const char *how = off ? "offloaded" : "direct";
		char b;
		long r, n;
		int sp[2];

		/* AF_UNIX stream: the peer's EOF is set by the release itself */
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp))
			DIE("socketpair: %s", strerror(errno));
		fcntl(sp[1], F_SETFL, O_NONBLOCK);
		r = do_close(off, sp[0]);
		n = read(sp[1], &b, 1) < 0 ? -errno : 0;
		CHECK(r == 0 && n == 0,
		      "%s close of an AF_UNIX stream socket: %ld; the peer's "
		      "read right after: %ld (%s), want 0 (EOF)",
		      how, r, n, n ? strerror((int)-n) : "EOF");
		close_ran(off, "close of an AF_UNIX socket");
		close(sp[1]);
	}
	for (int off = 0; off < 2; off++) {
		const char *how = off ? "offloaded" : "direct";
		char b;
		long r, n;
		int p[2];

		if (pipe2(p, O_CLOEXEC))
			DIE("pipe: %s", strerror(errno));
		fcntl(p[0], F_SETFL, O_NONBLOCK);
		r = do_close(off, p[1]);
		n = read(p[0], &b, 1) < 0 ? -errno : 0;
		CHECK(r == 0 && n == 0,
		      "%s close of a pipe's write end: %ld; the reader's read "
		      "right after: %ld (%s), want 0 (EOF)",
		      how, r, n, n ? strerror((int)-n) : "EOF");
		close_ran(off, "close of a pipe");
		close(p[0]);
	}
	for (int off = 0; off < 2; off++) {
		const char *how = off ? "offloaded" : "direct";
		int go[2], res[2], fd1, fd2, st = 0;
		char b = 1;
		long r, f2;
		pid_t other;

		/* the other process, before fd1 exists (it must not hold it) */
		if (pipe(go) || pipe(res))
			DIE("pipe: %s", strerror(errno));
		other = fork();
		if (other == 0) {
			int fd;

			if (read(go[0], &b, 1) != 1)
				_exit(2);
			fd = open(lock, O_RDWR | O_CLOEXEC);
			b = flock(fd, LOCK_EX | LOCK_NB) ? (char)errno : 0;
			_exit(write(res[1], &b, 1) == 1 ? 0 : 2);
		}
		fd1 = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		fd2 = open(lock, O_RDWR | O_CLOEXEC); /* another description */
		if (fd1 < 0 || fd2 < 0 || flock(fd1, LOCK_EX))
			DIE("flock setup: %s", strerror(errno));
		CHECK(flock(fd2, LOCK_EX | LOCK_NB) && errno == EWOULDBLOCK,
		      "the lock is not held");
		r = do_close(off, fd1);
		f2 = flock(fd2, LOCK_EX | LOCK_NB) ? -errno : 0;
		CHECK(r == 0 && f2 == 0,
		      "%s close of a flocked file: %ld; flock LOCK_NB right "
		      "after: %ld (%s), want 0",
		      how, r, f2, f2 ? strerror((int)-f2) : "ok");
		close_ran(off, "close of a flocked file");
		flock(fd2, LOCK_UN);
		if (write(go[1], "x", 1) != 1 || read(res[0], &b, 1) != 1)
			b = -1;
		waitpid(other, &st, 0);
		CHECK(b == 0, "%s close: another process's flock LOCK_NB: %s",
		      how, b > 0 ? strerror(b) : "no answer");
		close(fd2);
		close(go[0]);
		close(go[1]);
		close(res[0]);
		close(res[1]);
	}
	unlink(lock);
}

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	alarm(120); /* hang guard */
	run("chroot", t_chroot);
	run("mntns", t_mntns);
	run("scm", t_scm);
	run("fsize", t_fsize);
	run("signalfd", t_signalfd);
	run("close", t_close);
	run("pidns", t_pidns);
	unlink(SOCKNAME);
	unlink(CHR SOCKNAME);
	rmdir(CHR);
	unlink(NSDIR "/s");
	rmdir(NSDIR);
	return t_done("t-context");
}
