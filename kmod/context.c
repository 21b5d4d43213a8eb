// SPDX-License-Identifier: MIT OR GPL-2.0
/*
 * Contexts: one per registered process (per mm), created by ESCA_IOC_SETUP
 * and killed when its /dev/esca file is released. Threads register lazily
 * with ESCA_IOC_REGISTER and get one ring each.
 */
#include <linux/slab.h>
#include <linux/sched/mm.h>
#include <linux/seccomp.h>

#include "esca.h"

DEFINE_MUTEX(esca_ctx_lock);
LIST_HEAD(esca_ctx_list);
atomic_t esca_live_ctx = ATOMIC_INIT(0);

/*
 * Offloaded calls would not pass through a seccomp filter, so a process
 * under one is refused rather than let it escape its sandbox.
 */
int esca_refuse_seccomp(const char *what)
{
#ifdef CONFIG_SECCOMP
	if (READ_ONCE(current->seccomp.mode) != SECCOMP_MODE_DISABLED) {
		pr_notice_ratelimited(
			"esca: pid %d (%s): %s refused: process runs under seccomp\n",
			task_tgid_nr(current), current->comm, what);
		return -EPERM;
	}
#endif
	return 0;
}

struct esca_ctx *esca_ctx_create(u32 entries)
{
	struct esca_ctx *ctx, *other;

	ctx = kzalloc(sizeof(*ctx), GFP_KERNEL);
	if (!ctx)
		return ERR_PTR(-ENOMEM);
	kref_init(&ctx->ref);
	mutex_init(&ctx->lock);
	xa_init_flags(&ctx->rings, XA_FLAGS_ALLOC);
	ctx->entries = entries;
	ctx->tgid = task_tgid_nr(current);
	ctx->mm = current->mm;

	mutex_lock(&esca_ctx_lock);
	list_for_each_entry(other, &esca_ctx_list, node) {
		if (other->mm == ctx->mm && !READ_ONCE(other->dead)) {
			mutex_unlock(&esca_ctx_lock);
			kfree(ctx);
			return ERR_PTR(-EBUSY);
		}
	}
	mmgrab(ctx->mm);
	list_add_tail(&ctx->node, &esca_ctx_list);
	atomic_inc(&esca_live_ctx);
	mutex_unlock(&esca_ctx_lock);
	return ctx;
}

void esca_ctx_get(struct esca_ctx *ctx)
{
	kref_get(&ctx->ref);
}

static void ctx_release(struct kref *ref)
{
	struct esca_ctx *ctx = container_of(ref, struct esca_ctx, ref);

	mutex_lock(&esca_ctx_lock);
	list_del(&ctx->node);
	mutex_unlock(&esca_ctx_lock);
	xa_destroy(&ctx->rings);
	mmdrop(ctx->mm);
	kfree(ctx);
	atomic_dec(&esca_live_ctx);
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
		esca_ring_kill(ring);
		esca_ring_put(ring);
	}
	mutex_unlock(&ctx->lock);
}

struct esca_ring *esca_ctx_register(struct esca_ctx *ctx)
{
	struct esca_consumer *c;
	struct esca_ring *ring;
	u32 id;
	int ret;

	if (current->mm != ctx->mm)
		return ERR_PTR(-EBADF);
	ret = esca_refuse_seccomp("thread registration");
	if (ret)
		return ERR_PTR(ret);
	ring = esca_ring_create(ctx);
	if (!ring)
		return ERR_PTR(-ENOMEM);

	mutex_lock(&ctx->lock);
	if (ctx->dead) {
		ret = -ENXIO;
		goto fail;
	}
	ret = xa_alloc(&ctx->rings, &id, ring, XA_LIMIT(0, ESCA_MAX_RINGS - 1),
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
	ring->cq->ring_id = id;
	atomic_inc(&ctx->nr_rings);
	c = esca_consumer_pick();
	esca_ring_get(ring); /* for the consumer's list */
	esca_consumer_add_ring(c, ring);
	esca_ring_get(ring); /* for the caller */
	mutex_unlock(&ctx->lock);
	return ring;

fail:
	mutex_unlock(&ctx->lock);
	esca_ring_put(ring);
	return ERR_PTR(ret);
}

int esca_ctx_unregister(struct esca_ctx *ctx, u32 id)
{
	struct esca_ring *ring;

	mutex_lock(&ctx->lock);
	ring = xa_erase(&ctx->rings, id);
	mutex_unlock(&ctx->lock);
	if (!ring)
		return -ENOENT;
	esca_ring_kill(ring);
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
