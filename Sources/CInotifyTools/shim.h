// libinotifytools (Debian: libinotifytools0-dev) plus the kernel's inotify constants, and
// statfs(2), which Glibc's Swift module leaves out: polling picks file systems by its f_type.
#include <sys/inotify.h>
#include <sys/vfs.h>
#include <inotifytools/inotifytools.h>
