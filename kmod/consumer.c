// SPDX-License-Identifier: MIT OR GPL-2.0
/*
 * Consumer threads: one "esca/N" kernel thread bound to each core of
 * cores=. Each serves the rings assigned to it, a bounded number of
 * entries per ring per pass, spins while it finds work and, after idle_us
 * without work, sets NEED_WAKEUP on its rings and sleeps (io_uring SQPOLL's
 * order: prepare_to_wait, set flag, full barrier, re-check, schedule).
 *
 * Only the consumer removes rings from its list; others only append (under
 * c->lock), so a ring the consumer holds a cursor on stays in the list.
 */
#include <linux/kthread.h>
#include <linux/slab.h>
#include <linux/sched.h>
#include <linux/topology.h>
#include <linux/timekeeping.h>
#include <linux/rcupdate.h>

#include "esca.h"

struct esca_consumer *esca_consumers;
unsigned int esca_nr_consumers;

/* Set or clear @flag in every ring's shared flags. Caller holds c->lock. */
static void rings_set_flag(struct esca_consumer *c, u32 flag, bool on)
{
	struct esca_ring *ring;

	list_for_each_entry(ring, &c->rings, node)
		esca_ring_flags(ring, on ? flag : 0, on ? 0 : flag);
}

/*
 * Unlink, retire and release a dead ring. Called with c->lock held, which
 * it drops: putting the file table may close every file of a process.
 */
static void consumer_drop(struct esca_consumer *c, struct esca_ring *ring)
	__releases(&c->lock)
{
	struct files_struct *files;

	list_del(&ring->node);
	c->nr_rings--;
	files = esca_ring_retire(ring);
	spin_unlock(&c->lock);
	if (files)
		esca_files_put(files);
	esca_ring_put(ring); /* the consumer list's ref */
}

static bool consumer_has_work(struct esca_consumer *c)
{
	struct esca_ring *ring;
	bool work = false;

	spin_lock(&c->lock);
	list_for_each_entry(ring, &c->rings, node) {
		if (esca_ring_dead(ring) ||
		    (READ_ONCE(ring->sq->sq_tail) != ring->head &&
		     !READ_ONCE(ring->paused))) {
			work = true;
			break;
		}
	}
	spin_unlock(&c->lock);
	return work;
}

static void consumer_sleep(struct esca_consumer *c)
{
	DEFINE_WAIT(wait);

	prepare_to_wait(&c->wq, &wait, TASK_INTERRUPTIBLE);
	spin_lock(&c->lock);
	rings_set_flag(c, ESCA_RING_NEED_WAKEUP, true);
	c->sleeping = true;
	spin_unlock(&c->lock);
	smp_mb(); /* F, matches E: flag store before the tail re-check */
	/*
	 * Bounded: a producer that lost its /dev/esca fd cannot wake us, and
	 * must still see its entries run (a second later at worst).
	 */
	if (!kthread_should_stop() && !consumer_has_work(c)) {
		c->sleeps++;
		schedule_timeout(ESCA_SLEEP_MAX);
	}
	finish_wait(&c->wq, &wait);
	spin_lock(&c->lock);
	c->sleeping = false;
	rings_set_flag(c, ESCA_RING_NEED_WAKEUP, false);
	spin_unlock(&c->lock);
}

/* One pass over all rings; returns the number of entries executed. */
static unsigned int consumer_pass(struct esca_consumer *c)
{
	struct esca_ring *ring, *next;
	unsigned int done = 0;

	spin_lock(&c->lock);
	ring = list_first_entry_or_null(&c->rings, struct esca_ring, node);
	spin_unlock(&c->lock);

	while (ring) {
		if (!esca_ring_dead(ring))
			done += esca_ring_run(c, ring);

		spin_lock(&c->lock);
		next = list_is_last(&ring->node, &c->rings) ?
			       NULL :
			       list_next_entry(ring, node);
		if (esca_ring_dead(ring))
			consumer_drop(c, ring);
		else
			spin_unlock(&c->lock);
		ring = next;
	}
	return done;
}

