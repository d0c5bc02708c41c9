/* tmp_store.c - see tmp_store.h. */
#include "tmp_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/kk_err.h"

int tmp_store_dir_new(char dir[TMP_STORE_DIR_MAX], const char *tag) {
  int n = snprintf(dir, TMP_STORE_DIR_MAX, "/tmp/kk-%s-XXXXXX", tag);
  if (n < 0 || n >= TMP_STORE_DIR_MAX || mkdtemp(dir) == NULL) {
    dir[0] = '\0';
    return KK_EIO;
  }
  return 0;
}

int tmp_store_dir_rm(const char *dir) {
  static const char *const files[] = {"kaskad.db", "kaskad.db-wal", "kaskad.db-shm"};
  char path[TMP_STORE_DIR_MAX + 32];
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, files[i]);
    unlink(path);
  }
  return rmdir(dir) == 0 ? 0 : KK_EIO;
}
