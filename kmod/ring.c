// SPDX-License-Identifier: MIT OR GPL-2.0
/*
 * Rings: creation, memory and the user mapping, kill and release; the
 * per-user memory cap; the thread-exit probe.
 *
 * Ring memory is allocated page by page at the first mmap, charged to the
 * mapping process's memory cgroup (GFP_KERNEL_ACCOUNT) and counted
 * against the user's user_ring_kb, then mapped once per side into the
 * registering thread's process with vm_insert_page: the completion side
 * read-only (VM_MAYWRITE cleared), both VM_IO (so MADV_DOFORK is refused
 * and a fork child never inherits them), VM_DONTCOPY, VM_DONTEXPAND.
 * Splitting is refused and a move by mremap is followed, so the ring dies
 * when its last vma closes (munmap, exec, exit_mm).
 */
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/hashtable.h>
#include <linux/tracepoint.h>
#include <linux/cred.h>
#include <linux/sched/task.h>
#include <linux/sched/signal.h>
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

/* ---- ring memory per user ------------------------------------------- */

struct esca_user {
	struct hlist_node node;
	kuid_t uid;
	size_t bytes;
};

static DEFINE_HASHTABLE(esca_users, 6);
static DEFINE_SPINLOCK(esca_users_lock);

/* Count @bytes against @uid's cap; -EDQUOT past it. */
static int user_charge(kuid_t uid, size_t bytes)
{
	struct esca_user *u, *fresh = kzalloc(sizeof(*fresh), GFP_KERNEL);
	size_t cap = (size_t)READ_ONCE(esca_user_ring_kb) << 10;
	int ret = 0;

	spin_lock(&esca_users_lock);
	hash_for_each_possible(esca_users, u, node, __kuid_val(uid))
		if (uid_eq(u->uid, uid))
			goto found;
	if (!fresh) {
		ret = -ENOMEM;
		goto out;
	}
	u = fresh;
	fresh = NULL;
	u->uid = uid;
	hash_add(esca_users, &u->node, __kuid_val(uid));
found:
	if (u->bytes + bytes > cap) {
		ret = -EDQUOT;
		goto out;
	}
	u->bytes += bytes;
out:
	spin_unlock(&esca_users_lock);
	kfree(fresh);
	if (ret == -EDQUOT)
		pr_notice_ratelimited(
			"esca: uid %u: ring memory would pass user_ring_kb=%u; registration refused\n",
			from_kuid(&init_user_ns, uid), esca_user_ring_kb);
	return ret;
}

static void user_uncharge(kuid_t uid, size_t bytes)
{
	struct esca_user *u;

	spin_lock(&esca_users_lock);
	hash_for_each_possible(esca_users, u, node, __kuid_val(uid)) {
		if (!uid_eq(u->uid, uid))
			continue;
		u->bytes -= min(u->bytes, bytes);
		if (!u->bytes) {
			hash_del(&u->node);
			kfree(u);
		}
		break;
	}
	spin_unlock(&esca_users_lock);
}

void esca_users_exit(void)
{
	struct hlist_node *tmp;
	struct esca_user *u;
	int bkt;

	hash_for_each_safe(esca_users, bkt, tmp, u, node) {
		hash_del(&u->node);
		kfree(u);
	}
}

/* ---- thread -> rings, for the exit probe ------------------------------ */

static DEFINE_HASHTABLE(esca_task_rings, 8);
static DEFINE_SPINLOCK(esca_task_rings_lock);

/*
 * sched_process_exit runs in do_exit() of every exiting task. A thread
 * that exits while its process lives on must take its ring with it at
 * once: the ring's credentials are the thread's, and the process may drop
 * privileges right after and write into the dead thread's ring. A thread
 * that exits with its whole process (exit_group, a fatal signal, exec)
 * leaves its queue to the drain at address-space release: nothing queued
 * is lost. Under RCU with preemption off: only bits are set here.
 */
