// SPDX-License-Identifier: MIT OR GPL-2.0
/*
 * Contexts: one per registered process (per mm), created by ESCA_IOC_SETUP
 * and killed when its /dev/esca file is released. Threads register lazily
 * with ESCA_IOC_REGISTER and get one ring each.
 *
 * Nothing lost: an MMU notifier's ->release runs when the address space
 * is about to be torn down (the process exits, is killed, or execs), while
 * its memory, the file tables the rings hold and the rings' credentials
 * are all still intact. It runs every queued entry of the process's rings
 * there, before the memory goes, then kills the rings: a deferred call
 * accepted before the process died takes effect, as it would have made
 * directly.
 */
#include <linux/slab.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/seccomp.h>
#include <linux/audit.h>
#include <linux/cred.h>

#include "esca.h"

DEFINE_MUTEX(esca_ctx_lock);
LIST_HEAD(esca_ctx_list);
atomic_t esca_live_ctx = ATOMIC_INIT(0);

/* Is any thread of @t's process under a seccomp filter? */
bool esca_group_seccomp(struct task_struct *t)
{
#ifdef CONFIG_SECCOMP
	struct task_struct *x;
	bool found = false;

	rcu_read_lock();
	for_each_thread(t, x) {
		if (READ_ONCE(x->seccomp.mode) != SECCOMP_MODE_DISABLED) {
			found = true;
			break;
		}
	}
	rcu_read_unlock();
	return found;
#else
	return false;
#endif
}

/*
 * Offloaded calls would pass through neither a seccomp filter nor the
 * audit of the caller's system calls, so a process under either is
 * refused rather than let it escape them.
 */
int esca_refuse_current(const char *what)
{
	const char *why = NULL;

	if (esca_group_seccomp(current))
		why = "process runs under seccomp";
	else if (!audit_dummy_context())
		why = "its system calls are audited";
	if (!why)
		return 0;
	pr_notice_ratelimited("esca: pid %d (%s): %s refused: %s\n",
			      task_tgid_nr(current), current->comm, what, why);
	return -EPERM;
}

static bool ring_drained(struct esca_ring *ring)
{
	u32 tail;

	if (esca_ring_dead(ring) || !esca_ring_files(ring))
		return true;
	if (test_bit(ESCA_RING_S_RUNNING, &ring->state))
		return false;
	tail = READ_ONCE(ring->sq->sq_tail);
	return tail == READ_ONCE(ring->head) || READ_ONCE(ring->paused) ||
	       tail - READ_ONCE(ring->head) > ring->entries ||
	       !esca_ring_runnable(ring);
}

/*
 * The address space is about to go: no thread runs in it any more, so
 * nothing new can be queued. Let the consumers run what is queued (they
 * use the mm without mm_users while ctx->draining: exit_mmap waits here),
 * wait for it, then kill every ring so no consumer touches the mm again.
 */
static void ctx_mm_release(struct mmu_notifier *mn, struct mm_struct *mm)
{
	struct esca_ctx *ctx = container_of(mn, struct esca_ctx, mn);
	struct esca_ring *ring;
	unsigned long id, deadline = jiffies + ESCA_DRAIN_MAX;

	mutex_lock(&ctx->lock);
	WRITE_ONCE(ctx->draining, true);
	xa_for_each(&ctx->rings, id, ring) {
		struct esca_consumer *c = READ_ONCE(ring->consumer);

		if (c)
			esca_consumer_wake(c);
	}
	xa_for_each(&ctx->rings, id, ring) {
		long left = (long)(deadline - jiffies);

		if (left <= 0 ||
		    !wait_event_timeout(ring->cq_wait, ring_drained(ring), left))
			pr_notice_ratelimited(
				"esca: pid %d ring %u: queue not drained at exit\n",
				ctx->tgid, ring->id);
		esca_ring_kill(ring, ESCA_DEAD_PROCESS);
	}
	mutex_unlock(&ctx->lock);
	/*
	 * A batch that started before the kill may still be finishing, on
	 * any ring of ours (an unregistered one too): the memory must stay
	 * until it has, however long a stuck call takes (a direct call
	 * stuck there would hold the exit back just the same).
	 */
	smp_mb__after_atomic(); /* the kills before the count, see ring_run */
	while (!wait_event_timeout(ctx->drain_wq, !atomic_read(&ctx->running),
				   ESCA_DRAIN_MAX))
		pr_notice_ratelimited(
			"esca: pid %d: exit waits for a call still running\n",
			ctx->tgid);
	/*
	 * No batch runs now and none will (the rings are dead): their
	 * references on the file table go here, in the exiting task before
	 * its exit_files(), so the process's own put stays the last and its
	 * files are closed before its parent's waitpid() returns, as without
	 * the module. (The consumer would drop them only when it retires the
	 * rings, which may come later.)
	 */
	mutex_lock(&ctx->lock);
	xa_for_each(&ctx->rings, id, ring) {
		struct files_struct *files = xchg(&ring->files, NULL);

		if (files)
			esca_files_put(files);
	}
	mutex_unlock(&ctx->lock);
}

