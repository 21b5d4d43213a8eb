// SPDX-License-Identifier: MIT OR GPL-2.0
/*
 * /proc/esca/stats: counters as "key=value" lines, one line per consumer
 * and per context, readable with cat; esca-stat prints them as a table.
 * Consumer counters are written by their thread alone and read racily.
 * A reader without CAP_SYS_ADMIN (judged by the opener's credentials) sees
 * only its own user's contexts; pids are those of the reader's /proc pid
 * namespace, and a context outside it is not shown to such a reader.
 */
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/pid_namespace.h>
#include <linux/capability.h>
#include <linux/cred.h>

#include "esca.h"

static struct proc_dir_entry *esca_proc_dir;

/*
 * Entries queued and not yet run, over the context's rings. Under
 * ctx->lock, which every removal from the ring table takes, so no ring is
 * freed under us; tails are the producers' and read racily.
 */
static u64 ctx_pending(struct esca_ctx *ctx)
{
	struct esca_ring *ring;
	unsigned long id;
	u64 pending = 0;

	mutex_lock(&ctx->lock);
	xa_for_each(&ctx->rings, id, ring) {
		u32 n;

		if (!esca_ring_files(ring))
			continue;
		n = READ_ONCE(ring->sq->sq_tail) - READ_ONCE(ring->head);
		if (!esca_ring_dead(ring))
			pending += min(n, ring->entries);
	}
	mutex_unlock(&ctx->lock);
	return pending;
}

static int stats_show(struct seq_file *m, void *v)
{
	struct pid_namespace *ns = proc_pid_ns(file_inode(m->file)->i_sb);
	const struct cred *reader = m->file->f_cred;
	bool all = file_ns_capable(m->file, &init_user_ns, CAP_SYS_ADMIN);
	struct esca_ctx *ctx;
	unsigned int i;

	seq_printf(m, "esca abi=%u consumers=%u idle_us=%u live_contexts=%d\n",
		   ESCA_ABI_VERSION, esca_nr_consumers, READ_ONCE(esca_idle_us),
		   atomic_read(&esca_live_ctx));
	for (i = 0; i < esca_nr_consumers; i++) {
		struct esca_consumer *c = &esca_consumers[i];

		seq_printf(
			m,
			"consumer cpu=%d pid=%d state=%s rings=%u calls=%llu batches=%llu sleeps=%llu wakeups=%lld errors=%llu bounced=%llu stalls=%lld replaced=%lld mm_switches=%llu\n",
			c->cpu, esca_consumer_pid(c, ns),
			READ_ONCE(c->offline)  ? "offline" :
			READ_ONCE(c->sleeping) ? "sleeping" :
						 "polling",
			READ_ONCE(c->nr_rings), READ_ONCE(c->calls),
			READ_ONCE(c->batches), READ_ONCE(c->sleeps),
			atomic64_read(&c->wakeups), READ_ONCE(c->errors),
			READ_ONCE(c->bounced), atomic64_read(&c->stalls),
			atomic64_read(&c->replaced), READ_ONCE(c->mm_switches));
	}
	/* The consumers' phase times (esca-stat -v divides them). */
	for (i = 0; i < esca_nr_consumers; i++) {
		struct esca_consumer *c = &esca_consumers[i];

		seq_printf(
			m,
			"phases cpu=%d batches=%llu calls=%llu check_ns=%llu borrow_ns=%llu block_ns=%llu body_ns=%llu publish_ns=%llu release_ns=%llu\n",
			c->cpu, READ_ONCE(c->timed_batches),
			READ_ONCE(c->timed_calls), READ_ONCE(c->ns_check),
			READ_ONCE(c->ns_borrow), READ_ONCE(c->ns_block),
			READ_ONCE(c->ns_body), READ_ONCE(c->ns_publish),
			READ_ONCE(c->ns_release));
	}
	mutex_lock(&esca_ctx_lock);
	list_for_each_entry(ctx, &esca_ctx_list, node) {
		pid_t pid = pid_nr_ns(ctx->pid, ns);

		if (!all && (!pid || !uid_eq(ctx->uid, reader->uid)))
			continue;
		seq_printf(
			m,
			"context pid=%d uid=%u state=%s rings=%d pending=%llu calls=%lld errors=%lld bounced=%lld\n",
			pid, from_kuid_munged(reader->user_ns, ctx->uid),
			READ_ONCE(ctx->dead) ? "closing" : "live",
			atomic_read(&ctx->nr_rings), ctx_pending(ctx),
			atomic64_read(&ctx->calls), atomic64_read(&ctx->errors),
			atomic64_read(&ctx->bounced));
	}
	mutex_unlock(&esca_ctx_lock);
	return 0;
}

int esca_stats_init(void)
{
	esca_proc_dir = proc_mkdir("esca", NULL);
	if (!esca_proc_dir ||
	    !proc_create_single("stats", 0444, esca_proc_dir, stats_show)) {
		pr_err("esca: cannot create /proc/esca/stats\n");
		proc_remove(esca_proc_dir);
		return -ENOMEM;
	}
	return 0;
}

void esca_stats_exit(void)
{
	proc_remove(esca_proc_dir);
}