static void exit_probe(void *data, struct task_struct *p)
{
	struct signal_struct *sig = p->signal;
	/* exit_group of a lone thread sets no flag: it is the last one */
	bool group = (READ_ONCE(sig->flags) & SIGNAL_GROUP_EXIT) ||
		     READ_ONCE(sig->group_exec_task) ||
		     !atomic_read(&sig->live);
	struct esca_ring *ring;

	rcu_read_lock();
	hash_for_each_possible_rcu(esca_task_rings, ring, task_node,
				   (unsigned long)p) {
		if (ring->task != p)
			continue;
		set_bit(group ? ESCA_RING_S_EXIT_GROUP : ESCA_RING_S_EXIT_ALONE,
			&ring->state);
	}
	rcu_read_unlock();
}

static struct tracepoint *esca_exit_tp;

static void find_exit_tp(struct tracepoint *tp, void *priv)
{
	if (!strcmp(tp->name, "sched_process_exit"))
		esca_exit_tp = tp;
}

int esca_exit_probe_init(void)
{
	int ret;

	for_each_kernel_tracepoint(find_exit_tp, NULL);
	ret = esca_exit_tp ? tracepoint_probe_register(esca_exit_tp,
						       exit_probe, NULL) :
			     -ENOENT;
	if (ret) {
		/* Rings then tell the two exits apart when they look. */
		pr_warn("esca: no sched_process_exit probe (%d): thread exits seen late\n",
			ret);
		esca_exit_tp = NULL;
	}
	return 0;
}

bool esca_exit_probe_on(void)
{
	return READ_ONCE(esca_exit_tp) != NULL;
}

void esca_exit_probe_exit(void)
{
	if (!esca_exit_tp)
		return;
	tracepoint_probe_unregister(esca_exit_tp, exit_probe, NULL);
	tracepoint_synchronize_unregister();
	esca_exit_tp = NULL;
}

/* ---- rings ------------------------------------------------------------ */

/*
 * A ring for the calling thread, with a snapshot of its credentials; its
 * memory comes at mmap but is counted against the user's cap now, so the
 * cap's error comes from REGISTER.
 */
struct esca_ring *esca_ring_create(struct esca_ctx *ctx)
{
	struct esca_ring *ring;
	int ret;

	ring = kzalloc(sizeof(*ring), GFP_KERNEL_ACCOUNT);
	if (!ring)
		return ERR_PTR(-ENOMEM);
	ring->entries = ctx->entries;
	ring->mask = ctx->entries - 1;
	ring->sq_size = PAGE_ALIGN(ESCA_SQ_MMAP_SIZE(ring->entries));
	ring->cq_size = PAGE_ALIGN(ESCA_CQ_MMAP_SIZE(ring->entries));
	ret = user_charge(ctx->uid, ring->sq_size + ring->cq_size);
	if (ret) {
		kfree(ring);
		return ERR_PTR(ret);
	}
	ring->charged = ring->sq_size + ring->cq_size;

	kref_init(&ring->ref);
	init_waitqueue_head(&ring->cq_wait);
	INIT_LIST_HEAD(&ring->node);
	esca_ctx_get(ctx);
	ring->ctx = ctx;
	get_task_struct(current);
	ring->task = current;
	ring->cred = get_current_cred();

	spin_lock(&esca_task_rings_lock);
	hash_add_rcu(esca_task_rings, &ring->task_node, (unsigned long)current);
	spin_unlock(&esca_task_rings_lock);
	return ring;
}

void esca_ring_get(struct esca_ring *ring)
{
	kref_get(&ring->ref);
}

/* Undo ring_alloc_mem (@n pages allocated); mapped pages live on. */
static void ring_pages_free(struct page **pages, unsigned int n, void *mem)
{
	if (mem)
		vunmap(mem);
	while (n--)
		__free_page(pages[n]);
	kvfree(pages);
}

static void ring_release(struct kref *ref)
{
	struct esca_ring *ring = container_of(ref, struct esca_ring, ref);
	struct esca_ctx *ctx = ring->ctx;

	spin_lock(&esca_task_rings_lock);
	hash_del_rcu(&ring->task_node);
	spin_unlock(&esca_task_rings_lock);
	if (ring->files) /* mapped but never retired by a consumer */
		esca_files_put(ring->files);
	put_cred(ring->cred);
	put_task_struct(ring->task);
	ring_pages_free(ring->pages, ring->nr_pages, ring->mem);
	user_uncharge(ctx->uid, ring->charged);
	kfree_rcu(ring, rcu);
	esca_ctx_put(ctx);
}

