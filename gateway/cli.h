/* cli.h: the command line as the subcommands see it.  main.c parses the
 * options; each subcommand (images, status, reload...) lives with the code
 * it drives and returns the process exit status: 0 done, 1 failed, 2 bad
 * usage.
 */
#ifndef IGW_CLI_H
#define IGW_CLI_H

#include <stdbool.h>

struct cli {
	const char *config;	/* --config */
	unsigned port;		/* --port (built-in map only) */
	bool json;		/* --json */
	bool syslog;		/* --syslog: serve logs to syslog */
	const char *target;	/* --target */
	int lun;		/* --lun, -1 when not given */
	const char *initiator;	/* --initiator */
	const char *output;	/* --output */
	const char *size;	/* --size */
	char **args;		/* words after the subcommand */
	int nargs;
};

/* images.c: iscsi-gw images list|reset|delete|commit */
int cmd_images(const struct cli *cli);
/* provision.c: iscsi-gw provision list|create|resize|remove */
int cmd_provision(const struct cli *cli);
/* reload.c: iscsi-gw mount DIR (the FUSE view of a running daemon) */
int cmd_mount(const struct cli *cli);
/* status.c: iscsi-gw status, through the map's control_socket */
int cmd_status(const struct cli *cli);
/* reload.c: iscsi-gw reload, through the map's control_socket */
int cmd_reload(const struct cli *cli);

#endif
