// SPDX-License-Identifier: MIT OR GPL-2.0
/*
 * Call execution: run a ring's entries as the submitting thread would.
 *
 * Borrowed identity, the rules (read before adding a call):
 *  - mm: kthread_use_mm(ctx->mm) under mmget_not_zero() for one batch, so
 *    user pointers are the process's own and bad ones give -EFAULT from
 *    the call itself. If the mm is already gone, the ring dies.
 *  - files: current->files is swapped to the ring's referenced table for
 *    the batch; fd numbers resolve in the submitter's table only.
 *  - creds: the submitting thread's current credentials (get_task_cred),
 *    taken per batch, so a setuid() after registration is honoured; the
 *    consumer's own root powers are never used.
 *  - signals: a kernel thread ignores all signals, so calls never see one
 *    pending and a SIGPIPE the call raises on itself is discarded; we
 *    raise it on the submitter exactly where the call would have
 *    (send_sig, same as pipe_write and sk_stream_error do on current).
 *  - seccomp: registration is refused under a filter, and a ring whose
 *    thread acquired one later dies before its next batch runs.
 *  - blocking: a call that could sleep indefinitely on a blocking-mode
 *    pipe, socket or device is not run; it is BOUNCED back to the
 *    producer, which makes it directly (it had no effect here).
 *  - not borrowed: rlimits (RLIMIT_FSIZE), cwd/root (only fd-based calls
 *    are allowed), audit and accounting attribution, the personality.
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
#include <linux/nospec.h>
#include <linux/socket.h>
#include <linux/uaccess.h>
#include <asm/unistd.h>
#include <asm/ptrace.h>
#include <asm/cpufeature.h>

#include "esca.h"

typedef long (*esca_syscall_fn)(const struct pt_regs *regs);

struct esca_call {
	const char *sym;
	esca_syscall_fn fn;
	u8 fd_args; /* bit i: args[i] is an fd whose I/O may block */
	bool sigpipe; /* -EPIPE comes with SIGPIPE unless MSG_NOSIGNAL */
	s8 msg_flags_arg; /* index of a MSG_* flags argument, or -1 */
};

#define CALL(nr, name, fds, pipe, mflags)  \
	[nr] = { .sym = "__x64_sys_" name, \
		 .fd_args = (fds),         \
		 .sigpipe = (pipe),        \
		 .msg_flags_arg = (mflags) }

/* The allowlist. Anything else is answered -ENOSYS. */
static struct esca_call esca_calls[] = {
	CALL(__NR_read, "read", BIT(0), false, -1),
	CALL(__NR_write, "write", BIT(0), true, -1),
	CALL(__NR_readv, "readv", BIT(0), false, -1),
	CALL(__NR_writev, "writev", BIT(0), true, -1),
	CALL(__NR_pread64, "pread64", BIT(0), false, -1),
	CALL(__NR_pwrite64, "pwrite64", BIT(0), true, -1),
	CALL(__NR_sendto, "sendto", BIT(0), true, 3),
	CALL(__NR_recvfrom, "recvfrom", BIT(0), false, -1),
	CALL(__NR_sendmsg, "sendmsg", BIT(0), true, 2),
	CALL(__NR_recvmsg, "recvmsg", BIT(0), false, -1),
	CALL(__NR_sendfile, "sendfile64", BIT(0) | BIT(1), true, -1),
	CALL(__NR_close, "close", 0, false, -1),
	CALL(__NR_shutdown, "shutdown", 0, false, -1),
	CALL(__NR_epoll_ctl, "epoll_ctl", 0, false, -1),
	CALL(__NR_fsync, "fsync", 0, false, -1),
	CALL(__NR_fdatasync, "fdatasync", 0, false, -1),
	CALL(__NR_ftruncate, "ftruncate", 0, false, -1),
	CALL(__NR_fchmod, "fchmod", 0, false, -1),
	CALL(__NR_fchown, "fchown", 0, false, -1),
	CALL(__NR_setsockopt, "setsockopt", 0, false, -1),
	CALL(__NR_getsockopt, "getsockopt", 0, false, -1),
};

static void (*esca_put_files_struct)(struct files_struct *files);
static struct workqueue_struct *esca_put_wq; /* when it cannot be called */

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
	unsigned long put;
	unsigned int i;
	int ret = resolve_kallsyms();

	if (ret)
		return ret;
	/*
	 * put_files_struct is only ever called directly in the kernel, so IBT
	 * seals it; then file tables go back through an exiting thread.
	 */
	put = esca_kallsyms("put_files_struct");
	if (!esca_files_put_exit && put &&
	    (!cpu_feature_enabled(X86_FEATURE_IBT) || starts_with_endbr(put))) {
		esca_put_files_struct = (void *)put;
	} else {
		esca_put_wq = alloc_workqueue("esca-put", WQ_UNBOUND, 0);
		if (!esca_put_wq)
			return -ENOMEM;
		pr_info("esca: file tables released by exiting threads (%s)\n",
			esca_files_put_exit ? "files_put_exit=1" :
			put		    ? "put_files_struct sealed by IBT" :
					      "put_files_struct not found");
	}
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
 * Releasing a file table without calling put_files_struct: a short-lived
 * kernel thread adopts it as its own and exits, and do_exit() ->
 * exit_files() puts it (a direct call, so IBT has no say). The thread
 * inherited a share of kthreadd's table, which lives as long as the
 * system: that share is dropped by hand.
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

	if (esca_put_files_struct) {
		esca_put_files_struct(files);
		return;
	}
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

