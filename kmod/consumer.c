// SPDX-License-Identifier: MIT OR GPL-2.0
/*
 * Consumers: one per core of cores=, each served by a worker, a kernel
 * thread "esca/N" bound to core N. A worker serves its consumer's rings,
 * a bounded number of entries per process per pass (rotating which ring
 * goes first), spins while it finds work and, after idle_us without work,
 * sets NEED_WAKEUP on its rings and sleeps (io_uring SQPOLL's order:
 * prepare_to_wait, set flag, full barrier, re-check, schedule).
 *
 * No call may stall a consumer. A watchdog looks at every worker each
 * few milliseconds: a call running longer than call_timeout_ms and asleep
 * (not running nor preempted) gets a SIGKILL, which the worker alone can receive (allow_kernel_signal): every
 * interruptible or killable wait ends, as it would for a killed process,
 * and the call returns what it returns then. A call that ignores it (an
 * uninterruptible wait on a FUSE daemon that never answers) has its worker
 * superseded: a new worker takes the consumer over at once; the stuck one
 * finishes its call whenever it can, kills that ring (ESCA_DEAD_STALLED)
 * and exits. A ring is run by one worker at a time (ESCA_RING_S_RUNNING).
 *
 * CPU hotplug: when a consumer's CPU goes offline its worker stops and its
 * rings move to the other consumers (or die, ESCA_DEAD_OFFLINE, if none is
 * left); when the CPU comes back a new worker is bound to it.
 *
 * Only the worker removes rings from its list while it runs; others only
 * append (under c->lock), so a ring the worker holds a cursor on stays in
 * the list. esca_workers_lock orders worker changes (watchdog, hotplug,
 * unload).
 */
#include <linux/kthread.h>
#include <linux/slab.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/topology.h>
#include <linux/timekeeping.h>
#include <linux/jiffies.h>
#include <linux/rcupdate.h>
#include <linux/cpuhotplug.h>
#include <linux/cpu.h>
#include <linux/module.h>

#include "esca.h"

struct esca_consumer *esca_consumers;
unsigned int esca_nr_consumers;
static DEFINE_MUTEX(esca_workers_lock);

/* Lock the consumer serving @ring, which hotplug may change meanwhile. */
struct esca_consumer *esca_ring_lock_consumer(struct esca_ring *ring)
{
	struct esca_consumer *c;

	for (;;) {
		c = READ_ONCE(ring->consumer);
		spin_lock(&c->lock);
		if (likely(READ_ONCE(ring->consumer) == c))
			return c;
		spin_unlock(&c->lock);
	}
}

/* The worker's pid in @ns, 0 while offline. */
pid_t esca_consumer_pid(struct esca_consumer *c, struct pid_namespace *ns)
{
	pid_t pid = 0;

	mutex_lock(&esca_workers_lock);
	if (c->worker)
		pid = task_pid_nr_ns(c->worker->task, ns);
	mutex_unlock(&esca_workers_lock);
	return pid;
}

bool esca_worker_superseded(struct esca_worker *w)
{
	return smp_load_acquire(&w->superseded); /* stuck_ring is set */
}

/* Around every call: what the watchdog looks at. */
void esca_call_begin(struct esca_worker *w, struct esca_ring *ring)
{
	w->call_ring = ring;
	/* jiffies: a clock read per call would be an MMIO read on HPET */
	WRITE_ONCE(w->call_start, get_jiffies_64() | 1);
}

