/* Callbacks and a shadow variable: /proc/cmdline counts its reads in a shadow variable
 * attached to saved_command_line; pre_patch logs, post_unpatch logs and frees the
 * shadow variables (livepatch/callbacks.rst, livepatch/shadow-vars.rst). */
#include <linux/init.h>
#include <linux/livepatch.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <nines/kpatch.h>

#define NINES_SHADOW_READS 1

static int nines_cmdline_counted(struct seq_file *m, void *v)
{
	long *reads = klp_shadow_get_or_alloc(&saved_command_line, NINES_SHADOW_READS,
					      sizeof(*reads), GFP_KERNEL, NULL, NULL);

	if (!reads)
		return -ENOMEM;
	(*reads)++;
	seq_printf(m, "nines-reads=%ld\n", *reads);
	return 0;
}
NINES_REPLACE(cmdline_proc_show, nines_cmdline_counted);

static int nines_pre_patch(struct klp_object *obj)
{
	pr_info("nines-callback: pre_patch\n");
	return 0;
}
NINES_PRE_PATCH(nines_pre_patch);

static void nines_post_unpatch(struct klp_object *obj)
{
	klp_shadow_free_all(NINES_SHADOW_READS, NULL);
	pr_info("nines-callback: post_unpatch, shadow variables freed\n");
}
NINES_POST_UNPATCH(nines_post_unpatch);
