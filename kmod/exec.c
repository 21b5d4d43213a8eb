// SPDX-License-Identifier: MIT OR GPL-2.0
/*
 * Call execution: run a ring's entries as the submitting thread would.
 *
 * Borrowed identity, the rules (read before adding a call):
 *  - mm: kthread_use_mm(ctx->mm) for one batch, so user pointers are the
 *    process's own and bad ones give -EFAULT from the call itself. No
 *    mm_users is taken: the MMU notifier's release (context.c) waits for
 *    every batch in flight before the address space may go, and no batch
 *    starts on a ring it killed.
 *  - files: current->files is swapped to the ring's referenced table (the
 *    registering thread's) for the batch; fd numbers resolve there only.
 *  - creds: the snapshot taken at REGISTER, never the thread's current
 *    ones and never the consumer's own root powers.
 *  - the ring dies before a batch (entries then never run; the library
 *    makes them directly) as soon as its identity stops being true: the
 *    thread exited on its own, its credentials were replaced (setuid,
 *    exec, capset...), its mm or file table is no longer the ring's
 *    (exec, unshare(CLONE_FILES), close_range(CLOSE_RANGE_UNSHARE)), or a
 *    thread of the process is under seccomp. The tail is read (acquire)
 *    before these checks, so a change made before an entry was queued is
 *    seen. A thread exiting with its whole process leaves its queue to the
 *    drain (context.c), which runs it if the thread never changed creds.
 *  - memory cgroup: set_active_memcg(the process's) for the batch, so
 *    kernel memory the calls allocate is charged to the process; block
 *    I/O is attributed to its blkcg (kthread_associate_blkcg).
 *  - signals: a kernel thread gets no signals from user space, so calls
 *    never see one pending (the watchdog's SIGKILL aside, see consumer.c);
 *    a SIGPIPE the call raises on itself is discarded and raised on the
 *    submitter exactly where the call would have (send_sig, as pipe_write
 *    and sk_stream_error do on current).
 *  - seccomp and audit: a process under either is refused at SETUP and
 *    REGISTER; a ring whose process gains a filter later dies.
 *
 * What else the calls read from current, call by call (the audit). The
 * answer is: borrowed (above), not read, or the call is BOUNCED back to
 * the producer, which makes it directly (it had no effect here):
 *  - read, readv, pread64, recvfrom, recvmsg: f_pos, the file's own state.
 *    Bounced: blocking-mode pipes, sockets, eventfd, timerfd (could sleep
 *    forever: a kernel thread sees no signal); files on filesystems that
 *    wait on user space or the network (FUSE, NFS, overlayfs over them,
 *    procfs, sysfs: anything but tmpfs, ramfs, ext2-4, xfs, btrfs);
 *    char devices but null, zero, full, random, urandom; block devices;
 *    anonymous files but eventfd, timerfd, epoll, inotify (signalfd
 *    dequeues current's signals; userfaultfd, fanotify, io_uring, pidfd
 *    act on current); sockets but AF_INET/AF_INET6 (AF_UNIX and netlink
 *    messages carry the sender's pid and creds of current, SCM_RIGHTS
 *    installs fds under current's RLIMIT_NOFILE, SCM_CREDENTIALS reports
 *    pids in current's pid namespace, audit netlink reads current's
 *    loginuid). recvmsg on AF_INET: cmsgs carry no identity.
 *  - write, writev, pwrite64, sendfile: as read, plus RLIMIT_FSIZE and
 *    SIGXFSZ are current's: writes to regular files are bounced while the
 *    process's RLIMIT_FSIZE is finite. sendfile's in_fd as read.
 *  - sendto, sendmsg: as write; AF_UNIX paths would resolve from current's
 *    root and cwd (bounced with AF_UNIX); MSG_ZEROCOPY pins pages against
 *    current's RLIMIT_MEMLOCK (bounced). AF_INET routing, BPF cgroup hooks
 *    and socket memory use the socket's own netns and cgroup.
 *  - close: flush (filesystem: the class rules above apply) and, for the
 *    last reference, the final fput run here, synchronously (__fput_sync),
 *    so FIN, lock release and pipe EOF happen before the result shows, as
 *    for a direct close. Bounced: a socket with SO_LINGER (the release
 *    waits for the linger time), char devices but the mem ones (a tty's
 *    release waits for output).
 *  - shutdown, setsockopt: the socket's state; capability checks use the
 *    borrowed creds; SO_ATTACH_FILTER memory goes to the active memcg.
 *  - getsockopt: SO_PEERCRED and SO_PEERPIDFD report the peer in current's
 *    pid namespace (or make a pidfd): bounced. The rest reads the socket.
 *  - epoll_ctl: the target is polled once (vfs_poll): bounced for a
 *    target of a class above that is bounced (FUSE poll waits on the
 *    daemon; signalfd's poll waits on current's signals). EPOLLWAKEUP is
 *    checked against the borrowed creds.
 *  - fsync, fdatasync, ftruncate, fchmod, fchown: the inode; the creds are
 *    borrowed; the class rules apply to the filesystem (ftruncate also
 *    RLIMIT_FSIZE).
 *  - not borrowed, for any call: the pid and comm of current (no call
 *    above reports them but those bounced), task I/O accounting
 *    (/proc/PID/io) and BSD process accounting, which credit the consumer;
 *    the NUMA memory policy and cpuset of the caller (pages a call
 *    allocates follow the consumer's).
 *
 * Calls go to the kernel's own x86-64 entry points (__x64_sys_*), found
 * once at load through kallsyms; nothing is re-implemented and nothing in
 * the system call table is touched.
 */