void esca_call_end(struct esca_worker *w)
{
	u64 interrupted;

	spin_lock(&w->call_lock);
	w->call_start = 0;
	interrupted = w->interrupted_at;
	w->interrupted_at = 0;
	spin_unlock(&w->call_lock);
	/* After the lock no SIGKILL can come for this call: drop it. */
	if (interrupted || signal_pending(current))
		flush_signals(current);
}

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

	list_del_init(&ring->node);
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
		if (esca_ring_dead(ring) ?
			    !test_bit(ESCA_RING_S_RUNNING, &ring->state) :
			    esca_ring_has_work(ring)) {
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

/*
 * One pass over all rings; returns the number of entries executed. Each
 * process gets ESCA_BATCH_PER_PASS entries per pass however many rings it
 * has, and the list rotates so every ring goes first in turn.
 */
static unsigned int consumer_pass(struct esca_worker *w)
{
	struct esca_consumer *c = w->c;
	struct esca_ring *ring, *next;
	unsigned int done = 0;
	bool dead;
	u64 pass;

	esca_borrow_check(w);
	spin_lock(&c->lock);
	pass = ++c->pass;
	if (!list_empty(&c->rings))
		list_rotate_left(&c->rings);
	ring = list_first_entry_or_null(&c->rings, struct esca_ring, node);
	spin_unlock(&c->lock);

	while (ring) {
		if (!esca_ring_dead(ring)) {
			struct esca_ctx_share *s = &ring->ctx->share[c->idx];
			unsigned int n;

			if (s->pass != pass) {
				s->pass = pass;
				s->done = 0;
			}
			if (s->done < ESCA_BATCH_PER_PASS) {
				n = esca_ring_run(
					w, ring, ESCA_BATCH_PER_PASS - s->done);
				s->done += n;
				done += n;
			}
			if (esca_worker_superseded(w))
				return done; /* the list is the new worker's */
		}

		/* Putting a file table closes files, some of another
		 * process: never with a process's identity still borrowed.
		 */
		dead = esca_ring_dead(ring);
		if (dead)
			esca_borrow_release(w);
		spin_lock(&c->lock);
		next = list_is_last(&ring->node, &c->rings) ?
			       NULL :
			       list_next_entry(ring, node);
		if (dead && !test_bit(ESCA_RING_S_RUNNING, &ring->state))
			consumer_drop(c, ring);
		else
			spin_unlock(&c->lock);
		ring = next;
		cond_resched();
	}
	return done;
}

/*
 * Nothing to do yet: spin. PAUSE only if the core has an SMT sibling
 * online, which the spin would otherwise starve. Alone on its core the
 * spin gains nothing from it (SQPOLL's idle loop has none either), and
 * under an emulated CPU a PAUSE costs more than the pass itself: measured
 * under QEMU TCG, without it an idle pass takes half the time and a
 * producer's tail is seen 0.1-0.5 us sooner (README, "What a synchronous
 * call still pays").
 */
static void consumer_idle(struct esca_consumer *c)
{
	if (cpumask_weight(topology_sibling_cpumask(c->cpu)) > 1)
		cpu_relax();
}

static int consumer_loop(void *data)
{
	struct esca_worker *w = data;
	struct esca_consumer *c = w->c;
	u64 last_work = ktime_get_ns();

	/* Only the watchdog's (kernel) SIGKILL reaches us: see the top. */
	allow_kernel_signal(SIGKILL);
	while (!kthread_should_stop() && !esca_worker_superseded(w)) {
		if (consumer_pass(w)) {
			last_work = ktime_get_ns();
		} else if (esca_worker_superseded(w)) {
			break;
		} else if (ktime_get_ns() - last_work >
			   (u64)READ_ONCE(esca_idle_us) * NSEC_PER_USEC) {
			esca_borrow_release(w); /* never asleep as a process */
			consumer_sleep(c);
			last_work = ktime_get_ns();
		} else {
			consumer_idle(c);
		}
		/* Also a quiescent state for RCU-tasks, which a thread that
		 * never sleeps under load would otherwise stall.
		 */
		cond_resched_tasks_rcu_qs();
	}
	esca_borrow_release(w);
	if (esca_worker_superseded(w)) {
		struct esca_ring *stuck = w->stuck_ring;

		/* Our call returned at last: its ring dies, we go. */
		esca_ring_kill(stuck, ESCA_DEAD_STALLED);
		esca_ring_put(stuck); /* taken when we were superseded */
		esca_consumer_wake(c);
		put_task_struct(w->task);
		kfree(w);
		module_put_and_kthread_exit(0);
	}
	/* Stopped: the stopper frees us and deals with the rings. */
	return 0;
}

static struct esca_worker *worker_create(struct esca_consumer *c)
{
	struct esca_worker *w = kzalloc(sizeof(*w), GFP_KERNEL);
	struct task_struct *t;

	if (!w)
		return ERR_PTR(-ENOMEM);
	spin_lock_init(&w->call_lock);
	w->c = c;
	t = kthread_create_on_node(consumer_loop, w, cpu_to_node(c->cpu),
				   "esca/%d", c->cpu);
	if (IS_ERR(t)) {
		pr_err("esca: cannot create consumer thread for CPU %d: %ld\n",
		       c->cpu, PTR_ERR(t));
		kfree(w);
		return ERR_CAST(t);
	}
	kthread_bind(t, c->cpu);
	get_task_struct(t);
	w->task = t;
	return w;
}

static void worker_stop(struct esca_worker *w)
{
	kthread_stop(w->task);
	put_task_struct(w->task);
	kfree(w);
}

/* Unload: every file is closed, so only dead rings are left. */
static void consumer_drop_all(struct esca_consumer *c)
{
	spin_lock(&c->lock);
	while (!list_empty(&c->rings)) {
		struct esca_ring *ring =
			list_first_entry(&c->rings, struct esca_ring, node);

		esca_ring_kill(ring, ESCA_DEAD_CLOSED);
		consumer_drop(c, ring);
		spin_lock(&c->lock);
	}
	spin_unlock(&c->lock);
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
		struct esca_worker *w;

		c->cpu = cpu;
		c->idx = i;
		spin_lock_init(&c->lock);
		INIT_LIST_HEAD(&c->rings);
		init_waitqueue_head(&c->wq);
		w = worker_create(c);
		if (IS_ERR(w)) {
			esca_nr_consumers = i;
			esca_consumers_stop();
			return PTR_ERR(w);
		}
		c->worker = w;
		i++;
	}
	esca_nr_consumers = n;
	for (i = 0; i < n; i++)
		wake_up_process(esca_consumers[i].worker->task);
	return 0;
}

