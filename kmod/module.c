// SPDX-License-Identifier: MIT OR GPL-2.0
/*
 * esca.ko: module parameters, load and unload.
 *
 *   cores=LIST   CPUs that get a consumer thread "esca/N", bound to N.
 *                LIST is comma-separated CPU numbers and ranges (OS
 *                indexes): "1", "2,3", "2-5". Every CPU must be online,
 *                below nr_cpu_ids and listed once, or insmod fails with
 *                -EINVAL. Default when omitted: the last online CPU.
 *   idle_us=N    how long a consumer spins without finding work before it
 *                sets NEED_WAKEUP and sleeps (default 1000; writable in
 *                /sys/module/esca/parameters/idle_us).
 *   call_timeout_ms=N  a call running longer is interrupted, and if it
 *                ignores that its worker is replaced (default 200; 0: off;
 *                writable).
 *   user_ring_kb=N  ring memory per user, all processes (default 65536;
 *                writable): REGISTER past it fails with EDQUOT.
 *   dev_uid=U dev_gid=G dev_mode=M  owner, group and mode of /dev/esca
 *                (default 0, 0, 0660: root and group root only).
 *   files_put_exit=1  kept for old command lines: the last put of a file
 *                table always goes through a short-lived thread now; this
 *                only says so in the log.
 */
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/cpumask.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/kernel.h>
#include <linux/cpu.h>
#include <linux/workqueue.h>

#include "esca.h"

static char *cores;
module_param(cores, charp, 0444);
MODULE_PARM_DESC(
	cores,
	"CPU list for consumer threads, e.g. 1 or 2,3 or 2-5 (default: last online CPU)");

bool esca_files_put_exit;
module_param_named(files_put_exit, esca_files_put_exit, bool, 0444);
MODULE_PARM_DESC(
	files_put_exit,
	"no effect (file tables are always released through exiting threads); logs that it is so");

unsigned int esca_idle_us = 1000;
module_param_named(idle_us, esca_idle_us, uint, 0644);
MODULE_PARM_DESC(idle_us, "idle spin before a consumer sleeps, microseconds");

bool esca_phase_times = true;
module_param_named(phase_times, esca_phase_times, bool, 0644);
MODULE_PARM_DESC(
	phase_times,
	"time each phase of one batch in 16 (/proc/esca/stats \"phases\" lines)");

unsigned int esca_call_timeout_ms = 200;
module_param_named(call_timeout_ms, esca_call_timeout_ms, uint, 0644);
MODULE_PARM_DESC(call_timeout_ms,
		 "a call running longer is interrupted (0: never)");

unsigned int esca_user_ring_kb = 65536;
module_param_named(user_ring_kb, esca_user_ring_kb, uint, 0644);
MODULE_PARM_DESC(user_ring_kb, "ring memory per user, KiB");

unsigned int esca_dev_uid, esca_dev_gid, esca_dev_mode = 0660;
module_param_named(dev_uid, esca_dev_uid, uint, 0444);
MODULE_PARM_DESC(dev_uid, "owner of /dev/esca (default 0)");
module_param_named(dev_gid, esca_dev_gid, uint, 0444);
MODULE_PARM_DESC(dev_gid, "group of /dev/esca (default 0)");
module_param_named(dev_mode, esca_dev_mode, uint, 0444);
MODULE_PARM_DESC(dev_mode, "mode of /dev/esca, octal (default 0660)");

struct workqueue_struct *esca_wq; /* context frees, the watchdog */

static int parse_cpu(const char *list, const char *tok, unsigned int *cpu)
{
	if (kstrtouint(tok, 10, cpu)) {
		pr_err("esca: cores='%s': '%s' is not a CPU number\n", list,
		       tok);
		return -EINVAL;
	}
	if (*cpu >= nr_cpu_ids) {
		pr_err("esca: cores='%s': CPU %u out of range (this machine has CPUs 0-%u)\n",
		       list, *cpu, nr_cpu_ids - 1);
		return -EINVAL;
	}
	return 0;
}

