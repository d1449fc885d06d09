/*
 * vserver-init: pid 1 of an rc-style context (the paper's default start). It runs the start
 * command, reaps every orphan, and on a stop request runs the stop command, then ends every
 * process left.
 *
 * Static and free-standing (no libc, no loader, no heap): one runs per vserver for the
 * vserver's whole life, so it is as small as a process can be: a few pages of its own and
 * the fewest page tables. The engine embeds it and execs it from a sealed memfd as the last
 * step of the context's checklist (src/reaper.rs); it needs nothing from the vserver's root.
 *
 *   argv: vserver-init rc|chcontext NSTART START... [STOP...]
 *
 * `rc`: the start command starts the vserver's services and may end; the vserver lives on
 * until stopped. `chcontext`: the start command is the context's whole life; its exit is
 * pid 1's exit, and stop signals from outside are passed on to it. The environment is the
 * vserver's, given to both commands (the stop command also gets VSERVER_TARGET).
 *
 * Signals from outside the context (the daemon, the monitor: the sender shows as pid 0 here):
 * SIGTERM, SIGPWR, SIGINT or SIGHUP = stop: run the stop command, then SIGTERM to all, exit 0
 * once none is left. A second one: SIGKILL to all.
 *
 * Signals from inside are what `reboot`, `halt` and `poweroff` send to an init that is not
 * theirs (busybox: SIGTERM = reboot, SIGUSR1 = halt, SIGUSR2 = poweroff; Ctrl-Alt-Del and
 * systemd's `reboot`: SIGINT; systemd's SIGRTMIN+5 = reboot, +3 = halt, +4 = poweroff; SIGPWR
 * = power failure, halt): run the stop command with VSERVER_TARGET=reboot or halt (an rc
 * script picks `rc 6` or `rc 0`), end every process left, then call reboot(2), so that the
 * kernel ends pid 1 exactly as for a `reboot -f` inside: with SIGHUP for a reboot (the daemon
 * restarts the vserver), SIGINT for a halt (the daemon marks it stopped). Without SYS_BOOT
 * that call fails and pid 1 exits 0: a plain stop. SIGHUP from inside (sysvinit's "re-read
 * inittab") is ignored. A stop command that runs `reboot -f` itself needs no help from here.
 *
 * Readiness: with NOTIFY_SOCKET in its environment (`rc` only), pid 1 sends READY=1 there once
 * the start command has exited 0, as systemd does once it has booted: the monitor reports the
 * start done then, and a start command that fails fails the start. NOTIFY_SOCKET is not passed
 * on to the commands.
 */

#include "freestanding.h"

FREESTANDING_ENTRY(init_main);

#define SIGHUP 1
#define SIGINT 2
#define SIGKILL 9
#define SIGUSR1 10
#define SIGUSR2 12
#define SIGTERM 15
#define SIGCHLD 17
#define SIGPWR 30
/* systemd's SIGRTMIN+3, +4, +5, with the C library's SIGRTMIN (34: it keeps 32 and 33). */
#define SIGRT_HALT 37
#define SIGRT_POWEROFF 38
#define SIGRT_REBOOT 39

#define SIG_BLOCK 0
#define SIG_UNBLOCK 1
#define SA_RESTORER 0x04000000
#define WNOHANG 1
#define ECHILD 10
#define ENOENT 2
#define ENOTDIR 20
#define PR_SET_NAME 15
#define SI_USER 0
#define SI_QUEUE (-1)
#define SI_TKILL (-6)

#define REBOOT_MAGIC1 0xfee1dead
#define REBOOT_MAGIC2 672274793
#define RB_AUTOBOOT 0x01234567
#define RB_HALT_SYSTEM 0xcdef0123

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

typedef unsigned long sigset;

struct kernel_sigaction {
	void (*handler)(int);
	unsigned long flags;
	void (*restorer)(void);
	sigset mask;
};

struct kernel_siginfo {
	int signo;
	int err;
	int code;
	int pad;
	int pid;
	int uid;
	char rest[104];
};

static const int waited[] = { SIGTERM, SIGINT, SIGHUP, SIGPWR, SIGCHLD, SIGUSR1, SIGUSR2, SIGRT_HALT, SIGRT_POWEROFF, SIGRT_REBOOT };
#define NWAITED (int)(sizeof waited / sizeof waited[0])