void esca_consumers_stop(void)
{
	unsigned int i;

	mutex_lock(&esca_workers_lock);
	for (i = 0; i < esca_nr_consumers; i++) {
		struct esca_consumer *c = &esca_consumers[i];

		if (c->worker)
			worker_stop(c->worker);
		c->worker = NULL;
		consumer_drop_all(c);
	}
	mutex_unlock(&esca_workers_lock);
	kfree(esca_consumers);
	esca_consumers = NULL;
	esca_nr_consumers = 0;
}

/* Least-loaded online consumer, preferring the caller's NUMA node. */
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

		if (READ_ONCE(c->offline))
			continue;
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
	WRITE_ONCE(ring->consumer, c);
	/* A sleeping consumer must be woken by this ring's producer too. */
	if (c->sleeping)
		esca_ring_flags(ring, ESCA_RING_NEED_WAKEUP, 0);
	list_add_tail(&ring->node, &c->rings);
	c->nr_rings++;
	spin_unlock(&c->lock);
}

void esca_consumer_wake(struct esca_consumer *c)
{
	atomic64_inc(&c->wakeups);
	wake_up(&c->wq);
}

/*
 * A producer saw NEED_WAKEUP on @ring (ESCA_IOC_WAKE): wake its consumer
 * and take the flag off this ring, so that the producer's next entries do
 * not each pay a WAKE while the consumer's thread waits to be scheduled.
 * No wakeup is lost: the flag is only ever set while the consumer is on
 * its wait queue (after prepare_to_wait, io_uring SQPOLL's order) or
 * about to clear it, and it sets the flag again, then re-checks every
 * ring, before it next sleeps.
 */
void esca_consumer_wake_ring(struct esca_ring *ring)
{
	struct esca_cq_hdr *cq = READ_ONCE(ring->cq);
	struct esca_consumer *c;

	/* The lock only when there is a flag to take off (the producer
	 * cannot write it: the completion side is mapped read-only), so a
	 * process issuing WAKE in a loop does not contend the lock every
	 * other process's ring is served under. */
	if (!cq || !(READ_ONCE(cq->flags) & ESCA_RING_NEED_WAKEUP)) {
		esca_consumer_wake(READ_ONCE(ring->consumer));
		return;
	}
	c = esca_ring_lock_consumer(ring);
	if (c->sleeping)
		esca_ring_flags(ring, 0, ESCA_RING_NEED_WAKEUP);
	spin_unlock(&c->lock);
	esca_consumer_wake(c);
}

/* ---- watchdog ---------------------------------------------------------- */

static struct delayed_work esca_watchdog;
static bool esca_watchdog_stopping;

/*
 * @w has ignored its SIGKILL: hand its consumer to a new worker. The stuck
 * worker keeps a reference on the ring of its call (its RUNNING bit keeps
 * every other worker off it) and kills it when the call returns.
 */
