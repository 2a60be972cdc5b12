// Runs a process as if its CPU lacked some instruction sets (AVX-512, VNNI, AMX), on a machine
// that has them: one machine then shows how the suite and the bench behave on the other x86 CPU
// classes of issue 22. Loaded with LD_PRELOAD by tools/cpu-class/run.sh, which names the class.
//
// Why CPUID: ONNX Runtime (MLAS), torch and V8 choose their kernels from CPUID, once per process.
// How: Linux's CPUID faulting (arch_prctl ARCH_SET_CPUID; flag cpuid_fault) turns each CPUID
// instruction into SIGSEGV. The handler runs the real CPUID with faulting off for that thread,
// clears the hidden features' bits and steps over the instruction. /proc/cpuinfo, which diffuse
// reads for the int8 format and the optimised-graph cache key, is served without the hidden flags
// and with the model name marked, so results files say what ran.
#define _GNU_SOURCE
#include <cpuid.h>
#include <ctype.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define ARCH_SET_CPUID 0x1012

enum reg { EAX, EBX, ECX, EDX };

struct feature {
  const char *flag; // as /proc/cpuinfo names it
  uint32_t leaf, subleaf;
  enum reg reg;
  uint32_t bit;
  int hidden;
};

// CPUID leaf 7's vector and matrix extensions (Intel SDM vol. 2A, CPUID; Linux's cpufeatures.h names).
static struct feature features[] = {
    {"avx512f", 7, 0, EBX, 16, 0},          {"avx512dq", 7, 0, EBX, 17, 0},
    {"avx512ifma", 7, 0, EBX, 21, 0},       {"avx512pf", 7, 0, EBX, 26, 0},
    {"avx512er", 7, 0, EBX, 27, 0},         {"avx512cd", 7, 0, EBX, 28, 0},
    {"avx512bw", 7, 0, EBX, 30, 0},         {"avx512vl", 7, 0, EBX, 31, 0},
    {"avx512vbmi", 7, 0, ECX, 1, 0},        {"avx512_vbmi2", 7, 0, ECX, 6, 0},
    {"avx512_vnni", 7, 0, ECX, 11, 0},      {"avx512_bitalg", 7, 0, ECX, 12, 0},
    {"avx512_vpopcntdq", 7, 0, ECX, 14, 0}, {"avx512_4vnniw", 7, 0, EDX, 2, 0},
    {"avx512_4fmaps", 7, 0, EDX, 3, 0},     {"avx512_vp2intersect", 7, 0, EDX, 8, 0},
    {"amx_bf16", 7, 0, EDX, 22, 0},         {"avx512_fp16", 7, 0, EDX, 23, 0},
    {"amx_tile", 7, 0, EDX, 24, 0},         {"amx_int8", 7, 0, EDX, 25, 0},
    {"avx_vnni", 7, 1, EAX, 4, 0},          {"avx512_bf16", 7, 1, EAX, 5, 0},
    {"avx_ifma", 7, 1, EAX, 23, 0},         {"avx_vnni_int8", 7, 1, EDX, 4, 0},
    {"avx_ne_convert", 7, 1, EDX, 5, 0},    {"avx_vnni_int16", 7, 1, EDX, 10, 0},
};
#define N_FEATURES (sizeof features / sizeof *features)

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);
static sigaction_fn real_sigaction;
static struct sigaction previous;

static void set_cpuid_enabled(long enabled) { syscall(SYS_arch_prctl, ARCH_SET_CPUID, enabled); }

static void on_segv(int sig, siginfo_t *info, void *context) {
  greg_t *r = ((ucontext_t *)context)->uc_mcontext.gregs;
  const unsigned char *ip = (const unsigned char *)r[REG_RIP];
  if (ip[0] == 0x0f && ip[1] == 0xa2) {
    uint32_t leaf = (uint32_t)r[REG_RAX], subleaf = (uint32_t)r[REG_RCX], out[4];
    set_cpuid_enabled(1);
    __cpuid_count(leaf, subleaf, out[EAX], out[EBX], out[ECX], out[EDX]);
    set_cpuid_enabled(0);
    for (size_t i = 0; i < N_FEATURES; i++)
      if (features[i].hidden && features[i].leaf == leaf && features[i].subleaf == subleaf)
        out[features[i].reg] &= ~(1u << features[i].bit);
    r[REG_RAX] = out[EAX];
    r[REG_RBX] = out[EBX];
    r[REG_RCX] = out[ECX];
    r[REG_RDX] = out[EDX];
    r[REG_RIP] += 2;
    return;
  }
  if (previous.sa_flags & SA_SIGINFO) {
    previous.sa_sigaction(sig, info, context);
  } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
    previous.sa_handler(sig);
  } else {
    // A real fault: it recurs on return, now with the default action.
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    real_sigaction(SIGSEGV, &dfl, NULL);
  }
}