#include <linux/kprobes.h>
#include <linux/completion.h>
#include <linux/slab.h>
#include <linux/workqueue.h>
#include <linux/kthread.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/cred.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/sched/clock.h>
#include <linux/nospec.h>
#include <linux/socket.h>
#include <linux/net.h>
#include <linux/major.h>
#include <linux/magic.h>
#include <linux/memcontrol.h>
#include <linux/cgroup.h>
#include <linux/seccomp.h>
#include <linux/uaccess.h>
#include <net/sock.h>
#include <asm/unistd.h>
#include <asm/ptrace.h>
#include <asm/cpufeature.h>

#include "esca.h"

typedef long (*esca_syscall_fn)(const struct pt_regs *regs);

/* How a call uses an fd argument: what could make it wait on its file. */
enum esca_fd_use {
	FD_NONE,
	FD_READ, /* reads data: may wait for it */
	FD_WRITE, /* writes data: may wait for room; RLIMIT_FSIZE */
	FD_META, /* inode or socket state: the filesystem is asked */
	FD_TRUNC, /* ftruncate: the filesystem, and RLIMIT_FSIZE */
	FD_POLL, /* epoll_ctl's target: polled once */
	FD_CLOSE, /* flush and final release */
};

struct esca_call {
	const char *sym;
	esca_syscall_fn fn;
	u8 fd_use[3]; /* enum esca_fd_use of args[0..2] */
	bool sigpipe; /* -EPIPE comes with SIGPIPE unless MSG_NOSIGNAL */
	s8 msg_flags_arg; /* index of a MSG_* flags argument, or -1 */
};

#define CALL(nr, name, u0, u1, u2, pipe, mflags) \
	[nr] = { .sym = "__x64_sys_" name,       \
		 .fd_use = { u0, u1, u2 },       \
		 .sigpipe = (pipe),              \
		 .msg_flags_arg = (mflags) }

/* The allowlist. Anything else is answered -ENOSYS. */
static struct esca_call esca_calls[] = {
	CALL(__NR_read, "read", FD_READ, 0, 0, false, -1),
	CALL(__NR_write, "write", FD_WRITE, 0, 0, true, -1),
	CALL(__NR_readv, "readv", FD_READ, 0, 0, false, -1),
	CALL(__NR_writev, "writev", FD_WRITE, 0, 0, true, -1),
	CALL(__NR_pread64, "pread64", FD_READ, 0, 0, false, -1),
	CALL(__NR_pwrite64, "pwrite64", FD_WRITE, 0, 0, true, -1),
	CALL(__NR_sendto, "sendto", FD_WRITE, 0, 0, true, 3),
	CALL(__NR_recvfrom, "recvfrom", FD_READ, 0, 0, false, 3),
	CALL(__NR_sendmsg, "sendmsg", FD_WRITE, 0, 0, true, 2),
	CALL(__NR_recvmsg, "recvmsg", FD_READ, 0, 0, false, 2),
	CALL(__NR_sendfile, "sendfile64", FD_WRITE, FD_READ, 0, true, -1),
	CALL(__NR_close, "close", FD_CLOSE, 0, 0, false, -1),
	CALL(__NR_shutdown, "shutdown", FD_META, 0, 0, false, -1),
	CALL(__NR_epoll_ctl, "epoll_ctl", FD_META, 0, FD_POLL, false, -1),
	CALL(__NR_fsync, "fsync", FD_META, 0, 0, false, -1),
	CALL(__NR_fdatasync, "fdatasync", FD_META, 0, 0, false, -1),
	CALL(__NR_ftruncate, "ftruncate", FD_TRUNC, 0, 0, false, -1),
	CALL(__NR_fchmod, "fchmod", FD_META, 0, 0, false, -1),
	CALL(__NR_fchown, "fchown", FD_META, 0, 0, false, -1),
	CALL(__NR_setsockopt, "setsockopt", FD_META, 0, 0, false, -1),
	CALL(__NR_getsockopt, "getsockopt", FD_META, 0, 0, false, -1),
};

