// SPDX-License-Identifier: MIT OR GPL-2.0
/*
 * Rings: allocation, the user mapping, kill and release.
 *
 * The ring memory is one vmalloc_user() area, its two sides mapped once
 * each into the registering process (the completion side read-only),
 * VM_DONTCOPY (fork children do not inherit them) and VM_DONTEXPAND;
 * splitting is refused and a move by mremap is followed, so the ring dies
 * when its last vma closes (munmap, exec, exit_mm).
 */
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/sched/task.h>
#include <linux/version.h>

#include "esca.h"

static void esca_vma_set_flags(struct vm_area_struct *vma, unsigned long set,
			       unsigned long clear)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	vm_flags_mod(vma, set, clear);
#else
	vma->vm_flags = (vma->vm_flags | set) & ~clear;
#endif
}

struct esca_ring *esca_ring_create(struct esca_ctx *ctx)
{
	struct esca_ring *ring;

	ring = kzalloc(sizeof(*ring), GFP_KERNEL);
	if (!ring)
		return NULL;
	ring->entries = ctx->entries;
	ring->mask = ctx->entries - 1;
	ring->sq_size = PAGE_ALIGN(ESCA_SQ_MMAP_SIZE(ring->entries));
	ring->cq_size = PAGE_ALIGN(ESCA_CQ_MMAP_SIZE(ring->entries));
	ring->mem = vmalloc_user(ring->sq_size + ring->cq_size);
	if (!ring->mem) {
		kfree(ring);
		return NULL;
	}
	ring->sq = ring->mem;
	ring->sqes = ring->mem + ESCA_SQES_OFFSET;
	ring->cq = ring->mem + ring->sq_size;
	ring->cqes = (void *)ring->cq + ESCA_CQES_OFFSET;
	ring->cq->entries = ring->entries;
	ring->cq->mask = ring->mask;

	kref_init(&ring->ref);
	init_waitqueue_head(&ring->cq_wait);
	INIT_LIST_HEAD(&ring->node);
	esca_ctx_get(ctx);
	ring->ctx = ctx;
	get_task_struct(current);
	ring->task = current;
	return ring;
}

void esca_ring_get(struct esca_ring *ring)
{
	kref_get(&ring->ref);
}

static void ring_release(struct kref *ref)
{
	struct esca_ring *ring = container_of(ref, struct esca_ring, ref);

	if (ring->files) /* mapped but never retired by a consumer */
		esca_files_put(ring->files);
	put_task_struct(ring->task);
	vfree(ring->mem);
	esca_ctx_put(ring->ctx);
	kfree_rcu(ring, rcu);
}

void esca_ring_put(struct esca_ring *ring)
{
	kref_put(&ring->ref, ring_release);
}

/* Mark dead (idempotent); the consumer retires it at its next pass. */
void esca_ring_kill(struct esca_ring *ring)
{
	struct esca_consumer *c = ring->consumer;

	if (test_and_set_bit(ESCA_RING_S_DEAD, &ring->state))
		return;
	atomic_dec(&ring->ctx->nr_rings);
	if (c)
		wake_up(&c->wq);
}

/*
 * Called by the consumer (holding c->lock) as it drops a dead ring: it
 * will never touch the ring's entries again, so sq_head is final. Only now
 * is ESCA_RING_DEAD shown to the producer, which may then make the entries
 * that never ran itself without any risk of running one twice. Returns the
 * file table reference for the caller to put once it has dropped c->lock
 * (putting it may close every file of an exited process).
 */
struct files_struct *esca_ring_retire(struct esca_ring *ring)
{
	struct files_struct *files = ring->files;

	ring->files = NULL; /* the caller puts it, outside c->lock */
	esca_ring_flags(ring, ESCA_RING_DEAD, 0);
	set_bit(ESCA_RING_S_DROPPED, &ring->state);
	wake_up_all(&ring->cq_wait);
	return files;
}

/*
 * mremap copies the vma (->open) and then closes one of the two: the old
 * one when the move succeeds, the new one when it fails. So each vma holds
 * a ring reference and the ring dies with the last vma, not the first.
 */
static void esca_vm_open(struct vm_area_struct *vma)
{
	struct esca_ring *ring = vma->vm_private_data;

	atomic_inc(&ring->maps);
	esca_ring_get(ring);
}

static void esca_vm_close(struct vm_area_struct *vma)
{
	struct esca_ring *ring = vma->vm_private_data;

	if (atomic_dec_and_test(&ring->maps))
		esca_ring_kill(ring);
	esca_ring_put(ring); /* this vma's ref */
}

/* One ring, one range: a partial munmap or mprotect would split it. */
static int esca_vm_may_split(struct vm_area_struct *vma, unsigned long addr)
{
	return -EINVAL;
}

static const struct vm_operations_struct esca_vm_ops = {
	.open = esca_vm_open,
	.close = esca_vm_close,
	.may_split = esca_vm_may_split,
};

/*
 * Give @ring the mapping thread's file table, once it is mapped (so only a
 * ring whose vma ->close will kill it ever holds one; an unmapped ring
 * holding it would keep the /dev/esca file, and so itself, alive forever).
 * A real reference: while the count is above one, fdget() never takes its
 * unreferenced single-owner shortcut, so a concurrent close() by the owner
 * cannot free a file the consumer is using. Under c->lock, so it cannot
 * cross the consumer retiring the ring.
 */
static int ring_attach_files(struct esca_ring *ring)
{
	struct esca_consumer *c = ring->consumer;
	struct files_struct *files;
	int ret = 0;

	task_lock(current);
	files = current->files;
	atomic_inc(&files->count);
	task_unlock(current);
	spin_lock(&c->lock);
	if (test_bit(ESCA_RING_S_DROPPED, &ring->state))
		ret = -ENXIO;
	else if (!ring->files)
		swap(ring->files, files); /* first side mapped: keep it */
	spin_unlock(&c->lock);
	if (files)
		esca_files_put(files);
	return ret;
}

/*
 * Map one side of @ring (@cq: the completion side, which must be read-only
 * and stays so: VM_MAYWRITE is cleared, so mprotect cannot add write).
 * Consumes the caller's reference on @ring on success.
 */
int esca_ring_mmap(struct esca_ring *ring, struct vm_area_struct *vma, bool cq)
{
	size_t size = cq ? ring->cq_size : ring->sq_size;
	int bit = cq ? ESCA_RING_S_CQ_MAPPED : ESCA_RING_S_SQ_MAPPED;
	int ret;

	if (vma->vm_end - vma->vm_start != size)
		return -EINVAL;
	if (cq && (vma->vm_flags & VM_WRITE))
		return -EPERM;
	if (esca_ring_dead(ring))
		return -ENXIO;
	if (test_and_set_bit(bit, &ring->state))
		return -EBUSY;
	ret = remap_vmalloc_range(vma, ring->mem,
				  cq ? ring->sq_size >> PAGE_SHIFT : 0);
	if (!ret)
		ret = ring_attach_files(ring);
	if (ret) {
		clear_bit(bit, &ring->state);
		return ret;
	}
	esca_vma_set_flags(vma, VM_DONTCOPY | VM_DONTEXPAND | VM_DONTDUMP,
			   cq ? VM_MAYWRITE : 0);
	atomic_inc(&ring->maps);
	vma->vm_private_data = ring;
	vma->vm_ops = &esca_vm_ops;
	return 0;
}
