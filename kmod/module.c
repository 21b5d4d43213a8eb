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
 *   files_put_exit=1  release file tables through short-lived threads, as
 *                is done anyway when IBT seals put_files_struct (for tests).
 */
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/cpumask.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/kernel.h>

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
	"release file tables through exiting threads (automatic when IBT seals put_files_struct)");

unsigned int esca_idle_us = 1000;
module_param_named(idle_us, esca_idle_us, uint, 0644);
MODULE_PARM_DESC(idle_us, "idle spin before a consumer sleeps, microseconds");

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

	ret = esca_exec_init();
	if (ret)
		goto out_exec;
	ret = esca_consumers_start(mask);
	if (ret)
		goto out_exec;
	ret = esca_stats_init();
	if (ret)
		goto out_consumers;
	ret = esca_device_init();
	if (ret)
		goto out_stats;
	pr_info("esca: ABI %u, consumers on CPUs %*pbl, idle_us=%u\n",
		ESCA_ABI_VERSION, cpumask_pr_args(mask), esca_idle_us);
	free_cpumask_var(mask);
	return 0;

out_stats:
	esca_stats_exit();
out_consumers:
	esca_consumers_stop();
out_exec:
	esca_exec_exit();
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
	esca_consumers_stop(); /* retires the last rings: may queue puts */
	esca_exec_exit();
	pr_info("esca: unloaded\n");
}

module_init(esca_init);
module_exit(esca_exit);
MODULE_LICENSE("Dual MIT/GPL");
MODULE_AUTHOR("ESCA developers");
MODULE_DESCRIPTION("System-call offload to pinned consumer cores");
