/*
 * vserver-monitor, serving: the second life of a vserver's monitor (vserverd/src/monitor).
 * vserverd's monitor builds the context, reports it, waits for pid 1 to say it is ready, and
 * then execs this program, which serves the vserver for the rest of pid 1's life: it copies
 * the console to its log (rotated by size) and to its viewers (and what they type back to
 * the console), and waits for pid 1 to end. When it has, it execs vserverd again
 * (`vserverd monitor-end`) from the descriptor it was given, which does the monitor's end:
 * the cgroups emptied and removed, the network undone, the context number released, the
 * end recorded in state.json.
 *
 * Why a program of its own: one monitor runs per vserver for the vserver's whole life, and
 * vserverd (its runtime, its libraries, the pages and page tables its setup touched) costs
 * each about 200 kB where this costs a few pages. Static and free-standing like vserver-init
 * (no libc, no loader, no heap); the daemon embeds it and every monitor execs the same
 * sealed memfd, so that its pages are shared.
 *
 * The process stays the same (pid, start time, parent of pid 1, the signal mask that keeps
 * SIGCHLD blocked): the daemon, which knows the monitor by pid and start time, sees no
 * change. What it serves comes in the environment (only root reads /proc/PID/environ):
 *
 *   VSERVER_SERVE_PID=pid 1, as the host sees it
 *   VSERVER_SERVE_EXE=the descriptor of vserverd's binary (the monitor-end)
 *   VSERVER_SERVE_CONSOLE=the descriptor of the console pty's master
 *   VSERVER_SERVE_SLAVE=the console pty's slave, as the host names it (reopened when pid 1
 *     hangs up its console)
 *   VSERVER_SERVE_LISTENER=the descriptor of the viewers' listening socket, or -1
 *   VSERVER_SERVE_VIEWERS=the descriptors of connected viewers, comma-separated, or empty
 *   VSERVER_SERVE_LOG=the console log's path
 *   VSERVER_SERVE_LOG_MAX=the size past which it is rotated (bytes)
 *   VSERVER_SERVE_LOG_KEEP=how many rotated logs are kept
 *
 * and the rest of the environment (what vserverd's monitor-end takes over) goes on as is. Every
 * descriptor named above is made close-on-exec here: the monitor-end gets only what vserverd's
 * monitor left open for it (the root's lease, the network's handles), never the console.
 *
 *   argv: vserver-monitor monitor NAME
 */

#include "freestanding.h"

FREESTANDING_ENTRY(serve_main);

#define O_WRONLY 01
#define O_RDWR 02
#define O_CREAT 0100
#define O_NOCTTY 0400
#define O_APPEND 02000
#define O_NONBLOCK 04000
#define O_CLOEXEC 02000000
#define AT_FDCWD (-100)
#define AT_EMPTY_PATH 0x1000
#define F_SETFD 2
#define F_GETFL 3
#define F_SETFL 4
#define FD_CLOEXEC 1
#define SEEK_END 2
#define POLLIN 1
#define MSG_DONTWAIT 0x40
#define MSG_NOSIGNAL 0x4000
#define EINTR 4
#define EAGAIN 11
#define ENOENT 2
#define WNOHANG 1
#define SIGCHLD 17
#define SIG_BLOCK 0
#define PR_SET_NAME 15

/* Like the monitor's: at most this many viewers; the console is copied a page at a time. */
#define MAX_VIEWERS 16
#define BUF 4096

struct pollfd {
	int fd;
	short events;
	short revents;
};

/* The console log, rotated by size: NAME.log -> NAME.log.1 -> ... -> NAME.log.KEEP. */
static const char *log_path;
static long log_fd = -1;
static unsigned long log_size, log_max, log_keep;

static int viewers[MAX_VIEWERS];
static int nviewers;

static long parse_num(const char *s)
{
	int neg = *s == '-';
	long v = 0;
	if (neg)
		s++;
	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s - '0');
	}
	return neg ? -v : v;
}