static struct workqueue_struct *esca_put_wq; /* last puts of file tables */

#define ENDBR64 0xfa1e0ff3U /* f3 0f 1e fa */

static bool starts_with_endbr(unsigned long addr)
{
	u32 insn;

	return !get_kernel_nofault(insn, (u32 *)addr) && insn == ENDBR64;
}

/*
 * kallsyms_lookup_name() is not exported; a kprobe resolves its address.
 * With IBT a kprobe sits after the function's ENDBR, so step back to it:
 * an indirect call must land on ENDBR.
 */
static unsigned long (*esca_kallsyms)(const char *name);

static int resolve_kallsyms(void)
{
	struct kprobe kp = { .symbol_name = "kallsyms_lookup_name" };
	unsigned long addr;
	int ret = register_kprobe(&kp);

	if (ret < 0) {
		pr_err("esca: cannot find kallsyms_lookup_name (kprobe: %d)\n",
		       ret);
		return ret;
	}
	addr = (unsigned long)kp.addr;
	unregister_kprobe(&kp);
	if (!starts_with_endbr(addr) && starts_with_endbr(addr - 4))
		addr -= 4;
	esca_kallsyms = (void *)addr;
	return 0;
}

/*
 * With IBT enforced, a function whose ENDBR was sealed (never called
 * indirectly in the kernel) cannot be called through a pointer: refuse to
 * load rather than take a control-protection fault later. (The syscall
 * entry points keep theirs: sys_call_table still lists them for tracing.)
 */
static unsigned long resolve(const char *sym)
{
	unsigned long addr = esca_kallsyms(sym);

	if (!addr) {
		pr_err("esca: kernel symbol %s not found\n", sym);
		return 0;
	}
	if (cpu_feature_enabled(X86_FEATURE_IBT) && !starts_with_endbr(addr)) {
		pr_err("esca: %s cannot be called indirectly under IBT\n", sym);
		return 0;
	}
	return addr;
}

int esca_exec_init(void)
{
	unsigned int i;
	int ret = resolve_kallsyms();

	if (ret)
		return ret;
	esca_put_wq = alloc_workqueue("esca-put", WQ_UNBOUND, 0);
	if (!esca_put_wq)
		return -ENOMEM;
	if (esca_files_put_exit) /* what every last put does now */
		pr_info("esca: file tables released by exiting threads (files_put_exit=1)\n");
	for (i = 0; i < ARRAY_SIZE(esca_calls); i++) {
		if (!esca_calls[i].sym)
			continue;
		esca_calls[i].fn = (void *)resolve(esca_calls[i].sym);
		if (!esca_calls[i].fn)
			return -ENOENT;
	}
	return 0;
}

/*
 * The last put of a file table closes every file still in it, and a close
 * may wait on user space as long as it likes: FUSE sends FLUSH and waits,
 * uninterruptibly, for its server's answer. That must never happen on a
 * consumer (every process it serves would stall) nor in module code (rmmod
 * would wait for it). So the last put goes to a short-lived kernel thread
 * that adopts the table as its own and exits: do_exit() -> exit_files()
 * puts it, outside the module, as an exiting process would (and with no
 * call through put_files_struct, which IBT seals). The thread inherited a
 * share of kthreadd's table, which lives as long as the system: that
 * share is dropped by hand.
 *
 * The thread is started from a work item on our own workqueue, never from
 * the caller: a caller with a fatal signal pending (a thread killed while
 * mapping its ring) cannot create threads. The work waits until the
 * thread has left module code (kthread_stop returns at its exit_mm, before
 * exit_files), and module unload drains the queue, so no put is lost and
 * no module text runs after unload.
 */
struct files_put_req {
	struct work_struct work;
	struct files_struct *files;
	struct completion adopted;
};

static int files_put_thread(void *data)
{
	struct files_put_req *req = data;
	struct files_struct *old;

	task_lock(current);
	old = current->files;
	current->files = req->files;
	task_unlock(current);
	if (old)
		atomic_add_unless(&old->count, -1, 1);
	complete(&req->adopted);
	return 0; /* do_exit() -> exit_files() puts the table */
}

