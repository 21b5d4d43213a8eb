// SPDX-License-Identifier: MIT OR GPL-2.0
/*
 * /dev/esca: open, ioctls (SETUP, REGISTER, UNREGISTER, WAKE, WAIT), mmap.
 * Refusals a process can repeat at will are logged rate-limited. The node's
 * owner, group and mode are the dev_uid, dev_gid and dev_mode parameters
 * (devtmpfs creates it so; a char device of our own class, since a misc
 * device cannot carry an owner).
 *
 * file->private_data is the process's context once SETUP has run. The
 * file may travel (fork, SCM_RIGHTS); everything but WAKE checks that the
 * caller is the process the context belongs to.
 */
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/uaccess.h>
#include <linux/mm.h>
#include <linux/log2.h>
#include <linux/cdev.h>
#include <linux/device.h>
#include <linux/version.h>

#include "esca.h"

static DEFINE_MUTEX(esca_setup_lock); /* one SETUP per file */

static int esca_open(struct inode *inode, struct file *file)
{
	file->private_data = NULL;
	return 0;
}

static int esca_release(struct inode *inode, struct file *file)
{
	struct esca_ctx *ctx = file->private_data;

	if (ctx) {
		esca_ctx_kill(ctx);
		esca_ctx_put(ctx);
	}
	return 0;
}

static struct esca_ctx *file_ctx(struct file *file)
{
	struct esca_ctx *ctx = READ_ONCE(file->private_data);

	if (!ctx || current->mm != ctx->mm)
		return NULL;
	return ctx;
}

static long ioc_setup(struct file *file, struct esca_setup __user *uarg)
{
	struct esca_setup s;
	struct esca_ctx *ctx;
	int ret;

	if (copy_from_user(&s, uarg, sizeof(s)))
		return -EFAULT;
	if (s.abi_version != ESCA_ABI_VERSION) {
		pr_notice_ratelimited(
			"esca: pid %d (%s): ABI version %u, module speaks %u\n",
			task_tgid_nr(current), current->comm, s.abi_version,
			ESCA_ABI_VERSION);
		return -EPROTO;
	}
	/* Unknown flags and reserved fields are refused, for forwards
	 * compatibility.
	 */
	if (s.flags || s.resv[0] || s.resv[1])
		return -EINVAL;
	if (!s.entries)
		s.entries = ESCA_ENTRIES_DEFAULT;
	if (s.entries < ESCA_ENTRIES_MIN || s.entries > ESCA_ENTRIES_MAX ||
	    !is_power_of_2(s.entries))
		return -EINVAL;
	ret = esca_refuse_current("setup");
	if (ret)
		return ret;

	mutex_lock(&esca_setup_lock);
	if (file->private_data) {
		ret = -EEXIST;
		goto out;
	}
	ctx = esca_ctx_create(s.entries);
	if (IS_ERR(ctx)) {
		ret = PTR_ERR(ctx);
		goto out;
	}
	s.nr_consumers = esca_nr_consumers;
	if (copy_to_user(uarg, &s, sizeof(s))) {
		esca_ctx_kill(ctx);
		esca_ctx_put(ctx);
		ret = -EFAULT;
		goto out;
	}
	WRITE_ONCE(file->private_data, ctx);
	ret = 0;
out:
	mutex_unlock(&esca_setup_lock);
	return ret;
}

static long ioc_register(struct esca_ctx *ctx, struct esca_register __user *u)
{
	struct esca_register r = {};
	struct esca_ring *ring;

	ring = esca_ctx_register(ctx);
	if (IS_ERR(ring))
		return PTR_ERR(ring);
	r.ring_id = ring->id;
	r.entries = ring->entries;
	r.sq_offset = ESCA_SQ_OFFSET(ring->id);
	r.cq_offset = ESCA_CQ_OFFSET(ring->id);
	r.sq_size = ring->sq_size;
	r.cq_size = ring->cq_size;
	r.consumer_cpu = READ_ONCE(ring->consumer)->cpu;
	if (copy_to_user(u, &r, sizeof(r))) {
		/* This ring only: its id may be another's by now. */
		esca_ctx_unregister_ring(ctx, ring);
		esca_ring_put(ring);
		return -EFAULT;
	}
	esca_ring_put(ring);
	return 0;
}

static long ioc_wait(struct esca_ctx *ctx, struct esca_wait __user *u)
{
	struct esca_wait w;
	struct esca_ring *ring;
	long ret;

	if (copy_from_user(&w, u, sizeof(w)))
		return -EFAULT;
	if (w.resv)
		return -EINVAL;
	ring = esca_ctx_ring_get(ctx, w.ring_id);
	if (!ring)
		return -ENOENT;
	/* Done once the consumer's private head has passed the entry. */
	ret = wait_event_interruptible(
		ring->cq_wait,
		(s32)(READ_ONCE(ring->head) - (w.index + 1)) >= 0 ||
			READ_ONCE(ring->paused) ||
			test_bit(ESCA_RING_S_DROPPED, &ring->state));
	if (!ret && (s32)(READ_ONCE(ring->head) - (w.index + 1)) < 0 &&
	    test_bit(ESCA_RING_S_DROPPED, &ring->state))
		ret = -ENXIO; /* retired first: the entry never ran */
	esca_ring_put(ring);
	return ret;
}