/* NAME's value in ENVP, or 0. */
static const char *env(char **envp, const char *name)
{
	for (char **e = envp; *e; e++) {
		const char *p = *e, *n = name;
		while (*n && *p == *n)
			p++, n++;
		if (!*n && *p == '=')
			return p + 1;
	}
	return 0;
}

/* "DEC" of V into B (at least 24 bytes); returns B's end. */
static char *put_dec(char *b, unsigned long v)
{
	char t[24];
	int i = 0;
	do
		t[i++] = (char)('0' + v % 10);
	while (v /= 10);
	while (i)
		*b++ = t[--i];
	*b = 0;
	return b;
}

static void set_cloexec(long fd)
{
	if (fd >= 0)
		sys3(NR_fcntl, fd, F_SETFD, FD_CLOEXEC);
}

static void set_nonblock(long fd)
{
	long fl = sys3(NR_fcntl, fd, F_GETFL, 0);
	if (fl >= 0)
		sys3(NR_fcntl, fd, F_SETFL, fl | O_NONBLOCK);
}

static void log_open(void)
{
	/* Mode 0666 less the umask, as the monitor's own opening. */
	log_fd = sys6(NR_openat, AT_FDCWD, (long)log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666, 0, 0);
	long end = log_fd >= 0 ? sys3(NR_lseek, log_fd, 0, SEEK_END) : 0;
	log_size = end > 0 ? (unsigned long)end : 0;
}

/* PATH.N into B (PATH fits: B is as long as PATH plus room for the number). */
static void numbered(char *b, unsigned long n)
{
	unsigned long l = len(log_path);
	memcpy(b, log_path, l);
	b[l] = '.';
	put_dec(b + l + 1, n);
}

static void log_rotate(void)
{
	if (log_fd >= 0)
		sys3(NR_close, log_fd, 0, 0);
	log_fd = -1;
	unsigned long l = len(log_path);
	if (l > 4000)
		return;
	char from[4096 + 32], to[4096 + 32];
	if (log_keep == 0) {
		sys3(NR_unlinkat, AT_FDCWD, log_path, 0);
	} else {
		for (unsigned long i = log_keep - 1; i >= 1; i--) {
			numbered(from, i);
			numbered(to, i + 1);
			sys6(NR_renameat2, AT_FDCWD, (long)from, AT_FDCWD, (long)to, 0, 0);
		}
		numbered(to, 1);
		sys6(NR_renameat2, AT_FDCWD, (long)log_path, AT_FDCWD, (long)to, 0, 0);
	}
	log_open();
}

static void log_write(const char *data, unsigned long n)
{
	if (log_size + n > log_max)
		log_rotate();
	if (log_fd < 0)
		return;
	unsigned long done = 0;
	while (done < n) {
		long w = sys3(NR_write, log_fd, data + done, n - done);
		if (w == -EINTR)
			continue;
		if (w <= 0)
			return;
		done += (unsigned long)w;
	}
	log_size += n;
}

static void drop_viewer(int i)
{
	sys3(NR_close, viewers[i], 0, 0);
	viewers[i] = viewers[--nviewers];
}

/* Console output to every viewer, never waiting: a full viewer misses this piece, a gone one
 * is dropped. */
static void broadcast(const char *data, unsigned long n)
{
	for (int i = 0; i < nviewers;) {
		unsigned long done = 0;
		int gone = 0;
		while (done < n) {
			long w = sys6(NR_sendto, viewers[i], (long)(data + done), n - done, MSG_DONTWAIT | MSG_NOSIGNAL, 0, 0);
			if (w == -EINTR)
				continue;
			if (w == -EAGAIN)
				break;
			if (w <= 0) {
				gone = 1;
				break;
			}
			done += (unsigned long)w;
		}
		if (gone)
			drop_viewer(i);
		else
			i++;
	}
}