static void files_put_work(struct work_struct *work)
{
	struct files_put_req *req =
		container_of(work, struct files_put_req, work);
	struct task_struct *t;

	t = kthread_create(files_put_thread, req, "esca-put");
	if (IS_ERR(t)) {
		pr_err_ratelimited(
			"esca: cannot start a thread to release a file table (%ld): leaked\n",
			PTR_ERR(t));
	} else {
		get_task_struct(t);
		wake_up_process(t);
		wait_for_completion(&req->adopted);
		kthread_stop(t);
		put_task_struct(t);
	}
	kfree(req);
}

void esca_files_put(struct files_struct *files)
{
	struct files_put_req *req;

	/* Not the last reference: only a count goes down, nothing closes. */
	if (atomic_add_unless(&files->count, -1, 1))
		return;
	req = kmalloc(sizeof(*req), GFP_KERNEL | __GFP_NOFAIL);
	req->files = files;
	init_completion(&req->adopted);
	INIT_WORK(&req->work, files_put_work);
	queue_work(esca_put_wq, &req->work);
}

void esca_exec_exit(void)
{
	if (esca_put_wq)
		destroy_workqueue(esca_put_wq); /* drains pending puts */
	esca_put_wq = NULL;
}

/* Filesystems whose calls do bounded work: no user space, no network. */
static bool fs_bounded(const struct super_block *sb)
{
	switch (sb->s_magic) {
	case TMPFS_MAGIC:
	case RAMFS_MAGIC:
	case EXT4_SUPER_MAGIC: /* also ext2 and ext3 */
	case XFS_SUPER_MAGIC:
	case BTRFS_SUPER_MAGIC:
	case PIPEFS_MAGIC:
	case SOCKFS_MAGIC:
		return true;
	}
	return false;
}

/* /dev/null, zero, full, random, urandom: never wait for long. */
static bool chr_bounded(const struct inode *inode)
{
	unsigned int minor = iminor(inode);

	return imajor(inode) == MEM_MAJOR &&
	       (minor == 3 || minor == 5 || minor == 7 || minor == 8 ||
		minor == 9);
}

/* Anonymous files whose I/O and poll act on the file alone. */
static bool anon_bounded(const struct file *f)
{
	const char *name = (const char *)f->f_path.dentry->d_name.name;

	return !strcmp(name, "[eventfd]") || !strcmp(name, "[timerfd]") ||
	       !strcmp(name, "[eventpoll]") || !strcmp(name, "inotify");
}

struct esca_batch {
	bool fsize_limited; /* the process has a finite RLIMIT_FSIZE */
	bool timed; /* phase_times was on when the batch began */
};

/*
 * May the consumer make a call that uses @fd as @use? False: bounce it.
 * Checked on the file the fd names now; another thread may swap the fd
 * (dup2) or clear O_NONBLOCK before the call looks it up again: the
 * watchdog in consumer.c is the safety net for that race.
 */
static bool fd_may_run(const struct esca_batch *b, unsigned int fd, u8 use,
		       bool dontwait)
{
	struct file *f = fget_raw(fd);
	struct inode *inode;
	bool nonblock, ok;
	umode_t mode;

	if (!f)
		return true; /* the call itself reports EBADF */
	inode = file_inode(f);
	mode = inode->i_mode;
	nonblock = (f->f_flags & O_NONBLOCK) || dontwait;
	if (f->f_mode & FMODE_PATH) {
		ok = true; /* every call but close fails with EBADF */
	} else if (S_ISREG(mode) || S_ISDIR(mode) || S_ISLNK(mode)) {
		ok = fs_bounded(inode->i_sb) &&
		     !(S_ISREG(mode) && b->fsize_limited &&
		       (use == FD_WRITE || use == FD_TRUNC));
	} else if (S_ISSOCK(mode)) {
		struct socket *sock = sock_from_file(f);
		struct sock *sk = sock ? sock->sk : NULL;

		if (use == FD_READ || use == FD_WRITE)
			ok = sk && nonblock &&
			     (sk->sk_family == AF_INET ||
			      sk->sk_family == AF_INET6);
		else if (use == FD_CLOSE)
			ok = !(sk && sock_flag(sk, SOCK_LINGER));
		else
			ok = true;
	} else if (S_ISFIFO(mode)) {
		if (use == FD_READ || use == FD_WRITE)
			ok = nonblock;
		else
			ok = use == FD_POLL || use == FD_CLOSE ||
			     fs_bounded(inode->i_sb);
	} else if (S_ISCHR(mode)) {
		ok = chr_bounded(inode);
	} else if (S_ISBLK(mode)) {
		ok = false;
	} else {
		ok = inode->i_sb->s_magic == ANON_INODE_FS_MAGIC &&
		     anon_bounded(f) &&
		     (nonblock || (use != FD_READ && use != FD_WRITE));
	}
	fput(f);
	return ok;
}