static long esca_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct esca_ctx *ctx;
	struct esca_ring *ring;

	if (cmd == ESCA_IOC_SETUP)
		return ioc_setup(file, (void __user *)arg);

	ctx = READ_ONCE(file->private_data);
	if (!ctx)
		return -EBADFD;
	if (cmd == ESCA_IOC_WAKE) {
		/*
		 * Hot after idleness: no ctx mutex, an xarray RCU lookup. The
		 * ring may be on its way out: take a reference (its memory,
		 * whose flags the wake writes, lives as long as the ring).
		 */
		rcu_read_lock();
		ring = xa_load(&ctx->rings, (u32)arg);
		if (ring && !kref_get_unless_zero(&ring->ref))
			ring = NULL;
		rcu_read_unlock();
		if (!ring)
			return -ENOENT;
		esca_consumer_wake_ring(ring);
		esca_ring_put(ring);
		return 0;
	}
	ctx = file_ctx(file);
	if (!ctx)
		return -EBADF;
	switch (cmd) {
	case ESCA_IOC_REGISTER:
		return ioc_register(ctx, (void __user *)arg);
	case ESCA_IOC_UNREGISTER:
		return esca_ctx_unregister(ctx, (u32)arg);
	case ESCA_IOC_WAIT:
		return ioc_wait(ctx, (void __user *)arg);
	}
	return -ENOTTY;
}

static int esca_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct esca_ctx *ctx = file_ctx(file);
	unsigned long shift = ESCA_RING_OFFSET_SHIFT - PAGE_SHIFT;
	unsigned long pgoff = vma->vm_pgoff, id = pgoff >> shift;
	bool cq = pgoff == (ESCA_CQ_OFFSET(id) >> PAGE_SHIFT);
	struct esca_ring *ring;
	int ret;

	if (!ctx)
		return -EBADF;
	/* Exactly the start of a ring's submission or completion side. */
	if ((!cq && pgoff != (ESCA_SQ_OFFSET(id) >> PAGE_SHIFT)) ||
	    id >= ESCA_MAX_RINGS)
		return -EINVAL;
	ring = esca_ctx_ring_get(ctx, id);
	if (!ring)
		return -ENOENT;
	ret = esca_ring_mmap(ring, vma, cq);
	if (ret)
		esca_ring_put(ring);
	return ret;
}

static const struct file_operations esca_fops = {
	.owner = THIS_MODULE,
	.open = esca_open,
	.release = esca_release,
	.unlocked_ioctl = esca_ioctl,
	.mmap = esca_mmap,
	.llseek = noop_llseek,
};

static dev_t esca_devt;
static struct cdev esca_cdev;
static struct class *esca_class;
static struct device esca_dev;

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 2, 0)
static char *esca_devnode(const struct device *dev, umode_t *mode, kuid_t *uid,
			  kgid_t *gid)
#else
static char *esca_devnode(struct device *dev, umode_t *mode, kuid_t *uid,
			  kgid_t *gid)
#endif
{
	if (mode)
		*mode = esca_dev_mode;
	if (uid)
		*uid = KUIDT_INIT(esca_dev_uid);
	if (gid)
		*gid = KGIDT_INIT(esca_dev_gid);
	return NULL;
}

static const struct device_type esca_dev_type = {
	.name = "esca",
	.devnode = esca_devnode,
};

static void esca_dev_release(struct device *dev)
{
}

int esca_device_init(void)
{
	int ret = alloc_chrdev_region(&esca_devt, 0, 1, "esca");

	if (ret)
		goto fail;
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 4, 0)
	esca_class = class_create("esca");
#else
	esca_class = class_create(THIS_MODULE, "esca");
#endif
	if (IS_ERR(esca_class)) {
		ret = PTR_ERR(esca_class);
		goto fail_region;
	}
	cdev_init(&esca_cdev, &esca_fops);
	esca_cdev.owner = THIS_MODULE;
	device_initialize(&esca_dev);
	esca_dev.devt = esca_devt;
	esca_dev.class = esca_class;
	esca_dev.type = &esca_dev_type;
	esca_dev.release = esca_dev_release;
	ret = dev_set_name(&esca_dev, "esca");
	if (!ret)
		ret = cdev_device_add(&esca_cdev, &esca_dev);
	if (ret) {
		put_device(&esca_dev);
		class_destroy(esca_class);
		goto fail_region;
	}
	return 0;
fail_region:
	unregister_chrdev_region(esca_devt, 1);
fail:
	pr_err("esca: cannot register /dev/esca: %d\n", ret);
	return ret;
}

void esca_device_exit(void)
{
	cdev_device_del(&esca_cdev, &esca_dev);
	put_device(&esca_dev);
	class_destroy(esca_class);
	unregister_chrdev_region(esca_devt, 1);
}