static void accept_viewers(int listener)
{
	static const char full[] = "vserver: too many console viewers\r\n";
	for (;;) {
		long c = sys6(NR_accept4, listener, 0, 0, O_NONBLOCK | O_CLOEXEC, 0, 0);
		if (c == -EINTR)
			continue;
		if (c < 0)
			return;
		if (nviewers >= MAX_VIEWERS) {
			sys6(NR_sendto, c, (long)full, sizeof full - 1, MSG_DONTWAIT | MSG_NOSIGNAL, 0, 0);
			sys3(NR_close, c, 0, 0);
			continue;
		}
		viewers[nviewers++] = (int)c;
	}
}

static void drain(long master, char *buf)
{
	set_nonblock(master);
	for (;;) {
		long n = sys3(NR_read, master, buf, BUF);
		if (n <= 0)
			return;
		log_write(buf, (unsigned long)n);
	}
}

/* Execs vserverd's monitor-end with how pid 1 ended; returns only on failure. */
static long monitor_end(long exe, const char *name, int status, char **envp)
{
	char how[24];
	int sig = status & 0x7f;
	put_dec(how, sig ? (unsigned long)sig : (unsigned long)((status >> 8) & 0xff));
	char *argv[] = { "vserver-monitor", "monitor-end", (char *)name, sig ? "signal" : "code", how, 0 };
	return sys6(NR_execveat, exe, (long)"", (long)argv, (long)envp, AT_EMPTY_PATH, 0);
}

