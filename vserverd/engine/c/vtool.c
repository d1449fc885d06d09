/*
 * vreboot, vhalt, vstatus: the paper's tools for root inside a vserver, through the control
 * socket the daemon serves for this vserver alone at /run/vserver/control. One request line
 * (`reboot`, `halt` or `status`, from the name we are called by), one answer line, printed;
 * exit 0 when it starts with "ok".
 *
 * Static and free-standing (no libc, no loader): the vserver may have neither. Built by the
 * engine's build script and embedded in the daemon, which places it read-only in each
 * vserver.
 */

#define SOCKET_PATH "/run/vserver/control"

#include "freestanding.h"

FREESTANDING_ENTRY(vtool_main);

struct sockaddr_un_ {
	unsigned short family;
	char path[108];
};

void __attribute__((noreturn, used)) vtool_main(long *sp)
{
	long argc = sp[0];
	char **argv = (char **)(sp + 1);
	const char *name = argc > 0 ? argv[0] : "vtool";
	const char *base = name;
	for (const char *p = name; *p; p++)
		if (*p == '/')
			base = p + 1;
	const char *req;
	if (eq(base, "vreboot"))
		req = "reboot\n";
	else if (eq(base, "vhalt"))
		req = "halt\n";
	else if (eq(base, "vstatus"))
		req = "status\n";
	else {
		out(2, "usage: call me as vreboot, vhalt or vstatus\n");
		leave(2);
	}
	if (argc > 1) {
		out(2, base);
		out(2, ": takes no arguments; it acts on this vserver only\n");
		leave(2);
	}

	long fd = sys3(NR_socket, 1 /* AF_UNIX */, 1 /* SOCK_STREAM */ | 02000000 /* SOCK_CLOEXEC */, 0);
	if (fd < 0) {
		out(2, base);
		out(2, ": socket failed\n");
		leave(1);
	}
	struct sockaddr_un_ a;
	memset(&a, 0, sizeof a);
	a.family = 1;
	memcpy(a.path, SOCKET_PATH, sizeof SOCKET_PATH);
	long r = sys3(NR_connect, fd, (long)&a, (long)sizeof a);
	if (r < 0) {
		out(2, base);
		out(2, r == -2 ? ": " SOCKET_PATH ": no control socket (not in a vserver, or its daemon is away)\n"
			       : r == -13 ? ": " SOCKET_PATH ": permission denied (root only)\n"
					  : ": cannot connect to " SOCKET_PATH "\n");
		leave(1);
	}
	sys3(NR_write, fd, (long)req, (long)len(req));
	char buf[512];
	long n = 0;
	while (n < (long)sizeof buf - 1) {
		long k = sys3(NR_read, fd, (long)(buf + n), (long)(sizeof buf - 1 - n));
		if (k <= 0)
			break;
		n += k;
	}
	buf[n] = 0;
	sys3(NR_close, fd, 0, 0);
	if (n == 0) {
		out(2, base);
		out(2, ": no answer from the daemon\n");
		leave(1);
	}
	int ok = n >= 2 && buf[0] == 'o' && buf[1] == 'k';
	out(ok ? 1 : 2, buf);
	if (buf[n - 1] != '\n')
		out(ok ? 1 : 2, "\n");
	leave(ok ? 0 : 1);
}
