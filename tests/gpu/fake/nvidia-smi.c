/* A stand-in for nvidia-smi: the driver's header line, then each /dev/nvidiaN
 * the container has, with its device numbers and whether the device cgroup lets
 * it be opened (EPERM: denied; any other answer, such as ENXIO from a major no
 * driver serves: allowed). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static int by_number(const void *a, const void *b) {
    return atoi(*(char *const *)a + 6) - atoi(*(char *const *)b + 6);
}

int main(void) {
    char *names[256];
    int n = 0;
    DIR *d = opendir("/dev");
    struct dirent *e;
    printf("NVIDIA-SMI %s   Driver Version: %s   CUDA Version: %s\n", DRIVER_VERSION,
           DRIVER_VERSION, CUDA_VERSION_STR);
    while (d && (e = readdir(d)) && n < 256) {
        const char *s = e->d_name;
        if (strncmp(s, "nvidia", 6) == 0 && s[6] >= '0' && s[6] <= '9' &&
            strspn(s + 6, "0123456789") == strlen(s + 6))
            names[n++] = strdup(s);
    }
    qsort(names, n, sizeof *names, by_number);
    for (int i = 0; i < n; i++) {
        char path[300];
        struct stat st;
        snprintf(path, sizeof path, "/dev/%s", names[i]);
        if (stat(path, &st) != 0) continue;
        int fd = open(path, O_RDWR);
        int err = fd < 0 ? errno : 0;
        if (fd >= 0) close(fd);
        printf("GPU %s: %s %u:%u %s\n", names[i] + 6, path, major(st.st_rdev),
               minor(st.st_rdev), err == EPERM ? "denied" : "allowed");
    }
    if (n == 0) printf("No devices were found\n");
    return n == 0 ? 6 : 0;
}
