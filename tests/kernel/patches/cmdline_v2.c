/* v2 (cumulative): the marker changes and /proc/version is patched as well. */
#include <linux/seq_file.h>
#include <nines/kpatch.h>

static int nines_cmdline_v2(struct seq_file *m, void *v)
{
	seq_puts(m, "nines-cmdline-v2\n");
	return 0;
}
NINES_REPLACE(cmdline_proc_show, nines_cmdline_v2);

static int nines_version_v2(struct seq_file *m, void *v)
{
	seq_puts(m, "nines-version-v2\n");
	return 0;
}
NINES_REPLACE(version_proc_show, nines_version_v2);