/* Parse LIST into @mask; one pr_err naming the bad value on failure. */
static int parse_cores(const char *list, struct cpumask *mask)
{
	char *copy, *cur, *tok;
	int ret = 0;

	cpumask_clear(mask);
	if (!*list) {
		pr_err("esca: cores='': empty CPU list\n");
		return -EINVAL;
	}
	copy = kstrdup(list, GFP_KERNEL);
	if (!copy)
		return -ENOMEM;
	cur = copy;
	while (!ret && (tok = strsep(&cur, ",")) != NULL) {
		unsigned int lo, hi, cpu;
		char *dash = strchr(tok, '-');

		if (!*tok) {
			pr_err("esca: cores='%s': empty entry in CPU list\n",
			       list);
			ret = -EINVAL;
			break;
		}
		if (dash)
			*dash = '\0';
		ret = parse_cpu(list, tok, &lo);
		if (ret)
			break;
		hi = lo;
		if (dash) {
			ret = parse_cpu(list, dash + 1, &hi);
			if (ret)
				break;
			if (hi < lo) {
				pr_err("esca: cores='%s': range %u-%u is backwards\n",
				       list, lo, hi);
				ret = -EINVAL;
				break;
			}
		}
		for (cpu = lo; cpu <= hi; cpu++) {
			if (cpumask_test_cpu(cpu, mask)) {
				pr_err("esca: cores='%s': CPU %u listed twice\n",
				       list, cpu);
				ret = -EINVAL;
				break;
			}
			if (!cpu_online(cpu)) {
				pr_err("esca: cores='%s': CPU %u is offline\n",
				       list, cpu);
				ret = -EINVAL;
				break;
			}
			cpumask_set_cpu(cpu, mask);
		}
	}
	kfree(copy);
	return ret;
}

static int __init esca_init(void)
{
	cpumask_var_t mask;
	int ret;

	if (!zalloc_cpumask_var(&mask, GFP_KERNEL))
		return -ENOMEM;
	if (cores) {
		ret = parse_cores(cores, mask);
		if (ret)
			goto out;
	} else {
		cpumask_set_cpu(cpumask_last(cpu_online_mask), mask);
	}
	if (esca_idle_us > 10 * USEC_PER_SEC) {
		pr_err("esca: idle_us=%u: more than 10 s\n", esca_idle_us);
		ret = -EINVAL;
		goto out;
	}
	if (esca_dev_mode & ~0777U) {
		pr_err("esca: dev_mode=%o: only permission bits (0-0777)\n",
		       esca_dev_mode);
		ret = -EINVAL;
		goto out;
	}
	if (esca_call_timeout_ms > 60000) {
		pr_err("esca: call_timeout_ms=%u: more than 60 s\n",
		       esca_call_timeout_ms);
		ret = -EINVAL;
		goto out;
	}

	esca_wq = alloc_workqueue("esca", WQ_UNBOUND, 0);
	if (!esca_wq) {
		ret = -ENOMEM;
		goto out;
	}
	ret = esca_exec_init();
	if (ret)
		goto out_exec;
	ret = esca_exit_probe_init();
	if (ret)
		goto out_exec;
	cpus_read_lock();
	ret = esca_consumers_start(mask);
	if (!ret) {
		ret = esca_hotplug_init();
		if (ret)
			esca_consumers_stop();
	}
	cpus_read_unlock();
	if (ret)
		goto out_probe;
	ret = esca_stats_init();
	if (ret)
		goto out_consumers;
	ret = esca_device_init();
	if (ret)
		goto out_stats;
	esca_watchdog_start();
	pr_info("esca: ABI %u, consumers on CPUs %*pbl, idle_us=%u call_timeout_ms=%u, /dev/esca %u:%u %04o\n",
		ESCA_ABI_VERSION, cpumask_pr_args(mask), esca_idle_us,
		esca_call_timeout_ms, esca_dev_uid, esca_dev_gid,
		esca_dev_mode);
	free_cpumask_var(mask);
	return 0;

out_stats:
	esca_stats_exit();
out_consumers:
	esca_hotplug_exit();
	esca_consumers_stop();
out_probe:
	esca_exit_probe_exit();
out_exec:
	esca_exec_exit();
	destroy_workqueue(esca_wq);
out:
	free_cpumask_var(mask);
	return ret;
}

/*
 * Unload can only happen once no /dev/esca file is open (each open file
 * pins the module), so every context has been killed; the consumers drop
 * whatever dead rings they still hold when they stop.
 */
static void __exit esca_exit(void)
{
	esca_device_exit();
	esca_stats_exit();
	esca_watchdog_stop();
	esca_hotplug_exit();
	esca_consumers_stop(); /* retires the last rings: may queue puts */
	esca_exit_probe_exit();
	destroy_workqueue(esca_wq); /* runs the last context frees */
	esca_exec_exit();
	esca_users_exit();
	pr_info("esca: unloaded\n");
}

module_init(esca_init);
module_exit(esca_exit);
MODULE_LICENSE("Dual MIT/GPL");
MODULE_AUTHOR("ESCA developers");
MODULE_DESCRIPTION("System-call offload to pinned consumer cores");
