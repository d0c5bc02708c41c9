/*
 * tmp_store.h - folders for a real store (SQLite) made under /tmp by unit
 * tests and fuzz targets, and their removal.
 */
#ifndef KK_TMP_STORE_H
#define KK_TMP_STORE_H

#define TMP_STORE_DIR_MAX 64

/* Makes the empty folder /tmp/kk-<tag>-XXXXXX into dir; 0, or KK_EIO with
   dir "" (tag is a short name: the path must fit TMP_STORE_DIR_MAX). */
int tmp_store_dir_new(char dir[TMP_STORE_DIR_MAX], const char *tag);

/* Removes a closed store's folder with its database, WAL and shared-memory
   files; 0 when the folder is gone, else KK_EIO. */
int tmp_store_dir_rm(const char *dir);

#endif
