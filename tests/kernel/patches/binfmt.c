/* A function of a loadable module (binfmt_misc's bm_status_read, behind
 * /proc/sys/fs/binfmt_misc/status), reading the module's static `enabled` through a
 * .klp.sym.binfmt_misc.enabled symbol. livepatch patches it whenever binfmt_misc loads. */
#include <linux/fs.h>
#include <linux/string.h>
#include <nines/kpatch.h>

NINES_KERNEL_VARIABLE(int, enabled);

static ssize_t nines_bm_status_read(struct file *file, char __user *buf, size_t nbytes,
				    loff_t *ppos)
{
	const char *s = enabled ? "nines-enabled\n" : "nines-disabled\n";

	return simple_read_from_buffer(buf, nbytes, ppos, s, strlen(s));
}
NINES_REPLACE_IN(binfmt_misc, bm_status_read, nines_bm_status_read);