static const struct mmu_notifier_ops esca_mn_ops = {
	.release = ctx_mm_release,
};

struct esca_ctx *esca_ctx_create(u32 entries)
{
	struct esca_ctx *ctx, *other;
	int ret;

	ctx = kzalloc(sizeof(*ctx), GFP_KERNEL_ACCOUNT);
	if (!ctx)
		return ERR_PTR(-ENOMEM);
	ctx->share = kcalloc(esca_nr_consumers, sizeof(*ctx->share),
			     GFP_KERNEL_ACCOUNT);
	if (!ctx->share) {
		kfree(ctx);
		return ERR_PTR(-ENOMEM);
	}
	kref_init(&ctx->ref);
	mutex_init(&ctx->lock);
	init_waitqueue_head(&ctx->drain_wq);
	xa_init_flags(&ctx->rings, XA_FLAGS_ALLOC);
	ctx->entries = entries;
	ctx->tgid = task_tgid_nr(current);
	ctx->pid = get_pid(task_tgid(current));
	ctx->uid = current_uid();
	ctx->mm = current->mm;
	mmgrab(ctx->mm);
	ctx->mn.ops = &esca_mn_ops;

	mutex_lock(&esca_ctx_lock);
	list_for_each_entry(other, &esca_ctx_list, node) {
		if (other->mm == ctx->mm && !READ_ONCE(other->dead)) {
			ret = -EBUSY;
			goto fail;
		}
	}
	ret = mmu_notifier_register(&ctx->mn, ctx->mm);
	if (ret)
		goto fail;
	ctx->mn_registered = true;
	list_add_tail(&ctx->node, &esca_ctx_list);
	atomic_inc(&esca_live_ctx);
	mutex_unlock(&esca_ctx_lock);
	return ctx;
fail:
	mutex_unlock(&esca_ctx_lock);
	mmdrop(ctx->mm);
	put_pid(ctx->pid);
	kfree(ctx->share);
	kfree(ctx);
	return ERR_PTR(ret);
}

void esca_ctx_get(struct esca_ctx *ctx)
{
	kref_get(&ctx->ref);
}

/* Unregistering the notifier sleeps (SRCU), so it runs from a work item. */
static void ctx_free_work(struct work_struct *work)
{
	struct esca_ctx *ctx = container_of(work, struct esca_ctx, free_work);

	if (ctx->mn_registered)
		mmu_notifier_unregister(&ctx->mn, ctx->mm);
	mmdrop(ctx->mm);
	put_pid(ctx->pid);
	kfree(ctx->share);
	xa_destroy(&ctx->rings);
	atomic_dec(&esca_live_ctx);
	kfree_rcu(ctx, rcu); /* WAKE may still look at it */
}

static void ctx_release(struct kref *ref)
{
	struct esca_ctx *ctx = container_of(ref, struct esca_ctx, ref);

	mutex_lock(&esca_ctx_lock);
	list_del(&ctx->node);
	mutex_unlock(&esca_ctx_lock);
	/* Module unload destroys esca_wq, which runs it first. */
	INIT_WORK(&ctx->free_work, ctx_free_work);
	queue_work(esca_wq, &ctx->free_work);
}