static void consumer_replace(struct esca_consumer *c, struct esca_worker *w)
{
	struct esca_worker *nw = worker_create(c);
	struct esca_ring *ring = NULL;

	if (IS_ERR(nw))
		return; /* try again at the next tick */
	/* Still in that call? Then its ring is alive (RUNNING: not dropped). */
	spin_lock(&w->call_lock);
	if (w->call_start && w->interrupted_at) {
		ring = w->call_ring;
		esca_ring_get(ring);
		w->stuck_ring = ring;
		smp_store_release(&w->superseded, true);
	}
	spin_unlock(&w->call_lock);
	if (!ring) {
		worker_stop(nw); /* never started: it just goes */
		return;
	}
	spin_lock(&c->lock);
	c->worker = nw;
	spin_unlock(&c->lock);
	__module_get(THIS_MODULE); /* dropped by the stuck worker's exit */
	atomic64_inc(&c->replaced);
	pr_warn("esca: CPU %d: a call of pid %d (ring %u) ignores its interrupt; a new worker takes over, the ring dies\n",
		c->cpu, ring->ctx->tgid, ring->id);
	wake_up_process(nw->task);
}

static unsigned long watchdog_period(void)
{
	unsigned int ms = READ_ONCE(esca_call_timeout_ms) / 4;

	return msecs_to_jiffies(clamp(ms, 10U, 250U));
}

/*
 * End @w's current call's waits: a SIGKILL only that kernel thread can
 * receive (esca_call_end drops it). Caller holds w->call_lock.
 */
static void worker_interrupt(struct esca_worker *w, u64 now)
{
	w->interrupted_at = now;
	send_sig(SIGKILL, w->task, 1);
}

/* Has @w's call (started at @start) been asleep since the last tick? */
static bool worker_waiting(struct esca_worker *w, u64 start)
{
	struct task_struct *t = w->task;
	unsigned long sw = READ_ONCE(t->nvcsw) + READ_ONCE(t->nivcsw);
	bool asleep = start && !task_is_running(t) && !READ_ONCE(t->on_cpu);
	bool same = asleep && w->seen_start == start && w->seen_switches == sw;

	w->seen_start = asleep ? start : 0;
	w->seen_switches = sw;
	return same;
}

static void watchdog_fn(struct work_struct *work)
{
	unsigned int ms = READ_ONCE(esca_call_timeout_ms);
	u64 budget = ms ? msecs_to_jiffies(ms) : 0;
	u64 now = get_jiffies_64() | 1;
	unsigned int i;

	mutex_lock(&esca_workers_lock);
	for (i = 0; budget && i < esca_nr_consumers; i++) {
		struct esca_consumer *c = &esca_consumers[i];
		struct esca_worker *w = c->worker;
		bool replace = false;
		u64 start;

		if (!w)
			continue;
		spin_lock(&w->call_lock);
		start = READ_ONCE(w->call_start);
		/*
		 * Only a call that waits, and has waited since the last tick
		 * (no context switch in between): one that runs, was
		 * preempted, or sits on a CPU the host has paused (an
		 * emulated one) is making progress.
		 */
		if (worker_waiting(w, start) && now > start &&
		    now - start > budget) {
			if (!w->interrupted_at) {
				worker_interrupt(w, now);
				atomic64_inc(&c->stalls);
			} else if (now - w->interrupted_at >
				   max_t(u64, budget, msecs_to_jiffies(100))) {
				replace = true;
			}
		}
		spin_unlock(&w->call_lock);
		if (replace)
			consumer_replace(c, w);
	}
	mutex_unlock(&esca_workers_lock);
	if (!READ_ONCE(esca_watchdog_stopping))
		queue_delayed_work(esca_wq, &esca_watchdog, watchdog_period());
}

void esca_watchdog_start(void)
{
	INIT_DELAYED_WORK(&esca_watchdog, watchdog_fn);
	queue_delayed_work(esca_wq, &esca_watchdog, watchdog_period());
}

void esca_watchdog_stop(void)
{
	WRITE_ONCE(esca_watchdog_stopping, true);
	cancel_delayed_work_sync(&esca_watchdog);
}

/* ---- CPU hotplug ------------------------------------------------------- */

static int esca_hp_state = -1;

static struct esca_consumer *consumer_of(unsigned int cpu)
{
	unsigned int i;