/* Must the consumer hand @sqe back to the producer? */
static bool must_bounce(const struct esca_batch *b,
			const struct esca_call *call, unsigned int nr,
			const struct esca_sqe *sqe)
{
	bool dontwait = false;
	unsigned int i;

	if (call->msg_flags_arg >= 0) {
		unsigned int fl = (unsigned int)sqe->args[call->msg_flags_arg];

		if (fl & MSG_ZEROCOPY)
			return true;
		dontwait = fl & MSG_DONTWAIT;
	}
	/* level and optname are ints to the call: compare them as such */
	if (nr == __NR_getsockopt && (int)sqe->args[1] == SOL_SOCKET &&
	    ((int)sqe->args[2] == SO_PEERCRED ||
	     (int)sqe->args[2] == 77 /* SO_PEERPIDFD */))
		return true;
	for (i = 0; i < ARRAY_SIZE(call->fd_use); i++)
		if (call->fd_use[i] &&
		    !fd_may_run(b, (unsigned int)sqe->args[i], call->fd_use[i],
				dontwait))
			return true;
	return false;
}

/*
 * close, with the final release of the file run here: a kernel thread's
 * last fput() would otherwise be deferred to a workqueue and run after the
 * producer saw the result.
 */
static long exec_close(const struct esca_call *call, struct pt_regs *regs)
{
	struct file *f = fget_raw((unsigned int)regs->di);
	long res = call->fn(regs);

	if (f) {
		if (res == 0)
			__fput_sync(f);
		else
			fput(f);
	}
	return res;
}

/* local_clock() when the phases are timed (phase_times=1), else 0 */
static inline u64 phase_clock(bool timed)
{
	return timed ? local_clock() : 0;
}

/* *@checked: the phase clock once the checks are done, before the body */
static long exec_one(struct esca_ring *ring, const struct esca_batch *b,
		     const struct esca_sqe *sqe, u32 *cflags, u64 *checked)
{
	const struct esca_call *call;
	struct pt_regs regs;
	unsigned int nr = sqe->nr;
	long res;

	if (sqe->flags & ~ESCA_SQE_VALID_FLAGS)
		return -EINVAL;
	if (nr >= ARRAY_SIZE(esca_calls))
		return -ENOSYS;
	nr = array_index_nospec(nr, ARRAY_SIZE(esca_calls));
	call = &esca_calls[nr];
	if (!call->fn)
		return -ENOSYS;
	if (must_bounce(b, call, nr, sqe)) {
		*cflags |= ESCA_CQE_BOUNCED;
		return 0;
	}
	*checked = phase_clock(b->timed);

	memset(&regs, 0, sizeof(regs));
	regs.di = sqe->args[0];
	regs.si = sqe->args[1];
	regs.dx = sqe->args[2];
	regs.r10 = sqe->args[3];
	regs.r8 = sqe->args[4];
	regs.r9 = sqe->args[5];
	regs.orig_ax = nr;
	regs.ax = -ENOSYS;
	res = nr == __NR_close ? exec_close(call, &regs) : call->fn(&regs);

	/* Only the watchdog's SIGKILL is ever pending here: a direct caller
	 * interrupted by a signal would see EINTR at worst.
	 */
	if (res <= -ERESTARTSYS && res >= -ERESTART_RESTARTBLOCK)
		res = -EINTR;
	if (res == -EPIPE && call->sigpipe &&
	    !(call->msg_flags_arg >= 0 &&
	      (sqe->args[call->msg_flags_arg] & MSG_NOSIGNAL)))
		send_sig(SIGPIPE, ring->task, 0);
	return res;
}

static struct files_struct *swap_files(struct files_struct *files)
{
	struct files_struct *old;

	task_lock(current);
	old = current->files;
	current->files = files;
	task_unlock(current);
	return old;
}

#define RING_RUN 0
#define RING_SKIP (-1)

/*
 * Is the ring's identity still true? RING_RUN, RING_SKIP (its thread is
 * exiting with the process: the drain will run the queue), or the
 * ESCA_DEAD_* reason to kill it for. Called after the tail was read.
 */
