/* SPDX-License-Identifier: MIT OR GPL-2.0 */
/*
 * esca.ko internals. The user-visible contract is include/esca/abi.h.
 *
 * Object lifetimes (all refcounted):
 *
 *   esca_ctx   one per process (per mm). Refs: the /dev/esca file, and
 *              one per ring. Holds mmgrab(mm) and an MMU notifier on it,
 *              whose ->release (the address space is about to be torn
 *              down: exit, exec, kill) drains the process's rings and
 *              waits for every batch in flight. That is what keeps the
 *              address space intact under a batch: a worker takes no
 *              mm_users (an exiting process's last mmput must be its own,
 *              so its queue is run before it is reaped), only mmgrab.
 *              Freed through a work item (unregistering the notifier
 *              sleeps) after an RCU grace period.
 *   esca_ring  one per registered thread. Refs: the ctx's ring table
 *              (dropped by UNREGISTER or file release), each vma mapping
 *              one of its two sides (the last one kills the ring), and the
 *              serving consumer's list (dropped when the consumer retires
 *              the ring). It holds the registering thread's task_struct and
 *              a snapshot of its credentials until it is freed, and that
 *              thread's files_struct from the first mmap until the consumer
 *              retires it (only a ring a vma ->close will kill may hold the
 *              table: the table holds the /dev/esca file). Its memory is
 *              allocated at the first mmap, charged to the mapping process's
 *              memory cgroup and to its user's user_ring_kb. Freed after an
 *              RCU grace period (WAKE and the exit probe look rings up under
 *              RCU).
 *   esca_worker  the kernel thread serving one consumer. A worker stuck in
 *              a call that ignored the interrupt is superseded: a new worker
 *              serves the consumer's other rings, the stuck one finishes its
 *              call, kills that ring and exits on its own.
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
#include <linux/mmu_notifier.h>
#include <linux/workqueue.h>
#include <linux/uidgid.h>

#include "../include/esca/abi.h"

#define ESCA_BATCH_PER_PASS 32 /* entries per process per pass: fairness */
#define ESCA_PHASE_SAMPLE 16 /* phase_times: one batch in 16 is timed */
#define ESCA_SLEEP_MAX HZ /* longest consumer sleep without a wakeup */
#define ESCA_DRAIN_MAX (10 * HZ) /* longest wait for a dying process's rings */

struct esca_consumer;

/* The thread serving a consumer (see the lifetimes above). */
struct esca_worker {
	struct esca_consumer *c;
	struct task_struct *task; /* holds a task ref */
	spinlock_t call_lock; /* call_start, interrupted vs the watchdog */
	u64 call_start; /* jiffies64 | 1 the current call started, 0: none */
	u64 interrupted_at; /* when the watchdog interrupted it, 0: not */
	struct esca_ring *call_ring; /* the ring of the current call */
	struct esca_ring *stuck_ring; /* its ring when superseded (ref) */
	bool superseded; /* replaced while stuck: exit after the call */
	u64 seen_start; /* watchdog only: call seen asleep at the last tick */
	unsigned long seen_switches; /* and the context switches then */
	/*
	 * The identity the worker still holds between batches (exec.c,
	 * borrow once, serve many). mm_ctx: the process whose mm it uses
	 * (kthread_use_mm), NULL: nothing held; holds a ctx ref and counts in
	 * ctx->running, so the exit drain waits for esca_borrow_release(),
	 * which the worker calls at once when the ctx drains or dies, before
	 * it serves another process or file table, puts a ring's file table,
	 * sleeps or exits. The rest is held only while mm_ctx is set, each
	 * with a reference; the file table is put last, with no identity.
	 */
	struct esca_ctx *mm_ctx;
	struct files_struct *files, *old_files; /* current->files (a ref) */
	const struct cred *cred, *old_cred; /* overridden: ring->cred */
	struct mem_cgroup *memcg; /* active memcg: the mm's */
	struct cgroup_subsys_state *blkcg; /* associated: the ring task's */
};

struct esca_consumer {
	int cpu;
	unsigned int idx; /* index in esca_consumers */
	struct esca_worker *worker; /* current worker, NULL while offline */
	wait_queue_head_t wq; /* the consumer sleeps here */