void esca_ring_put(struct esca_ring *ring)
{
	kref_put(&ring->ref, ring_release);
}

/*
 * A dead ring that no vma maps will never be seen by user space again:
 * its user gets the charge back now (UNREGISTER, file release, the last
 * munmap, whichever comes last), not when the consumer lets go of it, so a
 * user cycling one ring at a time is never refused. A dead ring gets no
 * memory and no new mapping (ring_attach, esca_ring_mmap).
 */
void esca_ring_uncharge_if_gone(struct esca_ring *ring)
{
	struct esca_consumer *c = esca_ring_lock_consumer(ring);
	size_t bytes = 0;

	if (esca_ring_dead(ring) && !atomic_read(&ring->maps)) {
		bytes = ring->charged;
		ring->charged = 0;
	}
	spin_unlock(&c->lock);
	if (bytes)
		user_uncharge(ring->ctx->uid, bytes);
}

/*
 * Mark dead (idempotent; the first reason stays); the consumer retires it
 * at its next pass.
 */
void esca_ring_kill(struct esca_ring *ring, u32 reason)
{
	struct esca_consumer *c;

	if (test_and_set_bit(ESCA_RING_S_DEAD, &ring->state))
		return;
	WRITE_ONCE(ring->dead_reason, reason);
	atomic_dec(&ring->ctx->nr_rings);
	c = READ_ONCE(ring->consumer);
	if (c)
		wake_up(&c->wq);
	wake_up_all(&ring->cq_wait); /* a drain may wait on it */
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
	/* the caller puts it, outside c->lock; the exit drain may have */
	struct files_struct *files = xchg(&ring->files, NULL);

	if (ring->cq)
		WRITE_ONCE(ring->cq->dead_reason, READ_ONCE(ring->dead_reason));
	esca_ring_flags(ring, ESCA_RING_DEAD, 0);
	set_bit(ESCA_RING_S_DROPPED, &ring->state);
	wake_up_all(&ring->cq_wait);
	return files;
}

/*
 * mremap copies the vma (->open) and then closes one of the two: the old
 * one when the move succeeds, the new one when it fails. So each vma holds
 * a ring reference and the ring dies with the last vma, not the first.
 * A copy into another mm (fork after MADV_DOFORK, which VM_IO refuses
 * anyway) would let a child drive the parent's ring: kill it instead.
 */
static void esca_vm_open(struct vm_area_struct *vma)
{
	struct esca_ring *ring = vma->vm_private_data;

	atomic_inc(&ring->maps);
	esca_ring_get(ring);
	if (vma->vm_mm != ring->ctx->mm) {
		pr_notice_ratelimited(
			"esca: pid %d ring %u: mapping copied into another process; ring stopped\n",
			ring->ctx->tgid, ring->id);
		esca_ring_kill(ring, ESCA_DEAD_IDENTITY);
	}
}

static void esca_vm_close(struct vm_area_struct *vma)
{
	struct esca_ring *ring = vma->vm_private_data;

	if (atomic_dec_and_test(&ring->maps)) {
		esca_ring_kill(ring, ESCA_DEAD_CLOSED);
		esca_ring_uncharge_if_gone(ring);
	}
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

/* Allocate the ring's pages (charged to the caller's memcg) and a vmap. */
static int ring_alloc_mem(struct esca_ring *ring, struct page ***pages_out,
			  void **mem_out)
{
	unsigned int n = (ring->sq_size + ring->cq_size) >> PAGE_SHIFT, i;
	struct page **pages;
	void *mem;

	pages = kvcalloc(n, sizeof(*pages), GFP_KERNEL_ACCOUNT);
	if (!pages)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		pages[i] = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);
		if (!pages[i])
			goto fail;
	}
	mem = vmap(pages, n, VM_MAP, PAGE_KERNEL);
	if (!mem)
		goto fail;
	*pages_out = pages;
	*mem_out = mem;
	return 0;
