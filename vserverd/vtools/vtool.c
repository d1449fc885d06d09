/*
 * vreboot, vhalt, vstatus: the paper's tools for root inside a vserver, through the control
 * socket the daemon serves for this vserver alone at /run/vserver/control. One request line
 * (`reboot`, `halt` or `status`, from the name we are called by), one answer line, printed;
 * exit 0 when it starts with "ok".
 *
 * Static and free-standing (no libc, no loader): the vserver may have neither. Built by
 * vserverd's build script and embedded in the daemon, which places it read-only in each
 * vserver.
 */

#define SOCKET_PATH "/run/vserver/control"

#if defined(__x86_64__)
#define NR_read 0
#define NR_write 1
#define NR_close 3
#define NR_socket 41
#define NR_connect 42
#define NR_exit 60
static long sys3(long n, long a, long b, long c)
{
	long r;
	__asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
	return r;
}
__asm__(".globl _start\n"
	"_start:\n"
	"	xor %rbp, %rbp\n"
	"	mov %rsp, %rdi\n"
	"	and $-16, %rsp\n"
	"	call vtool_main\n"
	"	hlt\n");
#elif defined(__aarch64__)
#define NR_read 63
#define NR_write 64
#define NR_close 57
#define NR_socket 198
#define NR_connect 203
#define NR_exit 93
static long sys3(long n, long a, long b, long c)
{
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	__asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
	return x0;
}
__asm__(".globl _start\n"
	"_start:\n"
	"	mov x0, sp\n"
	"	bl vtool_main\n");
#else
#error "vtool: add the system call numbers of this architecture"
#endif

/* The compiler may call these for structure copies and initialisation. */
void *memset(void *d, int c, unsigned long n)
{
	volatile unsigned char *p = d;
	while (n--)
		*p++ = (unsigned char)c;
	return d;
}

void *memcpy(void *d, const void *s, unsigned long n)
{
	volatile unsigned char *p = d;
	const unsigned char *q = s;
	while (n--)
		*p++ = *q++;
	return d;
}

static unsigned long len(const char *s)
{
	unsigned long n = 0;
	while (s[n])
		n++;
	return n;
}

static int eq(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

static void out(int fd, const char *s)
{
	sys3(NR_write, fd, (long)s, (long)len(s));
}

static void __attribute__((noreturn)) leave(int code)
{
	for (;;)
		sys3(NR_exit, code, 0, 0);
}

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
