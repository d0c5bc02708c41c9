/*
 * test_main.c - the unit test runner (see kk_test.h).
 *
 * Usage: unit-tests [substring]   runs the tests whose name contains it
 * (-substring: every other test); a filter that selects no test is an error
 * (a typo must not pass as green). A PostgreSQL test without KASKAD_TEST_PG
 * fails: tools/run-tests.sh runs them apart, against a cluster. There is no
 * way to skip a test: one whose need is missing fails, saying what it needs.
 *
 * KK_TEST_JOBS=N runs up to N tests at once (default 1), each still in a
 * child of its own; many tests wait on real I/O (a store's writer, sockets,
 * timers). The output is the same as one at a time: each test's stderr is
 * held in a file of its own and printed with its result, in the order of
 * the tests. A test's alarm (a hang) is 60 s, times the tests that share a
 * core when more run at once than there are cores.
 *
 * Each child ends through kk_test_child_end(): in a sanitizer build it runs
 * LeakSanitizer's check first, so a test that leaks fails. (The child leaves
 * with _exit() to skip the parent's atexit handlers, and _exit() alone would
 * skip the check that LeakSanitizer hooks onto exit().)
 */
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kk_test.h"

#if defined(__SANITIZE_ADDRESS__)
#define KK_TEST_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KK_TEST_LSAN 1
#endif
#endif
#ifdef KK_TEST_LSAN
#include <sanitizer/lsan_interface.h>
#endif

static struct kk_test *head, **tail = &head;
static int result_fd = -1;
static const char *current; /* the name of the test this child runs */

void kk_test_register(struct kk_test *t) {
  *tail = t;
  tail = &t->next;
}

void kk_test_fail(const char *file, int line, const char *fmt, ...) {
  char msg[1024];
  int n = snprintf(msg, sizeof msg, "%s:%d: ", file, line);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
  va_end(ap);
  if (result_fd >= 0) {
    ssize_t w = write(result_fd, msg, strlen(msg));
    (void)w;
  }
  _exit(1);
}

void kk_test_need_pg(void) {
  if (current == NULL || strncmp(current, "store_pg", 8) != 0)
    kk_test_fail(__FILE__, __LINE__, "a PostgreSQL test must be named store_pg_* (tools/run-tests.sh)");
  const char *u = getenv("KASKAD_TEST_PG");
  if (u == NULL || *u == '\0')
    kk_test_fail(__FILE__, __LINE__,
                 "KASKAD_TEST_PG is not set: start a cluster with tools/pg-test.sh (make test does)");
}

const char *kk_test_hex(const void *p, size_t n, char *out, size_t cap) {
  const unsigned char *b = p;
  size_t o = 0;
  for (size_t i = 0; i < n && o + 3 < cap; i++) o += (size_t)snprintf(out + o, cap - o, "%02x", b[i]);
  if (o < cap) out[o] = '\0';
  return out;
}

const char *kk_test_data_dir(void) {
  const char *d = getenv("KK_TEST_DATA");
  return d ? d : "tests/data";
}

/* Ends a test's child after its function returned: exit status 0, or 3 with
   a message when LeakSanitizer finds memory the test left unreachable (its
   report goes to stderr). detect_leaks=0 in ASAN_OPTIONS turns this off. */
static void kk_test_child_end(void) {
#ifdef KK_TEST_LSAN
  if (__lsan_do_recoverable_leak_check()) {
    static const char msg[] = "leaked memory (LeakSanitizer report on stderr)";
    if (result_fd >= 0) {
      ssize_t w = write(result_fd, msg, sizeof msg - 1);
      (void)w;
    }
    _exit(3);
  }
#endif
  _exit(0);
}

uint8_t *kk_test_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 4096, n = 0;
  uint8_t *p = malloc(cap);
  size_t r;
  while (p && (r = fread(p + n, 1, cap - n, f)) > 0) {
    n += r;
    if (n == cap) p = realloc(p, cap *= 2);
  }
  fclose(f);
  if (p) *len = n;
  return p;
}

/* One test's child while it runs (and its result until it is printed). */
struct kk_run {
  struct kk_test *t;
  int num;          /* its number in the output */
  pid_t pid;        /* 0: finished */
  int msg_fd;       /* read end of the child's result pipe */
  FILE *err;        /* the child's stderr when tests run at once, else NULL */
  int status;       /* waitpid status */
};