	spinlock_t lock; /* rings, nr_rings, sleeping, worker, ring flags */
	struct list_head rings;
	unsigned int nr_rings;
	bool sleeping;
	bool offline; /* CPU offline: no worker, picked for no ring */
	u64 pass; /* pass counter, for per-process budgets */

	/* Written by the worker only; read racily by stats. */
	u64 calls;
	u64 batches;
	u64 sleeps;
	u64 errors;
	u64 bounced;
	u64 mm_switches; /* address spaces borrowed (kthread_use_mm) */
	atomic64_t wakeups; /* ESCA_IOC_WAKE calls, from any thread */
	atomic64_t stalls; /* calls the watchdog interrupted */
	atomic64_t replaced; /* workers superseded while stuck */

	/*
	 * Where a batch's time goes, in ns (local_clock, phase_times=1, one
	 * batch in ESCA_PHASE_SAMPLE; timed_* count the batches timed):
	 * per batch, the checks before it runs (dead, tail, identity),
	 * taking the process's identity (what differs from the one held:
	 * mm, creds, cgroups; the file table always) and giving back the
	 * file table (the rest only on a switch, drain or sleep);
	 * per call, the copy and checks (the blocking check), the call body,
	 * and publishing the completion. Written by the worker only.
	 */
	u64 ns_check, ns_borrow, ns_release;
	u64 ns_block, ns_body, ns_publish;
	u64 timed_batches, timed_calls;
};

/* Per consumer: how much of its pass budget a process used. */
struct esca_ctx_share {
	u64 pass;
	u32 done;
};

struct esca_ctx {
	struct kref ref;
	struct mm_struct *mm; /* mmgrab'd */
	struct mmu_notifier mn; /* ->release drains the rings */
	bool mn_registered;
	struct pid *pid; /* the process (thread group) */
	pid_t tgid; /* in the initial namespace, for log lines */
	kuid_t uid;
	u32 entries;

	struct mutex lock; /* rings table, dead */
	struct xarray rings; /* ring_id -> ring, holds a ring ref */
	bool dead;
	bool draining; /* the mm is being torn down: run what is queued */
	atomic_t running; /* batches in flight on its rings */
	wait_queue_head_t drain_wq; /* running reached 0 */

	struct esca_ctx_share *share; /* [esca_nr_consumers], worker-owned */

	struct list_head node; /* esca_ctx_list, under esca_ctx_lock */
	atomic_t nr_rings;
	atomic64_t calls;
	atomic64_t errors;
	atomic64_t bounced;
	struct work_struct free_work;
	struct rcu_head rcu;
};

struct esca_ring {
	struct kref ref;
	struct esca_ctx *ctx; /* holds a ctx ref */
	struct esca_consumer *consumer; /* changes only under both locks */
	struct list_head node; /* consumer->rings, under consumer->lock */
	struct hlist_node task_node; /* esca_task_rings, for the exit probe */
	u32 id;
	u32 entries;
	u32 mask;
	u32 head; /* private sq_head: consumer writes, others READ_ONCE */
	u32 pause_idx; /* the bounced deferred entry the ring waits on */
	u32 dead_reason; /* ESCA_DEAD_*, first kill wins */

	/* Ring memory, allocated at the first mmap (NULL before). */
	struct page **pages;
	unsigned int nr_pages;
	size_t charged; /* bytes counted against the user's user_ring_kb */
	void *mem; /* vmap of pages: submission side, then completion side */
	size_t sq_size; /* page-aligned sizes of the two sides */
	size_t cq_size;
	struct esca_sq_hdr *sq; /* user-writable: read tail and resume only */
	struct esca_cq_hdr *cq; /* mapped read-only */
	struct esca_sqe *sqes;
	struct esca_cqe *cqes;

	struct task_struct *task; /* registering thread (ref) */
	const struct cred *cred; /* its credentials at REGISTER (ref) */
	struct files_struct *files; /* its file table (ref) from mmap to retire */

	unsigned long state; /* ESCA_RING_S_* bits */
	atomic_t maps; /* vmas mapping the ring (mremap makes two for a while) */
	bool paused; /* a deferred entry bounced: wait for sq->resume */
	wait_queue_head_t cq_wait; /* ESCA_IOC_WAIT sleepers, the drain */
	struct rcu_head rcu;
};