static int ring_check(struct esca_ring *ring)
{
	struct task_struct *t = ring->task;
	struct esca_ctx *ctx = ring->ctx;

	if (test_bit(ESCA_RING_S_EXIT_ALONE, &ring->state))
		return ESCA_DEAD_EXITED;
	if (rcu_access_pointer(t->real_cred) != ring->cred)
		return ESCA_DEAD_IDENTITY;
	if (READ_ONCE(t->seccomp.mode) != SECCOMP_MODE_DISABLED ||
	    esca_group_seccomp(t))
		return ESCA_DEAD_SECCOMP;
	if (READ_ONCE(ctx->draining))
		return RING_RUN;
	if (READ_ONCE(t->flags) & PF_EXITING) {
		struct signal_struct *sig = t->signal;

		/* Without the exit probe, tell the two exits apart here. */
		if (!esca_exit_probe_on() &&
		    !(READ_ONCE(sig->flags) & SIGNAL_GROUP_EXIT) &&
		    !READ_ONCE(sig->group_exec_task) && atomic_read(&sig->live))
			return ESCA_DEAD_EXITED;
		return RING_SKIP;
	}
	if (READ_ONCE(t->mm) != ctx->mm || READ_ONCE(t->files) != ring->files)
		return ESCA_DEAD_IDENTITY;
	return RING_RUN;
}

/* For the drain: would the queue run? */
bool esca_ring_runnable(struct esca_ring *ring)
{
	return ring_check(ring) == RING_RUN;
}

/* Is there something for a worker to do on @ring (not dead)? */
bool esca_ring_has_work(struct esca_ring *ring)
{
	if (!esca_ring_files(ring) ||
	    test_bit(ESCA_RING_S_RUNNING, &ring->state))
		return false;
	if (READ_ONCE(ring->paused))
		return READ_ONCE(ring->sq->resume) == ring->pause_idx + 1;
	if (READ_ONCE(ring->sq->sq_tail) == READ_ONCE(ring->head))
		return false;
	/* exiting with its process: nothing until the drain */
	return READ_ONCE(ring->ctx->draining) ||
	       !(READ_ONCE(ring->task->flags) & PF_EXITING) ||
	       test_bit(ESCA_RING_S_EXIT_ALONE, &ring->state);
}

/*
 * Borrow once, serve many. The worker keeps the last process's identity
 * between batches: its mm (kthread_use_mm, a page-table switch, the
 * dearest part), the ring's file table (current->files, with a reference
 * of its own), the ring's credentials, the mm's memory cgroup and the
 * ring thread's io cgroup. Each batch compares (pointers, under RCU) and
 * switches only what differs: another process or file table, another
 * thread's creds, a cgroup migration. ring_check() still runs before
 * every batch.
 *
 * Exit is not delayed: the held mm counts in ctx->running, which the
 * exit drain (ctx_mm_release) waits for; the worker lets go at once when
 * the ctx drains or dies (esca_borrow_check, on every pass and after each
 * batch), before it puts a file table, before it sleeps and before it
 * exits. Called only inside a batch, after the dead check, with the
 * batch's own running count held: the mm is intact. Every pointer
 * compared is one the worker holds a reference on, so none can be freed
 * and reused under the comparison.
 */
static bool memcg_held(struct esca_worker *w, struct mm_struct *mm)
{
#ifdef CONFIG_MEMCG
	bool same;

	if (!w->memcg)
		return false;
	rcu_read_lock();
	same = mem_cgroup_from_task(rcu_dereference(mm->owner)) == w->memcg;
	rcu_read_unlock();
	return same;
#else
	return false;
#endif
}

static void borrow(struct esca_worker *w, struct esca_ring *ring,
		   struct files_struct *files)
{
	struct esca_ctx *ctx = ring->ctx;