/* Forks t's child. err: a file for its stderr (NULL: the runner's own).
   timeout_s: its alarm. */
static int run_start(struct kk_run *r, FILE *err, unsigned timeout_s) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    close(fds[0]);
    if (err) dup2(fileno(err), 2);
    result_fd = fds[1];
    current = r->t->name;
    alarm(timeout_s);
    r->t->fn();
    kk_test_child_end();
  }
  close(fds[1]);
  r->pid = pid;
  r->msg_fd = fds[0];
  r->err = err;
  return 0;
}

/* Prints a finished run's stderr (if held) and its result line; adds to
   *passed or *failed. */
static void run_report(struct kk_run *r, int *passed, int *failed) {
  char msg[1024];
  ssize_t n = 0, rd;
  while ((rd = read(r->msg_fd, msg + n, sizeof msg - 1 - (size_t)n)) > 0) n += rd;
  msg[n > 0 ? n : 0] = '\0';
  close(r->msg_fd);
  if (r->err) {
    char buf[4096];
    size_t k;
    rewind(r->err);
    while ((k = fread(buf, 1, sizeof buf, r->err)) > 0) fwrite(buf, 1, k, stderr);
    fflush(stderr);
    fclose(r->err);
    r->err = NULL;
  }
  int st = r->status;
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
    printf("ok %d - %s\n", r->num, r->t->name);
    (*passed)++;
  } else {
    if (!msg[0]) {
      if (WIFSIGNALED(st))
        snprintf(msg, sizeof msg, "killed by signal %d%s", WTERMSIG(st),
                 WTERMSIG(st) == SIGALRM ? " (timeout)" : "");
      else
        snprintf(msg, sizeof msg, "exit status %d", WEXITSTATUS(st));
    }
    printf("not ok %d - %s: %s\n", r->num, r->t->name, msg);
    (*failed)++;
  }
}

int main(int argc, char **argv) {
  /* "name" runs the tests whose names contain it; "-name" all the others */
  const char *filter = argc > 1 ? argv[1] : NULL;
  int exclude = filter && filter[0] == '-';
  if (exclude) filter++;
  int passed = 0, failed = 0, num = 0;
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *jv = getenv("KK_TEST_JOBS");
  int jobs = jv ? atoi(jv) : 1;
  if (jobs < 1) jobs = 1;
  /* A test that runs past its alarm hangs; a slow machine is not a hang (the
     store tests wait on real I/O): 60 s, times the tests that share a core
     when more run at once than there are cores. */
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  if (cpus < 1) cpus = 1;
  unsigned timeout_s = 60u * (unsigned)((jobs + cpus - 1) / cpus);
  for (struct kk_test *t = head; t; t = t->next)
    if (!filter || (strstr(t->name, filter) != NULL) != exclude) num++;
  /* Owned here, freed at the end. */
  struct kk_run *runs = calloc((size_t)num + 1, sizeof *runs);
  if (!runs) return 2;
  int n = 0;
  for (struct kk_test *t = head; t; t = t->next)
    if (!filter || (strstr(t->name, filter) != NULL) != exclude) {
      runs[n] = (struct kk_run){.t = t, .num = n + 1, .msg_fd = -1};
      n++;
    }
  /* Tests start in order, up to `jobs` at once; results print in order. */
  int next = 0, printed = 0, running = 0;
  while (printed < num) {
    while (next < num && running < jobs) {
      FILE *err = NULL;
      if (jobs > 1 && (err = tmpfile()) == NULL) return 2;
      if (run_start(&runs[next], err, timeout_s) != 0) return 2;
      next++;
      running++;
    }
    int st = 0;
    pid_t pid = waitpid(-1, &st, 0);
    if (pid < 0) return 2;
    for (int i = printed; i < next; i++)
      if (runs[i].pid == pid) {
        runs[i].pid = 0;
        runs[i].status = st;
        running--;
      }
    while (printed < next && runs[printed].pid == 0) run_report(&runs[printed++], &passed, &failed);
  }
  free(runs);
  if (filter && num == 0) {
    printf("not ok 1 - no test name contains \"%s\"\n", filter);
    failed++;
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
