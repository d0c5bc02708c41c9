/*
 * replay.c - runs a fuzz target over corpus files without libFuzzer, so that
 * `make test` replays every corpus under the sanitizers.
 *
 * Usage: replay_<target> FILE_OR_DIR...   Prints "N inputs replayed"; no
 * input at all is a failure.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    return -1;
  }
  size_t cap = 1 << 16, n = 0, r;
  uint8_t *p = malloc(cap);
  while ((r = fread(p + n, 1, cap - n, f)) > 0) {
    n += r;
    if (n == cap) p = realloc(p, cap *= 2);
  }
  fclose(f);
  /* Copy to an exact-size buffer so ASan sees reads past the end. */
  uint8_t *exact = malloc(n ? n : 1);
  memcpy(exact, p, n);
  free(p);
  LLVMFuzzerTestOneInput(exact, n);
  free(exact);
  return 0;
}

static int run_path(const char *path, int *count) {
  struct stat st;
  if (stat(path, &st) != 0) {
    perror(path);
    return -1;
  }
  if (!S_ISDIR(st.st_mode)) {
    if (run_file(path) != 0) return -1;
    (*count)++;
    return 0;
  }
  DIR *d = opendir(path);
  if (!d) return -1;
  struct dirent *e;
  int rc = 0;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char sub[4096];
    snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
    if (run_path(sub, count) != 0) rc = -1;
  }
  closedir(d);
  return rc;
}

int main(int argc, char **argv) {
  int count = 0, rc = 0;
  for (int i = 1; i < argc; i++)
    if (run_path(argv[i], &count) != 0) rc = 1;
  printf("%d inputs replayed\n", count);
  if (count == 0) {
    /* An empty or misnamed corpus would otherwise pass without a test. */
    fprintf(stderr, "no input to replay\n");
    rc = 1;
  }
  return rc;
}
