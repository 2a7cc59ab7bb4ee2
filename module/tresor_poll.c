// SPDX-License-Identifier: GPL-2.0
/*
 * Polling crypto cores. A key holder the admin dedicates to ciphers (the
 * crypto CPU of ramcrypt-host's CPU roles, listed in poll_cpus) runs a
 * per-CPU thread that takes page ciphers forwarded to it from a few
 * mailbox slots and spins between them. While window faults keep coming,
 * a forwarded fault then costs neither an IPI nor a wake-up: the faulting
 * CPU posts the call and spins on its result, as a local cipher would
 * have kept it busy. After poll_us without work the thread sleeps; the
 * next call goes by IPI and wakes it. poll_us=0 (the default): no
 * polling, the threads are never used.
 *
 * A call is posted with cmpxchg() into a free slot and taken out by the
 * thread the same way, so exactly one side owns it: a caller that waited
 * too long (the thread preempted, parked or asleep) takes its call back
 * and forwards it the ordinary way. The threads exist from the first
 * write of poll_cpus until the module is unloaded, so a caller never
 * wakes a freed task.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/capability.h>
#include <linux/cpumask.h>
#include <linux/kobject.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/percpu.h>
#include <linux/sched.h>
#include <linux/sched/clock.h>
#include <linux/smpboot.h>
#include <linux/sysfs.h>

#include "tresor_keystore.h"
#include "tresor_poll.h"

#define TRESOR_POLL_SLOTS	8
/* How long a caller spins before it takes a call back (ns) */
#define TRESOR_POLL_WAIT_NS	(2 * NSEC_PER_MSEC)

/*
 * Off by default, as net.core.busy_poll is: spinning pays only on a core
 * that is really dedicated (on an oversubscribed host, or a VM, the
 * spinning thread loses its CPU and every caller waits for it).
 */
static unsigned int tresor_poll_us;
module_param_named(poll_us, tresor_poll_us, uint, 0644);
MODULE_PARM_DESC(poll_us,
		 "A polling crypto CPU (poll_cpus) spins this long (us) after its last page cipher before it sleeps; 0: no polling (default: 0)");

struct tresor_poll_call {
	int (*fn)(void *arg);
	void *arg;
	int ret;
	bool done;
};

struct tresor_poller {
	struct tresor_poll_call *slot[TRESOR_POLL_SLOTS];
	bool kick;		/* woken without a call: poll for the next */
};

static DEFINE_PER_CPU(struct tresor_poller, tresor_pollers);
static DEFINE_PER_CPU(struct task_struct *, tresor_poll_task);
static struct cpumask tresor_poll_mask;
/* Serializes writers of poll_cpus and the threads' registration */
static DEFINE_MUTEX(tresor_poll_lock);
static bool tresor_poll_registered;
static atomic64_t tresor_polled = ATOMIC64_INIT(0);

static bool tresor_poll_pending(struct tresor_poller *p)
{
	int i;

	for (i = 0; i < TRESOR_POLL_SLOTS; i++)
		if (READ_ONCE(p->slot[i]))
			return true;
	return false;
}

/* Runs every posted call once; true if there was one. */
static bool tresor_poll_serve(struct tresor_poller *p)
{
	bool served = false;
	int i;

	for (i = 0; i < TRESOR_POLL_SLOTS; i++) {
		struct tresor_poll_call *call = READ_ONCE(p->slot[i]);

		if (!call || cmpxchg(&p->slot[i], call, NULL) != call)
			continue;
		call->ret = call->fn(call->arg);
		/* The caller's stack frame: nothing touches *call after this */
		smp_store_release(&call->done, true);
		served = true;
	}
	return served;
}

static int tresor_poll_should_run(unsigned int cpu)
{
	struct tresor_poller *p = per_cpu_ptr(&tresor_pollers, cpu);

	return READ_ONCE(p->kick) || tresor_poll_pending(p);
}

/*
 * Serve, spinning, until poll_us pass without a call; then return and let
 * smpboot put the thread to sleep until a caller wakes it. Calls already
 * posted are served even when this CPU has left poll_cpus.
 */
static void tresor_poll_fn(unsigned int cpu)
{
	struct tresor_poller *p = per_cpu_ptr(&tresor_pollers, cpu);
	u64 idle_from = local_clock();

	WRITE_ONCE(p->kick, false);
	for (;;) {
		u64 limit = (u64)READ_ONCE(tresor_poll_us) * NSEC_PER_USEC;

		if (tresor_poll_serve(p))
			idle_from = local_clock();
		else if (local_clock() - idle_from >= limit ||
			 !cpumask_test_cpu(cpu, &tresor_poll_mask))
			return;
		if (kthread_should_park() || kthread_should_stop())
			return;
		cond_resched();
		cpu_relax();
	}
}