fail:
	ring_pages_free(pages, i, NULL);
	return -ENOMEM;
}

/*
 * Give @ring its memory (first mapping only) and the mapping thread's file
 * table, and publish both to the consumer: under c->lock, so neither can
 * cross the consumer retiring the ring, and files last with release
 * semantics (esca_ring_files() acquires). A real reference on the table:
 * while the count is above one, fdget() never takes its unreferenced
 * single-owner shortcut, so a concurrent close() by the owner cannot free a
 * file the consumer is using.
 */
static int ring_attach(struct esca_ring *ring)
{
	struct files_struct *files;
	struct esca_consumer *c;
	struct page **pages = NULL;
	void *mem = NULL;
	int ret = 0;

	if (!READ_ONCE(ring->mem)) {
		ret = ring_alloc_mem(ring, &pages, &mem);
		if (ret)
			return ret;
	}
	task_lock(current);
	files = current->files;
	atomic_inc(&files->count);
	task_unlock(current);

	c = esca_ring_lock_consumer(ring);
	if (test_bit(ESCA_RING_S_DROPPED, &ring->state) || esca_ring_dead(ring)) {
		ret = -ENXIO; /* and a dead ring gets no memory: see above */
	} else if (!ring->mem && mem) {
		struct esca_cq_hdr *cq = mem + ring->sq_size;

		cq->entries = ring->entries;
		cq->mask = ring->mask;
		cq->ring_id = ring->id;
		if (c->sleeping)
			cq->flags = ESCA_RING_NEED_WAKEUP;
		ring->pages = pages;
		ring->nr_pages = (ring->sq_size + ring->cq_size) >> PAGE_SHIFT;
		ring->sq = mem;
		ring->sqes = mem + ESCA_SQES_OFFSET;
		ring->cq = cq;
		ring->cqes = (void *)cq + ESCA_CQES_OFFSET;
		ring->mem = mem;
		pages = NULL;
		mem = NULL;
	}
	if (!ret && !ring->files) {
		smp_store_release(&ring->files, files); /* first side: keep */
		files = NULL;
	}
	spin_unlock(&c->lock);
	if (files)
		esca_files_put(files);
	if (mem) /* another mmap gave the ring its memory first */
		ring_pages_free(pages,
				(ring->sq_size + ring->cq_size) >> PAGE_SHIFT,
				mem);
	return ret;
}

/*
 * Map one side of @ring (@cq: the completion side, which must be read-only
 * and stays so). Only the registering thread may map its ring: the ring
 * borrows that thread's identity. Consumes the caller's reference on @ring
 * on success.
 */
int esca_ring_mmap(struct esca_ring *ring, struct vm_area_struct *vma, bool cq)
{
	size_t size = cq ? ring->cq_size : ring->sq_size;
	int bit = cq ? ESCA_RING_S_CQ_MAPPED : ESCA_RING_S_SQ_MAPPED;
	unsigned int first = cq ? ring->sq_size >> PAGE_SHIFT : 0, i;
	int ret;

	if (current != ring->task)
		return -EPERM;
	if (vma->vm_end - vma->vm_start != size)
		return -EINVAL;
	if (cq && (vma->vm_flags & VM_WRITE))
		return -EPERM;
	if (esca_ring_dead(ring))
		return -ENXIO;
	if (test_and_set_bit(bit, &ring->state))
		return -EBUSY;
	ret = ring_attach(ring);
	if (ret)
		goto fail;
	esca_vma_set_flags(vma,
			   VM_IO | VM_DONTCOPY | VM_DONTEXPAND | VM_DONTDUMP,
			   cq ? VM_MAYWRITE : 0);
	for (i = 0; i < size >> PAGE_SHIFT; i++) {
		ret = vm_insert_page(vma, vma->vm_start + i * PAGE_SIZE,
				     ring->pages[first + i]);
		if (ret)
			goto fail; /* the failed mmap unmaps what was put */
	}
	atomic_inc(&ring->maps);
	vma->vm_private_data = ring;
	vma->vm_ops = &esca_vm_ops;
	return 0;
fail:
	clear_bit(bit, &ring->state);
	return ret;
}