#if defined(__x86_64__)
/* The kernel returns from a handler through this (x86-64 requires one); ours never run. */
void init_restorer(void);
__asm__(".globl init_restorer\n"
	"init_restorer:\n"
	"	mov $15, %rax\n"
	"	syscall\n");
#define RESTORER_FLAG SA_RESTORER
#define RESTORER init_restorer
#else
#define RESTORER_FLAG 0
#define RESTORER 0
#endif

static void noop(int sig)
{
	(void)sig;
}

static void set_handler(int sig, void (*handler)(int))
{
	struct kernel_sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.handler = handler;
	sa.flags = handler ? RESTORER_FLAG : 0;
	sa.restorer = handler ? RESTORER : 0;
	sys6(NR_rt_sigaction, sig, (long)&sa, 0, sizeof(sigset), 0, 0);
}

static void put_num(int fd, long v)
{
	char b[24];
	int i = sizeof b;
	int neg = v < 0;
	unsigned long u = neg ? -(unsigned long)v : (unsigned long)v;
	b[--i] = 0;
	do
		b[--i] = (char)('0' + u % 10);
	while (u /= 10);
	if (neg)
		b[--i] = '-';
	out(fd, b + i);
}

static const char *strerror_(long e)
{
	switch (e) {
	case 1: return "Operation not permitted";
	case 2: return "No such file or directory";
	case 7: return "Argument list too long";
	case 8: return "Exec format error";
	case 11: return "Resource temporarily unavailable";
	case 12: return "Cannot allocate memory";
	case 13: return "Permission denied";
	case 20: return "Not a directory";
	case 26: return "Text file busy";
	case 40: return "Too many levels of symbolic links";
	default: return 0;
	}
}

static void say_errno(const char *what, const char *path, long e)
{
	const char *d = strerror_(e);
	out(2, "vserver-init: ");
	out(2, what);
	out(2, path);
	out(2, ": ");
	if (d)
		out(2, d);
	else {
		out(2, "error ");
		put_num(2, e);
	}
	out(2, "\n");
}

/* Execs argv[0], searched in the default PATH when it has no '/'; returns only on failure. */
static void exec_program(char **argv, char **envp)
{
	const char *prog = argv[0];
	for (const char *p = prog; *p; p++) {
		if (*p == '/') {
			long e = sys3(NR_execve, prog, argv, envp);
			say_errno("cannot run ", prog, -e);
			return;
		}
	}
	char path[4096];
	unsigned long plen = len(prog);
	const char *dir = DEFAULT_PATH;
	long last = -ENOENT;
	while (*dir) {
		unsigned long n = 0;
		while (dir[n] && dir[n] != ':')
			n++;
		if (n + 1 + plen + 1 <= sizeof path) {
			memcpy(path, dir, n);
			path[n] = '/';
			memcpy(path + n + 1, prog, plen + 1);
			long e = sys3(NR_execve, path, argv, envp);
			if (e != -ENOENT && e != -ENOTDIR) {
				say_errno("cannot run ", path, -e);
				return;
			}
			last = e;
		}
		dir += n;
		if (*dir == ':')
			dir++;
	}
	say_errno("cannot run ", prog, -last);
}

/* Forks and runs ARGV with ENVP in the child (signals as a fresh process has them); returns
 * the child's pid, or a negative errno. */
static long spawn(char **argv, char **envp, sigset *blocked)
{
	if (!argv[0])
		return -ENOENT;
	long pid = sys6(NR_clone, SIGCHLD, 0, 0, 0, 0, 0);
	if (pid == 0) {
		for (int i = 0; i < NWAITED; i++)
			set_handler(waited[i], 0);
		sys6(NR_rt_sigprocmask, SIG_UNBLOCK, (long)blocked, 0, sizeof(sigset), 0, 0);
		exec_program(argv, envp);
		leave(127);
	}
	if (pid < 0) {
		out(2, "vserver-init: fork failed\n");
	}
	return pid;
}

enum intent { STOP, REBOOT, HALT };

static const char *target(enum intent i)
{
	return i == REBOOT ? "VSERVER_TARGET=reboot" : i == HALT ? "VSERVER_TARGET=halt" : "VSERVER_TARGET=stop";
}