void esca_ctx_put(struct esca_ctx *ctx)
{
	kref_put(&ctx->ref, ctx_release);
}

/* File release: no more registrations; every ring dies. */
void esca_ctx_kill(struct esca_ctx *ctx)
{
	struct esca_ring *ring;
	unsigned long id;

	mutex_lock(&ctx->lock);
	WRITE_ONCE(ctx->dead, true);
	xa_for_each(&ctx->rings, id, ring) {
		xa_erase(&ctx->rings, id);
		esca_ring_kill(ring, ESCA_DEAD_CLOSED);
		esca_ring_uncharge_if_gone(ring);
		esca_ring_put(ring);
	}
	mutex_unlock(&ctx->lock);
}

/*
 * A new ring for the calling thread. The id is reserved first and the
 * ring published in the table only once it is complete (consumer set), so
 * a WAKE racing REGISTER never sees a half-made ring.
 */
struct esca_ring *esca_ctx_register(struct esca_ctx *ctx)
{
	struct esca_consumer *c;
	struct esca_ring *ring;
	u32 id;
	int ret;

	if (current->mm != ctx->mm)
		return ERR_PTR(-EBADF);
	ret = esca_refuse_current("thread registration");
	if (ret)
		return ERR_PTR(ret);
	ring = esca_ring_create(ctx);
	if (IS_ERR(ring))
		return ring;

	mutex_lock(&ctx->lock);
	if (ctx->dead || ctx->draining) {
		ret = -ENXIO;
		goto fail;
	}
	ret = xa_alloc(&ctx->rings, &id, NULL, XA_LIMIT(0, ESCA_MAX_RINGS - 1),
		       GFP_KERNEL);
	if (ret) {
		if (ret == -EBUSY) {
			pr_notice_ratelimited(
				"esca: pid %d: more than %u threads registered\n",
				ctx->tgid, ESCA_MAX_RINGS);
			ret = -ENOSPC;
		}
		goto fail;
	}
	ring->id = id;
	c = esca_consumer_pick();
	if (!c) {
		xa_erase(&ctx->rings, id);
		ret = -ENXIO; /* every consumer CPU is offline */
		goto fail;
	}
	atomic_inc(&ctx->nr_rings);
	esca_ring_get(ring); /* for the consumer's list */
	esca_consumer_add_ring(c, ring);
	xa_store(&ctx->rings, id, ring, GFP_KERNEL); /* publish: complete */
	esca_ring_get(ring); /* for the caller */
	mutex_unlock(&ctx->lock);
	return ring;

fail:
	mutex_unlock(&ctx->lock);
	esca_ring_put(ring);
	return ERR_PTR(ret);
}

/* Kill and drop @ring from the table if it is still there (by pointer). */
void esca_ctx_unregister_ring(struct esca_ctx *ctx, struct esca_ring *ring)
{
	struct esca_ring *old;

	mutex_lock(&ctx->lock);
	old = xa_cmpxchg(&ctx->rings, ring->id, ring, NULL, GFP_KERNEL);
	mutex_unlock(&ctx->lock);
	if (old != ring)
		return;
	esca_ring_kill(ring, ESCA_DEAD_CLOSED);
	esca_ring_uncharge_if_gone(ring);
	esca_ring_put(ring);
}

int esca_ctx_unregister(struct esca_ctx *ctx, u32 id)
{
	struct esca_ring *ring;

	mutex_lock(&ctx->lock);
	ring = xa_erase(&ctx->rings, id);
	mutex_unlock(&ctx->lock);
	if (!ring)
		return -ENOENT;
	esca_ring_kill(ring, ESCA_DEAD_CLOSED);
	esca_ring_uncharge_if_gone(ring);
	esca_ring_put(ring);
	return 0;
}

/* Returns a reference, or NULL. */
struct esca_ring *esca_ctx_ring_get(struct esca_ctx *ctx, u32 id)
{
	struct esca_ring *ring;

	mutex_lock(&ctx->lock);
	ring = xa_load(&ctx->rings, id);
	if (ring)
		esca_ring_get(ring);
	mutex_unlock(&ctx->lock);
	return ring;
}
