/*
 * Preloaded into nodes whose data directory is a sunder-diskfs mount (LD_PRELOAD).
 *
 * sync_file_range(2) never reaches a FUSE filesystem: the kernel writes the range's pages
 * back (which, write-through, the filesystem has already seen) and calls no fsync. A node
 * that waits for its range to be written (SYNC_FILE_RANGE_WAIT_AFTER) counts on the data
 * being on disk, so after the real call this also fdatasyncs the file, which the
 * filesystem does see, and which makes the data durable there.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <unistd.h>

typedef int (*sync_file_range_fn)(int, off_t, off_t, unsigned int);

int sync_file_range(int fd, off_t offset, off_t nbytes, unsigned int flags) {
    static sync_file_range_fn real;
    if (!real) {
        real = (sync_file_range_fn)dlsym(RTLD_NEXT, "sync_file_range");
    }
    int r = real ? real(fd, offset, nbytes, flags) : 0;
    if (r == 0 && (flags & SYNC_FILE_RANGE_WAIT_AFTER)) {
        return fdatasync(fd);
    }
    return r;
}