/* What a signal from a process inside the context asks for; -1: nothing. */
static int inside_request(int sig)
{
	switch (sig) {
	case SIGTERM:
	case SIGINT:
	case SIGRT_REBOOT:
		return REBOOT;
	case SIGUSR1:
	case SIGUSR2:
	case SIGPWR:
	case SIGRT_HALT:
	case SIGRT_POWEROFF:
		return HALT;
	default:
		return -1;
	}
}

static int is_stop_signal(int sig)
{
	return sig == SIGTERM || sig == SIGINT || sig == SIGHUP || sig == SIGPWR;
}

/* The end of pid 1 once everything is gone: exit 0 for a stop, the kernel's reboot or halt
 * for a request from inside. */
static int finish(enum intent i)
{
	if (i == STOP)
		return 0;
	sys3(NR_sync, 0, 0, 0);
	long e = sys6(NR_reboot, REBOOT_MAGIC1, REBOOT_MAGIC2, i == REBOOT ? RB_AUTOBOOT : RB_HALT_SYSTEM, 0, 0, 0);
	say_errno(i == REBOOT ? "reboot" : "halt", "", -e);
	return 0;
}

/* The shell convention: the code, or 128 + the signal; -1 for a stop report. */
static int status_code(int status)
{
	int low = status & 0x7f;
	if (low == 0)
		return (status >> 8) & 0xff;
	if (low != 0x7f)
		return 128 + low;
	return -1;
}

/* The most words of a stop command and entries of the environment (the engine checks). */
#define MAX_ARGS 1024
#define MAX_ENV 1024
/* The commands' environment (pid 1's without NOTIFY_SOCKET), and room for it plus
 * VSERVER_TARGET, for the stop command. */
static char *cmd_envp[MAX_ENV + 1];
static char *stop_envp[MAX_ENV + 2];

/* The value of ENTRY if it is KEY=value, else 0. */
static const char *value_of(const char *entry, const char *key)
{
	while (*key && *entry == *key)
		entry++, key++;
	return *key || *entry != '=' ? 0 : entry + 1;
}

/* pid 1's environment without NOTIFY_SOCKET (into cmd_envp); returns NOTIFY_SOCKET's value. */
static const char *split_env(char **envp)
{
	const char *notify = 0;
	int n = 0;
	for (char **e = envp; *e && n < MAX_ENV; e++) {
		const char *v = value_of(*e, "NOTIFY_SOCKET");
		if (v)
			notify = v;
		else
			cmd_envp[n++] = *e;
	}
	cmd_envp[n] = 0;
	return notify;
}

static char **stop_env(enum intent i)
{
	int n = 0;
	for (char **e = cmd_envp; *e && n < MAX_ENV; e++) {
		if (!value_of(*e, "VSERVER_TARGET"))
			stop_envp[n++] = *e;
	}
	stop_envp[n++] = (char *)target(i);
	stop_envp[n] = 0;
	return stop_envp;
}

#define AF_UNIX 1
#define SOCK_DGRAM 2
#define SOCK_CLOEXEC 0x80000

struct sockaddr_unix {
	unsigned short family;
	char path[108];
};

/* sd_notify's READY=1 to the socket at PATH ("@name": an abstract one). */
static void notify_ready(const char *path)
{
	struct sockaddr_unix a;
	unsigned long n = len(path);
	if (n == 0 || n >= sizeof a.path)
		return;
	memset(&a, 0, sizeof a);
	a.family = AF_UNIX;
	memcpy(a.path, path, n);
	if (path[0] == '@')
		a.path[0] = 0;
	long fd = sys3(NR_socket, AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sys3(NR_connect, fd, (long)&a, (long)(sizeof a.family + n)) == 0)
		sys3(NR_write, fd, "READY=1", 7);
	sys3(NR_close, fd, 0, 0);
}

static int parse_count(const char *s, long max)
{
	long v = 0;
	if (!s || !*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > max)
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v > max ? -1 : (int)v;
}