static int consumer_loop(void *data)
{
	struct esca_consumer *c = data;
	u64 last_work = ktime_get_ns();

	while (!kthread_should_stop()) {
		if (consumer_pass(c)) {
			last_work = ktime_get_ns();
		} else if (ktime_get_ns() - last_work >
			   (u64)READ_ONCE(esca_idle_us) * NSEC_PER_USEC) {
			consumer_sleep(c);
			last_work = ktime_get_ns();
		} else {
			cpu_relax();
		}
		/* Also a quiescent state for RCU-tasks, which a thread that
		 * never sleeps under load would otherwise stall.
		 */
		cond_resched_tasks_rcu_qs();
	}

	/* Stopping: only dead rings can be left (no file is open). */
	spin_lock(&c->lock);
	while (!list_empty(&c->rings)) {
		struct esca_ring *ring =
			list_first_entry(&c->rings, struct esca_ring, node);

		esca_ring_kill(ring);
		consumer_drop(c, ring);
		spin_lock(&c->lock);
	}
	spin_unlock(&c->lock);
	return 0;
}

int esca_consumers_start(const struct cpumask *cores)
{
	unsigned int n = cpumask_weight(cores), i = 0;
	int cpu;

	esca_consumers = kcalloc(n, sizeof(*esca_consumers), GFP_KERNEL);
	if (!esca_consumers)
		return -ENOMEM;
	for_each_cpu(cpu, cores) {
		struct esca_consumer *c = &esca_consumers[i];
		struct task_struct *t;

		c->cpu = cpu;
		spin_lock_init(&c->lock);
		INIT_LIST_HEAD(&c->rings);
		init_waitqueue_head(&c->wq);
		atomic64_set(&c->wakeups, 0);
		t = kthread_create_on_node(consumer_loop, c, cpu_to_node(cpu),
					   "esca/%d", cpu);
		if (IS_ERR(t)) {
			pr_err("esca: cannot create consumer thread for CPU %d: %ld\n",
			       cpu, PTR_ERR(t));
			esca_nr_consumers = i;
			esca_consumers_stop();
			return PTR_ERR(t);
		}
		kthread_bind(t, cpu);
		c->task = t;
		i++;
	}
	esca_nr_consumers = n;
	for (i = 0; i < n; i++)
		wake_up_process(esca_consumers[i].task);
	return 0;
}

void esca_consumers_stop(void)
{
	unsigned int i;

	for (i = 0; i < esca_nr_consumers; i++)
		kthread_stop(esca_consumers[i].task);
	kfree(esca_consumers);
	esca_consumers = NULL;
	esca_nr_consumers = 0;
}

/* Least-loaded consumer, preferring the caller's NUMA node. */
struct esca_consumer *esca_consumer_pick(void)
{
	struct esca_consumer *best = NULL;
	int node = numa_node_id();
	bool best_local = false;
	unsigned int i;

	for (i = 0; i < esca_nr_consumers; i++) {
		struct esca_consumer *c = &esca_consumers[i];
		bool local = cpu_to_node(c->cpu) == node;
		unsigned int load = READ_ONCE(c->nr_rings);

		if (!best || (local && !best_local) ||
		    (local == best_local && load < READ_ONCE(best->nr_rings))) {
			best = c;
			best_local = local;
		}
	}
	return best;
}

/* Takes over one reference on @ring for the consumer's list. */
void esca_consumer_add_ring(struct esca_consumer *c, struct esca_ring *ring)
{
	spin_lock(&c->lock);
	ring->consumer = c;
	/* A sleeping consumer must be woken by this ring's producer too. */
	if (c->sleeping)
		esca_ring_flags(ring, ESCA_RING_NEED_WAKEUP, 0);
	list_add_tail(&ring->node, &c->rings);
	c->nr_rings++;
	spin_unlock(&c->lock);
}

/* The producer made the bounced deferred call: serve the ring again. */
void esca_ring_resume(struct esca_ring *ring)
{
	struct esca_consumer *c = ring->consumer;

	spin_lock(&c->lock);
	WRITE_ONCE(ring->paused, false);
	esca_ring_flags(ring, 0, ESCA_RING_PAUSED);
	spin_unlock(&c->lock);
	esca_consumer_wake(c);
}

void esca_consumer_wake(struct esca_consumer *c)
{
	atomic64_inc(&c->wakeups);
	wake_up(&c->wq);
}