static struct smp_hotplug_thread tresor_poll_threads = {
	.store			= &tresor_poll_task,
	.thread_should_run	= tresor_poll_should_run,
	.thread_fn		= tresor_poll_fn,
	.thread_comm		= "tresor_poll/%u",
};

/*
 * fn(arg) by @cpu's polling thread, spinning for its result. False: @cpu
 * does not poll, its slots are full, or it did not take the call in time;
 * the call did not run and the caller forwards it another way. Process
 * context; fn must be bounded (one page cipher).
 */
bool tresor_poll_call(int cpu, int (*fn)(void *arg), void *arg, int *ret)
{
	struct tresor_poll_call call = { .fn = fn, .arg = arg };
	struct tresor_poller *p;
	struct task_struct *task;
	u64 deadline;
	int i;

	might_sleep();
	if (!READ_ONCE(tresor_poll_us) ||
	    !cpumask_test_cpu(cpu, &tresor_poll_mask))
		return false;
	task = per_cpu(tresor_poll_task, cpu);
	if (!task)
		return false;
	p = per_cpu_ptr(&tresor_pollers, cpu);
	/*
	 * Asleep: waking it costs what an IPI to the idle CPU costs, and the
	 * IPI runs the cipher at once. So this call goes by IPI, and the
	 * thread, woken beside it, polls for the next ones.
	 */
	if (!task_is_running(task)) {
		WRITE_ONCE(p->kick, true);
		wake_up_process(task);
		return false;
	}
	for (i = 0; i < TRESOR_POLL_SLOTS; i++)
		if (!cmpxchg(&p->slot[i], NULL, &call))
			break;
	if (i == TRESOR_POLL_SLOTS)
		return false;
	/*
	 * It may have gone to sleep meanwhile. cmpxchg() is a full barrier,
	 * as is set_current_state() before the thread's last look at the
	 * slots: either it sees the call, or we see it sleeping and wake it.
	 */
	if (!task_is_running(task))
		wake_up_process(task);
	deadline = local_clock() + TRESOR_POLL_WAIT_NS;
	/* pairs with the thread's release: call.ret is read after done */
	while (!smp_load_acquire(&call.done)) {
		if (local_clock() > deadline &&
		    cmpxchg(&p->slot[i], &call, NULL) == &call)
			return false;	/* taken back: it never ran */
		cond_resched();
		cpu_relax();
	}
	*ret = call.ret;
	atomic64_inc(&tresor_polled);
	return true;
}

static ssize_t poll_cpus_show(struct kobject *kobj, struct kobj_attribute *attr,
			      char *buf)
{
	return sysfs_emit(buf, "%*pbl\n", cpumask_pr_args(&tresor_poll_mask));
}

/*
 * Root writes a cpulist ("1" or "1,3"; empty: none). The threads are
 * created at the first write and stay until the module is unloaded.
 */
static ssize_t poll_cpus_store(struct kobject *kobj,
			       struct kobj_attribute *attr, const char *buf,
			       size_t count)
{
	cpumask_var_t mask;
	int ret;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (!zalloc_cpumask_var(&mask, GFP_KERNEL))
		return -ENOMEM;
	ret = tresor_parse_cpulist("poll_cpus", buf, mask);
	if (ret)
		goto out;
	mutex_lock(&tresor_poll_lock);
	if (!cpumask_empty(mask) && !tresor_poll_registered) {
		ret = smpboot_register_percpu_thread(&tresor_poll_threads);
		if (ret)
			pr_err("poll_cpus: cannot start the polling threads (%d)\n",
			       ret);
		else
			tresor_poll_registered = true;
	}
	if (!ret)
		cpumask_copy(&tresor_poll_mask, mask);
	mutex_unlock(&tresor_poll_lock);
out:
	free_cpumask_var(mask);
	return ret ? ret : count;
}

static struct kobj_attribute poll_cpus_attr = __ATTR_RW(poll_cpus);

static ssize_t polled_requests_show(struct kobject *kobj,
				    struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%lld\n", atomic64_read(&tresor_polled));
}

static struct kobj_attribute polled_requests_attr = __ATTR_RO(polled_requests);

static struct attribute *tresor_poll_attrs[] = {
	&poll_cpus_attr.attr,
	&polled_requests_attr.attr,
	NULL,
};

const struct attribute_group tresor_poll_group = {
	.attrs = tresor_poll_attrs,
};

/* Module unload: no caller is left (no tfm, no page user). */
void tresor_poll_exit(void)
{
	cpumask_clear(&tresor_poll_mask);
	if (tresor_poll_registered)
		smpboot_unregister_percpu_thread(&tresor_poll_threads);
	tresor_poll_registered = false;
}