static int run(int argc, char **argv, char **envp)
{
	if (argc < 4)
		return 127;
	int chcontext = eq(argv[1], "chcontext");
	int nstart = parse_count(argv[2], argc - 3);
	if (nstart < 1)
		return 127;
	char **start = argv + 3;
	/* The stop command is copied out, so that its first slot can end the start command. */
	static char *stop[MAX_ARGS + 1];
	int ns = 0;
	for (char **s = start + nstart; *s && ns < MAX_ARGS; s++)
		stop[ns++] = *s;
	stop[ns] = 0;
	start[nstart] = 0;
	int have_stop = ns > 0;

	/* A handler (not SIG_DFL) for each signal waited on: the kernel drops default-action
	 * signals sent to a namespace's pid 1. They stay blocked and are taken by sigtimedwait. */
	sigset set = 0;
	for (int i = 0; i < NWAITED; i++) {
		set |= 1UL << (waited[i] - 1);
		set_handler(waited[i], noop);
	}
	sys6(NR_rt_sigprocmask, SIG_BLOCK, (long)&set, 0, sizeof(sigset), 0, 0);

	const char *notify = chcontext ? 0 : split_env(envp);
	if (chcontext) {
		for (int n = 0; n < MAX_ENV && (cmd_envp[n] = envp[n]); n++)
			;
	}
	long main_pid = spawn(start, cmd_envp, &set);
	if (main_pid < 0)
		return 127;
	int main_alive = 1;
	int stopping = 0;
	enum intent intent = STOP;
	long stop_pid = 0;

	for (;;) {
		/* Reap everything that has ended. */
		for (;;) {
			int status = 0;
			long pid = sys6(NR_wait4, -1, (long)&status, WNOHANG, 0, 0, 0);
			if (pid == 0)
				break;
			if (pid == -ECHILD) {
				if (stopping)
					return finish(intent);
				break;
			}
			if (pid < 0)
				break;
			if (pid == main_pid) {
				main_alive = 0;
				int code = status_code(status);
				if (code < 0)
					code = 1;
				if (chcontext) {
					/* The context's life was this command: end what it left behind. */
					sys3(NR_kill, -1, SIGKILL, 0);
					return code;
				}
				if (code != 0 && !stopping) {
					out(2, "vserver-init: start command \"");
					out(2, start[0]);
					out(2, "\" failed with status ");
					put_num(2, code);
					out(2, "\n");
					sys3(NR_kill, -1, SIGKILL, 0);
					return code;
				}
				if (notify && !stopping)
					notify_ready(notify);
			}
			if (stop_pid > 0 && pid == stop_pid) {
				stop_pid = 0;
				/* The stop command is done: whatever is left gets SIGTERM. */
				sys3(NR_kill, -1, SIGTERM, 0);
			}
		}

		struct kernel_siginfo info;
		memset(&info, 0, sizeof info);
		long sig = sys6(NR_rt_sigtimedwait, (long)&set, (long)&info, 0, sizeof(sigset), 0, 0);
		if (sig < 0 || sig == SIGCHLD)
			continue;
		/* A sender inside the context has a pid here; one outside shows as 0. */
		int from_user = info.code == SI_USER || info.code == SI_QUEUE || info.code == SI_TKILL;
		int inside = from_user && info.pid > 0;

		if (chcontext) {
			if (main_alive && (sig == SIGTERM || sig == SIGINT || sig == SIGHUP))
				sys3(NR_kill, main_pid, sig, 0);
			continue;
		}
		enum intent wanted;
		if (inside) {
			int r = inside_request((int)sig);
			if (r < 0)
				continue; /* SIGHUP from inside: nothing to re-read */
			wanted = (enum intent)r;
		} else if (is_stop_signal((int)sig)) {
			wanted = STOP;
		} else {
			continue;
		}
		if (!stopping) {
			stopping = 1;
			intent = wanted;
			stop_pid = have_stop ? spawn(stop, stop_env(intent), &set) : 0;
			if (stop_pid <= 0) {
				stop_pid = 0;
				sys3(NR_kill, -1, SIGTERM, 0);
			}
		} else if (inside) {
			/* The stop command (or anyone inside) asks for a reboot or a halt on the way out. */
			intent = wanted;
		} else {
			/* A second stop request from outside: no more patience. */
			intent = STOP;
			sys3(NR_kill, -1, SIGKILL, 0);
		}
	}
}

void __attribute__((noreturn, used)) init_main(long *sp)
{
	int argc = (int)sp[0];
	char **argv = (char **)(sp + 1);
	char **envp = argv + argc + 1;
	/* An exec through a descriptor names the process after the descriptor's number. */
	sys6(NR_prctl, PR_SET_NAME, (long)"vserver-init", 0, 0, 0, 0);
	leave(run(argc, argv, envp));
}