// Handlers installed later for SIGSEGV (node's WebAssembly trap handler, for one) go behind ours:
// node's does not pass on the faults it does not own to the handler it replaced.
int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
  if (!real_sigaction) real_sigaction = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
  if (sig != SIGSEGV) return real_sigaction(sig, act, old);
  if (old) *old = previous;
  if (act) previous = *act;
  return 0;
}

static int hidden_flag(const char *flag) {
  for (size_t i = 0; i < N_FEATURES; i++)
    if (features[i].hidden && strcmp(features[i].flag, flag) == 0) return 1;
  return 0;
}

// /proc/cpuinfo without the hidden flags, as an anonymous file.
static int masked_cpuinfo(void) {
  FILE *in = fopen("/proc/cpuinfo", "r");
  if (!in) return -1;
  int fd = memfd_create("cpuinfo", MFD_CLOEXEC);
  FILE *out = fdopen(dup(fd), "w");
  const char *class = getenv("DIFFUSE_CPU_CLASS");
  char line[16384];
  while (fgets(line, sizeof line, in)) {
    char *colon = strchr(line, ':');
    int is_flags = strncmp(line, "flags", 5) == 0, is_model = strncmp(line, "model name", 10) == 0;
    if (!colon || !(is_flags || is_model)) {
      fputs(line, out);
      continue;
    }
    fwrite(line, 1, (size_t)(colon - line + 1), out);
    if (is_model) {
      line[strcspn(line, "\n")] = 0;
      fprintf(out, "%s [", colon + 1);
      for (const char *c = class ? class : "masked"; *c; c++) fputc(toupper((unsigned char)*c), out);
      fputs(" class, tools/cpu-class]\n", out);
      continue;
    }
    for (char *tok = strtok(colon + 1, " \n"); tok; tok = strtok(NULL, " \n"))
      if (!hidden_flag(tok)) fprintf(out, " %s", tok);
    fputc('\n', out);
  }
  fclose(in);
  fclose(out);
  lseek(fd, 0, SEEK_SET);
  return fd;
}

static int is_cpuinfo(const char *path) { return path && strcmp(path, "/proc/cpuinfo") == 0; }

// open and open64 go through the real openat/openat64 from the current directory: the same call.
static int open_at(const char *real, int dir, const char *path, int flags, mode_t mode) {
  if (is_cpuinfo(path)) return masked_cpuinfo();
  return ((int (*)(int, const char *, int, ...))dlsym(RTLD_NEXT, real))(dir, path, flags, mode);
}

// The optional mode argument, present when the flags create a file.
#define MODE_ARG(flags)                                                                           \
  mode_t mode = 0;                                                                                \
  if ((flags) & (O_CREAT | O_TMPFILE)) {                                                          \
    va_list ap;                                                                                   \
    va_start(ap, flags);                                                                          \
    mode = va_arg(ap, mode_t);                                                                    \
    va_end(ap);                                                                                   \
  }

int open(const char *path, int flags, ...) { MODE_ARG(flags) return open_at("openat", AT_FDCWD, path, flags, mode); }
int open64(const char *path, int flags, ...) { MODE_ARG(flags) return open_at("openat64", AT_FDCWD, path, flags, mode); }
int openat(int dir, const char *path, int flags, ...) { MODE_ARG(flags) return open_at("openat", dir, path, flags, mode); }
int openat64(int dir, const char *path, int flags, ...) { MODE_ARG(flags) return open_at("openat64", dir, path, flags, mode); }

// DIFFUSE_CPU_HIDE: the /proc/cpuinfo names of the features to hide, separated by spaces.
__attribute__((constructor)) static void hide_features(void) {
  const char *hide = getenv("DIFFUSE_CPU_HIDE");
  if (!hide) return;
  for (size_t i = 0; i < N_FEATURES; i++) {
    size_t n = strlen(features[i].flag);
    for (const char *p = hide; (p = strstr(p, features[i].flag)); p += n)
      if ((p == hide || p[-1] == ' ') && (p[n] == ' ' || p[n] == 0)) features[i].hidden = 1;
  }
  if (!real_sigaction) real_sigaction = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  real_sigaction(SIGSEGV, &sa, &previous);
  if (syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0L) != 0) {
    fputs("tools/cpu-class: no CPUID faulting here (flag cpuid_fault), so no features can be hidden\n", stderr);
    _exit(3);
  }
}