	/*
	 * Another file table in the same process (a thread cloned without
	 * CLONE_FILES) is rare: let go of everything, so the old table is
	 * put with no identity held, as a table always is.
	 */
	if (w->mm_ctx != ctx || w->files != files) {
		if (w->mm_ctx != ctx)
			w->c->mm_switches++;
		esca_borrow_release(w);
		esca_ctx_get(ctx);
		atomic_inc(&ctx->running);
		kthread_use_mm(ctx->mm);
		w->mm_ctx = ctx;
		/* our own reference: the ring's may be retired while held */
		atomic_inc(&files->count);
		w->old_files = swap_files(files);
		w->files = files;
	}
	if (w->cred != ring->cred) {
		if (w->cred)
			revert_creds(w->old_cred);
		w->old_cred = override_creds(ring->cred);
		w->cred = ring->cred;
	}
	if (!memcg_held(w, ctx->mm)) {
		struct mem_cgroup *memcg = get_mem_cgroup_from_mm(ctx->mm);

		set_active_memcg(memcg);
		mem_cgroup_put(w->memcg);
		w->memcg = memcg;
	}
#ifdef CONFIG_BLK_CGROUP
	{
		struct cgroup_subsys_state *blkcg;
		bool same;

		rcu_read_lock();
		same = w->blkcg && task_css(ring->task, io_cgrp_id) == w->blkcg;
		rcu_read_unlock();
		if (!same) {
			blkcg = task_get_css(ring->task, io_cgrp_id);
			kthread_associate_blkcg(blkcg);
			if (w->blkcg)
				css_put(w->blkcg);
			w->blkcg = blkcg;
		}
	}
#endif
}

void esca_borrow_release(struct esca_worker *w)
{
	struct esca_ctx *ctx = w->mm_ctx;
	struct files_struct *files = w->files;

	if (!ctx)
		return;
	swap_files(w->old_files);
	w->files = NULL;
	w->old_files = NULL;
#ifdef CONFIG_BLK_CGROUP
	kthread_associate_blkcg(NULL);
	if (w->blkcg)
		css_put(w->blkcg);
	w->blkcg = NULL;
#endif
	set_active_memcg(NULL);
	mem_cgroup_put(w->memcg);
	w->memcg = NULL;
	if (w->cred)
		revert_creds(w->old_cred);
	w->cred = NULL;
	kthread_unuse_mm(ctx->mm);
	w->mm_ctx = NULL;
	if (atomic_dec_and_test(&ctx->running))
		wake_up_all(&ctx->drain_wq);
	esca_ctx_put(ctx);
	/* Last: putting it may close files (of an exited process), and
	 * never with an identity borrowed.
	 */
	if (files)
		esca_files_put(files);
}

/* Let go of a draining or dead process's identity. */
void esca_borrow_check(struct esca_worker *w)
{
	struct esca_ctx *ctx = w->mm_ctx;

	if (ctx && (READ_ONCE(ctx->draining) || READ_ONCE(ctx->dead)))
		esca_borrow_release(w);
}

static const char *const dead_what[] = {
	[ESCA_DEAD_EXITED] = "its thread exited",
	[ESCA_DEAD_IDENTITY] = "its thread's creds, mm or file table changed",
	[ESCA_DEAD_SECCOMP] = "a thread is under seccomp",
};

/*
 * Execute up to @budget entries of @ring; returns how many. One worker
 * at a time (ESCA_RING_S_RUNNING); a dead ring is never started.
 */