static int serve(char **argv, char **envp)
{
	if (!argv[1] || !eq(argv[1], "monitor") || !argv[2]) {
		out(2, "usage: vserver-monitor monitor NAME (run by vserverd's monitor)\n");
		return 2;
	}
	const char *name = argv[2];
	long pid = parse_num(env(envp, "VSERVER_SERVE_PID") ?: "");
	long exe = parse_num(env(envp, "VSERVER_SERVE_EXE") ?: "");
	long master = parse_num(env(envp, "VSERVER_SERVE_CONSOLE") ?: "");
	long listener = parse_num(env(envp, "VSERVER_SERVE_LISTENER") ?: "-1");
	const char *slave = env(envp, "VSERVER_SERVE_SLAVE");
	const char *views = env(envp, "VSERVER_SERVE_VIEWERS");
	log_path = env(envp, "VSERVER_SERVE_LOG");
	long max = parse_num(env(envp, "VSERVER_SERVE_LOG_MAX") ?: "");
	long keep = parse_num(env(envp, "VSERVER_SERVE_LOG_KEEP") ?: "");
	if (pid <= 0 || exe < 0 || master < 0 || !slave || !log_path || max < 4096 || keep < 0) {
		out(2, "vserver-monitor: serving: incomplete environment\n");
		return 2;
	}
	log_max = (unsigned long)max;
	log_keep = (unsigned long)keep;
	sys6(NR_prctl, PR_SET_NAME, (long)"vserver-monitor", 0, 0, 0, 0);
	/* None of these goes on to the monitor-end: the viewers see the console close. */
	set_cloexec(exe);
	set_cloexec(master);
	set_cloexec(listener);
	for (const char *p = views ? views : ""; *p;) {
		char num[24];
		int k = 0;
		while (*p && *p != ',' && k < 23)
			num[k++] = *p++;
		num[k] = 0;
		if (*p == ',')
			p++;
		long fd = parse_num(num);
		if (fd >= 0 && nviewers < MAX_VIEWERS) {
			set_cloexec(fd);
			viewers[nviewers++] = (int)fd;
		}
	}
	log_open();

	/* SIGCHLD stays blocked across the exec; a signalfd wakes the loop when pid 1 ends. */
	unsigned long mask = 1UL << (SIGCHLD - 1);
	sys6(NR_rt_sigprocmask, SIG_BLOCK, (long)&mask, 0, sizeof mask, 0, 0);
	long sfd = sys6(NR_signalfd4, -1, (long)&mask, sizeof mask, O_NONBLOCK | O_CLOEXEC, 0, 0);

	/* Never block on the console: a pid 1 that does not read its input loses what viewers
	 * type. */
	set_nonblock(master);
	char buf[BUF];
	int console_open = 1, reopens = 0;
	long held = -1;
	for (;;) {
		/* First: pid 1 may have ended before the exec, its SIGCHLD taken by the monitor. */
		if (sfd >= 0) {
			char info[128];
			while (sys3(NR_read, sfd, info, sizeof info) > 0) {
			}
		}
		int status = 0;
		long w = sys6(NR_wait4, pid, (long)&status, WNOHANG, 0, 0, 0);
		int ended = w == pid && (status & 0x7f) != 0x7f;
		if (w < 0 && w != -EINTR) {
			/* pid 1 lost (not our child): recorded as an exit with 255, as the monitor does. */
			status = 255 << 8;
			ended = 1;
		}
		if (ended) {
			drain(master, buf);
			long e = monitor_end(exe, name, status, envp);
			static const char msg[] = "vserver-monitor: cannot run vserverd's monitor-end: error ";
			log_write(msg, sizeof msg - 1);
			char num[24];
			char *end = put_dec(num, (unsigned long)-e);
			*end++ = '\n';
			log_write(num, (unsigned long)(end - num));
			return 1;
		}
		struct pollfd fds[3 + MAX_VIEWERS];
		int n = 0, at_console = -1, at_listener = -1, first_viewer;
		if (sfd >= 0)
			fds[n++] = (struct pollfd){ (int)sfd, POLLIN, 0 };
		if (console_open) {
			at_console = n;
			fds[n++] = (struct pollfd){ (int)master, POLLIN, 0 };
		}
		if (listener >= 0) {
			at_listener = n;
			fds[n++] = (struct pollfd){ (int)listener, POLLIN, 0 };
		}
		first_viewer = n;
		int polled = nviewers;
		for (int i = 0; i < nviewers; i++)
			fds[n++] = (struct pollfd){ viewers[i], POLLIN, 0 };
		/* Without a signalfd, pid 1's end is checked every second. */
		struct {
			long sec, nsec;
		} second = { 1, 0 };
		sys6(NR_ppoll, (long)fds, n, sfd >= 0 ? 0 : (long)&second, 0, 0, 0);

		if (at_console >= 0 && fds[at_console].revents) {
			long r = sys3(NR_read, master, buf, BUF);
			if (r == 0) {
				console_open = 0;
			} else if (r > 0) {
				reopens = 0;
				log_write(buf, (unsigned long)r);
				broadcast(buf, (unsigned long)r);
			} else if (r != -EAGAIN && r != -EINTR) {
				/* EIO: no process holds the slave open any more (or it was hung up).
				 * Holding one keeps the console readable for whoever opens it next; if
				 * that fails too, the console is gone. */
				if (reopens >= 3) {
					console_open = 0;
				} else {
					reopens++;
					long s = sys6(NR_openat, AT_FDCWD, (long)slave, O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK, 0, 0, 0);
					if (held >= 0)
						sys3(NR_close, held, 0, 0);
					held = s;
					console_open = s >= 0;
				}
			}
		}
		/* What the viewers polled typed; those gone are dropped. A viewer is found by its
		 * descriptor: the broadcast may have dropped some since the poll. */
		for (int k = first_viewer; k < first_viewer + polled; k++) {
			int i = 0;
			while (i < nviewers && viewers[i] != fds[k].fd)
				i++;
			if (!fds[k].revents || i == nviewers)
				continue;
			long r = sys3(NR_read, viewers[i], buf, BUF);
			if (r > 0 && console_open)
				sys3(NR_write, master, buf, r);
			else if (r == 0 || (r < 0 && r != -EAGAIN && r != -EINTR))
				drop_viewer(i);
		}
		if (at_listener >= 0 && fds[at_listener].revents)
			accept_viewers((int)listener);
	}
}

void __attribute__((noreturn, used)) serve_main(long *sp)
{
	int argc = (int)sp[0];
	char **argv = (char **)(sp + 1);
	char **envp = argv + argc + 1;
	leave(serve(argv, envp));
}
