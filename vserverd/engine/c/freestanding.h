/*
 * What a static program without libc needs: system calls, the entry point and the few memory
 * helpers a compiler may call. Shared by the engine's pid 1 (init.c), vserverd's tools for
 * root inside a vserver (vtool.c) and the serving monitor (monitor.c). Nothing here
 * allocates; every call returns the kernel's answer as is (a negative errno on failure).
 */
#ifndef VSERVER_FREESTANDING_H
#define VSERVER_FREESTANDING_H

#if defined(__x86_64__)
#define NR_read 0
#define NR_write 1
#define NR_close 3
#define NR_rt_sigaction 13
#define NR_rt_sigprocmask 14
#define NR_socket 41
#define NR_connect 42
#define NR_clone 56
#define NR_execve 59
#define NR_exit 60
#define NR_wait4 61
#define NR_kill 62
#define NR_rt_sigtimedwait 128
#define NR_prctl 157
#define NR_sync 162
#define NR_reboot 169
#define NR_lseek 8
#define NR_sendto 44
#define NR_fcntl 72
#define NR_openat 257
#define NR_unlinkat 263
#define NR_ppoll 271
#define NR_accept4 288
#define NR_signalfd4 289
#define NR_renameat2 316
#define NR_execveat 322
static inline long sys6(long n, long a, long b, long c, long d, long e, long f)
{
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	long r;
	__asm__ volatile("syscall"
			 : "=a"(r)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return r;
}
/* _start: the kernel's initial stack (argc, argv, envp) goes to FN as its one argument. */
#define FREESTANDING_ENTRY(fn)                                                                  \
	__asm__(".globl _start\n"                                                               \
		"_start:\n"                                                                     \
		"	xor %rbp, %rbp\n"                                                       \
		"	mov %rsp, %rdi\n"                                                       \
		"	and $-16, %rsp\n"                                                       \
		"	call " #fn "\n"                                                         \
		"	hlt\n")
#elif defined(__aarch64__)
#define NR_read 63
#define NR_write 64
#define NR_close 57
#define NR_rt_sigaction 134
#define NR_rt_sigprocmask 135
#define NR_socket 198
#define NR_connect 203
#define NR_clone 220
#define NR_execve 221
#define NR_exit 93
#define NR_wait4 260
#define NR_kill 129
#define NR_rt_sigtimedwait 137
#define NR_prctl 167
#define NR_sync 81
#define NR_reboot 142
#define NR_lseek 62
#define NR_sendto 206
#define NR_fcntl 25
#define NR_openat 56
#define NR_unlinkat 35
#define NR_ppoll 73
#define NR_accept4 242
#define NR_signalfd4 74
#define NR_renameat2 276
#define NR_execveat 281
static inline long sys6(long n, long a, long b, long c, long d, long e, long f)
{
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	register long x4 __asm__("x4") = e;
	register long x5 __asm__("x5") = f;
	__asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
	return x0;
}
#define FREESTANDING_ENTRY(fn)                                                                  \
	__asm__(".globl _start\n"                                                               \
		"_start:\n"                                                                     \
		"	mov x0, sp\n"                                                           \
		"	bl " #fn "\n")
#else
#error "add the system call numbers of this architecture to freestanding.h"
#endif

#define sys3(n, a, b, c) sys6((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)

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
	sys3(NR_write, fd, s, len(s));
}

static void __attribute__((noreturn)) leave(int code)
{
	for (;;)
		sys3(NR_exit, code, 0, 0);
}

#endif