unsigned int esca_ring_run(struct esca_worker *w, struct esca_ring *ring,
			   unsigned int budget)
{
	struct esca_consumer *c = w->c;
	struct esca_ctx *ctx = ring->ctx;
	struct files_struct *files;
	struct esca_batch b;
	u32 head, tail, n = 0, i;
	u64 errors = 0, bounced = 0;
	u64 t_start, t_now, t;
	int verdict;

	/*
	 * The idle poll: nothing queued and no pause to lift, so no atomic
	 * and no barrier. Every waiter's condition is already true then, or
	 * is made true by a batch, which wakes it (below).
	 */
	files = esca_ring_files(ring);
	if (!files || (!READ_ONCE(ring->paused) &&
		       READ_ONCE(ring->sq->sq_tail) == READ_ONCE(ring->head)))
		return 0;
	if (test_and_set_bit_lock(ESCA_RING_S_RUNNING, &ring->state))
		return 0;
	atomic_inc(&ctx->running);
	/* Count before the dead check; the drain kills, then reads it. */
	smp_mb__after_atomic();
	if (esca_ring_dead(ring))
		goto out;
	files = esca_ring_files(ring); /* again: not retired, not dead */
	if (!files)
		goto out;
	if (READ_ONCE(ring->paused)) {
		/* H, matches G: the producer made the bounced call */
		if (smp_load_acquire(&ring->sq->resume) != ring->pause_idx + 1)
			goto out;
		spin_lock(&c->lock);
		WRITE_ONCE(ring->paused, false);
		esca_ring_flags(ring, 0, ESCA_RING_PAUSED);
		spin_unlock(&c->lock);
	}
	head = ring->head;
	tail = smp_load_acquire(&ring->sq->sq_tail); /* B, matches A */
	if (tail == head)
		goto out;
	if (tail - head > ring->entries) {
		pr_notice_ratelimited(
			"esca: pid %d ring %u: tail %u is more than %u past head %u; ring stopped\n",
			ctx->tgid, ring->id, tail, ring->entries, head);
		esca_ring_kill(ring, ESCA_DEAD_PROTOCOL);
		goto out;
	}
	/*
	 * Timed only once there is work (an idle pass reads no clock), and
	 * only one batch in ESCA_PHASE_SAMPLE: the clocks cost a one-entry
	 * batch more than its publish does.
	 */
	b.timed = READ_ONCE(esca_phase_times) &&
		  !(c->batches & (ESCA_PHASE_SAMPLE - 1));
	t_start = phase_clock(b.timed);
	verdict = ring_check(ring);
	if (verdict == RING_SKIP)
		goto out;
	if (verdict != RING_RUN) {
		pr_notice_ratelimited(
			"esca: pid %d ring %u: %s; ring stopped\n", ctx->tgid,
			ring->id, dead_what[verdict]);
		esca_ring_kill(ring, verdict);
		goto out;
	}
	n = min_t(u32, tail - head, budget);
	b.fsize_limited = task_rlimit(ring->task, RLIMIT_FSIZE) !=
			  RLIM_INFINITY;

	t_now = phase_clock(b.timed);
	if (b.timed)
		c->ns_check += t_now - t_start;
	borrow(w, ring, files);
	t = phase_clock(b.timed);
	if (b.timed)
		c->ns_borrow += t - t_now;
	t_now = t;

	for (i = 0; i < n; i++, head++) {
		const struct esca_sqe *shared = &ring->sqes[head & ring->mask];
		struct esca_cqe *cqe = &ring->cqes[head & ring->mask];
		struct esca_sqe sqe;
		u32 cflags = 0;
		bool pause;
		long res;
		int k;

		/* Copy once, then validate and use only the copy. */
		sqe.nr = READ_ONCE(shared->nr);
		sqe.flags = READ_ONCE(shared->flags);
		for (k = 0; k < 6; k++)
			sqe.args[k] = READ_ONCE(shared->args[k]);
		sqe.user_data = READ_ONCE(shared->user_data);

		esca_call_begin(w, ring);
		t = 0;
		res = exec_one(ring, &b, &sqe, &cflags, &t);
		esca_call_end(w);
		if (b.timed) {
			u64 done = local_clock();

			/* bounced or refused: no body, all of it was checks */
			if (!t)
				t = done;
			c->ns_block += t - t_now;
			c->ns_body += done - t;
			t_now = done;
		}
		if (res < 0)
			errors++;
		if (cflags & ESCA_CQE_BOUNCED)
			bounced++;
		WRITE_ONCE(cqe->res, res);
		WRITE_ONCE(cqe->flags, cflags);
		WRITE_ONCE(cqe->user_data, sqe.user_data);
		WRITE_ONCE(ring->head, head + 1);
		/*
		 * A deferred entry bounced: later ones must wait until the
		 * producer has made it (ordering), so pause before publishing.
		 */
		pause = (cflags & ESCA_CQE_BOUNCED) &&
			(sqe.flags & ESCA_SQE_DEFERRED);
		if (pause) {
			spin_lock(&c->lock);
			ring->pause_idx = head;
			WRITE_ONCE(ring->paused, true);
			esca_ring_flags(ring, ESCA_RING_PAUSED, 0);
			spin_unlock(&c->lock);
		}
		/* C, matches D: the CQE is written before the head passes it */
		smp_store_release(&ring->cq->sq_head, head + 1);
		if (b.timed) {
			t = local_clock();
			c->ns_publish += t - t_now;
			t_now = t;
		}
		if (pause || esca_worker_superseded(w)) {
			n = i + 1;
			break;
		}
	}

	esca_borrow_check(w); /* exiting: no need to wait for the next pass */
	if (b.timed) {
		c->ns_release += local_clock() - t_now;
		c->timed_batches++;
		c->timed_calls += n;
	}

	c->calls += n;
	c->batches++;
	c->errors += errors;
	c->bounced += bounced;
	atomic64_add(n, &ctx->calls);
	if (errors)
		atomic64_add(errors, &ctx->errors);
	if (bounced)
		atomic64_add(bounced, &ctx->bounced);
out:
	clear_bit_unlock(ESCA_RING_S_RUNNING, &ring->state);
	if (atomic_dec_and_test(&ctx->running))
		wake_up_all(&ctx->drain_wq);
	if (wq_has_sleeper(&ring->cq_wait)) /* also for a pause, the drain */
		wake_up_all(&ring->cq_wait);
	return n;
}
