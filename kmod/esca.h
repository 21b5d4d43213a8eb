/* SPDX-License-Identifier: MIT OR GPL-2.0 */
/*
 * esca.ko internals. The user-visible contract is include/esca/abi.h.
 *
 * Object lifetimes (all refcounted, nothing waits for anything):
 *
 *   esca_ctx   one per process (per mm). Refs: the /dev/esca file, and
 *              one per ring. Holds mmgrab(mm) so ctx->mm stays a valid
 *              pointer; the consumer takes mmget_not_zero() only while it
 *              executes a batch, so it never keeps a dead process's
 *              address space alive.
 *   esca_ring  one per registered thread. Refs: the ctx's ring table
 *              (dropped by UNREGISTER or file release), each vma mapping
 *              one of its two sides (dropped by vm_ops->close: munmap,
 *              exec, exit_mm; the last one kills the ring), and the
 *              serving consumer's list (dropped when the consumer retires
 *              the ring). It holds the registering thread's task_struct
 *              until it is freed, and that thread's files_struct from the
 *              first mmap until the consumer retires it. Taken at mmap,
 *              so only a ring that a vma ->close will kill ever holds it:
 *              the table holds the /dev/esca file, whose release drops the
 *              ctx's ring refs, so a ring that could hold it forever would
 *              be a cycle leaking every file of the process.
 *
 * Killing a ring (esca_ring_kill) only marks it dead and wakes the
 * consumer. The consumer stops serving it between two entries and only
 * then retires it (esca_ring_retire): shows ESCA_RING_DEAD, wakes waiters,
 * lets go of the file table. So when a producer sees DEAD, sq_head is
 * final: every entry either completed or never ran.
 */
#ifndef ESCA_KMOD_H
#define ESCA_KMOD_H

#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/xarray.h>
#include <linux/fdtable.h>
#include <linux/sched.h>

#include "../include/esca/abi.h"

#define ESCA_BATCH_PER_PASS 32 /* entries per ring per pass: fairness */
#define ESCA_SLEEP_MAX HZ /* longest consumer sleep without a wakeup */

struct esca_consumer {
	int cpu;
	struct task_struct *task;
	wait_queue_head_t wq; /* the consumer sleeps here */

	spinlock_t lock; /* rings, nr_rings, sleeping, ring hdr->flags */
	struct list_head rings;
	unsigned int nr_rings;
	bool sleeping;

	/* Written by the consumer thread only; read racily by stats. */
	u64 calls;
	u64 batches;
	u64 sleeps;
	u64 errors;
	u64 bounced;
	atomic64_t wakeups; /* ESCA_IOC_WAKE calls, from any thread */
};

struct esca_ctx {
	struct kref ref;
	struct mm_struct *mm; /* mmgrab'd */
	pid_t tgid;
	u32 entries;

	struct mutex lock; /* rings table, dead */
	struct xarray rings; /* ring_id -> ring, holds a ring ref */
	bool dead;

	struct list_head node; /* esca_ctx_list, under esca_ctx_lock */
	atomic_t nr_rings;
	atomic64_t calls;
	atomic64_t errors;
	atomic64_t bounced;
};

struct esca_ring {
	struct kref ref;
	struct esca_ctx *ctx; /* holds a ctx ref */
	struct esca_consumer *consumer;
	struct list_head node; /* consumer->rings, under consumer->lock */
	u32 id;
	u32 entries;
	u32 mask;
	u32 head; /* private sq_head: consumer writes, others READ_ONCE */

	void *mem; /* vmalloc_user: submission side, then completion side */
	size_t sq_size; /* page-aligned sizes of the two sides */
	size_t cq_size;
	struct esca_sq_hdr *sq; /* user-writable: read sq_tail only */
	struct esca_cq_hdr *cq; /* mapped read-only */
	struct esca_sqe *sqes;
	struct esca_cqe *cqes;

	struct task_struct *task; /* registering thread (ref) */
	struct files_struct *files; /* its file table (ref) from mmap to retire */

	unsigned long state; /* ESCA_RING_S_* bits */
	atomic_t maps; /* vmas mapping the ring (mremap makes two for a while) */
	bool paused; /* a deferred entry bounced: wait for RESUME */
	wait_queue_head_t cq_wait; /* ESCA_IOC_WAIT sleepers */
	struct rcu_head rcu; /* ESCA_IOC_WAKE looks rings up under RCU */
};

enum {
	ESCA_RING_S_DEAD, /* killed: no new batch will start */
	ESCA_RING_S_DROPPED, /* the consumer let go: sq_head is final */
	ESCA_RING_S_SQ_MAPPED,
	ESCA_RING_S_CQ_MAPPED,
};

/* module.c */
extern unsigned int esca_idle_us;
extern bool esca_files_put_exit;
extern struct esca_consumer *esca_consumers;
extern unsigned int esca_nr_consumers;

/* consumer.c */
int esca_consumers_start(const struct cpumask *cores);
void esca_consumers_stop(void);
struct esca_consumer *esca_consumer_pick(void);
void esca_consumer_add_ring(struct esca_consumer *c, struct esca_ring *ring);
void esca_consumer_wake(struct esca_consumer *c);
void esca_ring_resume(struct esca_ring *ring);

/* ring.c */
struct esca_ring *esca_ring_create(struct esca_ctx *ctx);
void esca_ring_get(struct esca_ring *ring);
void esca_ring_put(struct esca_ring *ring);
void esca_ring_kill(struct esca_ring *ring);
struct files_struct *esca_ring_retire(struct esca_ring *ring);
/*
 * Update the ring's user-visible flags. Every writer holds the serving
 * consumer's lock, so the read-modify-write cannot lose an update.
 */
static inline void esca_ring_flags(struct esca_ring *ring, u32 set, u32 clear)
{
	WRITE_ONCE(ring->cq->flags,
		   (READ_ONCE(ring->cq->flags) | set) & ~clear);
}

static inline bool esca_ring_dead(const struct esca_ring *ring)
{
	return test_bit(ESCA_RING_S_DEAD, &ring->state);
}
int esca_ring_mmap(struct esca_ring *ring, struct vm_area_struct *vma, bool cq);

/* context.c */
extern struct mutex esca_ctx_lock;
extern struct list_head esca_ctx_list;
extern atomic_t esca_live_ctx;
struct esca_ctx *esca_ctx_create(u32 entries);
void esca_ctx_get(struct esca_ctx *ctx);
void esca_ctx_put(struct esca_ctx *ctx);
void esca_ctx_kill(struct esca_ctx *ctx);
struct esca_ring *esca_ctx_register(struct esca_ctx *ctx);
int esca_ctx_unregister(struct esca_ctx *ctx, u32 id);
struct esca_ring *esca_ctx_ring_get(struct esca_ctx *ctx, u32 id);
int esca_refuse_seccomp(const char *what);

/* device.c */
int esca_device_init(void);
void esca_device_exit(void);

/* exec.c */
int esca_exec_init(void);
void esca_exec_exit(void);
unsigned int esca_ring_run(struct esca_consumer *c, struct esca_ring *ring);
void esca_files_put(struct files_struct *files);

/* stats.c */
int esca_stats_init(void);
void esca_stats_exit(void);

#endif /* ESCA_KMOD_H */