enum {
	ESCA_RING_S_DEAD, /* killed: no new batch will start */
	ESCA_RING_S_DROPPED, /* the consumer let go: sq_head is final */
	ESCA_RING_S_SQ_MAPPED,
	ESCA_RING_S_CQ_MAPPED,
	ESCA_RING_S_EXIT_ALONE, /* its thread exited, the process lives on */
	ESCA_RING_S_EXIT_GROUP, /* its thread exited with the whole process */
	ESCA_RING_S_RUNNING, /* a worker runs a batch: one at a time */
};

/* module.c */
extern unsigned int esca_idle_us;
extern unsigned int esca_call_timeout_ms;
extern bool esca_phase_times;
extern unsigned int esca_user_ring_kb;
extern unsigned int esca_dev_uid, esca_dev_gid, esca_dev_mode;
extern bool esca_files_put_exit;
extern struct esca_consumer *esca_consumers;
extern unsigned int esca_nr_consumers;
extern struct workqueue_struct *esca_wq;

/* consumer.c */
int esca_consumers_start(const struct cpumask *cores);
void esca_consumers_stop(void);
int esca_hotplug_init(void);
void esca_hotplug_exit(void);
void esca_watchdog_start(void);
void esca_watchdog_stop(void);
struct esca_consumer *esca_consumer_pick(void);
void esca_consumer_add_ring(struct esca_consumer *c, struct esca_ring *ring);
void esca_consumer_wake(struct esca_consumer *c);
void esca_consumer_wake_ring(struct esca_ring *ring);
struct esca_consumer *esca_ring_lock_consumer(struct esca_ring *ring);
bool esca_worker_superseded(struct esca_worker *w);
pid_t esca_consumer_pid(struct esca_consumer *c, struct pid_namespace *ns);
void esca_call_begin(struct esca_worker *w, struct esca_ring *ring);
void esca_call_end(struct esca_worker *w);

/* ring.c */
struct esca_ring *esca_ring_create(struct esca_ctx *ctx);
void esca_ring_get(struct esca_ring *ring);
void esca_ring_put(struct esca_ring *ring);
void esca_ring_kill(struct esca_ring *ring, u32 reason);
void esca_ring_uncharge_if_gone(struct esca_ring *ring);
struct files_struct *esca_ring_retire(struct esca_ring *ring);
int esca_ring_mmap(struct esca_ring *ring, struct vm_area_struct *vma, bool cq);
int esca_exit_probe_init(void);
void esca_exit_probe_exit(void);
bool esca_exit_probe_on(void);
void esca_users_exit(void);

/*
 * Update the ring's user-visible flags. Every writer holds the serving
 * consumer's lock, so the read-modify-write cannot lose an update.
 */
static inline void esca_ring_flags(struct esca_ring *ring, u32 set, u32 clear)
{
	if (!ring->cq)
		return;
	WRITE_ONCE(ring->cq->flags,
		   (READ_ONCE(ring->cq->flags) | set) & ~clear);
}

static inline bool esca_ring_dead(const struct esca_ring *ring)
{
	return test_bit(ESCA_RING_S_DEAD, &ring->state);
}

/* Mapped and usable by a consumer: memory and file table are in place. */
static inline struct files_struct *esca_ring_files(struct esca_ring *ring)
{
	return smp_load_acquire(&ring->files); /* matches ring_attach_files */
}

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
void esca_ctx_unregister_ring(struct esca_ctx *ctx, struct esca_ring *ring);
struct esca_ring *esca_ctx_ring_get(struct esca_ctx *ctx, u32 id);
int esca_refuse_current(const char *what);
bool esca_group_seccomp(struct task_struct *t);

/* device.c */
int esca_device_init(void);
void esca_device_exit(void);

/* exec.c */
int esca_exec_init(void);
void esca_exec_exit(void);
unsigned int esca_ring_run(struct esca_worker *w, struct esca_ring *ring,
			   unsigned int budget);
bool esca_ring_runnable(struct esca_ring *ring);
bool esca_ring_has_work(struct esca_ring *ring);
void esca_borrow_release(struct esca_worker *w);
void esca_borrow_check(struct esca_worker *w);
void esca_files_put(struct files_struct *files);

/* stats.c */
int esca_stats_init(void);
void esca_stats_exit(void);

#endif /* ESCA_KMOD_H */