	for (i = 0; i < esca_nr_consumers; i++)
		if (esca_consumers[i].cpu == cpu)
			return &esca_consumers[i];
	return NULL;
}

/* Move @ring (off every list) to another consumer, or let it die. */
static void ring_rehome(struct esca_consumer *from, struct esca_ring *ring)
{
	struct esca_consumer *to = esca_consumer_pick();
	struct files_struct *files;

	if (to) {
		spin_lock(&to->lock);
		WRITE_ONCE(ring->consumer, to);
		if (to->sleeping)
			esca_ring_flags(ring, ESCA_RING_NEED_WAKEUP, 0);
		else
			esca_ring_flags(ring, 0, ESCA_RING_NEED_WAKEUP);
		list_add_tail(&ring->node, &to->rings);
		to->nr_rings++;
		spin_unlock(&to->lock);
		esca_consumer_wake(to);
		return;
	}
	/* No consumer left: the ring dies and its calls go direct. */
	esca_ring_kill(ring, ESCA_DEAD_OFFLINE);
	spin_lock(&from->lock);
	files = esca_ring_retire(ring);
	spin_unlock(&from->lock);
	if (files)
		esca_files_put(files);
	esca_ring_put(ring);
}

static int esca_cpu_offline(unsigned int cpu)
{
	struct esca_consumer *c;
	struct esca_ring *ring, *tmp;
	LIST_HEAD(moving);

	struct esca_worker *w;

	mutex_lock(&esca_workers_lock);
	c = consumer_of(cpu);
	if (!c || c->offline)
		goto out;
	spin_lock(&c->lock);
	WRITE_ONCE(c->offline, true);
	w = c->worker;
	c->worker = NULL;
	spin_unlock(&c->lock);
	/*
	 * Stop it without the lock (the watchdog takes it) and without
	 * waiting a whole budget: a call it is in is interrupted now.
	 */
	mutex_unlock(&esca_workers_lock);
	if (w) {
		spin_lock(&w->call_lock);
		if (w->call_start && !w->interrupted_at)
			worker_interrupt(w, get_jiffies_64() | 1);
		spin_unlock(&w->call_lock);
		worker_stop(w);
	}
	mutex_lock(&esca_workers_lock);

	spin_lock(&c->lock);
	list_for_each_entry_safe(ring, tmp, &c->rings, node) {
		/* A stuck worker still runs it: it stays until online. */
		if (test_bit(ESCA_RING_S_RUNNING, &ring->state))
			continue;
		list_move_tail(&ring->node, &moving);
		c->nr_rings--;
	}
	spin_unlock(&c->lock);
	list_for_each_entry_safe(ring, tmp, &moving, node) {
		list_del_init(&ring->node);
		ring_rehome(c, ring);
	}
	pr_info("esca: CPU %u offline: its rings moved to the other consumers\n",
		cpu);
out:
	mutex_unlock(&esca_workers_lock);
	return 0;
}

static int esca_cpu_online(unsigned int cpu)
{
	struct esca_consumer *c;
	struct esca_worker *w;

	mutex_lock(&esca_workers_lock);
	c = consumer_of(cpu);
	if (!c || !c->offline)
		goto out;
	w = worker_create(c);
	if (IS_ERR(w))
		goto out; /* stays offline; logged */
	spin_lock(&c->lock);
	c->worker = w;
	WRITE_ONCE(c->offline, false);
	spin_unlock(&c->lock);
	wake_up_process(w->task);
	pr_info("esca: CPU %u online: consumer thread bound to it again\n",
		cpu);
out:
	mutex_unlock(&esca_workers_lock);
	return 0;
}

int esca_hotplug_init(void)
{
	/* The caller holds cpus_read_lock: no CPU comes or goes meanwhile. */
	int ret = cpuhp_setup_state_nocalls_cpuslocked(CPUHP_AP_ONLINE_DYN,
						       "esca:online",
						       esca_cpu_online,
						       esca_cpu_offline);

	if (ret < 0) {
		pr_err("esca: cannot register for CPU hotplug: %d\n", ret);
		return ret;
	}
	esca_hp_state = ret;
	return 0;
}

void esca_hotplug_exit(void)
{
	if (esca_hp_state >= 0)
		cpuhp_remove_state_nocalls(esca_hp_state);
	esca_hp_state = -1;
}