/*
 * Could I/O on @fd sleep without bound? Regular files, block devices and
 * directories do bounded work; anything else must be in non-blocking mode.
 * A bad fd is left to the call itself, which reports EBADF.
 */
static bool fd_may_block(unsigned int fd)
{
	struct file *f = fget(fd);
	umode_t mode;
	bool block;

	if (!f)
		return false;
	mode = file_inode(f)->i_mode;
	block = !(f->f_flags & O_NONBLOCK) && !S_ISREG(mode) &&
		!S_ISBLK(mode) && !S_ISDIR(mode);
	fput(f);
	return block;
}

static long exec_one(struct esca_ring *ring, const struct esca_sqe *sqe,
		     u32 *cflags)
{
	const struct esca_call *call;
	struct pt_regs regs;
	unsigned int nr = sqe->nr, i;
	long res;

	if (sqe->flags & ~ESCA_SQE_VALID_FLAGS)
		return -EINVAL;
	if (nr >= ARRAY_SIZE(esca_calls))
		return -ENOSYS;
	nr = array_index_nospec(nr, ARRAY_SIZE(esca_calls));
	call = &esca_calls[nr];
	if (!call->fn)
		return -ENOSYS;
	for (i = 0; i < 6; i++) {
		if ((call->fd_args & BIT(i)) &&
		    fd_may_block((unsigned int)sqe->args[i])) {
			*cflags |= ESCA_CQE_BOUNCED;
			return 0;
		}
	}

	memset(&regs, 0, sizeof(regs));
	regs.di = sqe->args[0];
	regs.si = sqe->args[1];
	regs.dx = sqe->args[2];
	regs.r10 = sqe->args[3];
	regs.r8 = sqe->args[4];
	regs.r9 = sqe->args[5];
	regs.orig_ax = nr;
	regs.ax = -ENOSYS;
	res = call->fn(&regs);

	/* No signal is ever pending here, but be exact if one path says
	 * "restart": a direct caller would see EINTR at worst.
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

/* Execute up to ESCA_BATCH_PER_PASS entries of @ring; returns how many. */
unsigned int esca_ring_run(struct esca_consumer *c, struct esca_ring *ring)
{
	struct esca_ctx *ctx = ring->ctx;
	const struct cred *cred, *old_cred;
	struct files_struct *old_files;
	u32 head = ring->head, tail, n, i;
	u64 errors = 0, bounced = 0;
	struct files_struct *files;

	if (READ_ONCE(ring->paused))
		return 0;
	tail = smp_load_acquire(&ring->sq->sq_tail); /* B, matches A */
	if (tail == head)
		return 0;
	/* Set at mmap, before the producer could write the tail we saw. */
	files = READ_ONCE(ring->files);
	if (!files)
		return 0;
	if (tail - head > ring->entries) {
		pr_notice_ratelimited(
			"esca: pid %d ring %u: tail %u is more than %u past head %u; ring stopped\n",
			ctx->tgid, ring->id, tail, ring->entries, head);
		esca_ring_kill(ring);
		return 0;
	}
#ifdef CONFIG_SECCOMP
	if (READ_ONCE(ring->task->seccomp.mode) != SECCOMP_MODE_DISABLED) {
		pr_notice_ratelimited(
			"esca: pid %d ring %u: thread is now under seccomp; ring stopped\n",
			ctx->tgid, ring->id);
		esca_ring_kill(ring);
		return 0;
	}
#endif
	if (!mmget_not_zero(ctx->mm)) {
		esca_ring_kill(ring); /* the process is exiting */
		return 0;
	}
	n = min_t(u32, tail - head, ESCA_BATCH_PER_PASS);

	kthread_use_mm(ctx->mm);
	old_files = swap_files(files);
	cred = get_task_cred(ring->task);
	old_cred = override_creds(cred);

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

		res = exec_one(ring, &sqe, &cflags);
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
			WRITE_ONCE(ring->paused, true);
			esca_ring_flags(ring, ESCA_RING_PAUSED, 0);
			spin_unlock(&c->lock);
		}
		/* C, matches D: the CQE is written before the head passes it */
		smp_store_release(&ring->cq->sq_head, head + 1);
		if (pause) {
			n = i + 1;
			break;
		}
	}

	revert_creds(old_cred);
	put_cred(cred);
	swap_files(old_files);
	kthread_unuse_mm(ctx->mm);
	/* Never run the process's final __mmput (exit_mmap) on this core. */
	mmput_async(ctx->mm);

	c->calls += n;
	c->batches++;
	c->errors += errors;
	c->bounced += bounced;
	atomic64_add(n, &ctx->calls);
	if (errors)
		atomic64_add(errors, &ctx->errors);
	if (bounced)
		atomic64_add(bounced, &ctx->bounced);
	if (wq_has_sleeper(&ring->cq_wait)) /* also for a pause */
		wake_up_all(&ring->cq_wait);
	return n;
}
